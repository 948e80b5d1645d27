"""Issue 13, memory: tiny files that declare huge or absurdly thin images.

Fast tests decode each file of ``tests/hostile_files.py`` with the limits the indexer uses.
Slow tests index each one with ``searchclip index`` in a fresh process, read that process's peak
RSS (VmHWM from /proc/self/status, printed at exit by a small runner), and check it stays under
the documented bound (docs/benchmarks.md, "Peak memory of hostile images") and that the file is
recorded as failed with the expected reason, or indexed when it is small once reduced.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_files import HOSTILE, Hostile, budget_fillers, eight_canvases, png
from PIL import Image

from searchclip import _images as images
from searchclip._errors import ImageReadError
from searchclip._images import decode_budget, decode_image
from searchclip._ingest import IngestOptions

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "searchclip" / "models" / "shapes-clip"
BOUND_MB = 1500  # the documented bound on an index run's peak RSS, whatever the input
MIN_SIDE = 224


def limits(workers: int = 2) -> dict:
    return IngestOptions(workers=workers).decode_limits()


def decode_hostile(item: Hostile, **kwargs):
    """decode_image on ``item``; above Pillow's warning threshold, Pillow warns at open (the
    library leaves its warning to the application: the CLI silences it)."""
    if item.width * item.height > Image.MAX_IMAGE_PIXELS:
        with pytest.warns(Image.DecompressionBombWarning):
            return decode_image(item.data, **kwargs)
    return decode_image(item.data, **kwargs)


# --- fast: the limits, from the header -----------------------------------------------------------


def test_hostile_files_are_tiny() -> None:
    assert all(len(item.data) < 2000 for item in HOSTILE)
    assert all(len(data) < 500 for _, data in eight_canvases())
    assert len({data for _, data in eight_canvases()}) == 8


@pytest.mark.parametrize("item", HOSTILE, ids=lambda item: item.name)
def test_decode_hostile_file_with_the_indexers_limits(item: Hostile) -> None:
    if item.reason is None:
        decoded = decode_hostile(item, min_side=MIN_SIDE, **limits())
        assert (decoded.width, decoded.height) == (item.width, item.height)  # full size kept
        assert MIN_SIDE <= min(decoded.image.size) < 2 * MIN_SIDE  # but reduced
        assert decoded.image.mode == "RGB"
    else:
        with pytest.raises(ImageReadError) as info:
            decode_hostile(item, min_side=MIN_SIDE, **limits())
        assert item.reason in info.value.reason
        assert f"{item.width}x{item.height} pixels" in info.value.reason


def test_budget_is_shared_by_the_workers() -> None:
    assert decode_budget(1) == images.DECODE_BUDGET_PIXELS == 128_000_000
    assert decode_budget(2) == 64_000_000
    assert decode_budget(4) == 32_000_000
    assert decode_budget(0) == decode_budget(1)
    assert IngestOptions(workers=4).decode_limits()["decode_pixels"] == 32_000_000


def test_explicit_max_pixels_replaces_the_budget() -> None:
    explicit = IngestOptions(workers=2, max_pixels=150_000_000).decode_limits()
    assert (explicit["max_pixels"], explicit["decode_pixels"]) == (150_000_000, None)
    # None is what the engine passes when its caller gave no limit: the budget.
    default = IngestOptions(workers=2, max_pixels=None).decode_limits()
    assert default["decode_pixels"] == 64_000_000
    small = IngestOptions(workers=2, max_pixels=1000).decode_limits()
    with pytest.raises(ImageReadError) as reason:
        decode_image(png(40, 40, rows=40), **small)
    assert "exceeds the limit of 0.001 megapixels" in reason.value.reason


def test_budget_message() -> None:
    with pytest.raises(ImageReadError) as info:
        decode_image(png(9000, 8000, rows=1), min_side=MIN_SIDE, **limits(2))
    assert info.value.reason == (
        "image too large: 9000x8000 pixels exceeds the decode budget of 64 megapixels per "
        "decoding worker (decompression-bomb guard)"
    )


def test_budget_counts_the_jpeg_draft_size_not_the_declared_one() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (200, 30, 40)).save(buf, "JPEG")
    data = buf.getvalue()
    decoded = decode_image(data, min_side=MIN_SIDE, decode_pixels=1_000_000, reduce=True)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert decoded.image.size == (500, 375)  # libjpeg's 1/8 scale
    with pytest.raises(ImageReadError) as info:
        decode_image(data, decode_pixels=1_000_000)  # no min_side: no draft
    assert "4000x3000 pixels exceeds the decode budget of 1 megapixels" in info.value.reason


def test_aspect_ratio_cap() -> None:
    assert decode_image(png(4000, 200, rows=200), max_aspect=20).width == 4000  # exactly 1:20
    with pytest.raises(ImageReadError) as info:
        decode_image(png(4001, 200, rows=200), max_aspect=20)
    assert info.value.reason == (
        "image too thin: 4001x200 pixels is beyond the 1:20 aspect-ratio limit "
        "(its short side would be scaled up to the model's input)"
    )
    assert decode_image(png(50000, 1, rows=1)).width == 50000  # no cap unless asked


# --- fast: reduction keeps what the picture shows ------------------------------------------------


def test_reduction_keeps_colours_orientation_and_transparency() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (1200, 600), (10, 200, 30)).save(buf, "TIFF", tiffinfo={0x0112: 6})
    decoded = decode_image(buf.getvalue(), min_side=100, reduce=True)
    assert (decoded.width, decoded.height) == (600, 1200)  # turned by the TIFF's orientation
    assert decoded.image.size == (100, 200)
    assert decoded.image.getpixel((50, 100)) == (10, 200, 30)

    palette = Image.new("P", (1000, 1000), 1)
    palette.putpalette([0, 0, 0, 250, 10, 10] + [0] * 762)
    buf = io.BytesIO()
    palette.save(buf, "PNG", transparency=1)
    decoded = decode_image(buf.getvalue(), min_side=100, reduce=True)
    assert decoded.image.size == (100, 100)
    assert decoded.image.getpixel((5, 5)) == (255, 255, 255)  # transparent, over white

    grey16 = Image.new("I;16", (900, 900), 65535)
    buf = io.BytesIO()
    grey16.save(buf, "PNG")
    decoded = decode_image(buf.getvalue(), min_side=300, reduce=True)
    assert decoded.image.size == (300, 300)
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)


def test_without_reduce_other_formats_keep_their_size() -> None:
    decoded = decode_image(png(1000, 800, rows=800), min_side=MIN_SIDE)
    assert decoded.image.size == (1000, 800)


# --- slow: whole index runs, peak RSS of the process ---------------------------------------------

RUNNER = (
    "import atexit, re, runpy, sys\n"
    "def report():\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('VmHWM', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
    "atexit.register(report)\n"
    "sys.argv = ['searchclip'] + sys.argv[1:]\n"
    "runpy.run_module('searchclip', run_name='__main__')\n"
)


def index_peak_mb(root: Path, index: Path, precision: str = "fp32") -> float:
    args = ["index", str(root), "--index", str(index), "--model", str(MODEL)]
    done = subprocess.run(
        # Two workers, as the fast tests' expectations assume (four would halve the budget).
        [sys.executable, "-c", RUNNER, *args, "--precision", precision, "--workers", "2"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return int(re.findall(r"^VmHWM (\d+)$", done.stderr, re.M)[0]) / 1024


def failures_of(index: Path) -> tuple[int, dict[str, str]]:
    from searchclip import SearchEngine

    with SearchEngine(index, create=False) as engine:
        files = engine.info().files
        return files, {Path(f.path).name: f.reason for f in engine.failures()}


@pytest.mark.slow
@pytest.mark.parametrize("item", HOSTILE, ids=lambda item: item.name)
def test_index_run_on_hostile_file_stays_under_the_bound(item: Hostile, tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    (root / item.name).write_bytes(item.data)
    peak = index_peak_mb(root, tmp_path / "idx")
    files, failed = failures_of(tmp_path / "idx")
    assert peak < BOUND_MB, f"{item.name}: peak RSS {peak:.0f} MB"
    if item.reason is None:
        assert (files, failed) == (1, {})
    else:
        assert files == 0
        assert item.reason in failed[item.name]


@pytest.mark.slow
def test_eight_canvases_at_once_stay_under_the_bound(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    for name, data in eight_canvases():
        (root / name).write_bytes(data)
    peak = index_peak_mb(root, tmp_path / "idx")
    files, failed = failures_of(tmp_path / "idx")
    assert peak < BOUND_MB, f"peak RSS {peak:.0f} MB"
    assert files == 0 and len(failed) == 8
    assert all("decode budget" in reason for reason in failed.values())


@pytest.mark.slow
def test_strip_on_an_int8_index_stays_under_the_bound(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    (root / "strip.png").write_bytes(png(50000, 1, rows=1))
    peak = index_peak_mb(root, tmp_path / "idx", precision="int8")
    assert peak < BOUND_MB, f"peak RSS {peak:.0f} MB"
    assert "too thin" in failures_of(tmp_path / "idx")[1]["strip.png"]


@pytest.mark.slow
def test_two_workers_filling_the_budget_stay_under_the_bound(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    for name, data in budget_fillers():
        (root / name).write_bytes(data)
    peak = index_peak_mb(root, tmp_path / "idx")
    assert peak < BOUND_MB, f"peak RSS {peak:.0f} MB"
    assert failures_of(tmp_path / "idx") == (2, {})
