"""The engine's sharded on-disk IVF at scale: build, files, queries, recall, an update.

Builds ``searchclip._vector_index.build_on_disk`` over ``--n`` CLIP-like vectors (the ANN
benchmark's generator, ``ann_recall.clip_like``, streamed chunk by chunk as the catalog streams
them), each shard in a fresh process as a Ray task would run it (its peak memory is what a task
needs). Then: 100 image-like and 100 text-like single queries, median latency and recall@10
against exact search over the same vectors; a 1 % filter; an update of 10,000 new vectors
beside the base (saved and loaded again, as an index run does).

    cd benchmarks && python ondisk_scale.py [--n 10000000] [--codes SQ8|PQ64] [--out DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from ann_recall import DIM, K, clip_like

from searchclip._id_subset import IdSubset
from searchclip._vector_index import build_on_disk, load_index, ondisk
from searchclip._vector_index.ivf import SCAN_SHARE
from searchclip._vector_index.ondisk_build import codes_for, memory_budget

CHUNK_ROWS = 100_000


def chunk_vectors(number: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``number`` of the collection: the same ids and vectors every time."""
    ids = np.arange(number * CHUNK_ROWS, number * CHUNK_ROWS + rows, dtype=np.int64) + 1
    return ids, clip_like(rows, seed=1000 + number)


def collection(n: int):
    for number, start in enumerate(range(0, n, CHUNK_ROWS)):
        yield chunk_vectors(number, min(CHUNK_ROWS, n - start))


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent a worker process was forked from). It counts the pages of mapped files it read
    (the re-ranking file), which the kernel can drop: see ``AnonymousPeak``."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AnonymousPeak:
    """The largest RssAnon seen (sampled every 0.2 s): memory the process itself allocated,
    without the mapped files' pages."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("RssAnon:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


def _shard_in_child(function, shared, ids, rows):
    started = time.perf_counter()
    anonymous = AnonymousPeak()
    result = function(shared, ids, np.asarray(rows))
    return result, time.perf_counter() - started, anonymous.stop()


class TimedShards:
    """A ShardRunner: each shard in a fresh process (a Ray task's memory), timed."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.shards: list[tuple[float, float]] = []  # (seconds, peak MB)

    def __call__(self, function, shared, jobs):
        self.started_at = time.perf_counter()
        context = multiprocessing.get_context("spawn")  # not fork: OpenMP is loaded here
        for ids, rows in jobs:
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                result, seconds, peak = pool.submit(
                    _shard_in_child, function, shared, ids, np.array(rows)
                ).result()
            self.shards.append((seconds, peak))
            yield result


def exact_top(queries: np.ndarray, n: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """The true top-K ids of each query (within ``allowed``), chunk by chunk."""
    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_ids = np.full((len(queries), K), -1, dtype=np.int64)
    for ids, vectors in collection(n):
        scores = queries @ vectors.T
        if allowed is not None:
            scores[:, ~np.isin(ids, allowed)] = -np.inf
        scores = np.concatenate([best_scores, scores], axis=1)
        every = np.concatenate([best_ids, np.broadcast_to(ids, (len(queries), len(ids)))], axis=1)
        keep = np.argpartition(-scores, K, axis=1)[:, :K]
        best_scores = np.take_along_axis(scores, keep, axis=1)
        best_ids = np.take_along_axis(every, keep, axis=1)
    return best_ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t)) / K for f, t in pairs]))


def timed_queries(index, queries: np.ndarray, *, far: bool, allowed=None):
    found, timings = [], []
    for query in queries:
        begin = time.perf_counter()
        _, ids = index.search(query[None, :], K, allowed, far=far)
        timings.append((time.perf_counter() - begin) * 1000)
        found.append(ids[0])
    return np.array(found), statistics.median(timings)


