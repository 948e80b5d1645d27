"""Images per second of `searchclip index`, end to end, with the full-size ViT-B/32.

Each run indexes the photo folder into a fresh temporary index as a separate process, exactly as
a user would run it. Two rates are printed per run and as medians:

- wall: images / (process start to exit), model loading and Python start-up included;
- pipeline: images / the elapsed time the command itself reports (scan, decode, encode, commit).

    python benchmarks/make_random_vitb32.py          # once: random weights, real architecture
    python benchmarks/index_speed.py [--images DIR] [--model DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "coco128_multilabel" / "images"
DEFAULT_MODEL = REPO / "benchmarks" / "out" / "vit-b32-random"
SUMMARY = re.compile(r"(\d+) new.*encoded (\d+) images in ([\d.]+) s")


def run_once(images: Path, model: Path, extra: list[str]) -> tuple[int, float, float]:
    """One fresh index run: (images encoded, wall seconds, reported seconds)."""
    with tempfile.TemporaryDirectory(prefix="searchclip-bench-") as index_dir:
        command = [sys.executable, "-m", "searchclip", "index", str(images)]
        command += ["--index", index_dir, "--model", str(model), *extra]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"searchclip index failed:\n{done.stderr}")
    match = SUMMARY.search(done.stdout)
    if match is None:
        raise SystemExit(f"unexpected summary: {done.stdout!r}")
    return int(match.group(2)), wall, float(match.group(3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="more `searchclip index` options, after --")
    args = parser.parse_args(argv)
    if not args.model.is_dir():
        raise SystemExit(f"no model at {args.model}: run benchmarks/make_random_vitb32.py first")
    if not args.images.is_dir():
        raise SystemExit(f"no images at {args.images}")

    walls, pipelines = [], []
    for run in range(1, args.runs + 1):
        count, wall, reported = run_once(args.images, args.model, args.extra)
        walls.append(count / wall)
        pipelines.append(count / reported)
        print(
            f"run {run}: {count} images, wall {wall:.1f} s ({count / wall:.1f} img/s), "
            f"pipeline {reported:.1f} s ({count / reported:.1f} img/s)"
        )
    print(
        f"median over {args.runs} runs: wall {statistics.median(walls):.1f} img/s, "
        f"pipeline {statistics.median(pipelines):.1f} img/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
