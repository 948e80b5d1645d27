"""Image-encoding speed at fp32 and bf16, on the full-size ViT-B/32 (random weights).

Encodes 64 preprocessed 224x224 images (random pixels) in batches of 32 at each precision,
times the median of 3 runs, and prints img/s for both, their ratio, and the minimum cosine
between each image's fp32 and bf16 vector.

    python benchmarks/make_random_vitb32.py          # once: random weights, real architecture
    python benchmarks/precision_speed.py [--model DIR] [--images 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_MODEL = REPO / "benchmarks" / "out" / "vit-b32-random"


def images_per_second(encoder, pixels: np.ndarray, precision: str, runs: int) -> float:
    encoder.encode_pixels_at(pixels[:2], precision)  # warm-up (and builds the bf16 copy)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        encoder.encode_pixels_at(pixels, precision)
        times.append(time.perf_counter() - started)
    return len(pixels) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from searchclip.encoders import load_encoder

    encoder = load_encoder(str(args.model), device=args.device, batch_size=32)
    size = encoder.image_size
    pixels = np.random.default_rng(0).standard_normal((args.images, 3, size, size))
    pixels = pixels.astype(np.float32)
    fp32 = images_per_second(encoder, pixels, "fp32", args.runs)
    bf16 = images_per_second(encoder, pixels, "bf16", args.runs)
    cosines = np.sum(
        encoder.encode_pixels_at(pixels, "fp32") * encoder.encode_pixels_at(pixels, "bf16"), axis=1
    )
    print(f"model: {args.model} on {encoder.device}, {args.images} images, batches of 32")
    print(f"fast bf16 on this device: {encoder.low_image_precision() == 'bf16'}")
    print(f"fp32: {fp32:.1f} img/s")
    print(f"bf16: {bf16:.1f} img/s")
    print(f"bf16 / fp32: {bf16 / fp32:.2f}x")
    print(f"min cosine bf16 vs fp32: {cosines.min():.5f}")


if __name__ == "__main__":
    main()
