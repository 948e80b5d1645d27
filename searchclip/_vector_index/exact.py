"""Exact search: FAISS flat (what collections up to ``EXACT_MAX_VECTORS`` use) and numpy."""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO

import numpy as np

from searchclip._vector_index.faiss_setup import import_faiss
from searchclip._vector_index.files import VectorIndexFileError, read_file
from searchclip._vector_index.index import VectorIndex

_FLAT_HEADER_BYTES = 90  # FAISS's serialization of IndexIDMap2(IndexFlatIP), less the entries


class FlatIndex(VectorIndex):
    """FAISS exact inner-product search (``IndexIDMap2`` over ``IndexFlatIP``)."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        faiss = import_faiss()
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self._mapped = False  # vectors memory-mapped read-only from a file (see load)

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> FlatIndex:
        """Read an index written by :meth:`save`; any defect raises VectorIndexFileError.

        The vectors are memory-mapped, not read: a cold query process starts searching at once
        (docs/benchmarks.md, section "FAISS threads and the BLAS threshold"). The engine
        replaces files by rename, so a mapped file's content never changes under a reader.
        """
        faiss = import_faiss()
        read_file(path, check_only=True)  # a missing or unreadable file: a clear message
        try:
            flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
            index = faiss.read_index(os.fspath(path), flags)
        except RuntimeError as err:
            raise VectorIndexFileError(f"{os.fspath(path)} is not a FAISS index: {err}") from None
        if not isinstance(index, faiss.IndexIDMap2) or (
            index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise VectorIndexFileError(f"{os.fspath(path)} is not an inner-product id-map index")
        if index.d != dim:
            raise VectorIndexFileError(f"{os.fspath(path)} holds {index.d}-d vectors, not {dim}")
        # A mapped file is not read to its end, so its length is checked: a short one would
        # otherwise fault on the first search (float32 vector + int64 id per entry).
        expected = _FLAT_HEADER_BYTES + index.ntotal * (4 * dim + 8)
        if os.path.getsize(path) != expected:
            raise VectorIndexFileError(f"{os.fspath(path)} is truncated or has trailing bytes")
        flat = cls(dim)
        flat._index, flat._mapped = index, True
        return flat

    @classmethod
    def from_bytes(cls, data: np.ndarray, dim: int) -> FlatIndex:
        """The index :meth:`to_bytes` gave (VectorIndexFileError if ``data`` is not one)."""
        faiss = import_faiss()
        try:
            index = faiss.deserialize_index(data)
        except RuntimeError as err:
            raise VectorIndexFileError(f"not a FAISS index: {err}") from None
        if not isinstance(index, faiss.IndexIDMap2) or index.d != dim:
            raise VectorIndexFileError(f"not a {dim}-d id-map index")
        flat = cls(dim)
        flat._index = index
        return flat

    def to_bytes(self) -> np.ndarray:
        """FAISS's serialization of the index (uint8)."""
        return import_faiss().serialize_index(self._index)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        faiss = import_faiss()
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._own_vectors()
        self._index.add_with_ids(vectors, ids)

    def _remove(self, ids: np.ndarray) -> int:
        self._own_vectors()
        return int(self._index.remove_ids(ids))

    def _own_vectors(self) -> None:
        """Copy mapped vectors into memory before the first change: the mapping is read-only."""
        if self._mapped:
            faiss = import_faiss()
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
            self._mapped = False

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, *, far: bool
    ) -> tuple[np.ndarray, np.ndarray]:  # exact: ``far`` changes nothing
        if allowed is None:
            return self._index.search(queries, k)  # k <= ntotal, so no -1 padding
        # With a selector the flat scan computes only the allowed vectors' products, so a
        # small filter is already cheap, and exact.
        faiss = import_faiss()
        selector = faiss.IDSelectorBatch(allowed)
        return self._index.search(queries, k, params=faiss.SearchParameters(sel=selector))

    def _write(self, file: BinaryIO) -> None:
        file.write(self.to_bytes().tobytes())


class NumpyIndex(VectorIndex):
    """Brute force in numpy: needs no faiss, and is the reference the others are tested against."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._ids = np.empty(0, np.int64)
        self._vectors = np.empty((0, self.dim), np.float32)

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> NumpyIndex:
        """Read an index written by :meth:`save`; any defect raises VectorIndexFileError."""
        data = read_file(path)
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
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, *, far: bool
    ) -> tuple[np.ndarray, np.ndarray]:  # exact: ``far`` changes nothing
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

    def _write(self, file: BinaryIO) -> None:
        buf = io.BytesIO()
        np.savez(buf, ids=self._ids, vectors=self._vectors)
        file.write(buf.getvalue())


def top_k_inner_product(
    queries: np.ndarray, database: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the ``k`` database rows with the largest inner product, best first:
    (scores (m, k), row indices (m, k)). FAISS's blocked product + heap never holds the full
    score matrix that numpy's argpartition would need (used to tag images against labels)."""
    faiss = import_faiss()
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    database = np.ascontiguousarray(database, dtype=np.float32)
    k = min(k, len(database))
    return faiss.knn(queries, database, k, metric=faiss.METRIC_INNER_PRODUCT)
