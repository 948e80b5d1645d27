"""How single and batched searches should set FAISS's threads and BLAS threshold (issue 12).

The old code saved and restored FAISS's OpenMP thread count and its process-wide BLAS
threshold around every single-vector query, so concurrent queries raced on process-wide
state. This compares, in one run, interleaved, medians:

- ``old``: that per-query save / set / restore (threshold 128 between queries);
- ``caller``: what the package does now (``searchclip._vector_index.faiss_setup``): the BLAS
  threshold set once to ``BLAS_THRESHOLD``, and a single query on one OpenMP thread of the
  calling thread only (OpenMP's thread count is per thread);
- ``worker``: the same threshold, single queries handed to a dedicated search thread set once
  to one OpenMP thread;
- ``default``: the same threshold, single queries on FAISS's default threads.

on an exact flat index and an IVF index of N random 512-d unit vectors (the package's own
``build_index``), single queries (text-like ``far=True`` for IVF) and batches of 32 and ~1,000
queries (tagging-sized). It first checks that OpenMP's thread count is per thread here, and
whether this faiss build compares the query count or ``queries x dim`` with the threshold.

    python benchmarks/faiss_threading.py [--n 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from searchclip._vector_index import (
    BLAS_THRESHOLD,
    VectorIndex,
    build_index,
    import_faiss,
    one_openmp_thread,
)
from searchclip._vector_index.index import unique_ids

DIM = 512
K = 10
OLD_THRESHOLD = 128  # what the old code left set between queries
NO_BLAS = 1 << 30  # what it set around each single query


def unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def thread_count_is_per_thread() -> bool:
    """Set one OpenMP thread on one Python thread; does another one still see the default?"""
    faiss = import_faiss()
    seen: dict[str, int] = {}
    was_set, may_read = threading.Event(), threading.Event()

    def setter() -> None:
        faiss.omp_set_num_threads(1)
        was_set.set()
        may_read.wait()

    def reader() -> None:
        was_set.wait()
        seen["other"] = faiss.omp_get_max_threads()
        may_read.set()

    threads = [threading.Thread(target=setter), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen["other"] == faiss.omp_get_max_threads() > 1


@contextlib.contextmanager
def old_single_query() -> Iterator[None]:
    faiss = import_faiss()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    faiss.cvar.distance_compute_blas_threshold = NO_BLAS
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = OLD_THRESHOLD
        faiss.omp_set_num_threads(threads)


def threshold_switch(flat: VectorIndex, queries: np.ndarray) -> None:
    """Where this build switches to BLAS: around ``count x dim``, or around ``count``?"""
    faiss = import_faiss()
    for count in (1, 2, 8):
        cells = []
        for threshold in (count + 1, count * DIM - 100, count * DIM + 100):
            faiss.cvar.distance_compute_blas_threshold = threshold
            times = []
            for row in range(5):
                t = time.perf_counter()
                with one_openmp_thread():
                    flat._search(queries[row : row + count], K, None, far=False)
                times.append(time.perf_counter() - t)
            cells.append(f"threshold {threshold:5d}: {1000 * statistics.median(times):6.2f} ms")
        print(f"  {count} queries, 1 thread: " + ", ".join(cells))
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD


def one_thread_worker() -> ThreadPoolExecutor:
    faiss = import_faiss()
    return ThreadPoolExecutor(1, initializer=lambda: faiss.omp_set_num_threads(1))


def variants(worker: ThreadPoolExecutor) -> dict[str, tuple[int, Callable]]:
    """name -> (the global BLAS threshold it runs under, how it runs one single query)."""

    def old(index: VectorIndex, q: np.ndarray, far: bool) -> None:
        with old_single_query():
            index._search(q, K, None, far=far)

    def caller(index: VectorIndex, q: np.ndarray, far: bool) -> None:
        with one_openmp_thread():
            index._search(q, K, None, far=far)

    def on_worker(index: VectorIndex, q: np.ndarray, far: bool) -> None:
        worker.submit(index._search, q, K, None, far=far).result()

    def default(index: VectorIndex, q: np.ndarray, far: bool) -> None:
        index._search(q, K, None, far=far)

    return {
        "old": (OLD_THRESHOLD, old),
        "caller": (BLAS_THRESHOLD, caller),
        "worker": (BLAS_THRESHOLD, on_worker),
        "default": (BLAS_THRESHOLD, default),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=10, help="single queries per round")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    faiss = import_faiss()
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads")
    print(f"OpenMP thread count is per thread: {thread_count_is_per_thread()}")

    ids, database = np.arange(args.n, dtype=np.int64), unit_vectors(args.n, seed=0)
    start = time.perf_counter()
    flat = build_index(DIM, ids, database)
    ivf = build_index(DIM, ids, database, exact_max=args.n - 1)
    print(
        f"{type(flat).__name__} and {type(ivf).__name__} ({ivf.nlist} lists) of {args.n:,} "
        f"built in {time.perf_counter() - start:.1f} s"
    )
    queries = unit_vectors(args.rounds * args.per_round, seed=1)
    batch = unit_vectors(args.batch, seed=2)

    print("BLAS threshold, exact search (slow: BLAS; fast: FAISS's SIMD loop):")
    threshold_switch(flat, queries)

    worker = one_thread_worker()
    ways = variants(worker)
    single: dict[tuple[str, str], list[float]] = {}
    batched: dict[tuple[str, int], list[float]] = {}
    for round_ in range(args.rounds):
        names = list(ways)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]  # rotate the order
        for name in names:
            threshold, run = ways[name]
            faiss.cvar.distance_compute_blas_threshold = threshold
            chunk = queries[round_ * args.per_round : (round_ + 1) * args.per_round]
            for label, index, far in (("flat", flat, False), ("ivf text", ivf, True)):
                for q in chunk:
                    q = q[None]
                    t = time.perf_counter()
                    run(index, q, far)
                    single.setdefault((name, label), []).append(time.perf_counter() - t)
            if name in ("old", "caller"):  # batches: on the caller's default threads
                for size in (32, args.batch):
                    t = time.perf_counter()
                    flat.search(batch[:size], K)
                    batched.setdefault((name, size), []).append(time.perf_counter() - t)
    worker.shutdown()
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD

    print(f"\nsingle query, median ms of {args.rounds * args.per_round}:")
    print(f"{'':10s}" + "".join(f"{name:>10s}" for name in ways))
    for label in ("flat", "ivf text"):
        cells = "".join(f"{1000 * statistics.median(single[name, label]):10.2f}" for name in ways)
        print(f"{label:10s}{cells}")
    print(f"\nbatched exact search over {args.n:,}, median ms of {args.rounds}:")
    for size in (32, args.batch):
        cells = ", ".join(
            f"{name} {1000 * statistics.median(batched[name, size]):.0f}"
            for name in ("old", "caller")
        )
        print(f"  {size:5d} queries: {cells}")

    # The cost of a filter's id check (unique_ids against np.unique), 500k sorted ids.
    allowed = np.arange(1, 1_000_001, 2, dtype=np.int64)
    check, full = [], []
    for _ in range(5):
        t = time.perf_counter()
        unique_ids(allowed)
        check.append(time.perf_counter() - t)
        t = time.perf_counter()
        np.unique(allowed)
        full.append(time.perf_counter() - t)
    print(
        f"\n500k sorted filter ids: unique_ids {1000 * statistics.median(check):.1f} ms, "
        f"np.unique {1000 * statistics.median(full):.1f} ms"
    )


if __name__ == "__main__":
    main()