def in_memory(n: int, queries: int) -> None:
    """The in-memory IVF (what collections below ON_DISK_MIN_VECTORS get) over the same
    vectors: build time, peak memory, latency and recall, for the threshold's choice."""
    from searchclip._vector_index import IVFIndex

    ids = np.arange(1, n + 1, dtype=np.int64)  # as collection() numbers them
    vectors = np.empty((n, DIM), np.float32)  # filled in place: held once, as a rebuild holds them
    for number, (_, chunk) in enumerate(collection(n)):
        vectors[number * CHUNK_ROWS : number * CHUNK_ROWS + len(chunk)] = chunk
    held = peak_mb()
    started = time.perf_counter()
    index = IVFIndex(DIM)
    index.add(ids, vectors)
    print(f"in-memory IVF over {n:,}: built in {time.perf_counter() - started:.0f} s, peak")
    print(f"  {peak_mb():,.0f} MB ({held:,.0f} MB of it the float32 vectors and the generator)")
    del vectors
    half = queries // 2
    for name, query_set in (
        ("image", clip_like(half, seed=7)),
        ("text", clip_like(half, seed=8, text=True)),
    ):
        found, ms = timed_queries(index, query_set, far=name == "text")
        print(f"{name} | {recall(found, exact_top(query_set, n)):.3f} | {ms:.2f}")


def one_shard(directory: Path) -> None:
    """One shard job of the base in ``directory`` again, in a fresh process: its time and the
    memory it allocates (what a Ray task needs), from the base's own trained index."""
    import faiss

    from searchclip._vector_index import add_shard
    from searchclip._vector_index.ondisk import mapped_rerank
    from searchclip._vector_index.ondisk_build import SHARD_VECTORS

    (ivf,) = directory.glob("ondisk-*.ivf")
    index = faiss.read_index(str(ivf), faiss.IO_FLAG_SKIP_IVF_DATA)
    lists = faiss.ArrayInvertedLists(index.nlist, index.code_size)
    index.replace_invlists(lists, True)
    lists.this.disown()  # the index frees it
    index.ntotal = 0
    trained = faiss.serialize_index(index)
    ids, rows = mapped_rerank(ivf.with_suffix(".rerank"), DIM)
    job = (np.array(ids[:SHARD_VECTORS]), np.array(rows[:SHARD_VECTORS]))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result, seconds, peak = pool.submit(_shard_in_child, add_shard, trained, *job).result()
    print(
        f"one shard of {SHARD_VECTORS:,} vectors ({index.nlist} lists): {seconds:.0f} s, "
        f"{peak:,.0f} MB allocated at the peak, {len(result) / 1e6:.0f} MB of lists returned"
    )


