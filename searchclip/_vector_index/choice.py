"""Which index a collection gets: exact up to ``EXACT_MAX_VECTORS`` vectors, IVF beyond.

Files written as HNSW graphs (what large collections got before IVF; the type now lives in
benchmarks/hnsw_index.py) are refused with VectorIndexFileError, so the engine rebuilds them
from the catalog like any file it cannot read."""

from __future__ import annotations

import os

import numpy as np

from searchclip._vector_index.exact import FlatIndex
from searchclip._vector_index.files import FileHeader, VectorIndexFileError
from searchclip._vector_index.index import VectorIndex
from searchclip._vector_index.ivf import IVFIndex, is_ivf_file

# Exact search up to here: at this size it is fast enough interactively, builds at once and is
# exact; an approximate index pays for its build and its misses only from a few 100k vectors
# on (query times and memory at 100k and 1M: docs/benchmarks.md, sections "Approximate search
# at 1M vectors" and "FAISS threads and the BLAS threshold").
EXACT_MAX_VECTORS = 100_000

# What HNSW files began with (benchmarks/hnsw_index.py writes them still).
_HNSW_HEADER = FileHeader(b"searchclip-hnsw\n", 1, "HNSW")


def index_type_for(count: int, exact_max: int | None = None) -> type[VectorIndex]:
    """The index type for a collection of ``count`` vectors (``exact_max`` overrides the
    module's ``EXACT_MAX_VECTORS``, read at call time so that tests can lower it)."""
    limit = EXACT_MAX_VECTORS if exact_max is None else exact_max
    return FlatIndex if count <= limit else IVFIndex


def build_index(
    dim: int, ids: np.ndarray, vectors: np.ndarray, *, exact_max: int | None = None
) -> VectorIndex:
    """The index the collection's size calls for, holding ``vectors`` under ``ids`` (the
    engine's rebuild-from-catalog)."""
    index = index_type_for(len(ids), exact_max)(dim)
    index.add(ids, vectors)
    return index


def build_flat_index(dim: int, ids: np.ndarray, vectors: np.ndarray) -> FlatIndex:
    """An exact FAISS index holding ``vectors`` under ``ids``, whatever their number."""
    index = FlatIndex(dim)
    index.add(ids, vectors)
    return index


def load_index(path: str | os.PathLike[str], dim: int) -> VectorIndex:
    """Whichever index ``path`` holds: IVF files start with their own header, anything else
    must be a flat index (FAISS's serialization, as every file before them). An HNSW file is
    no longer read: VectorIndexFileError, as for any file the engine should rebuild."""
    if is_ivf_file(path):
        return IVFIndex.load(path, dim)
    if _HNSW_HEADER.matches(path):
        raise VectorIndexFileError(f"{os.fspath(path)} holds an HNSW graph, no longer read")
    return FlatIndex.load(path, dim)
