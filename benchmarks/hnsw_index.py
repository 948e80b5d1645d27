"""Approximate search: a FAISS HNSW graph over fp16 vectors, kept for comparison in benchmarks.

The engine gave large collections this index before IVF, which replaced it (searchclip's
``_vector_index/ivf.py`` says why: text queries); it no longer reads these files either. It
stays here so that ``ann_recall.py --kind hnsw`` can measure a graph against IVF on the same
data (figures: docs/benchmarks.md, section "Approximate search at 1M vectors").

HNSW cannot delete. A removed (or replaced) vector stays in the graph as a tombstone that a
bitmap masks out of every search, and the graph is rebuilt once tombstones pass
``REBUILD_DEAD_SHARE`` of it. Catalog ids live beside the graph (graph position → id), so the
file is a small header, the ids, the live mask, then the graph in FAISS's own format.
"""

from __future__ import annotations

import math
import os
from typing import Any, BinaryIO

import numpy as np

from searchclip._vector_index import FileHeader, VectorIndex, VectorIndexFileError, import_faiss

# Settings chosen on 1,000,000 CLIP-like 512-d vectors (ann_recall.py; the figures behind each
# choice: docs/benchmarks.md, sections "Approximate search at 1M vectors" and "FAISS threads and
# the BLAS threshold"). M=32 links per node; fp16 storage halves the vectors' memory, for a
# query process's memory budget, and moves unit-vector scores by < 1e-3, where 8-bit codes
# capped recall; efConstruction past 40 bought no recall; efSearch 256 is the least that
# clears the 0.95 recall target with a margin.
HNSW_M = 32
EF_CONSTRUCTION = 64
EF_SEARCH = 256

# Text queries against image vectors walk FAR_WIDENING times wider: CLIP's text vectors lie
# away from all its image vectors, and a graph built over images leads a walk from such a
# query astray far more often than one from an image query.
FAR_WIDENING = 4

# A filter (``allowed``) of at most this many vectors is searched exactly: a scan that scores
# only the allowed vectors is exact, about as fast as an exact search of that many, and avoids
# HNSW's weak spot: a graph walk meets too few allowed vectors when they are a small share of
# the graph. Above it the share is at least 10 % at 1M vectors, where the walk, widened by
# 1/share, keeps recall.
EXACT_FILTER_MAX = 100_000

# Rebuild the graph when more than this share of it is tombstones: dead vectors still cost
# memory and walk time, while a rebuild at 1M vectors takes minutes, so not after every removal.
REBUILD_DEAD_SHARE = 0.2

# The header's count: vectors stored (live + tombstones).
_HEADER = FileHeader(b"searchclip-hnsw\n", 1, "HNSW")
_REBUILD_CHUNK = 65_536  # vectors decoded at a time while rebuilding (bounds the extra memory)