def build(n: int, work: Path, codes: str):
    """The build, timed phase by phase; the index it made."""
    streamed_at: list[float] = []

    def stream():
        yield from collection(n)
        streamed_at.append(time.perf_counter())

    shards = TimedShards()
    started = time.perf_counter()
    anonymous = AnonymousPeak()
    index = build_on_disk(DIM, stream(), work, codes=codes, run_shards=shards)
    total = time.perf_counter() - started
    driver_anonymous = anonymous.stop()
    write_s = streamed_at[0] - started
    train_s = shards.started_at - streamed_at[0]
    shard_s = sum(s for s, _ in shards.shards)
    print(
        f"build: {total:.0f} s in all, driver peak {driver_anonymous:,.0f} MB allocated "
        f"({peak_mb():,.0f} MB resident with the mapped files' pages)"
    )
    print(f"  stream + fp16 re-ranking file: {write_s:.0f} s (generating the vectors included)")
    print(f"  training ({index.nlist} lists): {train_s:.0f} s")
    seconds = [s for s, _ in shards.shards]
    peaks = [p for _, p in shards.shards]
    print(
        f"  {len(seconds)} shards: {shard_s:.0f} s together, each median "
        f"{statistics.median(seconds):.0f} s, peak {max(peaks):,.0f} MB allocated a shard process"
    )
    print(f"  merge + write: {total - write_s - train_s - shard_s:.0f} s")
    for path in sorted(work.iterdir()):
        size = path.stat().st_size
        print(f"  {path.name}: {size / 1e6:,.0f} MB ({size / n:.1f} B/vector)")
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--codes", help="SQ8 or PQ<m> (default: what the engine picks here)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, help="directory for the files (default: a temp one)")
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="instead: the in-memory IVF over the same vectors (a fresh process), to compare",
    )
    parser.add_argument("--reuse", action="store_true", help="query the base --out holds")
    parser.add_argument("--one-shard", type=Path, help="instead: one shard job of the base there")
    args = parser.parse_args()
    if args.one_shard:
        one_shard(args.one_shard)
        return
    if args.in_memory:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(in_memory, args.n, args.queries).result()
        return
    work = args.out or Path(tempfile.mkdtemp(prefix="searchclip-ondisk-"))
    work.mkdir(parents=True, exist_ok=True)
    codes = args.codes or codes_for(args.n, DIM, memory_budget())
    print(
        f"{args.n:,} vectors, {DIM} dims, codes {codes} (budget {memory_budget() / 2**30:.1f} GiB)"
    )

    if args.reuse:
        index = load_index(work / "vectors-1.faiss", DIM)  # as the build below left it
    else:
        index = build(args.n, work, codes)
        index.save(work / "vectors-1.faiss")
    half = args.queries // 2
    query_sets = {"image": clip_like(half, seed=7), "text": clip_like(half, seed=8, text=True)}
    rng = np.random.default_rng(5)
    filtered = np.sort(rng.choice(np.arange(1, args.n + 1), args.n // 100, replace=False))
    subset = IdSubset(filtered)
    began = time.perf_counter()
    index = load_index(work / "vectors-1.faiss", DIM)
    first = timed_queries(index, query_sets["image"][:1], far=False)[1]
    print(f"load: {(time.perf_counter() - began) * 1000:.0f} ms, first query {first:.1f} ms")
    began = time.perf_counter()
    cached = work / f"truth-{args.n}-{args.queries}.npz"
    if not cached.exists():
        truths = {name: exact_top(queries, args.n) for name, queries in query_sets.items()}
        np.savez(cached, filtered=exact_top(query_sets["image"], args.n, filtered), **truths)
    with np.load(cached) as saved:
        truths = {name: saved[name] for name in query_sets}
        filtered_truth = saved["filtered"]
    print(f"exact search for the truth: {time.perf_counter() - began:.0f} s")
    print("query | recall@10 | median ms")
    for name, queries in query_sets.items():
        found, ms = timed_queries(index, queries, far=name == "text")
        print(f"{name} | {recall(found, truths[name]):.3f} | {ms:.2f}")
    found, ms = timed_queries(index, query_sets["image"], far=False, allowed=subset)
    print(f"image, 1 % filter | {recall(found, filtered_truth):.3f} | {ms:.2f}")
    default_factors = ondisk.RERANK_FACTOR, ondisk.PQ_RERANK_FACTOR
    print("scan share (image; text 4x) | image recall, ms | text recall, ms")
    for share in (1 / 128, 1 / 64, 1 / 32, 1 / 16):
        index._lists.scan_share = share  # the engine's is SCAN_SHARE (1/32)
        row = []
        for name, queries in query_sets.items():
            found, ms = timed_queries(index, queries, far=name == "text")
            row.append(f"{recall(found, truths[name]):.3f}, {ms:.2f}")
        print(f"1/{round(1 / share)} | {row[0]} | {row[1]}")
    index._lists.scan_share = SCAN_SHARE
    print("re-ranked candidates per result | image recall, ms | text recall, ms")
    for factor in (8, 32, 100, 300):
        ondisk.RERANK_FACTOR = ondisk.PQ_RERANK_FACTOR = factor  # read per search
        row = []
        for name, queries in query_sets.items():
            found, ms = timed_queries(index, queries, far=name == "text")
            row.append(f"{recall(found, truths[name]):.3f}, {ms:.2f}")
        print(f"{factor} | {row[0]} | {row[1]}")
    ondisk.RERANK_FACTOR, ondisk.PQ_RERANK_FACTOR = default_factors

    extra_ids = np.arange(args.n + 1, args.n + 10_001, dtype=np.int64)
    began = time.perf_counter()
    index.add(extra_ids, clip_like(10_000, seed=99))
    index.save(work / "vectors-2.faiss")
    index = load_index(work / "vectors-2.faiss", DIM)
    update = time.perf_counter() - began
    found, ms = timed_queries(index, query_sets["image"], far=False)
    size = (work / "vectors-2.faiss").stat().st_size / 1e6
    print(
        f"update: 10,000 vectors beside the base, saved and loaded in {update:.1f} s "
        f"({size:.0f} MB); image queries then {ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
