"""Which index a collection gets: exact up to ``EXACT_MAX_VECTORS`` vectors, HNSW beyond."""

from __future__ import annotations

import os

import numpy as np

from searchclip.vector_index.base import VectorIndex
from searchclip.vector_index.exact import FlatIndex
from searchclip.vector_index.hnsw import HNSWIndex, is_hnsw_file

# Exact search up to here; measured on the 2-core project machine while another job used it
# (docs/benchmarks.md). Exact search costs ~9-40 ms a query at 100k 512-d vectors (200 MB),
# fine interactively, builds at once and is exact. HNSW would answer in ~1 ms but take ~30 s
# to build at 100k, and the engine rebuilds the index whenever the vectors change; it pays
# from a few 100k on: at 1M exact takes 200-370 ms a query and 2 GB, HNSW ~1.7 ms and 1.3 GB,
# at the price of a build of ~8 minutes.
EXACT_MAX_VECTORS = 100_000


def index_type_for(count: int, exact_max: int | None = None) -> type[VectorIndex]:
    """The index type for a collection of ``count`` vectors (``exact_max`` overrides the
    module's ``EXACT_MAX_VECTORS``, read at call time so that tests can lower it)."""
    limit = EXACT_MAX_VECTORS if exact_max is None else exact_max
    return FlatIndex if count <= limit else HNSWIndex


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
    """Whichever index ``path`` holds: HNSW files start with their own header, anything else
    must be a flat index (FAISS's serialization, as every file before HNSW existed)."""
    if is_hnsw_file(path):
        return HNSWIndex.load(path, dim)
    return FlatIndex.load(path, dim)
