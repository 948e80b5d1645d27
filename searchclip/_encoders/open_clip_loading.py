"""Loading an OpenCLIP checkpoint through OpenCLIP itself: its model factory, its eval image
transform and its tokenizer (see :mod:`.open_clip_files` for what a checkpoint is).

- a local directory goes through OpenCLIP's ``local-dir:`` route, once its files are checked;
- ``hf-hub:ORG/NAME`` is loaded from the local Hugging Face cache when the checkpoint is there
  (the same route as a directory, from its snapshot), else through OpenCLIP's own hub route,
  which downloads it, when huggingface.co can be reached; else a one-line error.

Every failure is one line: ModelLoadError with the model as its context, or MissingExtraError
naming ``pip install 'searchclip[openclip]'``. Imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from searchclip._encoders import resolve_model_name
from searchclip._encoders.failures import first_line
from searchclip._encoders.open_clip_files import (
    CONFIG_FILE,
    HUB_PREFIX,
    WEIGHT_FILES,
    checkpoint_files,
    is_hub_id,
    openclip_extra_required,
)
from searchclip._errors import ModelError, ModelLoadError


@dataclass(frozen=True)
class LoadedOpenClip:
    """An OpenCLIP model ready to encode, with its own transform and tokenizer."""

    model_id: str  # what an index records: the directory's absolute path, or the hf-hub: id
    model: torch.nn.Module  # on ``device``, in eval mode
    transform: Callable  # OpenCLIP's eval transform: PIL image -> tensor (3, s, s)
    tokenizer: Callable  # OpenCLIP's tokenizer: texts -> int64 tensor (n, context length)
    preprocess_cfg: dict  # the model's final preprocessing settings (OpenCLIP's PreprocessCfg)
    device: str
    source_dir: Path | None  # the directory the files were read from, if known


def open_clip_module(model: str | None = None):
    """``open_clip``, imported (searchclip._encoders' import hook makes torchvision
    importable first: see torchvision_compat)."""
    with openclip_extra_required(model):
        import open_clip

    return open_clip


def load_open_clip(model: str, device: str = "auto") -> LoadedOpenClip:
    """Load ``model`` (an ``hf-hub:`` id or a checkpoint directory) onto ``device``."""
    model_id = resolve_model_name(model)
    open_clip = open_clip_module(model_id)
    from searchclip._encoders.loading import pick_device

    device = pick_device(device, model_id)
    if is_hub_id(model_id):
        loaded = _load_hub(open_clip, model_id)
    else:
        directory = Path(model_id)
        if not directory.is_dir():
            raise ModelLoadError(f"no model directory at {directory}", model=model_id)
        checkpoint_files(directory, model_id)  # one line for what OpenCLIP would trip on
        loaded = _load_parts(open_clip, f"local-dir:{directory}", model_id, f"in {directory}")
        loaded = (*loaded, directory)
    model_module, transform, tokenizer, source = loaded
    try:
        model_module.to(device)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot move the model to {device}: {first_line(exc)}", model=model_id
        ) from exc
    model_module.eval()
    preprocess_cfg = dict(getattr(model_module.visual, "preprocess_cfg", {}) or {})
    return LoadedOpenClip(
        model_id, model_module, transform, tokenizer, preprocess_cfg, device, source
    )


def _load_parts(open_clip, name: str, model_id: str, where: str):
    """Model, eval transform and tokenizer through OpenCLIP's factory, for ``name``
    (``local-dir:PATH`` or ``hf-hub:ID``)."""
    try:
        with openclip_extra_required(model_id):
            model, _, transform = open_clip.create_model_and_transforms(name, device="cpu")
            tokenizer = open_clip.get_tokenizer(name)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load the OpenCLIP model {where}: {first_line(exc)}", model=model_id
        ) from exc
    return model, transform, tokenizer


def _load_hub(open_clip, model_id: str):
    repo = model_id[len(HUB_PREFIX) :]
    if not repo.strip("/"):
        raise ModelLoadError(
            f"'{model_id}' names no repository: use hf-hub:ORG/NAME", model=model_id
        )
    snapshot = cached_snapshot(repo)
    if snapshot is not None:
        checkpoint_files(snapshot, model_id)
        where = f"'{model_id}' from the local Hugging Face cache"
        return (*_load_parts(open_clip, f"local-dir:{snapshot}", model_id, where), snapshot)
    from searchclip._encoders.loading import _hub_unreachable

    if _hub_unreachable():
        raise ModelLoadError(
            f"cannot load model '{model_id}': it is not in the local Hugging Face cache and "
            "huggingface.co cannot be reached. Load it once with network access (it is then "
            "cached), or load a local copy of the repository from its directory",
            model=model_id,
        )
    where = f"'{model_id}' from Hugging Face"
    return (*_load_parts(open_clip, model_id, model_id, where), cached_snapshot(repo))


def cached_snapshot(repo: str) -> Path | None:
    """The local Hugging Face snapshot of ``repo`` if it holds an OpenCLIP config and weights."""
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(repo, CONFIG_FILE)
        if not isinstance(config, str):
            return None
        if any(isinstance(try_to_load_from_cache(repo, name), str) for name in WEIGHT_FILES):
            return Path(config).parent
    except Exception:  # an odd repo id, an unreadable cache: treated as not cached
        return None
    return None
