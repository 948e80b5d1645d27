"""A corpus of hostile image files: tiny on disk, huge or absurd once decoded (issue 13).

Each file is written by hand with zlib and struct, so it stays a few hundred bytes however large
the canvas it declares. Pillow accepts a PNG whose compressed data ends early as long as the
zlib stream is complete, and fills the rest of the canvas with zeros: a file of 64 real rows
that declares 12000x12000 makes Pillow allocate all 144 million pixels.

Add a file here for every memory bug found; ``tests/test_memory_bound.py`` and
``benchmarks/decode_memory.py`` pick up every entry of :data:`HOSTILE`. Names that broke the
output are in :data:`HOSTILE_NAMES` (``tests/test_cli_output.py``).

    python tests/hostile_files.py DIR   # writes every file into DIR
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(
    width: int, height: int, *, rows: int, colour_type: int = 0, depth: int = 8, seed: int = 0
) -> bytes:
    """A PNG declaring ``width`` x ``height`` whose data holds only ``rows`` rows (a gradient,
    so they are not all zeros); the rest of the canvas is left for the decoder to zero-fill."""
    row_bytes = (width * _CHANNELS[colour_type] * depth + 7) // 8
    raw = b"".join(b"\0" + bytes([(17 * r + seed) % 256]) * row_bytes for r in range(rows))
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Hostile:
    """One hostile file and what indexing it must give: ``failed`` with a reason containing
    ``reason``, or indexed (``reason`` None) because it is small once reduced."""

    name: str
    data: bytes
    width: int
    height: int
    reason: str | None
    note: str


def _make() -> list[Hostile]:
    return [
        Hostile(
            "canvas-12000.png",
            png(12000, 12000, rows=64),
            12000,
            12000,
            "decode budget",
            "grey, 12000x12000 (144 MP, above Pillow's warning), 64 real rows",
        ),
        Hostile(
            "canvas-13000-rgb.png",
            png(13000, 13000, rows=1, colour_type=2),
            13000,
            13000,
            "decode budget",
            "RGB, 13000x13000 (169 MP, just under Pillow's 179 MP error), 1 real row",
        ),
        Hostile(
            "strip-50000x1.png",
            png(50000, 1, rows=1),
            50000,
            1,
            "too thin",
            "grey strip 50000x1: scaled up to the model's input it was 50000*224 pixels",
        ),
        Hostile(
            "strip-10000x1.png",
            png(10000, 1, rows=1),
            10000,
            1,
            "too thin",
            "grey strip 10000x1",
        ),
        Hostile(
            "strip-1x30000.png",
            png(1, 30000, rows=30000),
            1,
            30000,
            "too thin",
            "a vertical grey strip 1x30000",
        ),
        Hostile(
            "rgba-6000.png",
            png(6000, 6000, rows=16, colour_type=6),
            6000,
            6000,
            None,
            "RGBA 6000x6000 (36 MP): within the budget, reduced to the model's size, indexed",
        ),
        Hostile(
            "grey16-5000.png",
            png(5000, 5000, rows=16, depth=16),
            5000,
            5000,
            None,
            "16-bit grey 5000x5000 (25 MP): within the budget, reduced, indexed",
        ),
    ]


HOSTILE: list[Hostile] = _make()


def eight_canvases() -> list[tuple[str, bytes]]:
    """Eight distinct 13000x13000 RGB files (distinct content, so none reuses another's
    vector): the issue's 5.1 GB peak with two decode workers."""
    return [
        (f"canvas-13000-{i}.png", png(13000, 13000, rows=1, colour_type=2, seed=i + 1))
        for i in range(8)
    ]


def budget_fillers() -> list[tuple[str, bytes]]:
    """Two distinct 16-bit grey 8000x8000 files (64 MP each, the most that two workers may
    decode at once, and the costliest mode per pixel): the worst an index run must admit."""
    return [(f"grey16-8000-{i}.png", png(8000, 8000, rows=4, depth=16, seed=i)) for i in range(2)]


# File names that broke output (issue 13): each must reach a pipe byte for byte and a terminal
# escaped (tests/test_cli_output.py). All legal on Linux; only "/" and NUL are not.
HOSTILE_NAMES: list[str] = [
    "red\x1b[31mtext.png",  # an ANSI colour escape: click's echo stripped it from piped output
    "bell\x07.png",
    "tab\there.png",
    "cr\rback.png",  # a terminal would overwrite the start of the line
    "two\nlines.png",  # only -0 and --json keep it one result
    "-rf.png",  # looks like an option to whatever reads the list
    "e\u0301-combining.png",  # decomposed accent: not the same bytes as "é"
    "x" * 240 + ".png",  # near the 255-byte name limit
]


def write_all(directory: str | Path) -> list[Path]:
    """Write every hostile file into ``directory``; their paths, in :data:`HOSTILE` order."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in HOSTILE:
        path = out / item.name
        path.write_bytes(item.data)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all(sys.argv[1]):
        print(written, written.stat().st_size, "bytes")
