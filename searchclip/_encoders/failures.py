"""How the encoders report failures: one-line messages, and the ``clip`` extra when it is missing.

torch, transformers, safetensors, huggingface_hub and onnx come with ``searchclip[clip]``; the
base install runs an index's ONNX exports without them. Every way into code that needs them
turns the ImportError of a missing one into :class:`~searchclip._errors.MissingExtraError`.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from searchclip._errors import MissingExtraError

CLIP_EXTRA = "clip"
CLIP_PACKAGES = frozenset({"torch", "transformers", "safetensors", "huggingface_hub", "onnx"})
# {missing}: the package that failed to import
MISSING_CLIP_MESSAGE = (
    "indexing and the torch encoders need PyTorch and transformers ({missing} is not "
    "installed): pip install 'searchclip[clip]'"
)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, shortened: never a traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def missing_clip_extra(exc: BaseException, model: str | None = None) -> MissingExtraError | None:
    """The MissingExtraError that ``exc`` means, if it is the ImportError of a package of the
    ``clip`` extra (or already a MissingExtraError); else None."""
    if isinstance(exc, MissingExtraError):
        return exc
    # The package itself must be missing: a name it lacks (too old a version) or a missing
    # submodule of an installed package is another problem, left as it is.
    if not isinstance(exc, ModuleNotFoundError) or exc.name not in CLIP_PACKAGES:
        return None
    message = MISSING_CLIP_MESSAGE.format(missing=exc.name)
    return MissingExtraError(message, extra=CLIP_EXTRA, model=model)


@contextmanager
def clip_extra_required(model: str | None = None) -> Iterator[None]:
    """Around code that imports the ``clip`` extra's packages: a missing one raises
    MissingExtraError (with ``model`` as its context) instead of an ImportError."""
    try:
        yield
    except MissingExtraError:
        raise
    except ImportError as exc:
        missing = missing_clip_extra(exc, model)
        if missing is None:
            raise
        raise missing from exc
