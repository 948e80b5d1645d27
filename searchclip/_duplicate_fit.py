"""The embedding threshold of near-duplicate reports, fitted per model from the index's images.

No fixed cosine works for every model: a trained CLIP puts a re-saved photo at ~0.99 of its
original and an unrelated one far below, a random-weight network puts every photo above 0.9.
So the index measures its own model. It encodes a sample of its images and near-copies of each
(:func:`near_copies`: the edits the report is meant to see through) and compares

- ``copies``: a low quantile of the similarity of each copy to its original, with
- ``distinct``: a high quantile of each original's similarity to its nearest *clearly
  different* image in the index (other bytes, perceptual hash far from its own: bursts and
  copies already in the index must not count as "different").

:func:`threshold_between` puts the threshold halfway between the two when copies score above
distinct images, and at ``distinct`` when they do not: a report that merged different photos
would be worse than one that misses some copies (the perceptual hash finds most of those).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance

from searchclip._perceptual_hash import HASH_DISTANCE_LIMIT

FIT_SAMPLE = 48  # images encoded with their copies: ~5 x 48 encodes per fit
COPY_QUANTILE = 0.10
DISTINCT_QUANTILE = 0.95
# An image at least this many hash bits away is "clearly different" (copies stay within
# HASH_DISTANCE_LIMIT; distinct photos lie 16 bits or more apart).
DISTINCT_HASH_DISTANCE = 2 * HASH_DISTANCE_LIMIT
_CANDIDATES = 32  # nearest images searched for the first clearly different one
COPY_KINDS = ("resized 50 %", "JPEG q=60", "cropped 5 %", "brightness +15 %")


def near_copies(image: Image.Image) -> list[Image.Image]:
    """The four edits of ``COPY_KINDS``, in that order: half the size; re-compressed as a JPEG
    of quality 60; 5 % of the width and height cut away (2.5 % each side); 15 % brighter."""
    image = image.convert("RGB")
    width, height = image.size
    half = image.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=60)
    recompressed = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    dx, dy = round(width * 0.025), round(height * 0.025)
    cropped = image.crop((dx, dy, width - dx, height - dy))
    brighter = ImageEnhance.Brightness(image).enhance(1.15)
    return [half, recompressed, cropped, brighter]


def threshold_between(copies: np.ndarray, distinct: np.ndarray) -> tuple[float, float, float]:
    """(threshold, copies' low quantile, distinct images' high quantile) from the two sets of
    similarities; an empty ``distinct`` (an index of one picture) leaves the copies' quantile."""
    low = float(np.quantile(copies, COPY_QUANTILE))
    if not len(distinct):
        return low, low, float("nan")
    high = float(np.quantile(distinct, DISTINCT_QUANTILE))
    return max(high, (low + high) / 2), low, high


def copy_similarities(encoder, originals: list[Image.Image]) -> np.ndarray:
    """Each original's cosine to each of its near-copies, all through ``encoder`` (so both sides
    of a pair are encoded alike): (len(originals) * 4,)."""
    pictures = []
    for image in originals:
        pictures += [image, *near_copies(image)]
    vectors = encoder.encode_images(pictures).reshape(len(originals), 1 + len(COPY_KINDS), -1)
    return np.einsum("nd,nkd->nk", vectors[:, 0], vectors[:, 1:]).ravel()


def distinct_similarities(
    sample_rows: np.ndarray,
    vectors: np.ndarray,
    content_hashes: list[str],
    perceptual_hashes: np.ndarray,
    hash_known: np.ndarray,
) -> np.ndarray:
    """For each sample row, its cosine to the nearest clearly different row of ``vectors``
    (rows with no such neighbour among the nearest ``_CANDIDATES`` are left out)."""
    from searchclip._vector_index import top_k_inner_product

    scores, rows = top_k_inner_product(vectors[sample_rows], vectors, _CANDIDATES + 1)
    found = []
    for row, row_scores, row_neighbours in zip(sample_rows, scores, rows, strict=True):
        for score, other in zip(row_scores, row_neighbours, strict=True):
            if other < 0 or other == row or content_hashes[other] == content_hashes[row]:
                continue
            if not (hash_known[row] and hash_known[other]):
                continue  # unknown: it might be a copy
            differing = (int(perceptual_hashes[row]) ^ int(perceptual_hashes[other])) & (2**64 - 1)
            if differing.bit_count() >= DISTINCT_HASH_DISTANCE:
                found.append(float(score))
                break
    return np.array(found, np.float32)


def sample_rows(n: int, size: int = FIT_SAMPLE, seed: int = 0) -> np.ndarray:
    """Which rows a fit samples: a fixed draw, so a refit of the same index agrees with itself."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, min(n, size), replace=False))
