"""Peak memory of indexing hostile images (issue 13): one fresh process per case.

For each file of ``tests/hostile_files.py`` (plus a folder of eight 13000x13000 files, a folder
of two 16-bit 8000x8000 files that fill the budget of two workers, and one ordinary 640x480
PNG as the baseline), a new index is built in a fresh subprocess:

    searchclip index DIR --index IDX --model searchclip/models/shapes-clip --precision P

The child is wrapped in a small runner that prints its own peak RSS (VmHWM from
/proc/self/status) at exit; getrusage would count the parent's RSS in a forked child. Prints a
Markdown table: the case, the precision, peak RSS, wall time, exit status, and what the run
said about the file (indexed, or the reason it was skipped).

To measure another checkout (e.g. the commit before a change), put it first on PYTHONPATH:

    git worktree add /tmp/mem-before HEAD~1
    PYTHONPATH=/tmp/mem-before python benchmarks/decode_memory.py
    python benchmarks/decode_memory.py [--precision fp32 int8] [--workers N] [--only NAME]
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "searchclip" / "models" / "shapes-clip"
sys.path.insert(0, str(REPO / "tests"))

from hostile_files import HOSTILE, budget_fillers, eight_canvases  # noqa: E402

RUNNER = (
    "import atexit, re, runpy, sys\n"
    "def report():\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('VmHWM', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
    "atexit.register(report)\n"
    "sys.argv = ['searchclip'] + sys.argv[1:]\n"
    "runpy.run_module('searchclip', run_name='__main__')\n"
)


def baseline_png() -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (480, 640, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def cases() -> list[tuple[str, list[tuple[str, bytes]]]]:
    found = [("baseline 640x480 PNG", [("photo.png", baseline_png())])]
    found += [(item.name, [(item.name, item.data)]) for item in HOSTILE]
    found.append(("8 x canvas-13000-rgb.png", eight_canvases()))
    found.append(("2 x grey16-8000.png (64 MP each)", budget_fillers()))
    return found


def index_once(
    files: list[tuple[str, bytes]], precision: str, workers: int | None, timeout: float
) -> dict:
    with tempfile.TemporaryDirectory(prefix="decode-memory-") as tmp:
        root = Path(tmp) / "images"
        root.mkdir()
        for name, data in files:
            (root / name).write_bytes(data)
        args = ["index", str(root), "--index", str(Path(tmp) / "idx"), "--model", str(MODEL)]
        args += ["--precision", precision]
        if workers:
            args += ["--workers", str(workers)]
        started = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, "-c", RUNNER, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=tmp,  # python -c puts the working directory first on sys.path
            )
        except subprocess.TimeoutExpired:
            return {"rc": "timeout", "wall": time.monotonic() - started, "rss": None, "said": ""}
        wall = time.monotonic() - started
    kib = re.findall(r"^VmHWM (\d+)$", done.stderr, re.M)
    said = [line.strip() for line in (done.stdout + done.stderr).splitlines()]
    skipped = [line.split(": ", 1)[1] for line in said if line.startswith("skipped ")]
    summary = next((line for line in said if "indexed" in line or "new" in line), "")
    return {
        "rc": done.returncode,
        "wall": wall,
        "rss": int(kib[0]) / 1024 if kib else None,
        "said": "; ".join(sorted(set(skipped))) or summary or (said[-1] if said else ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--workers", type=int, default=None, help="default: the CLI's")
    parser.add_argument("--only", default=None, help="run the cases whose name holds this")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    print("| file | precision | peak RSS | wall | exit | result |")
    print("|---|---|---:|---:|---:|---|")
    for name, files in cases():
        if args.only and args.only not in name:
            continue
        for precision in args.precision:
            got = index_once(files, precision, args.workers, args.timeout)
            rss = f"{got['rss']:.0f} MB" if got["rss"] is not None else "?"
            said = got["said"].replace("|", "\\|")[:110]
            row = f"| {name} | {precision} | {rss} | {got['wall']:.1f} s | {got['rc']} | {said} |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
