"""Which index a collection gets: exact up to ``EXACT_MAX_VECTORS`` vectors, IVF in memory up
to ``ON_DISK_MIN_VECTORS``, an IVF built in shards and kept on disk beyond.

Files written as HNSW graphs (what large collections got before IVF; the type now lives in
benchmarks/hnsw_index.py) are refused with VectorIndexFileError, so the engine rebuilds them
from the catalog like any file it cannot read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from searchclip._vector_index.exact import FlatIndex
from searchclip._vector_index.files import FileHeader, VectorIndexFileError
from searchclip._vector_index.index import VectorIndex
from searchclip._vector_index.ivf import IVFIndex, is_ivf_file
from searchclip._vector_index.ondisk import OnDiskIVFIndex, base_files, is_ondisk_file, read_base

# Exact search up to here: at this size it is fast enough interactively, builds at once and is
# exact; an approximate index pays for its build and its misses only from a few 100k vectors
# on (query times and memory at 100k and 1M: docs/benchmarks.md, sections "Approximate search
# at 1M vectors" and "FAISS threads and the BLAS threshold").
EXACT_MAX_VECTORS = 100_000
# In memory up to here: a rebuild of the in-memory IVF holds every vector at float32 (4 GB at
# 2M, 512 dimensions) and every search process its fp16 codes (1 KB a vector); beyond, the
# build streams and queries map the files (docs/scale.md, "Why on disk from 2,000,000").
ON_DISK_MIN_VECTORS = 2_000_000

# What HNSW files began with (benchmarks/hnsw_index.py writes them still).
_HNSW_HEADER = FileHeader(b"searchclip-hnsw\n", 1, "HNSW")


def index_type_for(count: int, exact_max: int | None = None) -> type[VectorIndex]:
    """The index type for a collection of ``count`` vectors (``exact_max`` overrides the
    module's ``EXACT_MAX_VECTORS``; both limits are read at call time so that tests can lower
    them)."""
    limit = EXACT_MAX_VECTORS if exact_max is None else exact_max
    if count <= limit:
        return FlatIndex
    return IVFIndex if count < ON_DISK_MIN_VECTORS else OnDiskIVFIndex


def build_index(
    dim: int, ids: np.ndarray, vectors: np.ndarray, *, exact_max: int | None = None
) -> VectorIndex:
    """The in-memory index the collection's size calls for (exact or IVF), holding ``vectors``
    under ``ids``; an on-disk one is built by ``build_on_disk``, from chunks."""
    index_type = index_type_for(len(ids), exact_max)
    index = (IVFIndex if index_type is OnDiskIVFIndex else index_type)(dim)
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
    if is_ondisk_file(path):
        return OnDiskIVFIndex.load(path, dim)
    if _HNSW_HEADER.matches(path):
        raise VectorIndexFileError(f"{os.fspath(path)} holds an HNSW graph, no longer read")
    return FlatIndex.load(path, dim)


def files_in_use(path: Path) -> set[Path]:
    """``path`` and the files it needs (an on-disk index's base): what a sweep keeps."""
    needed = {path}
    try:
        if path.exists() and is_ondisk_file(path):
            needed.update(base_files(path.parent, read_base(path)))
    except VectorIndexFileError:
        pass  # a damaged file needs nothing kept: the next run rebuilds it
    return needed
