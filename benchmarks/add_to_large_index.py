"""Adding photos to, and removing them from, a large existing index (issue 5: an index that
scales to a million photos).

Uses the index that ``query_cold.py --n 1000000`` builds (1M catalog rows, an IVF vector file,
the int8 precision). Links the 256 COCO photos of ../shared/data into a temporary folder, runs
``searchclip index`` on it (256 new photos: encoded, committed, and the vector file updated with
them and saved under the new generation), then deletes the links and runs it again (256
removed). Prints both wall times; rebuilding the vector file from the catalog instead takes
minutes (figures: docs/benchmarks.md, section "Adding to and removing from a million-image
index").

    python benchmarks/query_cold.py --n 1000000        # once: builds the 1M index
    python benchmarks/add_to_large_index.py [--index DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INDEX = REPO / "benchmarks" / "out" / "query-cold" / "index-1000000-int8"
PHOTOS = REPO.parent / "shared" / "data" / "coco128_multilabel" / "images"


def index(folder: Path, index_dir: Path) -> tuple[float, str]:
    command = [sys.executable, "-m", "searchclip", "index", str(folder), "--index", str(index_dir)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(done.stderr)
    return wall, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    args = parser.parse_args()
    if not (args.index / "catalog.sqlite").is_file():
        sys.exit(f"no index at {args.index}: run benchmarks/query_cold.py --n 1000000 first")
    with tempfile.TemporaryDirectory(prefix="searchclip-add-") as scratch:
        folder = Path(scratch)
        for photo in sorted(PHOTOS.glob("*.jpg")):
            (folder / photo.name).symlink_to(photo)
        wall, summary = index(folder, args.index)
        print(f"add: {wall:.1f} s wall -- {summary}")
        for link in folder.iterdir():
            link.unlink()
        wall, summary = index(folder, args.index)
        print(f"remove: {wall:.1f} s wall -- {summary}")


if __name__ == "__main__":
    main()
