"""The interface every vector index implements, and the argument checks they all share."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO

import numpy as np

from searchclip._atomic_files import atomic_write
from searchclip._id_subset import IdSubset
from searchclip._vector_index.faiss_setup import one_openmp_thread


class VectorIndex(ABC):
    """An id → vector store searched by inner product (cosine for unit vectors).

    Argument checks live here so that every implementation validates the same way; ids are
    unique: adding an id that is already held replaces its vector.
    """

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    @property
    @abstractmethod
    def ntotal(self) -> int:
        """How many vectors the index holds."""

    # Whether _search takes ``allowed`` as an IdSubset (else always as a sorted id array).
    takes_subsets = False

    @property
    def outgrown(self) -> bool:
        """True once the index should be rebuilt from scratch (IVF: its centroids were trained
        on a much smaller collection)."""
        return False

    @abstractmethod
    def ids(self) -> np.ndarray:
        """All ids held (int64), in no particular order."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, dim) under ``ids`` (n,), replacing vectors of known ids."""
        ids = as_ids(ids)
        vectors = self._as_vectors(vectors, "vectors")
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
        if len(unique_ids(ids)) != len(ids):
            raise ValueError("ids must be unique within one add")
        if len(ids):
            self._remove(ids)
            self._add(ids, vectors)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids`` (unknown ids are ignored); returns how many vectors went."""
        ids = unique_ids(as_ids(ids))
        return self._remove(ids) if len(ids) and self.ntotal else 0

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | IdSubset | None = None,
        *,
        far: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``min(k, ntotal)`` best ids per query, best first: (scores f32, ids i64).

        ``allowed`` restricts the search to those ids (a filter, e.g. by tag); rows are then
        padded with id -1 where fewer than k allowed ids are held; an :class:`IdSubset` (a
        metadata filter's) is handed as it is to indexes that ``take_subsets``, the others get
        its ids. ``far`` says the queries lie
        away from every stored vector, as CLIP's text vectors do from its image vectors (the
        "modality gap"): an approximate index then searches wider to find the same neighbours.
        """
        queries = self._as_vectors(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), self.ntotal)
        if isinstance(allowed, IdSubset):
            allowed = allowed if self.takes_subsets else allowed.ids
        elif allowed is not None:
            allowed = unique_ids(as_ids(allowed))
        if allowed is not None:
            k = min(k, len(allowed))
        if k == 0:
            m = len(queries)
            return np.empty((m, 0), np.float32), np.empty((m, 0), np.int64)
        if len(queries) == 1:  # one thread, for this call and this thread only
            with one_openmp_thread():
                scores, ids = self._search(queries, k, allowed, far=far)
        else:
            scores, ids = self._search(queries, k, allowed, far=far)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def can_save_in(self, directory: Path) -> bool:
        """Whether :meth:`save` may write into ``directory`` (an on-disk index: only beside
        its base's files)."""
        return True

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index so that ``path`` holds either the old or the new content, whole."""
        atomic_write(os.fspath(path), self._write)

    @abstractmethod
    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _remove(self, ids: np.ndarray) -> int:
        """Remove ``ids`` (unique, possibly unknown); returns how many were held."""

    @abstractmethod
    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, *, far: bool
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @abstractmethod
    def _write(self, file: BinaryIO) -> None:
        """Write the whole index to ``file`` (what ``load`` reads back)."""

    def _as_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(vectors)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape (n, {self.dim}), got {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():  # a NaN would make the ranking meaningless
            raise ValueError(f"{what} contain NaN or infinite values")
        return arr


def as_ids(ids: np.ndarray) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and arr.min() < 0:  # FAISS uses -1 for "no result"
        raise ValueError("ids must be non-negative")
    return arr


def unique_ids(ids: np.ndarray) -> np.ndarray:
    """``ids`` sorted, without repeats. Not ``np.unique``, which sorts every time: ids from the
    catalog arrive sorted and need only a check (docs/benchmarks.md, section "FAISS threads and
    the BLAS threshold", for the cost of a large filter)."""
    if len(ids) < 2 or (ids[1:] > ids[:-1]).all():
        return ids
    ordered = np.sort(ids)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
