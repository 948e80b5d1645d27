"""Image-encoding speed at fp32, bf16 and int8, on the full-size ViT-B/32 (random weights).

Encodes 64 preprocessed 224x224 images in batches of 32 at each precision, times the median of
3 runs, and prints img/s for each, the ratio to fp32, and the minimum cosine between each
image's fp32 vector and its vector at that precision. The images are real COCO photos from
../shared/data when present (random pixels otherwise: quantisation error depends on the input).

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
PHOTOS = REPO.parent / "shared" / "data" / "coco128_multilabel" / "images"


def images_per_second(encoder, pixels: np.ndarray, precision: str, runs: int) -> float:
    encoder.encode_pixels_at(pixels[:2], precision)  # warm-up (builds the bf16 / int8 copy)
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

    from searchclip._encoders import load_encoder

    encoder = load_encoder(str(args.model), device=args.device, batch_size=32)
    pixels = test_pixels(encoder, args.images)
    fp32 = images_per_second(encoder, pixels, "fp32", args.runs)
    reference = encoder.encode_pixels_at(pixels, "fp32")
    print(f"model: {args.model} on {encoder.device}, {len(pixels)} images, batches of 32")
    print(f"low precisions this device offers: {', '.join(encoder.low_image_precisions())}")
    print(f"fp32: {fp32:.1f} img/s")
    for precision in ("bf16", "int8"):
        rate = images_per_second(encoder, pixels, precision, args.runs)
        cosines = np.sum(reference * encoder.encode_pixels_at(pixels, precision), axis=1)
        print(
            f"{precision}: {rate:.1f} img/s ({rate / fp32:.2f}x fp32), "
            f"min cosine vs fp32 {cosines.min():.5f}"
        )


def test_pixels(encoder, count: int) -> np.ndarray:
    photos = sorted(PHOTOS.glob("*.jpg"))[:count] if PHOTOS.is_dir() else []
    if len(photos) == count:
        from PIL import Image

        return np.stack([encoder.preprocess(Image.open(p).convert("RGB")) for p in photos])
    size = encoder.image_size
    return np.random.default_rng(0).standard_normal((count, 3, size, size)).astype(np.float32)


if __name__ == "__main__":
    main()
