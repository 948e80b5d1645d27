"""Encoders: images and texts to unit vectors. The only package that imports torch and
transformers (``clip.py``, ``loading.py``, ``towers.py``, ``conv_clip.py``, ``families.py``),
and only on the paths that need them.

This package's top level stays light: ``resolve_model_name`` lets the engine compare a requested
model with the one an index was built with, and ``needs_torch`` tell whether loading a model
will import torch, before anything heavy is imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from searchclip._encoders.base import Encoder, normalize
from searchclip._encoders.open_clip_files import (
    is_hub_id,
    is_open_clip_model,
    openclip_extra_required,
)
from searchclip._encoders.torchvision_compat import install_import_hook

install_import_hook()  # a CUDA torchvision beside the CPU torch would break transformers

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
# The model_type of a fake encoder's directory (searchclip._encoders.fake): loaded without torch.
FAKE_MODEL_TYPE = "searchclip-fake"

__all__ = [
    "DEFAULT_MODEL",
    "Encoder",
    "load_encoder",
    "needs_torch",
    "normalize",
    "resolve_model_name",
]


def resolve_model_name(model: str) -> str:
    """The name an index records for ``model``.

    A local directory is recorded as its absolute path, so the same model reached through two
    relative paths is the same model; anything else is taken as a Hugging Face id.
    """
    if is_hub_id(model):  # OpenCLIP's hf-hub:ORG/NAME: never a path
        return model
    path = Path(model).expanduser()
    if path.is_dir() or looks_like_path(model):
        return str(path.resolve())
    return model


def looks_like_path(model: str) -> bool:
    """True for strings a user means as a filesystem path rather than a hub id."""
    return model.startswith((".", "~", os.sep)) or model.count("/") > 1 or os.sep + os.sep in model


def needs_torch(model_name: str) -> bool:
    """Whether loading ``model_name`` with :func:`load_encoder` imports torch: False only for a
    fake encoder's directory. Torch-free."""
    return _fake_model_dir(model_name) is None


def load_encoder(model: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 32) -> Encoder:
    """Load the encoder for ``model``: a Hugging Face id, or a local model directory.

    A CLIP-style model loads through torch onto ``device`` (auto, cpu, cuda, cuda:N or mps);
    an OpenCLIP checkpoint (``hf-hub:ORG/NAME``, or a directory with ``open_clip_config.json``)
    through OpenCLIP (:mod:`.open_clip`); a fake encoder's directory (``config.json`` with
    ``"model_type": "searchclip-fake"``) loads without torch. transformers may draw its
    progress bar for loading weights on stderr; ``HF_HUB_DISABLE_PROGRESS_BARS=1`` turns it off.

    Raises:
        ModelLoadError: the model cannot be found, read or used, or ``device`` is unusable.
        MissingExtraError: the ``clip`` extra (torch, transformers) is not installed, or for an
            OpenCLIP checkpoint the ``openclip`` extra.
    """
    fake_dir = _fake_model_dir(model)
    if fake_dir is not None:
        from searchclip._encoders.fake import FakeEncoder

        return FakeEncoder.load(fake_dir, batch_size=batch_size)
    if is_open_clip_model(model):  # hf-hub:ORG/NAME, or a directory with open_clip_config.json
        with openclip_extra_required(resolve_model_name(model)):
            from searchclip._encoders.open_clip import OpenClipEncoder
        return OpenClipEncoder.load(model, device=device, batch_size=batch_size)
    from searchclip._encoders.failures import clip_extra_required

    with clip_extra_required(resolve_model_name(model)):
        from searchclip._encoders.clip import ClipEncoder
    return ClipEncoder.load(model, device=device, batch_size=batch_size)


def _fake_model_dir(model: str) -> Path | None:
    """``model``'s directory if it holds a fake encoder's ``config.json``; else None."""
    directory = Path(model).expanduser()
    try:
        config = json.loads((directory / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("model_type") != FAKE_MODEL_TYPE:
        return None
    return directory
