"""Inner-product search over id-tagged vectors, saved atomically.

Collections up to ``EXACT_MAX_VECTORS`` get an exact FAISS flat index, larger ones an
inverted-file index (IVF), from ``ON_DISK_MIN_VECTORS`` on one built in shards whose lists stay
on disk. :func:`index_type_for` chooses, :func:`load_index` reads any. The
catalog is the source of truth and an index file is a cache of its vectors: a missing, corrupt
or mismatched file is therefore not a user error, :class:`VectorIndexFileError` tells the engine
to rebuild it from the catalog. faiss is imported inside functions only, so that
``import searchclip`` stays light, and configured once (``faiss_setup``): no search changes
process-wide state, so one index may be searched from several threads at once.

This package is the one place the rest of searchclip (and benchmarks/) imports from:

- ``index``: the ``VectorIndex`` interface and the argument checks every index shares;
- ``files``: the file header, clean read errors, atomic writes;
- ``faiss_setup``: importing faiss, its BLAS threshold, one OpenMP thread per single query;
- ``exact``: ``FlatIndex`` (FAISS) and ``NumpyIndex`` (the reference), ``top_k_inner_product``;
- ``ivf``: ``IVFIndex``, for large collections;
- ``ondisk``: ``OnDiskIVFIndex``, for collections too large for memory; ``ondisk_build``
  builds one shard by shard (``ShardRunner``: here, or as Ray tasks);
- ``choice``: which index a collection's size gets, reading any index file, the files it needs;
- ``neighbours``: self-joins, the close pairs within one collection (near-duplicates).
"""

from searchclip._vector_index.choice import (
    EXACT_MAX_VECTORS,
    ON_DISK_MIN_VECTORS,
    build_flat_index,
    build_index,
    files_in_use,
    index_type_for,
    load_index,
)
from searchclip._vector_index.exact import FlatIndex, NumpyIndex, top_k_inner_product
from searchclip._vector_index.faiss_setup import (
    BLAS_MIN_QUERIES,
    BLAS_THRESHOLD,
    import_faiss,
    one_openmp_thread,
)
from searchclip._vector_index.files import FileHeader, VectorIndexFileError
from searchclip._vector_index.index import VectorIndex
from searchclip._vector_index.ivf import IVFIndex
from searchclip._vector_index.neighbours import EXACT_SELF_JOIN_MAX, hamming_pairs, similar_pairs
from searchclip._vector_index.ondisk import OnDiskIVFIndex
from searchclip._vector_index.ondisk_build import ShardRunner, add_shard, build_on_disk

__all__ = [
    "BLAS_MIN_QUERIES",
    "BLAS_THRESHOLD",
    "EXACT_MAX_VECTORS",
    "EXACT_SELF_JOIN_MAX",
    "ON_DISK_MIN_VECTORS",
    "FileHeader",
    "FlatIndex",
    "IVFIndex",
    "NumpyIndex",
    "OnDiskIVFIndex",
    "ShardRunner",
    "VectorIndex",
    "VectorIndexFileError",
    "add_shard",
    "build_flat_index",
    "build_index",
    "build_on_disk",
    "files_in_use",
    "hamming_pairs",
    "import_faiss",
    "index_type_for",
    "load_index",
    "one_openmp_thread",
    "similar_pairs",
    "top_k_inner_product",
]
