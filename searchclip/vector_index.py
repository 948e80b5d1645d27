"""Exact inner-product search over id-tagged vectors, saved atomically.

The catalog is the source of truth; this file is a cache of its vectors. A missing, corrupt or
mismatched index file is therefore not a user error: :class:`VectorIndexFileError` tells the
engine to rebuild it from the catalog. faiss is imported inside functions only, so that
``import searchclip`` stays light.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class VectorIndexFileError(Exception):
    """The index file is missing, unreadable, corrupt or holds vectors of another dimension."""


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

    @abstractmethod
    def ids(self) -> np.ndarray:
        """All ids held (int64), in no particular order."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, dim) under ``ids`` (n,), replacing vectors of known ids."""
        ids = _as_ids(ids)
        vectors = self._as_vectors(vectors, "vectors")
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique within one add")
        if len(ids):
            self._remove(ids)
            self._add(ids, vectors)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids`` (unknown ids are ignored); returns how many vectors went."""
        ids = _as_ids(ids)
        return self._remove(ids) if len(ids) and self.ntotal else 0

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``min(k, ntotal)`` best ids per query, best first: (scores f32, ids i64).

        ``allowed`` restricts the search to those ids (a filter, e.g. by tag); rows are then
        padded with id -1 where fewer than k allowed ids are held.
        """
        queries = self._as_vectors(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), self.ntotal)
        if allowed is not None:
            allowed = np.unique(_as_ids(allowed))
            k = min(k, len(allowed))
        if k == 0:
            m = len(queries)
            return np.empty((m, 0), np.float32), np.empty((m, 0), np.int64)
        scores, ids = self._search(queries, k, allowed)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index so that ``path`` holds either the old or the new content, whole."""
        _atomic_write(os.fspath(path), self._to_bytes())

    @abstractmethod
    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _remove(self, ids: np.ndarray) -> int: ...

    @abstractmethod
    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @abstractmethod
    def _to_bytes(self) -> bytes: ...

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


class FlatIndex(VectorIndex):
    """FAISS exact inner-product search (``IndexIDMap2`` over ``IndexFlatIP``)."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        import faiss

        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> FlatIndex:
        """Read an index written by :meth:`save`; any defect raises VectorIndexFileError."""
        import faiss

        data = _read_file(path)
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as err:
            raise VectorIndexFileError(f"{os.fspath(path)} is not a FAISS index: {err}") from None
        if not isinstance(index, faiss.IndexIDMap2) or (
            index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise VectorIndexFileError(f"{os.fspath(path)} is not an inner-product id-map index")
        if index.d != dim:
            raise VectorIndexFileError(f"{os.fspath(path)} holds {index.d}-d vectors, not {dim}")
        flat = cls(dim)
        flat._index = index
        return flat

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, ids)

    def _remove(self, ids: np.ndarray) -> int:
        return int(self._index.remove_ids(ids))

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            return self._index.search(queries, k)  # k <= ntotal, so no -1 padding
        import faiss

        selector = faiss.IDSelectorBatch(allowed)
        return self._index.search(queries, k, params=faiss.SearchParameters(sel=selector))

    def _to_bytes(self) -> bytes:
        import faiss

        return faiss.serialize_index(self._index).tobytes()


class NumpyIndex(VectorIndex):
    """Brute force in numpy: needs no faiss, and is the reference FlatIndex is tested against."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._ids = np.empty(0, np.int64)
        self._vectors = np.empty((0, self.dim), np.float32)

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> NumpyIndex:
        """Read an index written by :meth:`save`; any defect raises VectorIndexFileError."""
        data = _read_file(path)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                ids, vectors = npz["ids"], npz["vectors"]
        except Exception as err:  # zipfile, format and key errors all mean "not our file"
            raise VectorIndexFileError(f"{os.fspath(path)} is not a saved index: {err}") from None
        if ids.dtype != np.int64 or ids.ndim != 1 or vectors.dtype != np.float32:
            raise VectorIndexFileError(f"{os.fspath(path)} holds arrays of the wrong type")
        if vectors.ndim != 2 or vectors.shape != (len(ids), dim):
            raise VectorIndexFileError(f"{os.fspath(path)} holds {vectors.shape}, not (n, {dim})")
        index = cls(dim)
        index._ids, index._vectors = ids, vectors
        return index

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._ids = np.concatenate([self._ids, ids])
        self._vectors = np.concatenate([self._vectors, vectors])

    def _remove(self, ids: np.ndarray) -> int:
        keep = ~np.isin(self._ids, ids)
        removed = len(self._ids) - int(keep.sum())
        if removed:
            self._ids, self._vectors = self._ids[keep], self._vectors[keep]
        return removed

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = queries @ self._vectors.T
        if allowed is not None:  # filtered-out ids score -inf and are reported as -1
            scores[:, ~np.isin(self._ids, allowed)] = -np.inf
        top_scores = np.empty((len(queries), k), np.float32)
        top_ids = np.empty((len(queries), k), np.int64)
        for row, row_scores in enumerate(scores):
            best = np.argpartition(-row_scores, k - 1)[:k] if k < len(row_scores) else None
            cand = np.arange(len(row_scores)) if best is None else best
            order = cand[np.lexsort((self._ids[cand], -row_scores[cand]))]  # ties: smaller id
            top_scores[row], top_ids[row] = row_scores[order], self._ids[order]
            top_ids[row][np.isneginf(top_scores[row])] = -1
        return top_scores, top_ids

    def _to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, ids=self._ids, vectors=self._vectors)
        return buf.getvalue()


def top_k_inner_product(
    queries: np.ndarray, database: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the ``k`` database rows with the largest inner product, best first:
    (scores (m, k), row indices (m, k)). FAISS's blocked product + heap is several times faster
    than a full score matrix and numpy's argpartition (used to tag images against labels)."""
    import faiss

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    database = np.ascontiguousarray(database, dtype=np.float32)
    k = min(k, len(database))
    return faiss.knn(queries, database, k, metric=faiss.METRIC_INNER_PRODUCT)


def build_flat_index(dim: int, ids: np.ndarray, vectors: np.ndarray) -> FlatIndex:
    """A FAISS index holding ``vectors`` under ``ids`` (the engine's rebuild-from-catalog)."""
    index = FlatIndex(dim)
    index.add(ids, vectors)
    return index


def _as_ids(ids: np.ndarray) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and arr.min() < 0:  # FAISS uses -1 for "no result"
        raise ValueError("ids must be non-negative")
    return arr


def _read_file(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise VectorIndexFileError(f"cannot read {os.fspath(path)}: {err.strerror}") from None


def _atomic_write(path: str, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename over ``path``, fsync the directory.

    A crash at any point leaves ``path`` either untouched or complete; the temp file is
    created with ``os.open`` (mode 0o666 minus the umask), unlike mkstemp's private 0o600.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable; some platforms (Windows) cannot open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
