"""OpenCLIP checkpoints as searchclip finds them, before anything heavy is imported.

An OpenCLIP checkpoint is recognised by its own config, ``open_clip_config.json`` (``model_cfg``:
the architecture; ``preprocess_cfg``: image size, mean/std, interpolation, resize mode), laid out
as OpenCLIP's hub repos are (e.g. laion/CLIP-ViT-B-32-laion2B-s34B-b79K, apple/DFN2B-CLIP-ViT-B-16,
apple/MobileCLIP-S2-OpenCLIP). Two ways in:

- ``hf-hub:ORG/NAME``: OpenCLIP's own hub route (the id is recorded as it is, never as a path);
- a local directory with ``open_clip_config.json`` and the weights.

Weights: ``open_clip_model.safetensors`` is preferred, as everywhere in searchclip. Some hub
repos ship only ``open_clip_pytorch_model.bin``; that one is read with
``torch.load(weights_only=True)``, which unpickles tensors and plain containers and refuses
anything that would run code. A directory with neither is refused in one line. A directory that
also holds a transformers model (a ``config.json`` naming a ``model_type``: several LAION repos
ship both forms of the same weights) loads through transformers, as before, so an index made
that way keeps its model; timm's repos have a ``config.json`` without one and load here.

Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from searchclip._errors import MissingExtraError, ModelLoadError

HUB_PREFIX = "hf-hub:"
CONFIG_FILE = "open_clip_config.json"
SAFETENSORS_FILE = "open_clip_model.safetensors"
BIN_FILE = "open_clip_pytorch_model.bin"
WEIGHT_FILES = (SAFETENSORS_FILE, BIN_FILE)  # in order of preference
OPENCLIP_EXTRA = "openclip"
# What the extra brings; an ImportError of any of them means the extra is missing.
OPENCLIP_PACKAGES = frozenset(
    {"open_clip", "timm", "ftfy", "torchvision", "torch", "safetensors", "huggingface_hub", "onnx"}
)
MISSING_OPENCLIP_MESSAGE = (
    "OpenCLIP models need open_clip_torch ({missing} is not installed): "
    "pip install 'searchclip[openclip]'"
)


def is_hub_id(model: str) -> bool:
    """True for ``hf-hub:ORG/NAME``: OpenCLIP's hub route, never a path."""
    return model.startswith(HUB_PREFIX)


def is_open_clip_model(model: str) -> bool:
    """Whether ``model`` loads through OpenCLIP: an ``hf-hub:`` id, or a directory holding
    ``open_clip_config.json`` and no transformers model."""
    if is_hub_id(model):
        return True
    directory = Path(model).expanduser()
    return (directory / CONFIG_FILE).is_file() and not _has_transformers_config(directory)


def _has_transformers_config(directory: Path) -> bool:
    try:
        config = json.loads((directory / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model_type" in config


@dataclass(frozen=True)
class CheckpointFiles:
    """A checkpoint's directory, its two configs and the weights file to read."""

    directory: Path
    model_cfg: dict
    preprocess_cfg: dict
    weights: Path


def checkpoint_files(directory: Path, model_id: str | None = None) -> CheckpointFiles:
    """The files of the OpenCLIP checkpoint in ``directory``; a one-line ModelLoadError if its
    config is missing, unreadable or not OpenCLIP's, or it has no weights searchclip reads."""
    model_id = model_id or str(directory)
    try:
        config = json.loads((directory / CONFIG_FILE).read_text("utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{directory} has no {CONFIG_FILE}", model=model_id) from None
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        message = f"cannot read {directory / CONFIG_FILE}: {reason}"
        raise ModelLoadError(message, model=model_id) from exc
    model_cfg = config.get("model_cfg") if isinstance(config, dict) else None
    towers = ("embed_dim", "vision_cfg", "text_cfg")
    if not isinstance(model_cfg, dict) or not all(key in model_cfg for key in towers):
        raise ModelLoadError(
            f"{directory / CONFIG_FILE} is not an OpenCLIP config: it needs a 'model_cfg' with "
            "embed_dim, vision_cfg and text_cfg",
            model=model_id,
        )
    preprocess_cfg = config.get("preprocess_cfg", {})
    if not isinstance(preprocess_cfg, dict):
        raise ModelLoadError(
            f"{directory / CONFIG_FILE}: 'preprocess_cfg' must be an object", model=model_id
        )
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return CheckpointFiles(directory, model_cfg, preprocess_cfg, directory / name)
    raise ModelLoadError(
        f"{directory} has no OpenCLIP weights: {SAFETENSORS_FILE} (or {BIN_FILE}) is required",
        model=model_id,
    )


def missing_openclip_extra(exc: BaseException, model: str | None) -> MissingExtraError | None:
    """The MissingExtraError that ``exc`` means, if it is the ImportError of a package the
    ``openclip`` extra brings; else None."""
    if isinstance(exc, MissingExtraError):
        return exc
    if not isinstance(exc, ModuleNotFoundError) or exc.name not in OPENCLIP_PACKAGES:
        return None
    message = MISSING_OPENCLIP_MESSAGE.format(missing=exc.name)
    return MissingExtraError(message, extra=OPENCLIP_EXTRA, model=model)


@contextmanager
def openclip_extra_required(model: str | None) -> Iterator[None]:
    """Around code that imports OpenCLIP and what it needs: a missing package raises
    MissingExtraError naming the ``openclip`` extra instead of an ImportError."""
    try:
        yield
    except ImportError as exc:
        missing = missing_openclip_extra(exc, model)
        if missing is None:
            raise
        raise missing from exc
