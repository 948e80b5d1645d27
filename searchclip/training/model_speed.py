"""Timing a recommended model on this machine: a random-weight model of its architecture
(no download), built offline and loaded through the same route as a user's ``--model PATH``,
encodes images at fp32 and int8 and a one-line text query; ``searchclip models --measure``
keeps the figures (:mod:`searchclip._model_speeds`).

Random weights run as fast as trained ones (same operations on tensors of the same shapes);
only int8's agreement with fp32 differs, which ``auto`` checks on a user's own images.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from searchclip._errors import SearchclipError
from searchclip._model_speeds import ModelSpeed, host_name
from searchclip._model_table import RecommendedModel

IMAGES = 16  # images per timed batch
ROUNDS = 3  # timed batches per precision; the median is kept
TEXT_ROUNDS = 15  # timed one-query encodings; the median is kept
QUERY = "a dog running on the beach at sunset"


def build_random(row: RecommendedModel, directory: Path) -> Path:
    """A random-weight model directory of ``row``'s architecture."""
    kind, name, config = row.build
    if kind == "open_clip":
        import open_clip

        from searchclip.training.random_open_clip import build_random_open_clip

        model_cfg = open_clip.get_model_config(name)
        if model_cfg is None:
            raise SearchclipError(f"OpenCLIP has no model config named {name}")
        return build_random_open_clip(directory, model_cfg=model_cfg)
    from searchclip.training.random_models import build_random_model

    return build_random_model(name, directory, architecture=config)


def measure(row: RecommendedModel, workdir: Path | None = None) -> ModelSpeed:
    """Time ``row``'s architecture; a failure to build or run it is recorded, not raised."""
    with tempfile.TemporaryDirectory(prefix="searchclip-speed-", dir=workdir) as scratch:
        try:
            return _measure(row, Path(scratch))
        except Exception as exc:  # an architecture this machine cannot build is a table entry
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return ModelSpeed(row.model_id, host_name(), time.time(), error=message[:300])


def _measure(row: RecommendedModel, scratch: Path) -> ModelSpeed:
    from searchclip._encoders import load_encoder

    model_dir = build_random(row, scratch / "model")
    encoder = load_encoder(str(model_dir), device="cpu", batch_size=IMAGES)
    encoder.artifact_dir = scratch
    rng = np.random.default_rng(0)
    size = encoder.image_size
    pixels = rng.standard_normal((IMAGES, 3, size, size), dtype=np.float32)
    fp32_vectors, fp32_rate = _image_rate(encoder, pixels, "fp32")
    int8_rate = int8_cosine = None
    int8_note = ""
    if "int8" in encoder.low_image_precisions():
        try:
            int8_vectors, int8_rate = _image_rate(encoder, pixels, "int8")
            int8_cosine = float(np.min(np.sum(int8_vectors * fp32_vectors, axis=1)))
        except SearchclipError as exc:
            int8_note = str(exc)
    else:
        int8_note = "no int8 image tower for this family"
    text_ms, text_path = _text_latency(encoder, scratch)
    return ModelSpeed(
        row.model_id,
        host_name(),
        time.time(),
        fp32_images_per_s=fp32_rate,
        int8_images_per_s=int8_rate,
        int8_min_cosine=int8_cosine,
        int8_note=int8_note[:300],
        text_ms=text_ms,
        text_path=text_path,
    )


def _image_rate(encoder, pixels: np.ndarray, precision: str) -> tuple[np.ndarray, float]:
    """Vectors of ``pixels`` and the median images per second over ROUNDS batches, after a
    warm-up batch (which also builds that precision's tower)."""
    vectors = encoder.encode_pixels_at(pixels, precision)
    rates = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        encoder.encode_pixels_at(pixels, precision)
        rates.append(len(pixels) / (time.perf_counter() - started))
    return vectors, statistics.median(rates)


def _text_latency(encoder, scratch: Path) -> tuple[float, str]:
    """Median milliseconds to encode one query: through the ONNX text export where the family
    has one (what a query uses once an index has it), else through torch."""
    text = encoder
    path = "torch"
    if encoder.onnx_exportable:
        from searchclip._encoders import onnx_export
        from searchclip._encoders.onnx_text import OnnxTextEncoder

        try:
            onnx_export.export_text_encoder(encoder, scratch)
            text = OnnxTextEncoder.load(scratch, encoder.model_id, encoder.dim) or encoder
            path = "onnx" if text is not encoder else "torch"
        except SearchclipError:
            pass
    text.encode_texts([QUERY])
    timings = []
    for _ in range(TEXT_ROUNDS):
        started = time.perf_counter()
        text.encode_texts([QUERY])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), path
