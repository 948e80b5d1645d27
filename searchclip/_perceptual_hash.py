"""A 64-bit perceptual hash of a picture (pHash), for near-duplicate reports.

The hash is imagehash's ``phash`` (the picture in grey at 32 x 32, its 2-D DCT, the 8 x 8 lowest
frequencies against their median), computed with numpy and Pillow alone: bit for bit the same
(a test checks it against imagehash), without imagehash's SciPy and PyWavelets for ten lines
of arithmetic. It ignores what re-saving, resizing and a brightness change do to a photo and
depends on the model not at all, which makes it the model-free half of the duplicate rule.

The catalog stores it as a signed 64-bit integer (SQLite's INTEGER), the bits read big-endian.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_BITS = 64
# Two pictures whose hashes differ in at most this many bits are near-identical. On ../shared/data
# photos, 95 % of re-compressed, resized and brightened copies stay within 4 bits and 90 % of
# 5 %-cropped ones within 8; distinct photos lie 16 bits or more apart (docs: duplicates).
HASH_DISTANCE_LIMIT = 8

_SIDE = 32  # the grey picture the DCT is taken of
_LOW = 8  # the low-frequency block kept: 8 x 8 = 64 bits
_n = np.arange(_SIDE)
# DCT-II without normalisation (SciPy's default, which imagehash uses): the ratios between
# the coefficients, and so the bits, depend on the scaling of the first row.
_DCT = 2.0 * np.cos(np.pi * np.outer(np.arange(_LOW), 2 * _n + 1) / (2 * _SIDE))


def perceptual_hash(image: Image.Image) -> int:
    """The picture's 64-bit pHash as a signed integer (what the catalog stores)."""
    grey = image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    low = _DCT @ pixels @ _DCT.T  # only the 8 x 8 lowest frequencies are ever computed
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big", signed=True)


def hash_codes(hashes: np.ndarray) -> np.ndarray:
    """Signed 64-bit hashes (n,) as FAISS binary codes: (n, 8) uint8, most significant byte
    first (so bit order matches :func:`perceptual_hash`'s)."""
    return np.ascontiguousarray(np.asarray(hashes, dtype=">i8")).view(np.uint8).reshape(-1, 8)


def hash_distance(a: int, b: int) -> int:
    """How many of the 64 bits two hashes differ in."""
    return ((a ^ b) & (2**HASH_BITS - 1)).bit_count()
