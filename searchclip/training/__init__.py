"""Training CLIP-style models contrastively, as the CLIP paper does (``transformers.CLIPModel``
or searchclip's ``ConvClipModel``).

With ``searchclip._encoders``, the only package that imports torch and transformers, and only
when used: nothing imports it eagerly, and its names load on first access.

- ``loss``: the symmetric CLIP objective (``clip_loss``);
- ``trainer``: the training loop (``train_clip``, with an optional auxiliary label loss) and
  batch sources;
- ``tokenizer``: a CLIP-format BPE tokenizer built from scratch for a caption vocabulary;
- ``shapes_data`` / ``tiny_model``: the bundled shapes model, trained on generated scenes
  (its search quality is measured by ``searchclip._quality``).

``python -m searchclip.training`` retrains the bundled model from scratch.

Training needs the ``clip`` extra (torch and transformers); without it every name here, and
``python -m searchclip.training``, raise :class:`~searchclip.MissingExtraError` naming it.
"""

from __future__ import annotations

import importlib
import importlib.util

from searchclip._errors import MissingExtraError

_EXPORTS = {
    "clip_loss": "searchclip.training.loss",
    "Batch": "searchclip.training.trainer",
    "PairBatches": "searchclip.training.trainer",
    "TrainingResult": "searchclip.training.trainer",
    "train_clip": "searchclip.training.trainer",
    "build_tokenizer": "searchclip.training.tokenizer",
    "save_tokenizer": "searchclip.training.tokenizer",
    "train_shapes_model": "searchclip.training.tiny_model",
}

__all__ = sorted(_EXPORTS)


# What training imports from the clip extra; the first one missing is named in the error.
_CLIP_MODULES = ("torch", "transformers")


def _require_clip_extra() -> None:
    """Raise MissingExtraError (extra ``"clip"``) unless torch and transformers are installed.

    Looks the modules up without importing them, so the check itself costs nothing.
    """
    missing = [name for name in _CLIP_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"training needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            "pip install 'searchclip[clip]'",
            extra="clip",
        )


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _require_clip_extra()
    return getattr(importlib.import_module(_EXPORTS[name]), name)
