"""How long a photo metadata filter takes to find its ids at a million images (issue 14).

Fills the files table of a catalog made by searchclip's migrations with N rows (default
1,000,000) of plausible metadata (ten years of dates, 40 cameras, a third with GPS, 1,000
folders), straight through sqlite3: the filter reads only this table. Then times, median of R
runs, `Catalog.ids_matching` for filters from narrow to wide, and prints how many ids each keeps.

    python benchmarks/metadata_filters.py [--images N] [--runs R]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from searchclip import PhotoFilter
from searchclip._catalog import Catalog

FILTERS = {
    "one day": PhotoFilter(taken_from=datetime(2020, 6, 15), taken_until=datetime(2020, 6, 16)),
    "one month": PhotoFilter(taken_from=datetime(2020, 6, 1), taken_until=datetime(2020, 7, 1)),
    "one year": PhotoFilter(taken_from=datetime(2020, 1, 1), taken_until=datetime(2021, 1, 1)),
    "one folder": PhotoFilter(folder="/photos/f0500"),
    "camera (substring)": PhotoFilter(camera="model 7"),
    "with GPS": PhotoFilter(has_location=True),
    "year + camera + GPS": PhotoFilter(
        taken_from=datetime(2020, 1, 1),
        taken_until=datetime(2021, 1, 1),
        camera="Make 3",
        has_location=True,
    ),
}


def fill(path: Path, images: int) -> None:
    Catalog.open(path).close()  # the schema, by our migrations
    rng = np.random.default_rng(0)
    start = datetime(2015, 1, 1).timestamp()
    taken = start + rng.uniform(0, 10 * 365.25 * 86400, images)
    cameras = rng.integers(0, 40, images)
    located = rng.random(images) < 1 / 3
    with sqlite3.connect(path) as connection:
        rows = (
            (
                i + 1,
                f"/photos/f{i % 1000:04d}/IMG_{i:07d}.jpg",
                2_000_000,
                0,
                f"{i:032x}",
                4032,
                3024,
                0.0,
                float(taken[i]),
                "exif",
                f"Make {cameras[i] % 8}",
                f"Model {cameras[i]}",
                float(rng.uniform(-60, 60)) if located[i] else None,
                float(rng.uniform(-180, 180)) if located[i] else None,
                "JPEG",
                f"/photos/f{i % 1000:04d}",
            )
            for i in range(images)
        )
        connection.executemany(
            "INSERT INTO files (id, path, size, mtime_ns, content_hash, width, height, "
            "indexed_at, taken_at, taken_at_source, camera_make, camera_model, latitude, "
            "longitude, format, folder) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="metadata-filters-")) / "catalog.sqlite"
    started = time.perf_counter()
    fill(path, args.images)
    print(f"{args.images} rows written in {time.perf_counter() - started:.0f} s")
    with Catalog.open(path) as catalog:
        print("| filter | ids kept | median time |\n|---|---:|---:|")
        for name, where in FILTERS.items():
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                ids = catalog.ids_matching(where)
                times.append(time.perf_counter() - start)
            print(f"| {name} | {len(ids):,} | {statistics.median(times) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
