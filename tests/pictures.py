"""Generated test photos: each seed gives a distinct picture, so each gets a distinct vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_IMAGES = SHARED_DATA / "coco128_multilabel" / "images"


def picture(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A blocky random RGB picture; different seeds differ everywhere."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)


def write_picture(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    """Save ``picture(seed)`` at ``path`` in the format its suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture(seed, size).save(path)
    return path


def photo_folder(root: Path, count: int, start_seed: int = 0) -> list[Path]:
    """``count`` pictures in a small tree: PNGs at the top, JPEGs in a subfolder."""
    paths = []
    for i in range(count):
        name = f"img{i:03d}.png" if i % 2 == 0 else f"sub/img{i:03d}.jpg"
        paths.append(write_picture(root / name, start_seed + i))
    return paths


def tinted_picture(
    rgb: tuple[int, int, int], seed: int, size: tuple[int, int] = (64, 48)
) -> Image.Image:
    """A blocky picture that is mostly ``rgb``: blocks scattered around that colour."""
    rng = np.random.default_rng(seed)
    blocks = np.clip(np.array(rgb)[None, None, :] + rng.normal(0, 35, (6, 8, 3)), 0, 255)
    return Image.fromarray(blocks.astype(np.uint8)).resize(size, Image.Resampling.NEAREST)


COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (20, 30, 210),
    "yellow": (230, 220, 20),
}


def colour_folder(root: Path) -> dict[str, Path]:
    """One mostly-red, -green, -blue and -yellow picture: colour → its PNG."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for seed, (name, rgb) in enumerate(COLOURS.items()):
        paths[name] = root / f"{name}.png"
        tinted_picture(rgb, seed).save(paths[name])
    return paths
