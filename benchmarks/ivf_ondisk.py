"""A sharded IVF-PQ build merged on disk, measured: the prototype of issue 18's part 2.

One IVF is trained on a sample (k-means for the lists, then PQ codebooks), saved empty; each
shard process reads it, adds its own vectors (generated here, as a shard of a collection would
read its part of the catalog) and writes its inverted lists; FAISS's ``merge_ondisk`` merges the
shards' lists into one ``.ivfdata`` file that queries memory-map (``OnDiskInvertedLists``). The
shards run one after another here (two cores); each is its own process, so its peak memory is
what one Ray task would need. Queries are the ANN benchmark's CLIP-like image and text vectors
(``ann_recall.clip_like``), recall@10 against exact search over the same vectors.

    python benchmarks/ivf_ondisk.py [--n 1000000] [--shards 4] [--pq 64] [--queries 200]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from ann_recall import CHUNK, DIM, K, clip_like

TRAIN_PER_LIST = 40


def _faiss():
    import faiss

    return faiss


def train(path: Path, n: int, nlist: int, pq: int) -> dict:
    """Train the empty index on a sample (seed 1: not a database vector) and save it."""
    faiss = _faiss()
    started = time.perf_counter()
    sample = clip_like(min(n, TRAIN_PER_LIST * nlist), seed=1)
    index = faiss.index_factory(DIM, f"IVF{nlist},PQ{pq}", faiss.METRIC_INNER_PRODUCT)
    index.train(sample)
    faiss.write_index(index, str(path))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": time.perf_counter() - started, "peak_mb": peak}


def shard_seed(shard: int) -> int:
    return 100 + shard


def build_shard(trained: str, out: str, shard: int, start_id: int, count: int) -> dict:
    """Add one shard's vectors to a copy of the trained index; write its lists."""
    faiss = _faiss()
    started = time.perf_counter()
    index = faiss.read_index(trained)
    vectors = clip_like(count, seed=shard_seed(shard))
    for begin in range(0, count, CHUNK):
        rows = vectors[begin : begin + CHUNK]
        index.add_with_ids(rows, np.arange(start_id + begin, start_id + begin + len(rows)))
    faiss.write_index(index, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": time.perf_counter() - started, "peak_mb": peak}


def exact_top(queries: np.ndarray, n: int, shards: int) -> np.ndarray:
    """The true top-K ids of every query over the whole collection, shard by shard."""
    per_shard = n // shards
    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), K), dtype=np.int64)
    for shard in range(shards):
        vectors = clip_like(per_shard, seed=shard_seed(shard))
        scores = queries @ vectors.T
        ids = np.broadcast_to(np.arange(shard * per_shard, (shard + 1) * per_shard), scores.shape)
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate([best_ids, ids], axis=1)
        keep = np.argpartition(-scores, K, axis=1)[:, :K]
        best_scores = np.take_along_axis(scores, keep, axis=1)
        best_ids = np.take_along_axis(ids, keep, axis=1)
    return best_ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--pq", type=int, default=64, help="bytes per vector (PQ sub-quantizers)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--out", type=Path, help="directory for the files (default: a temp one)")
    args = parser.parse_args()
    faiss = _faiss()
    from faiss.contrib.ondisk import merge_ondisk

    nlist = 4 * int(math.sqrt(args.n))
    per_shard = args.n // args.shards
    n = per_shard * args.shards
    work = args.out or Path(tempfile.mkdtemp(prefix="searchclip-ondisk-"))
    work.mkdir(parents=True, exist_ok=True)
    trained = work / "trained.index"
    with ProcessPoolExecutor(1) as pool:  # a fresh process: its own peak memory
        trained_figures = pool.submit(train, trained, n, nlist, args.pq).result()
    shard_figures = []
    for shard in range(args.shards):
        with ProcessPoolExecutor(1) as pool:
            out = str(work / f"shard{shard}.index")
            figures = pool.submit(
                build_shard, str(trained), out, shard, shard * per_shard, per_shard
            ).result()
        shard_figures.append(figures)
    started = time.perf_counter()
    index = faiss.read_index(str(trained))
    merge_ondisk(
        index,
        [str(work / f"shard{s}.index") for s in range(args.shards)],
        str(work / "merged.ivfdata"),
    )
    faiss.write_index(index, str(work / "merged.index"))
    merge_seconds = time.perf_counter() - started
    del index
    for shard in range(args.shards):
        os.remove(work / f"shard{shard}.index")

    index = faiss.read_index(str(work / "merged.index"))  # its lists: mmapped .ivfdata
    half = args.queries // 2
    query_sets = {"image": clip_like(half, seed=7), "text": clip_like(half, seed=8, text=True)}
    truths = {name: exact_top(queries, n, args.shards) for name, queries in query_sets.items()}
    faiss.omp_set_num_threads(1)
    print(f"{n:,} vectors, {DIM} dims, IVF{nlist},PQ{args.pq}, {args.shards} shards")
    print(f"train: {trained_figures['seconds']:.0f} s, peak {trained_figures['peak_mb']:.0f} MB")
    for shard, figures in enumerate(shard_figures):
        print(f"shard {shard}: {figures['seconds']:.0f} s, peak {figures['peak_mb']:.0f} MB")
    sizes = {
        name: (work / name).stat().st_size / 1e6 for name in ("merged.index", "merged.ivfdata")
    }
    print(
        f"merge: {merge_seconds:.0f} s; files: index {sizes['merged.index']:.0f} MB, "
        f"lists {sizes['merged.ivfdata']:.0f} MB ({sizes['merged.ivfdata'] * 1e6 / n:.0f} B/vector)"
    )
    print("nprobe  image recall@10  text recall@10  median ms/query (image, text)")
    for nprobe in args.nprobe:
        index.nprobe = nprobe
        row = []
        for name, queries in query_sets.items():
            timings, found = [], []
            for query in queries:
                begin = time.perf_counter()
                _, ids = index.search(query[None, :], K)
                timings.append((time.perf_counter() - begin) * 1000)
                found.append(ids[0])
            row.append((recall(np.array(found), truths[name]), statistics.median(timings)))
        (image_recall, image_ms), (text_recall, text_ms) = row
        recalls = f"{image_recall:>15.3f}  {text_recall:>14.3f}"
        print(f"{nprobe:>6}  {recalls}  {image_ms:.2f}, {text_ms:.2f}")


if __name__ == "__main__":
    main()