def is_hnsw_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a file written by :meth:`HNSWIndex.save`."""
    return _HEADER.matches(path)


class HNSWIndex(VectorIndex):
    """Approximate inner-product search (``IndexHNSWSQ``, fp16) with catalog ids and deletions.

    ``ef_search`` trades speed for recall; ``exact_filter_max`` is the filter size up to which
    a filtered search scans the allowed vectors exactly instead of walking the graph.
    """

    exact_filter_max = EXACT_FILTER_MAX

    def __init__(self, dim: int, *, ef_search: int = EF_SEARCH) -> None:
        super().__init__(dim)
        self.ef_search = ef_search
        self._graph: Any = _new_graph(self.dim)
        self._ids = np.empty(0, np.int64)  # graph position → catalog id
        self._alive = np.empty(0, bool)  # False: a tombstone (removed, or replaced by a re-add)
        self._alive_count = 0
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None  # live ids sorted, positions
        self._live_bitmap: np.ndarray | None = None  # _alive packed for FAISS, while it holds

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> HNSWIndex:
        """Read an index written by :meth:`save`; any defect raises VectorIndexFileError."""
        faiss = import_faiss()
        name = os.fspath(path)
        try:
            with open(path, "rb") as f:
                stored = _HEADER.read(f, dim, name)
                if stored * 9 > os.fstat(f.fileno()).st_size:  # 8-byte id + 1-byte flag each
                    raise VectorIndexFileError(f"{name} is truncated")
                ids = _read_array(f, np.int64, stored, name)
                alive = _read_array(f, np.uint8, stored, name)
                graph = faiss.read_index(faiss.PyCallbackIOReader(f.read))
                trailing = f.read(1)
        except OSError as err:
            raise VectorIndexFileError(f"cannot read {name}: {err.strerror}") from None
        except RuntimeError as err:  # FAISS's reader: truncated or corrupt graph
            raise VectorIndexFileError(f"{name} holds a damaged graph: {err}") from None
        if not isinstance(graph, faiss.IndexHNSW) or graph.metric_type != (
            faiss.METRIC_INNER_PRODUCT
        ):
            raise VectorIndexFileError(f"{name} does not hold an inner-product HNSW graph")
        if graph.d != dim or graph.ntotal != stored or trailing or (alive > 1).any():
            raise VectorIndexFileError(f"{name} is inconsistent or has trailing data")
        index = cls(dim)
        index._graph, index._ids, index._alive = graph, ids, alive.view(bool)
        index._alive_count = int(index._alive.sum())
        return index

    @property
    def ntotal(self) -> int:
        return self._alive_count

    @property
    def tombstones(self) -> int:
        """Vectors still in the graph but removed (they never appear in results)."""
        return len(self._ids) - self._alive_count

    def ids(self) -> np.ndarray:
        return self._ids[self._alive]

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._graph.add(vectors)
        self._ids = np.concatenate([self._ids, ids])
        self._alive = np.concatenate([self._alive, np.ones(len(ids), bool)])
        self._alive_count += len(ids)
        self._lookup = self._live_bitmap = None

    def _remove(self, ids: np.ndarray) -> int:
        positions = self._positions_of(ids)
        if len(positions):
            self._alive[positions] = False
            self._alive_count -= len(positions)
            self._lookup = self._live_bitmap = None
            if self.tombstones > REBUILD_DEAD_SHARE * len(self._ids):
                self._rebuild()
        return len(positions)

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, *, far: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = import_faiss()
        ef = max(self.ef_search * (FAR_WIDENING if far else 1), k)
        if allowed is None and not self.tombstones:
            params = faiss.SearchParametersHNSW(efSearch=ef)
            scores, positions = self._graph.search(queries, k, params=params)
            return scores, _to_ids(self._ids, positions)

        if allowed is None:
            count, bitmap = self._alive_count, self._live_mask()
        else:
            candidates = np.zeros(len(self._ids), bool)
            candidates[self._positions_of(allowed)] = True
            count, bitmap = int(candidates.sum()), np.packbits(candidates, bitorder="little")
        # the bitmap must outlive the search: the selector only points at it
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))  # n: bytes
        if allowed is not None and count <= self.exact_filter_max:
            params = faiss.SearchParameters(sel=selector)
            scores, positions = self._graph.storage.search(queries, k, params=params)
        else:
            # The walk visits vectors whatever the filter, so to meet as many candidates as an
            # unfiltered search it must look at 1/share as many.
            ef = math.ceil(ef * len(self._ids) / max(count, 1))
            params = faiss.SearchParametersHNSW(efSearch=ef, sel=selector)
            scores, positions = self._graph.search(queries, k, params=params)
        return scores, _to_ids(self._ids, positions)

    def _live_mask(self) -> np.ndarray:
        """``_alive`` as FAISS's bitmap, packed once per change rather than per query."""
        if self._live_bitmap is None:
            self._live_bitmap = np.packbits(self._alive, bitorder="little")
        return self._live_bitmap

    def _write(self, file: BinaryIO) -> None:
        faiss = import_faiss()
        _HEADER.write(file, self.dim, len(self._ids))
        file.write(self._ids.tobytes())
        file.write(self._alive.view(np.uint8).tobytes())
        faiss.write_index(self._graph, faiss.PyCallbackIOWriter(file.write))

    def _positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Graph positions of the live vectors of ``ids`` (unique); unknown ids are skipped."""
        if self._lookup is None:
            live = np.flatnonzero(self._alive)
            order = np.argsort(self._ids[live], kind="stable")
            self._lookup = (self._ids[live][order], live[order])
        sorted_ids, positions = self._lookup
        if not len(sorted_ids):
            return np.empty(0, np.int64)
        where = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return positions[where[sorted_ids[where] == ids]]

    def _rebuild(self) -> None:
        """A fresh graph of the live vectors only. Decoding fp16 and encoding it again is
        lossless, so rebuilding does not degrade the vectors."""
        live = np.flatnonzero(self._alive)
        graph = _new_graph(self.dim)
        for start in range(0, len(live), _REBUILD_CHUNK):
            graph.add(self._graph.reconstruct_batch(live[start : start + _REBUILD_CHUNK]))
        self._graph, self._ids = graph, self._ids[live]
        self._alive = np.ones(len(live), bool)
        self._lookup = self._live_bitmap = None


def _new_graph(dim: int) -> Any:
    faiss = import_faiss()
    graph = faiss.IndexHNSWSQ(
        dim, faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT
    )
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    return graph


def _to_ids(ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Catalog ids of graph positions; FAISS's -1 (fewer results than k) stays -1."""
    return np.where(positions >= 0, ids[positions], -1)


def _read_array(file: BinaryIO, dtype: type, count: int, name: str) -> np.ndarray:
    array = np.empty(count, dtype)
    if file.readinto(array.view(np.uint8)) != array.nbytes:
        raise VectorIndexFileError(f"{name} is truncated")
    return array
