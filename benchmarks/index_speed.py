"""Images per second of `searchclip index`, end to end, with the full-size ViT-B/32, against
the naive pipeline measured in the same run.

Two data sets (issue 5, target 1):

- ``--set coco``: the ~640x480 COCO photos in ../shared/data/coco128_multilabel/images;
- ``--set 12mp``: the same photos upscaled to 4032x3024 JPEGs (quality 90), like a phone's;
  written once to benchmarks/out/coco-12mp.

Each run indexes the photos into a fresh temporary index as a separate process, exactly as a
user would run it, with the default settings. A new index pays one-off costs: the torch load,
auto's trial of every precision on the first batch, the int8 export of the image tower, and
the text tower's export at the end (~25 s for ViT-B/32 in all). The model's ONNX exports are
cached per machine after its first index (~15 s of the one-off costs); ``--cache cold``
(default) gives each run an empty cache, as on a machine's first index, ``--cache warm`` one
filled beforehand, as for any later new index.
``--primed`` first indexes 32 other photos (ImageNet samples) into the index, untimed, so the
timed run shows the steady rate a large collection sees. Two rates are printed per run and as
medians:

- wall: images / (process start to exit), Python start-up, imports and model loading included;
- pipeline: images / the elapsed time the command itself reports (scan, read, hash, decode,
  encode, commit, the one-off exports a new index makes).

The naive pipeline is what a straightforward script does: open and fully decode every photo with
Pillow, preprocess with transformers' CLIP image processor, encode batches of 32 with
``CLIPModel.get_image_features`` in fp32; its rate excludes loading the model.

    python benchmarks/make_random_vitb32.py          # once: random weights, real architecture
    python benchmarks/index_speed.py [--set coco|12mp] [--runs 3] [--primed]
                                     [--cache cold|warm] [-- more index options]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import searchclip._encoders  # noqa: F401  (its torchvision import hook, before transformers)

REPO = Path(__file__).resolve().parents[1]
COCO_IMAGES = REPO.parent / "shared" / "data" / "coco128_multilabel" / "images"
TWELVE_MP_IMAGES = REPO / "benchmarks" / "out" / "coco-12mp"
TWELVE_MP_SIZE = (4032, 3024)
PRIMER_IMAGES = REPO.parent / "shared" / "data" / "imagenet_1k_samples"
DEFAULT_MODEL = REPO / "benchmarks" / "out" / "vit-b32-random"
SUMMARY = re.compile(r"(\d+) new.*encoded (\d+) images in ([\d.]+) s")


def make_12mp(source: Path, out: Path) -> Path:
    """Upscale every photo in ``source`` to 4032x3024, JPEG quality 90, once."""
    from PIL import Image

    photos = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    out.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        target = out / f"{photo.stem}-12mp.jpg"
        if not target.exists():
            with Image.open(photo) as image:
                big = image.convert("RGB").resize(TWELVE_MP_SIZE, Image.Resampling.BICUBIC)
            big.save(target.with_suffix(".part"), "JPEG", quality=90)
            target.with_suffix(".part").rename(target)
    return out


def run_once(
    images: Path, model: Path, extra: list[str], primed: bool, cache: Path | None
) -> tuple[int, float, float]:
    """One index run in a fresh process: (images encoded, wall seconds, reported seconds).
    ``cache``: the export cache to use; None: a new, empty one (a first index on a machine)."""
    with tempfile.TemporaryDirectory(prefix="searchclip-bench-") as scratch:
        index_dir = Path(scratch) / "index"
        cache = cache or Path(scratch) / "cache"
        if primed:
            index(primer_folder(Path(scratch)), index_dir, model, extra, cache)
        return index(images, index_dir, model, extra, cache)


def primer_folder(scratch: Path) -> Path:
    """32 photos unlike the timed ones (ImageNet samples), as links in ``scratch``/primer."""
    primer = scratch / "primer"
    primer.mkdir()
    for photo in sorted((PRIMER_IMAGES / "images").glob("*.jpg"))[:32]:
        (primer / photo.name).symlink_to(photo)
    return primer


def index(
    images: Path, index_dir: Path, model: Path, extra: list[str], cache: Path
) -> tuple[int, float, float]:
    command = [sys.executable, "-m", "searchclip", "index", str(images)]
    command += ["--index", str(index_dir), "--model", str(model), *extra]
    env = {**os.environ, "SEARCHCLIP_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"searchclip index failed:\n{done.stderr}")
    match = SUMMARY.search(done.stdout)
    if match is None:
        raise SystemExit(f"unexpected summary: {done.stdout!r}")
    choice = [line for line in done.stderr.splitlines() if line.startswith("precision:")]
    if choice:
        print(f"  {choice[0]}")
    return int(match.group(2)), wall, float(match.group(3))


def naive_rate(images: Path, model: Path) -> float:
    """Images per second of full decode + transformers fp32, batches of 32, in this process."""
    import torch
    from PIL import Image
    from transformers import CLIPImageProcessorPil, CLIPModel

    clip = CLIPModel.from_pretrained(model, use_safetensors=True).eval()
    processor = CLIPImageProcessorPil.from_pretrained(model)
    paths = sorted(p for p in images.iterdir() if p.is_file())
    started = time.perf_counter()
    for start in range(0, len(paths), 32):
        batch = [Image.open(path).convert("RGB") for path in paths[start : start + 32]]
        pixels = processor(images=batch, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            clip.get_image_features(pixel_values=pixels)
    return len(paths) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("coco", "12mp"), default="coco")
    parser.add_argument("--images", type=Path, help="another folder of photos instead")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--primed", action="store_true", help="time a run into a primed index")
    parser.add_argument(
        "--cache",
        choices=("cold", "warm"),
        default="cold",
        help="cold: each run starts with an empty export cache (a first index on a machine); "
        "warm: the model's exports are cached by an untimed index first (any later new index)",
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive pipeline")
    parser.add_argument("extra", nargs="*", help="more `searchclip index` options, after --")
    args = parser.parse_args(argv)
    if not args.model.is_dir():
        raise SystemExit(f"no model at {args.model}: run benchmarks/make_random_vitb32.py first")
    if not COCO_IMAGES.is_dir() and args.images is None:
        raise SystemExit(f"no images at {COCO_IMAGES}")
    images = args.images or (
        make_12mp(COCO_IMAGES, TWELVE_MP_IMAGES) if args.set == "12mp" else COCO_IMAGES
    )
    print(f"images: {images}" + (" (into a primed index)" if args.primed else " (a new index)"))

    print(f"export cache: {args.cache}")
    shared = Path(tempfile.mkdtemp(prefix="searchclip-bench-cache-"))
    if args.cache == "warm":
        with tempfile.TemporaryDirectory(prefix="searchclip-bench-") as scratch:
            index(primer_folder(Path(scratch)), Path(scratch) / "index", args.model, [], shared)
    walls, pipelines = [], []
    for run in range(1, args.runs + 1):
        cache = shared if args.cache == "warm" else None
        count, wall, reported = run_once(images, args.model, args.extra, args.primed, cache)
        walls.append(count / wall)
        pipelines.append(count / reported)
        print(
            f"run {run}: {count} images, wall {wall:.1f} s ({count / wall:.1f} img/s), "
            f"pipeline {reported:.1f} s ({count / reported:.1f} img/s)"
        )
    shutil.rmtree(shared)
    pipeline = statistics.median(pipelines)
    print(
        f"searchclip, median over {args.runs} runs: wall {statistics.median(walls):.1f} img/s, "
        f"pipeline {pipeline:.1f} img/s"
    )
    if not args.no_naive:
        naive = naive_rate(images, args.model)
        print(f"naive pipeline (full decode + fp32 transformers): {naive:.1f} img/s")
        print(f"searchclip pipeline / naive: {pipeline / naive:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
