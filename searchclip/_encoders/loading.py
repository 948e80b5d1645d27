"""Loading a dual-encoder model, its tokenizer and its image processor through transformers.

All three always come from the same source: a local directory, or a Hugging Face id tried
first in the local cache and downloaded only when the hub can be reached. The model's class is
the one its config's ``model_type`` names (:mod:`.families`); the tokenizer and the image
processor are the ones the model's files name (``AutoTokenizer``, ``AutoImageProcessor`` with
its PIL backend, which :mod:`.onnx_image` reproduces without torch); weights load from
safetensors only. Every failure is one line: :class:`~searchclip._errors.ModelLoadError` with
the model as its context, or MissingExtraError when the ``clip`` extra is not installed.

Nothing process-wide is changed while loading: transformers' own logging and its progress bar
for loading weights are left as the application set them (``HF_HUB_DISABLE_PROGRESS_BARS=1``
or ``transformers.utils.logging.disable_progress_bar()`` turn that bar off); transformers has
no per-call switch for it.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from huggingface_hub import try_to_load_from_cache
from transformers import AutoImageProcessor, AutoTokenizer

from searchclip._encoders import families, looks_like_path, resolve_model_name
from searchclip._encoders.failures import clip_extra_required, first_line
from searchclip._errors import ModelError, ModelLoadError

_TRUTHY = {"1", "true", "yes", "on"}
_DNS_TIMEOUT_S = 2.0  # how long to wait for the hub's host name before calling it unreachable


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to encode, with what came with it."""

    model_id: str  # what an index records (see resolve_model_name)
    model: torch.nn.Module  # on ``device``, in eval mode
    tokenizer: object
    processor: object
    device: str
    source_dir: Path | None  # the directory the files were read from (a hub snapshot), if known


def load_model(model: str, device: str = "auto") -> LoadedModel:
    """Load ``model`` (a local directory or a Hugging Face id) onto ``device``."""
    model_id = resolve_model_name(model)
    device = pick_device(device, model_id)
    path = Path(model).expanduser()
    if path.is_dir():
        source = path.resolve()
        parts = _load_directory(source)
    elif looks_like_path(model):
        raise ModelLoadError(f"no model directory at {path}", model=model_id)
    else:
        parts = _load_hub(model)
        source = _hub_snapshot(model)
    clip, tokenizer, processor = parts
    try:
        clip.to(device)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot move the model to {device}: {first_line(exc)}", model=model_id
        ) from exc
    clip.eval()
    return LoadedModel(model_id, clip, tokenizer, processor, device, source)


def pick_device(device: str, model_id: str | None = None) -> str:
    """``device`` checked against what torch sees; ``auto`` is CUDA where there is one."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"CUDA device '{device}' was requested but torch sees no CUDA device",
                model=model_id,
            )
        return device  # a cuda:N beyond the last device fails when the model moves there
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ModelLoadError(
                "the MPS device was requested but torch sees no MPS device", model=model_id
            )
        return device
    raise ModelLoadError(
        f"unknown device '{device}': use auto, cpu, cuda, cuda:N or mps", model=model_id
    )


def _load_parts(source: str, local_files_only: bool):
    """Model, tokenizer and image processor, all from ``source``."""
    kwargs = {"local_files_only": local_files_only}
    with clip_extra_required(source):  # transformers imports some parts on first use
        config = families.read_config(source, **kwargs)
        model_class = families.model_class(getattr(config, "model_type", None), source)
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        processor = AutoImageProcessor.from_pretrained(source, backend="pil", **kwargs)
        model = model_class.from_pretrained(
            source, config=config, use_safetensors=True, dtype=torch.float32, **kwargs
        )
    return model, tokenizer, processor


def _load_directory(path: Path):
    model_id = str(path)
    names = {entry.name for entry in path.iterdir()}
    if "config.json" not in names:
        raise ModelLoadError(
            f"{path} is not a model directory: it has no config.json", model=model_id
        )
    if not names & {"model.safetensors", "model.safetensors.index.json"}:
        has_bin = any(name.endswith(".bin") for name in names)
        found = "only PyTorch .bin weights" if has_bin else "no weights"
        raise ModelLoadError(
            f"{path} has {found}: safetensors weights (model.safetensors) are required; "
            "re-save the model with save_pretrained() to write them",
            model=model_id,
        )
    missing = []
    if not _has_tokenizer_files(names):
        missing.append(
            "tokenizer files (tokenizer.json; or vocab.json and merges.txt, vocab.txt or a "
            "SentencePiece .model file)"
        )
    if "preprocessor_config.json" not in names:
        missing.append("the image processor file preprocessor_config.json")
    if missing:
        raise ModelLoadError(f"{path} is missing {' and '.join(missing)}", model=model_id)
    try:
        return _load_parts(model_id, local_files_only=True)
    except ModelError:
        raise  # already one line: not a model searchclip can use, or a missing extra
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load the model in {path}: {first_line(exc)}", model=model_id
        ) from exc


def _has_tokenizer_files(names: set[str]) -> bool:
    """Whether a directory's file ``names`` include a tokenizer: a fast one's tokenizer.json,
    or a BPE (CLIP), WordPiece (BERT) or SentencePiece (SigLIP, XLM-R) vocabulary."""
    if "tokenizer.json" in names or "vocab.txt" in names or {"vocab.json", "merges.txt"} <= names:
        return True
    return any(name.endswith(".model") for name in names)


def _load_hub(model: str):
    try:
        return _load_parts(model, local_files_only=True)
    except ModelError:
        raise  # loaded, but not a model searchclip can use; or a missing extra
    except Exception as exc:
        cached_error = exc
    if _hub_unreachable():
        if _in_cache(model):
            raise ModelLoadError(
                f"cannot load model '{model}' from the local Hugging Face cache "
                f"({first_line(cached_error)}) and huggingface.co cannot be reached; "
                "load a complete local copy from its directory instead",
                model=model,
            ) from cached_error
        raise ModelLoadError(
            f"cannot load model '{model}': it is not in the local Hugging Face cache and "
            "huggingface.co cannot be reached. Save it with save_pretrained() on a machine "
            "with network access and load it from that directory",
            model=model,
        ) from cached_error
    try:
        return _load_parts(model, local_files_only=False)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"cannot download model '{model}' from Hugging Face: {first_line(exc)}. "
            "Check the id, or save the model locally and load it from its directory",
            model=model,
        ) from exc


def _hub_snapshot(model: str) -> Path | None:
    """The local snapshot directory a hub model was loaded from."""
    try:
        config = try_to_load_from_cache(model, "config.json")
    except Exception:
        return None
    return Path(config).parent if isinstance(config, str) else None


def _in_cache(model: str) -> bool:
    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:
        return False


def _hub_unreachable() -> bool:
    """True when offline mode is on or the hub's host name does not resolve within
    ``_DNS_TIMEOUT_S`` (a lookup can hang far longer on a machine without network)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY:
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    if not host:
        return True
    resolved: list[bool] = []

    def lookup() -> None:
        with suppress(OSError):
            resolved.append(bool(socket.getaddrinfo(host, 443)))

    thread = threading.Thread(target=lookup, name="searchclip-dns", daemon=True)
    thread.start()
    thread.join(_DNS_TIMEOUT_S)
    return not resolved
