"""Encoders: the only place that knows about torch and transformers (in ``clip.py``).

This package's top level stays light: ``resolve_model_name`` lets the engine compare a requested
model with the one an index was built with before anything heavy is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

from searchclip._encoders.base import Encoder, normalize

DEFAULT_MODEL = "openai/clip-vit-base-patch32"

__all__ = ["DEFAULT_MODEL", "Encoder", "load_encoder", "normalize", "resolve_model_name"]


def resolve_model_name(model: str) -> str:
    """The name an index records for ``model``.

    A local directory is recorded as its absolute path, so the same model reached through two
    relative paths is the same model; anything else is taken as a Hugging Face id.
    """
    path = Path(model).expanduser()
    if path.is_dir() or looks_like_path(model):
        return str(path.resolve())
    return model


def looks_like_path(model: str) -> bool:
    """True for strings a user means as a filesystem path rather than a hub id."""
    return model.startswith((".", "~", os.sep)) or model.count("/") > 1 or os.sep + os.sep in model


def load_encoder(model: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 32) -> Encoder:
    """Load the CLIP encoder for ``model`` (a Hugging Face id or a local directory)."""
    from searchclip._encoders.clip import ClipEncoder

    return ClipEncoder.load(model, device=device, batch_size=batch_size)
