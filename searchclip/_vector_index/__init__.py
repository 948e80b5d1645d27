"""Inner-product search over id-tagged vectors, saved atomically.

Collections up to ``EXACT_MAX_VECTORS`` get an exact FAISS flat index, larger ones an
inverted-file index (IVF; an HNSW graph is also available). :func:`build_index` chooses,
:func:`load_index` reads any of them. The catalog is the source of truth and an index file is
a cache of its vectors: a missing, corrupt or mismatched file is therefore not a user error,
:class:`VectorIndexFileError` tells the engine to rebuild it from the catalog. faiss is imported
inside functions only, so that ``import searchclip`` stays light.
"""

from searchclip._vector_index.base import BLAS_MIN_QUERIES, VectorIndex, VectorIndexFileError
from searchclip._vector_index.choice import (
    EXACT_MAX_VECTORS,
    build_flat_index,
    build_index,
    index_type_for,
    load_index,
)
from searchclip._vector_index.exact import FlatIndex, NumpyIndex, top_k_inner_product
from searchclip._vector_index.hnsw import HNSWIndex
from searchclip._vector_index.ivf import IVFIndex

__all__ = [
    "BLAS_MIN_QUERIES",
    "EXACT_MAX_VECTORS",
    "FlatIndex",
    "HNSWIndex",
    "IVFIndex",
    "NumpyIndex",
    "VectorIndex",
    "VectorIndexFileError",
    "build_flat_index",
    "build_index",
    "index_type_for",
    "load_index",
    "top_k_inner_product",
]
