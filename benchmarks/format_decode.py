"""Decoding speed per photo format (issue 16): what an index run's decode worker does for one
file (read_metadata, then decode_image at the model's 224-pixel input with the reduction), for
a 12 MP phone photo as JPEG, HEIC (pillow-heif) and AVIF (Pillow), and a 24 MP DNG read from
its embedded preview or demosaiced by LibRaw at half size. One thread; prints images/s from
the median of ``--repeats`` timed decodes of each file.

The picture is a COCO photo of ../shared/data scaled up (a smooth gradient with noise without
it); the DNG is written by PiDNG (tests/format_files.py). Figures: docs/benchmarks.md, section
"Photo formats".

    python benchmarks/format_decode.py [--repeats 7] [--min-side 224]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # format_files: the DNG writer of the tests
PHOTOS = REPO.parent / "shared" / "data" / "coco128_multilabel" / "images"

from format_files import dng_bytes  # noqa: E402

from searchclip import _image_formats as formats  # noqa: E402
from searchclip._images import decode_image, read_metadata  # noqa: E402


def picture(size: tuple[int, int]) -> Image.Image:
    found = sorted(PHOTOS.glob("*.jpg"))[:1] if PHOTOS.is_dir() else []
    if found:
        with Image.open(found[0]) as img:
            return img.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, size[0])[None, :, None]
    y = np.linspace(0, 255, size[1])[:, None, None]
    arr = (x + y) / 2 + rng.normal(0, 12, (size[1], size[0], 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def dng_of(img: Image.Image, preview: tuple[int, int] | None) -> bytes:
    # dng_bytes draws its own two-colour picture; the mosaic of a real photo decodes alike but
    # compresses (and previews) like one, so swap it in.
    import format_files

    original = format_files.halves
    format_files.halves = lambda size: img.resize(size) if img.size != size else img
    try:
        return dng_bytes(img.size, preview=preview)
    finally:
        format_files.halves = original


def median_seconds(data: bytes, min_side: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        read_metadata(data, 0)
        decode_image(data, min_side=min_side, reduce=True, max_aspect=20)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-side", type=int, default=224)
    args = parser.parse_args()
    if not (formats.heif_ready() and formats.avif_ready() and formats.raw_ready()):
        sys.exit("needs searchclip[heif,avif,raw] installed")
    phone = picture((4032, 3024))
    camera = picture((6000, 4000))
    cases = {
        "JPEG 12 MP (q90)": encoded(phone, "JPEG", quality=90),
        "HEIC 12 MP (q90)": encoded(phone, "HEIF", quality=90),
        "AVIF 12 MP (q90)": encoded(phone, "AVIF", quality=90, speed=8),
        "DNG 24 MP, 1620x1080 preview": dng_of(camera, (1620, 1080)),
        "DNG 24 MP, half-size demosaic": dng_of(camera, None),
    }
    print(f"{'file':34} {'MB':>6} {'ms/image':>9} {'images/s':>9}")
    for name, data in cases.items():
        seconds = median_seconds(data, args.min_side, args.repeats)
        mb = len(data) / 2**20
        print(f"{name:34} {mb:6.1f} {seconds * 1000:9.1f} {1 / seconds:9.1f}")


if __name__ == "__main__":
    main()
