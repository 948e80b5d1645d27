"""Recall and speed of the index a 1M-image collection gets (HNSW), against exact search.

Builds N unit vectors (512-d, as CLIP ViT-B/32) with CLIP's structure and a fixed seed, builds
the index ``build_index`` chooses for N (HNSW beyond ``EXACT_MAX_VECTORS``), and prints:
recall@10 against exact search, median single-query latency of exact and of the chosen index
(also for other efSearch values and for filtered searches), build time, file size, and the
resident memory of a fresh process that loads the saved index from disk.

    python benchmarks/ann_recall.py [--n 1000000] [--queries 200] [--kind auto|hnsw]

Uniform random vectors would make every approximate index look bad (in 512 dimensions all
their distances are nearly equal); CLIP embeddings are not like that. These are a shared mean
direction (CLIP's "cone": image embeddings have mean pairwise cosine ~0.45) plus a rank-128
component with singular values decaying as i^-0.7, plus small isotropic noise, L2-normalised.
Queries come from the same distribution, not from the database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from searchclip.vector_index import (
    HNSWIndex,
    VectorIndex,
    build_flat_index,
    build_index,
    load_index,
)

DIM = 512
K = 10
MEAN_WEIGHT = 0.67  # squared: the mean pairwise cosine (~0.45)
RANK = 128
DECAY = 0.7
STRUCTURED_VARIANCE = 0.5
NOISE_VARIANCE = 0.05
CHUNK = 100_000


def clip_like(n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors from the CLIP-like distribution; its shape (mean direction, basis,
    spectrum) is fixed, ``seed`` draws the vectors."""
    shape = np.random.default_rng(0)
    mean = shape.standard_normal(DIM).astype(np.float32)
    mean /= np.linalg.norm(mean)
    basis = np.linalg.qr(shape.standard_normal((DIM, RANK)))[0].T.astype(np.float32)
    spectrum = np.arange(1, RANK + 1, dtype=np.float32) ** -DECAY
    spectrum *= np.sqrt(STRUCTURED_VARIANCE / (spectrum**2).sum())
    noise = np.float32(np.sqrt(NOISE_VARIANCE / DIM))

    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, CHUNK):
        rows = min(CHUNK, n - start)
        latent = rng.standard_normal((rows, RANK), dtype=np.float32) * spectrum
        vectors = MEAN_WEIGHT * mean + latent @ basis
        vectors += rng.standard_normal((rows, DIM), dtype=np.float32) * noise
        out[start : start + rows] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return out


def timed_single_queries(
    index: VectorIndex, queries: np.ndarray, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Each query searched alone, as the engine does: (ids (m, K), median ms)."""
    found, times = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(index.search(query[None], K, allowed=allowed)[1][0])
        times.append(time.perf_counter() - start)
    return np.array(found), statistics.median(times) * 1000


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def memory_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak (MB), from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def measure_load(path: str, queries: int) -> None:
    """The fresh-process half: load the saved index, search, print memory as JSON."""
    baseline = memory_mb()["VmRSS"]  # numpy and searchclip imported; faiss not yet
    start = time.perf_counter()
    index = load_index(path, DIM)
    load_s = time.perf_counter() - start
    timed_single_queries(index, clip_like(queries, seed=2))
    print(json.dumps({"load_s": load_s, "baseline_rss_mb": baseline, **memory_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database vectors")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--kind", choices=["auto", "hnsw"], default="auto", help="hnsw: force it at small n"
    )
    parser.add_argument("--exact-timed", type=int, default=50, help="queries timed exactly")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: the fresh process
    args = parser.parse_args()
    if args.load:
        measure_load(args.load, min(args.queries, 20))
        return

    start = time.perf_counter()
    database, queries = clip_like(args.n, seed=1), clip_like(args.queries, seed=2)
    ids = np.arange(args.n, dtype=np.int64) * 2 + 1  # ids unlike row numbers, as in a catalog
    print(
        f"{args.n:,} x {DIM} CLIP-like vectors, {args.queries} queries: "
        f"{time.perf_counter() - start:.1f} s to generate"
    )
    sample = database[: min(args.n, 2000)]
    print(f"  mean pairwise cosine {float((sample[::2] @ sample[1::2].T).mean()):.3f}")

    exact = build_flat_index(DIM, ids, database)
    truth = exact.search(queries, K)[1]  # one batch: the ground truth
    _, exact_ms = timed_single_queries(exact, queries[: args.exact_timed])
    top = exact.search(queries, K)[0]
    print(f"  nearest neighbour cosine {top[:, 0].mean():.3f}, 10th {top[:, -1].mean():.3f}")
    print(f"exact (FlatIndex): median {exact_ms:.2f} ms/query ({args.exact_timed} queries)")

    start = time.perf_counter()
    if args.kind == "hnsw":
        index: VectorIndex = HNSWIndex(DIM)
        index.add(ids, database)
    else:
        index = build_index(DIM, ids, database)
    build_s = time.perf_counter() - start
    found, ann_ms = timed_single_queries(index, queries)
    print(
        f"{type(index).__name__}: build {build_s:.1f} s, recall@{K} {recall(found, truth):.4f}, "
        f"median {ann_ms:.3f} ms/query"
    )

    if isinstance(index, HNSWIndex):
        default_ef = index.ef_search
        for ef in (64, 128, 256, 512):
            index.ef_search = ef
            found, ms = timed_single_queries(index, queries)
            mark = " (default)" if ef == default_ef else ""
            print(
                f"  efSearch {ef:4d}: recall@{K} {recall(found, truth):.4f}, "
                f"{ms:.3f} ms/query{mark}"
            )
        index.ef_search = default_ef

    rng = np.random.default_rng(3)
    for share in (0.5, 0.2, 0.05):
        allowed = np.sort(rng.choice(ids, size=int(share * args.n), replace=False))
        keep = np.isin(ids, allowed)
        subset_truth = build_flat_index(DIM, ids[keep], database[keep]).search(queries[:50], K)[1]
        found, ms = timed_single_queries(index, queries[:50], allowed=allowed)
        how = ""
        if isinstance(index, HNSWIndex):
            exact_scan = len(allowed) <= index.exact_filter_max
            how = ", exact scan" if exact_scan else ", graph walk"
        print(
            f"  filter keeping {share:.0%} ({len(allowed):,}{how}): recall@{K} "
            f"{recall(found, subset_truth):.4f}, {ms:.3f} ms/query"
        )

    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "out") as tmp:
        path = Path(tmp) / "vectors-1.faiss"
        start = time.perf_counter()
        index.save(path)
        save_s = time.perf_counter() - start
        print(f"saved: {path.stat().st_size / 2**20:.0f} MiB in {save_s:.1f} s")
        del exact, index, database
        out = subprocess.run(
            [sys.executable, __file__, "--load", str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        loaded = json.loads(out.splitlines()[-1])
        print(
            f"fresh process after load + 20 queries: RSS {loaded['VmRSS']:.0f} MB "
            f"(peak {loaded['VmHWM']:.0f} MB, {loaded['baseline_rss_mb']:.0f} MB before "
            f"loading), load {loaded['load_s']:.1f} s"
        )


if __name__ == "__main__":
    main()
