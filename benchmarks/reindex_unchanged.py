"""Re-indexing a large collection in which nothing changed: stat only (issue 5, target 5).

Builds N small distinct PNGs (default 100,000) in nested folders, indexes them once with a
tiny random CLIP (the first pass is not what is measured, so its model only has to be fast),
then times `searchclip index DIR` again, as a fresh process, from start to exit. Nothing
changed, so the run only walks the tree, compares (size, mtime) with the catalog and exits
without loading the model. Prints each run's wall time and the median.

    python benchmarks/reindex_unchanged.py [--n 100000] [--runs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def write_tiny_model(out: Path) -> Path:
    """A random CLIP at 32 px with one narrow layer per tower: fast to run, not to be used."""
    from transformers import CLIPModel

    from searchclip.training.tiny_model import (
        caption_vocabulary,
        save_model,
        shapes_config,
        shapes_processor,
    )
    from searchclip.training.tokenizer import build_tokenizer

    small = {"image_size": 32, "vision_width": 32, "vision_layers": 1, "text_width": 32}
    small |= {"text_layers": 1, "heads": 2, "projection_dim": 16}
    tokenizer = build_tokenizer(caption_vocabulary(200), max_length=32)
    model = CLIPModel(shapes_config(tokenizer, **small))
    save_model(model, tokenizer, shapes_processor(32), out)
    return out


def write_photos(root: Path, n: int) -> None:
    """``n`` distinct 16x16 PNGs, 1,000 per folder (the layout of a photo library by day)."""
    for i in range(n):
        folder = root / f"day-{i // 1000:04d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        pixels = np.full((16, 16, 3), i % 251, np.uint8)
        pixels[0, :3] = (i >> 16) & 255, (i >> 8) & 255, i & 255  # distinct content per file
        Image.fromarray(pixels).save(folder / f"img-{i:06d}.png", compress_level=1)


def timed_index(photos: Path, index_dir: Path, model: Path) -> float:
    command = [sys.executable, "-m", "searchclip", "index", str(photos), "--index", str(index_dir)]
    started = time.perf_counter()
    done = subprocess.run([*command, "--model", str(model)], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(done.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="searchclip-reindex-") as tmp:
        work = args.workdir or Path(tmp)
        photos, index_dir, model = work / "photos", work / "index", work / "model"
        if not (model / "config.json").is_file():
            write_tiny_model(model)
        if not photos.is_dir():
            started = time.perf_counter()
            write_photos(photos, args.n)
            print(f"wrote {args.n} files in {time.perf_counter() - started:.1f} s")
        first = timed_index(photos, index_dir, model)
        print(f"first index (encodes everything, tiny model): {first:.1f} s")
        times = [timed_index(photos, index_dir, model) for _ in range(args.runs)]
        print("unchanged re-index, wall per run (s):", " ".join(f"{t:.2f}" for t in times))
        print(f"median: {statistics.median(times):.2f} s for {args.n} unchanged files")


if __name__ == "__main__":
    main()
