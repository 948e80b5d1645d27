"""Which index a collection gets: exact up to ``EXACT_MAX_VECTORS`` vectors, IVF beyond.

``HNSWIndex`` stays available to the library, and files written as HNSW still load (the engine
rebuilds them as IVF: the type no longer matches the collection's size)."""

from __future__ import annotations

import os

import numpy as np

from searchclip._vector_index.base import VectorIndex
from searchclip._vector_index.exact import FlatIndex
from searchclip._vector_index.hnsw import HNSWIndex, is_hnsw_file
from searchclip._vector_index.ivf import IVFIndex, is_ivf_file

# Exact search up to here; measured on the 2-core project machine while another job used it
# (docs/benchmarks.md). Exact search costs ~9-40 ms a query at 100k 512-d vectors (200 MB),
# fine interactively, builds at once and is exact. An approximate index pays from a few 100k
# on: at 1M exact takes 85-370 ms a query and 2 GB, IVF 2-6 ms and 1 GB, at the price of a
# build of ~100 s (the engine updates it in place for small changes).
EXACT_MAX_VECTORS = 100_000


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
    """Whichever index ``path`` holds: IVF and HNSW files start with their own headers, anything
    else must be a flat index (FAISS's serialization, as every file before them)."""
    if is_ivf_file(path):
        return IVFIndex.load(path, dim)
    if is_hnsw_file(path):
        return HNSWIndex.load(path, dim)
    return FlatIndex.load(path, dim)
