"""What checking and recovering a catalog costs (issue 13), at a size people have.

Builds a catalog of N images (default 100,000) with 512-dimension vectors (ViT-B/32's) through
the real Catalog in batches, as an index run writes it, then times, median of R runs each:
SQLite's quick_check and integrity_check as `searchclip._catalog.integrity` runs them (what
`info`, a writer after a crash, and `searchclip check` pay), and one recovery of a copy with
8 KB of garbage written in its middle (what `check --repair` pays), with the rows it kept.

    python benchmarks/catalog_check.py [--images N] [--runs R] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from searchclip._catalog import Catalog, CatalogChanges, FileEntry
from searchclip._catalog.integrity import catalog_problems
from searchclip._catalog.recovery import recover_catalog


def build(path: Path, images: int, dim: int = 512) -> None:
    rng = np.random.default_rng(0)
    with Catalog.open(path) as catalog:
        model = catalog.set_model("openai/clip-vit-base-patch32", dim)
        for start in range(0, images, 2000):
            batch = range(start, min(images, start + 2000))
            upserts = [
                (
                    FileEntry(f"/photos/{i // 1000:03d}/IMG_{i:06d}.jpg", 1, 1, f"{i:032x}", 8, 6),
                    rng.standard_normal(dim).astype(np.float32),
                )
                for i in batch
            ]
            catalog.apply(CatalogChanges(upserts=upserts), model)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def timed(call, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="catalog-check-"))
    work.mkdir(parents=True, exist_ok=True)
    catalog = work / "catalog.sqlite"
    if not catalog.exists():
        build(catalog, args.images)
    print(f"catalog: {args.images} images, {catalog.stat().st_size / 1e6:.0f} MB")
    for quick in (True, False):
        seconds, problems = timed(lambda q=quick: catalog_problems(catalog, quick=q), args.runs)
        name = "quick_check" if quick else "integrity_check"
        print(f"{name}: {seconds:.2f} s median of {args.runs} ({problems or 'ok'})")
    damaged_dir = work / "damaged"
    damaged_dir.mkdir(exist_ok=True)
    damaged = damaged_dir / "catalog.sqlite"
    shutil.copy(catalog, damaged)
    with open(damaged, "r+b") as file:
        file.seek(damaged.stat().st_size // 2 // 4096 * 4096)
        file.write(os.urandom(8192))
    start = time.perf_counter()
    report = recover_catalog(damaged)
    elapsed = time.perf_counter() - start
    print(
        f"recovery of 8 KB of garbage: {elapsed:.1f} s, kept {report.kept('files')} of "
        f"{args.images} images, {sum(t.unreadable_stretches for t in report.tables)} "
        f"unreadable stretches; sound after: {catalog_problems(damaged) == []}"
    )


if __name__ == "__main__":
    main()
