"""FAISS's process settings: chosen once, at the first import, and never changed by a query.

Two settings matter for search speed. FAISS's BLAS threshold is a process-wide global, so it
is set once, here, to a value good for single queries and large batches alike. OpenMP's thread
count is the calling thread's own (OpenMP keeps it per thread: a thread that sets it changes
nothing another thread sees), so a single-vector search runs on one OpenMP thread through
:func:`one_openmp_thread`, on the caller's thread and only for that call, while batched searches
keep the default. Why one thread, why this threshold, and the design measured against the
alternatives (a dedicated search thread, one global setting): docs/benchmarks.md, section
"FAISS threads and the BLAS threshold".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

# Exact search computes a batch through BLAS once ``queries x dim`` reaches this (this
# faiss-cpu build compares that product, not the query count, with the threshold): from 128
# queries on at CLIP's 512 dimensions. Below it FAISS's own SIMD loop runs, which is what a
# single query wants at any dimension up to this; BLAS wins on large batches (tagging).
BLAS_MIN_QUERIES = 128
BLAS_THRESHOLD = BLAS_MIN_QUERIES * 512

_configure_lock = threading.Lock()
_faiss_configured = False


def import_faiss() -> Any:
    """faiss, configured once (imported here, inside functions, to keep the package light)."""
    global _faiss_configured
    import faiss

    if not _faiss_configured:
        with _configure_lock:
            if not _faiss_configured:
                faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
                _faiss_configured = True
    return faiss


@contextlib.contextmanager
def one_openmp_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread for the calling thread, for the duration of the block.

    A single query is faster on one thread than spread over several that wait for each other
    (docs/benchmarks.md). OpenMP's thread count is per thread, so this is invisible to every
    other thread, including ones searching at the same time.
    """
    faiss = import_faiss()
    threads = faiss.omp_get_max_threads()
    if threads == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)
