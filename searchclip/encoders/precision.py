"""Image-encoding precision: the names an index records, and ``auto``'s choice.

``fp32`` is the reference. ``bf16`` runs the image tower in bfloat16 (2.0x faster for ViT-B/32
on this project's Zen 4 CPU with avx512_bf16); its vectors are still float32 and unit length.
``auto`` picks bf16 only where the device supports it and the first batch of the user's own
images shows that it agrees with fp32 (every cosine >= ``MIN_COSINE``), so an index never trades
quality unseen.
Torch-free: the encoder does the encoding, this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from searchclip.errors import InvalidArgumentError

if TYPE_CHECKING:
    from searchclip.encoders.base import Encoder

FP32, BF16, AUTO = "fp32", "bf16", "auto"
PRECISIONS = (FP32, BF16, AUTO)
ENCODING_PRECISIONS = (FP32, BF16)  # what an index can record: auto always resolves to one
MIN_COSINE = 0.999  # the same bar the ONNX text export is held to


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``auto`` chose, and on what evidence."""

    precision: str
    min_cosine: float | None = None  # None: nothing was compared (no low precision to try)
    images: int = 0
    reason: str = ""

    def describe(self) -> str:
        """One line for reports, e.g. ``bf16 (min cosine 0.9995 on the first 32 images)``."""
        if self.min_cosine is None:
            return f"{self.precision} ({self.reason})"
        evidence = f"min cosine {self.min_cosine:.4f} on the first {self.images} images"
        if self.precision == FP32:
            return f"fp32 ({evidence}, below {MIN_COSINE})"
        return f"{self.precision} ({evidence})"


def check_precision(precision: str, allowed: tuple[str, ...] = PRECISIONS) -> str:
    """``precision`` if it is one of ``allowed``, else a one-line error."""
    if precision not in allowed:
        raise InvalidArgumentError(
            f"unknown precision {precision!r}: use {', '.join(allowed[:-1])} or {allowed[-1]}"
        )
    return precision


def choose_precision(encoder: Encoder, pixels: np.ndarray) -> tuple[PrecisionChoice, np.ndarray]:
    """Encode ``pixels`` at fp32 and at the encoder's low precision; keep the low one only if
    every vector agrees with its fp32 twin. Returns the choice (already set on the encoder) and
    the chosen vectors, so the batch is not encoded a third time."""
    encoder.set_image_precision(FP32)
    reference = encoder.encode_pixels(pixels)
    candidate = encoder.low_image_precision()
    if candidate is None:
        return PrecisionChoice(FP32, reason="the device has no fast bf16"), reference
    trial = encoder.encode_pixels_at(pixels, candidate)
    min_cosine = float(np.min(np.sum(reference * trial, axis=1)))
    if min_cosine >= MIN_COSINE:
        encoder.set_image_precision(candidate)
        return PrecisionChoice(candidate, min_cosine, len(pixels)), trial
    return PrecisionChoice(FP32, min_cosine, len(pixels)), reference
