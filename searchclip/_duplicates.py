"""Near-duplicate groups: which images of an index are copies of one another.

Three rules link two images, each an edge of one graph whose connected components (of two or
more images) are the groups:

- ``content``: the same bytes (equal content hash), an exact copy;
- ``hash``: perceptual hashes at most ``HASH_DISTANCE_LIMIT`` bits apart (model-free: catches
  re-saves, resizes, small crops and colour changes whatever the model);
- ``embedding``: a cosine similarity of at least the threshold, among each image's
  ``NEIGHBOURS`` nearest (the threshold is fitted per model, see :mod:`searchclip._duplicate_fit`).

Candidate pairs come from FAISS self-joins (:mod:`searchclip._vector_index.neighbours`), never
from all pairs in Python, so 100k images are grouped in seconds. Linking is transitive: a burst
of many frames becomes one group through chains of close pairs. In each group the suggested
image to keep is the one of largest resolution, then the oldest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from searchclip._errors import InvalidArgumentError
from searchclip._perceptual_hash import HASH_DISTANCE_LIMIT, hash_codes
from searchclip._results import FailedFile

NEIGHBOURS = 8  # each image's nearest others that the embedding rule looks at
RULES = ("content", "hash", "embedding")
GROUPINGS = {"both": ("hash", "embedding"), "hash": ("hash",), "embedding": ("embedding",)}


@dataclass(frozen=True)
class DuplicateThreshold:
    """The embedding similarity from which two images count as copies, for ``model``.

    ``source``: ``fitted`` (now), ``stored`` (an earlier fit, reused) or ``given`` (the
    caller's). A fit encodes ``sample`` images of the index and near-copies of each (resized,
    re-compressed, cropped, brightened); ``copies`` is a low quantile of their similarity to
    their originals and ``distinct`` a high quantile of the originals' similarity to their
    nearest clearly different image; the threshold lies between the two, or at ``distinct``
    when the model does not separate them (see :func:`searchclip._duplicate_fit.threshold_between`);
    ``separates`` says which: the default grouping (``both``) uses the embedding only when the
    fitted model separates copies from distinct photos, or the threshold is the caller's.
    """

    model: str
    value: float | None  # None: the embedding rule is not used (``by="hash"``)
    source: str
    sample: int = 0
    copies: float | None = None
    distinct: float | None = None
    fitted_at: float | None = None
    files_at_fit: int = 0
    separates: bool = True


@dataclass(frozen=True)
class DuplicateImage:
    """One image of a group: its file, whether it is an exact copy of another image of the
    group (same bytes), and how close it is to the group's suggested keeper (``similarity``:
    cosine of their vectors; ``hash_distance``: differing perceptual-hash bits, None while
    either hash is unknown)."""

    id: int
    path: str
    size: int
    width: int
    height: int
    taken_at: float | None
    exact_copy: bool
    similarity: float
    hash_distance: int | None


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are copies of one another; ``images[0]`` is the suggested one to keep
    (largest resolution, then oldest), the others follow, closest first. ``linked_by``: the
    rules that joined them (``content``, ``hash``, ``embedding``)."""

    images: tuple[DuplicateImage, ...]
    linked_by: tuple[str, ...]

    @property
    def keep(self) -> DuplicateImage:
        return self.images[0]

    @property
    def exact(self) -> bool:
        """Every image of the group has the same bytes."""
        return all(image.exact_copy for image in self.images)


@dataclass(frozen=True)
class DuplicateReport:
    """What :meth:`SearchEngine.duplicates` found among the index's ``images``.

    ``hashes_filled``: perceptual hashes computed in this call for files indexed before
    hashes were (each decoded once; they are stored); ``hash_failures``: files that could not
    be read for that, which then take part by content hash and embedding only.
    """

    groups: tuple[DuplicateGroup, ...]
    images: int
    grouping: str
    threshold: DuplicateThreshold
    hash_distance_limit: int
    hashes_filled: int
    hash_failures: tuple[FailedFile, ...]
    elapsed_s: float
    embedding_used: bool = True

    @property
    def duplicates(self) -> int:
        """Images that are copies of a kept one (every group's images but its first)."""
        return sum(len(group.images) - 1 for group in self.groups)


@dataclass(frozen=True)
class Components:
    """Groups of row numbers, as :func:`duplicate_components` found them."""

    rows: list[np.ndarray]  # each sorted; two or more rows
    linked_by: list[tuple[str, ...]]


def checked_grouping(by: str) -> tuple[str, ...]:
    """The rules besides ``content`` that ``by`` names (``both``, ``hash``, ``embedding``)."""
    if by not in GROUPINGS:
        raise InvalidArgumentError(f"unknown grouping {by!r}: use {', '.join(GROUPINGS)}", value=by)
    return GROUPINGS[by]


def checked_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise InvalidArgumentError(f"a threshold is a number, got {threshold!r}", value=threshold)
    if not -1.0 <= threshold <= 1.0:
        raise InvalidArgumentError(
            f"a threshold is a cosine similarity from -1 to 1, got {threshold!r}", value=threshold
        )
    return float(threshold)


def duplicate_components(
    vectors: np.ndarray,
    content_hashes: Sequence[str],
    perceptual_hashes: np.ndarray,
    hash_known: np.ndarray,
    *,
    threshold: float | None,
    hash_limit: int | None = HASH_DISTANCE_LIMIT,
    neighbours: int = NEIGHBOURS,
) -> Components:
    """The duplicate groups among ``n`` images given as rows: vectors (n, d), content hashes,
    signed 64-bit perceptual hashes with a mask of the known ones. ``threshold`` None turns
    the embedding rule off, ``hash_limit`` None the hash rule."""
    from searchclip._vector_index import hamming_pairs, similar_pairs

    n = len(content_hashes)
    edges: dict[str, tuple[np.ndarray, np.ndarray]] = {"content": _equal_pairs(content_hashes)}
    if hash_limit is not None:
        rows = np.flatnonzero(hash_known)
        a, b, _ = hamming_pairs(hash_codes(perceptual_hashes[rows]), hash_limit)
        edges["hash"] = (rows[a], rows[b])
    if threshold is not None:
        a, b, _ = similar_pairs(vectors, threshold, neighbours)
        edges["embedding"] = (a, b)
    roots = _union_find(n, edges.values())
    _, label, sizes = np.unique(roots, return_inverse=True, return_counts=True)
    by_label = np.split(np.argsort(label, kind="stable"), np.cumsum(sizes)[:-1])
    members = [rows for rows in by_label if len(rows) > 1]  # rows ascending (stable sort)
    touched = {rule: set(roots[a].tolist()) for rule, (a, _) in edges.items()}
    linked = [tuple(r for r in RULES if roots[m[0]] in touched.get(r, ())) for m in members]
    return Components(members, linked)


def _equal_pairs(keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row paired with the first row of the same key (a star per key: enough to join)."""
    first: dict[str, int] = {}
    a, b = [], []
    for row, key in enumerate(keys):
        if (seen := first.setdefault(key, row)) != row:
            a.append(seen)
            b.append(row)
    return np.array(a, np.int64), np.array(b, np.int64)


def _union_find(n: int, edge_lists) -> np.ndarray:
    """The root row of each row's component, over every (a, b) edge."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edge_lists:
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
    return np.array([find(x) for x in range(n)], np.int64)
