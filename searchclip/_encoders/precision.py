"""Image-encoding precision: the names an index records, and ``auto``'s choice.

``fp32`` is the reference. ``bf16`` runs the image tower in bfloat16 (faster where the device
has native bf16, e.g. a CPU with avx512_bf16); ``int8`` runs it as an int8-quantised ONNX model
in onnxruntime (faster still on CPUs). How much faster, and how close to fp32:
docs/benchmarks.md, "Image encoding precision". Vectors are float32 and unit length at every
precision.
``auto`` encodes the first batch of the user's own images at fp32 and at every low precision the
device offers, keeps those that agree with fp32 (every cosine >= ``MIN_COSINE``: real
checkpoints quantise worse than random weights, so this is checked on real data, not assumed)
and picks the fastest of them as timed on that batch; so an index never trades quality unseen.
Torch-free: the encoder does the encoding, this module only decides.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from searchclip._errors import InvalidArgumentError, SearchclipError

if TYPE_CHECKING:
    from searchclip._encoders.base import Encoder

FP32, BF16, INT8, AUTO = "fp32", "bf16", "int8", "auto"
PRECISIONS = (FP32, BF16, INT8, AUTO)
ENCODING_PRECISIONS = (FP32, BF16, INT8)  # what an index can record: auto resolves to one
MIN_COSINE = 0.999  # the same bar the ONNX text export is held to
TIMING_SAMPLE = 8  # images in each extra timing round


@dataclass(frozen=True)
class Trial:
    """One precision tried on the first batch: its agreement with fp32 and its speed."""

    precision: str
    min_cosine: float
    images_per_s: float
    error: str = ""  # why it could not be tried (e.g. the model would not export)

    @property
    def agrees(self) -> bool:
        return not self.error and self.min_cosine >= MIN_COSINE

    def describe(self) -> str:
        if self.error:
            return f"{self.precision} unavailable: {self.error}"
        if not self.agrees:
            return f"{self.precision} min cosine {self.min_cosine:.4f} < {MIN_COSINE}"
        return f"{self.precision} min cosine {self.min_cosine:.4f}, {self.images_per_s:.0f} img/s"


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``auto`` chose, and on what evidence."""

    precision: str
    trials: tuple[Trial, ...] = ()  # the low precisions tried; empty: none to try
    images: int = 0
    fp32_images_per_s: float = 0.0
    reason: str = ""

    def describe(self) -> str:
        """One line for reports: ``PRECISION (first N images: TRIAL; ...; fp32 R img/s)``,
        where each TRIAL is ``PRECISION min cosine C, R img/s`` (or why it lost, or could not
        be tried)."""
        if not self.trials:
            return f"{self.precision} ({self.reason})"
        tried = [trial.describe() for trial in self.trials]
        evidence = "; ".join([*tried, f"fp32 {self.fp32_images_per_s:.0f} img/s"])
        return f"{self.precision} (first {self.images} images: {evidence})"


def check_precision(precision: str, allowed: tuple[str, ...] = PRECISIONS) -> str:
    """``precision`` if it is one of ``allowed``, else a one-line error."""
    if precision not in allowed:
        raise InvalidArgumentError(
            f"unknown precision {precision!r}: use {', '.join(allowed[:-1])} or {allowed[-1]}"
        )
    return precision


def choose_precision(encoder: Encoder, pixels: np.ndarray) -> tuple[PrecisionChoice, np.ndarray]:
    """Encode ``pixels`` at fp32 and at each of the encoder's low precisions; pick the fastest
    precision whose every vector agrees with its fp32 twin. Returns the choice (already set on
    the encoder) and the chosen precision's vectors, so the batch is not encoded again."""
    encoder.set_image_precision(FP32)
    # fp32's own pass over the batch is the slowest and so the steadiest timing: no extra rounds
    reference, fp32_rate = _timed(encoder, pixels, FP32, extra_rounds=0)
    candidates = encoder.low_image_precisions()
    if not candidates:
        return PrecisionChoice(FP32, reason="the device has no faster precision"), reference
    trials, vectors = [], {FP32: reference}
    for precision in candidates:
        try:
            vectors[precision], rate = _timed(encoder, pixels, precision)
        except SearchclipError as exc:  # an optional speed-up must not stop the run
            trials.append(Trial(precision, 0.0, 0.0, error=str(exc)))
            continue
        min_cosine = float(np.min(np.sum(reference * vectors[precision], axis=1)))
        trials.append(Trial(precision, min_cosine, rate))
    rates = {FP32: fp32_rate} | {t.precision: t.images_per_s for t in trials if t.agrees}
    best = max(rates, key=rates.__getitem__)
    encoder.set_image_precision(best)
    return PrecisionChoice(best, tuple(trials), len(pixels), fp32_rate), vectors[best]


def _timed(
    encoder: Encoder, pixels: np.ndarray, precision: str, extra_rounds: int = 2
) -> tuple[np.ndarray, float]:
    """Vectors of ``pixels`` at ``precision`` and images per second: the best of the whole
    batch and ``extra_rounds`` more rounds of a few images (one short timing on a shared
    machine can be far off and would make the choice random), after a one-image warm-up that
    also builds that precision's copy of the model."""
    encoder.encode_pixels_at(pixels[:1], precision)
    started = time.perf_counter()
    vectors = encoder.encode_pixels_at(pixels, precision)
    rates = [len(pixels) / max(time.perf_counter() - started, 1e-9)]
    sample = pixels[:TIMING_SAMPLE]
    for _ in range(extra_rounds):
        started = time.perf_counter()
        encoder.encode_pixels_at(sample, precision)
        rates.append(len(sample) / max(time.perf_counter() - started, 1e-9))
    return vectors, max(rates)
