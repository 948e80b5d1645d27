"""Recall and speed of the index a 1M-image collection gets (IVF), against exact search.

Builds N unit vectors (512-d, as CLIP ViT-B/32) with CLIP's structure and a fixed seed, builds
the index ``build_index`` chooses for N (IVF beyond ``EXACT_MAX_VECTORS``; ``--kind hnsw``: the
HNSW graph of hnsw_index.py, beside this file, which the engine no longer uses), and prints:
recall@10 against exact search, median single-query latency of exact and of the chosen index
(also for other efSearch values and for filtered searches), build time, file size, and the
resident memory of a fresh process that loads the saved index from disk.

    python benchmarks/ann_recall.py [--n 1000000] [--queries 200] [--kind auto|ivf|hnsw]
    python benchmarks/ann_recall.py --model DIR [--n 1000000]   # a trained CLIP's embeddings

Uniform random vectors would make every approximate index look bad (in 512 dimensions all
their distances are nearly equal); CLIP embeddings are not like that. These are a shared mean
direction (CLIP's "cone": image embeddings have mean pairwise cosine ~0.45) plus a rank-128
component with singular values decaying as i^-0.7, plus small isotropic noise, L2-normalised.
Half the queries are image vectors from the same distribution (not from the database), half are
text vectors: the same latent part around a mean direction of their own plus text-only
variation, so that, as with CLIP, a text query's best cosine with any image is ~0.4 against
~0.85 for an image query (the modality gap, which makes a graph walk miss more). Recall and
latency are printed for each half; "as the engine searches" means text queries with
``far=True`` (a wider walk), the efSearch sweep searches both halves alike.

``--model DIR`` uses a trained CLIP's real embeddings instead (the project's tiny shapes CLIP):
the database is the image embeddings of ``n`` generated scenes (``searchclip._scenes``, seeds
per chunk of 10,000, rendered on two processes and cached in benchmarks/out), the queries are
the text embeddings of "a photo of a <colour> <shape>" prompts and the image embeddings of
held-out scenes, half each.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from hnsw_index import HNSWIndex, is_hnsw_file

from searchclip._vector_index import (
    IVFIndex,
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
TEXT_MEAN_COSINE = 0.3  # between the text and the image mean directions
TEXT_MEAN_WEIGHT = 1.2
TEXT_NOISE_VARIANCE = 1.0
CHUNK = 100_000
SCENE_CHUNK = 10_000
OUT = Path(__file__).parent / "out"


def clip_like(n: int, seed: int, *, text: bool = False) -> np.ndarray:
    """``n`` unit vectors from the CLIP-like distribution; its shape (mean directions, basis,
    spectrum) is fixed, ``seed`` draws the vectors.

    ``text``: text embeddings instead, as queries. CLIP's two towers meet in one space but not
    in one place (the "modality gap"): text vectors have a mean direction of their own and
    variation images do not share, so a text query lies far from every image (best cosine ~0.3
    against ~0.9 between similar images). What they share with images is the latent part.
    """
    shape = np.random.default_rng(0)
    mean = shape.standard_normal(DIM).astype(np.float32)
    mean /= np.linalg.norm(mean)
    basis = np.linalg.qr(shape.standard_normal((DIM, RANK)))[0].T.astype(np.float32)
    spectrum = np.arange(1, RANK + 1, dtype=np.float32) ** -DECAY
    spectrum *= np.sqrt(STRUCTURED_VARIANCE / (spectrum**2).sum())
    mean_weight, noise_variance = MEAN_WEIGHT, NOISE_VARIANCE
    if text:
        other = shape.standard_normal(DIM).astype(np.float32)
        other -= basis.T @ (basis @ other) + mean * (mean @ other)  # off the shared directions
        other /= np.linalg.norm(other)
        mean = TEXT_MEAN_COSINE * mean + np.sqrt(1 - TEXT_MEAN_COSINE**2) * other
        mean_weight, noise_variance = TEXT_MEAN_WEIGHT, TEXT_NOISE_VARIANCE
    noise = np.float32(np.sqrt(noise_variance / DIM))

    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, CHUNK):
        rows = min(CHUNK, n - start)
        latent = rng.standard_normal((rows, RANK), dtype=np.float32) * spectrum
        vectors = mean_weight * mean + latent @ basis
        vectors += rng.standard_normal((rows, DIM), dtype=np.float32) * noise
        out[start : start + rows] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return out


def model_vectors(model: str, n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """(database, queries) from a trained CLIP: scene image embeddings, prompt and held-out
    image embeddings; the database is cached per model and size."""
    from searchclip._scenes import COLOURS, SHAPES

    cache = OUT / f"scene-vectors-{Path(model).name}-{n}.npy"
    if cache.exists():
        database = np.load(cache)
    else:
        starts = range(0, n, SCENE_CHUNK)
        chunks = [(1000 + i, min(SCENE_CHUNK, n - start)) for i, start in enumerate(starts)]
        parts = []
        with ProcessPoolExecutor(2) as pool:
            for vectors in pool.map(_scene_vectors, chunks, [model] * len(chunks)):
                parts.append(vectors)
                print(f"  embedded {sum(map(len, parts)):,} scenes", end="\r", flush=True)
        database = np.concatenate(parts)
        np.save(cache, database)
    prompts = [f"a photo of a {c} {s}" for c in COLOURS for s in SHAPES]
    texts = _encoder(model).encode_texts([prompts[i % len(prompts)] for i in range(queries // 2)])
    images = _scene_vectors((999, queries - len(texts)), model)
    return database, np.concatenate([texts, images])


def _scene_vectors(chunk: tuple[int, int], model: str) -> np.ndarray:
    """The image embeddings of ``scenes(seed, count)``, rendered and encoded in this process."""
    from searchclip._scenes import scenes

    seed, count = chunk
    encoder, batch = _encoder(model), []
    parts = []
    for scene in scenes(seed, count):
        batch.append(scene.image)
        if len(batch) == 256:
            parts.append(encoder.encode_images(batch))
            batch = []
    parts.append(encoder.encode_images(batch))
    return np.concatenate(parts)


@functools.cache
def _encoder(model: str):
    import torch

    from searchclip._encoders import load_encoder

    torch.set_num_threads(1)  # two processes share the two cores
    return load_encoder(model, device="cpu", batch_size=256)


def timed_single_queries(
    index: VectorIndex,
    queries: np.ndarray,
    allowed: np.ndarray | None = None,
    *,
    as_engine: bool = False,
) -> tuple[np.ndarray, float, float]:
    """Each query searched alone: (ids (m, K), median ms of the text and the image half).
    ``as_engine``: the text half is searched as the engine searches text (``far=True``)."""
    found, times = [], []
    half = len(queries) // 2
    for row, query in enumerate(queries):
        start = time.perf_counter()
        far = as_engine and row < half
        found.append(index.search(query[None], K, allowed=allowed, far=far)[1][0])
        times.append(time.perf_counter() - start)
    return np.array(found), statistics.median(times[:half]), statistics.median(times[half:])


def ms(text_s: float, image_s: float) -> str:
    return f"median {text_s * 1e3:.3f} ms/query (text), {image_s * 1e3:.3f} (image)"


def recall(found: np.ndarray, truth: np.ndarray) -> str:
    """recall@K over all queries, then over the text (first half) and image queries."""
    hits = np.array([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)])
    half = len(hits) // 2
    return f"{hits.mean():.4f} (text {hits[:half].mean():.4f}, image {hits[half:].mean():.4f})"


def memory_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak (MB), from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def measure_load(path: str, dim: int, queries: int) -> None:
    """The fresh-process half: load the saved index, search, print memory as JSON."""
    baseline = memory_mb()["VmRSS"]  # numpy and searchclip imported; faiss not yet
    start = time.perf_counter()
    index = HNSWIndex.load(path, dim) if is_hnsw_file(path) else load_index(path, dim)
    load_s = time.perf_counter() - start
    vectors = np.random.default_rng(2).standard_normal((queries, dim), dtype=np.float32)
    timed_single_queries(index, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    print(json.dumps({"load_s": load_s, "baseline_rss_mb": baseline, **memory_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database vectors")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--kind",
        choices=["auto", "ivf", "hnsw"],
        default="auto",
        help="auto: what the engine builds for n (IVF beyond 100k); ivf, hnsw: that type",
    )
    parser.add_argument("--model", help="a trained CLIP directory: its real scene embeddings")
    parser.add_argument("--exact-timed", type=int, default=50, help="queries timed exactly")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: the fresh process
    parser.add_argument("--dim", type=int, default=DIM, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        measure_load(args.load, args.dim, min(args.queries, 20))
        return

    start = time.perf_counter()
    if args.model:
        database, queries = model_vectors(args.model, args.n, args.queries)
        what = f"scene embeddings of {Path(args.model).name}"
    else:
        database = clip_like(args.n, seed=1)
        texts = clip_like(args.queries // 2, seed=2, text=True)
        queries = np.concatenate([texts, clip_like(args.queries - len(texts), seed=3)])
        what = "CLIP-like vectors"
    dim = database.shape[1]
    ids = np.arange(args.n, dtype=np.int64) * 2 + 1  # ids unlike row numbers, as in a catalog
    print(
        f"{args.n:,} x {dim} {what}, {args.queries} queries: "
        f"{time.perf_counter() - start:.1f} s to generate"
    )
    sample = database[: min(args.n, 2000)]
    print(f"  mean pairwise cosine {float((sample[::2] @ sample[1::2].T).mean()):.3f}")

    exact = build_flat_index(dim, ids, database)
    truth = exact.search(queries, K)[1]  # one batch: the ground truth
    exact_ms = ms(*timed_single_queries(exact, queries[: args.exact_timed])[1:])
    top = exact.search(queries, K)[0]
    for kind, rows in (("text", top[: len(top) // 2]), ("image", top[len(top) // 2 :])):
        print(
            f"  {kind} queries: nearest neighbour cosine {rows[:, 0].mean():.3f}, "
            f"10th {rows[:, -1].mean():.3f}"
        )
    print(f"exact (FlatIndex): {exact_ms} ({args.exact_timed} queries)")

    start = time.perf_counter()
    if args.kind != "auto":
        index: VectorIndex = {"hnsw": HNSWIndex, "ivf": IVFIndex}[args.kind](dim)
        index.add(ids, database)
    else:
        index = build_index(dim, ids, database)
    build_s = time.perf_counter() - start
    found, *times = timed_single_queries(index, queries, as_engine=True)
    print(
        f"{type(index).__name__}: build {build_s:.1f} s; as the engine searches (text queries "
        f"far=True): recall@{K} {recall(found, truth)}, {ms(*times)}"
    )

    if isinstance(index, HNSWIndex):
        default_ef = index.ef_search
        for ef in (64, 128, 256, 512, 1024, 2048):
            index.ef_search = ef
            found, *times = timed_single_queries(index, queries)
            mark = " (default)" if ef == default_ef else ""
            print(f"  efSearch {ef:4d}: recall@{K} {recall(found, truth)}, {ms(*times)}{mark}")
        index.ef_search = default_ef
    if isinstance(index, IVFIndex):
        print(f"  {index.nlist} lists")
        default_share = index.scan_share
        for lists in (16, 32, 64, 128, 256, 512):  # scanned per query, of nlist
            index.scan_share = lists / index.nlist
            found, *times = timed_single_queries(index, queries)
            mark = " (an image query's default)" if lists == round(index.nlist / 32) else ""
            print(f"  {lists:4d} lists: recall@{K} {recall(found, truth)}, {ms(*times)}{mark}")
        index.scan_share = default_share

    half = len(queries) // 2
    probe = np.concatenate([queries[:25], queries[half : half + 25]])  # text, image
    rng = np.random.default_rng(3)
    for share in (0.5, 0.2, 0.05):
        allowed = np.sort(rng.choice(ids, size=int(share * args.n), replace=False))
        keep = np.isin(ids, allowed)
        subset_truth = build_flat_index(dim, ids[keep], database[keep]).search(probe, K)[1]
        found, *times = timed_single_queries(index, probe, allowed=allowed, as_engine=True)
        how = ""
        if isinstance(index, HNSWIndex):
            exact_scan = len(allowed) <= index.exact_filter_max
            how = ", exact scan" if exact_scan else ", graph walk"
        print(
            f"  filter keeping {share:.0%} ({len(allowed):,}{how}): recall@{K} "
            f"{recall(found, subset_truth)}, {ms(*times)}"
        )

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        path = Path(tmp) / "vectors-1.faiss"
        start = time.perf_counter()
        index.save(path)
        save_s = time.perf_counter() - start
        print(f"saved: {path.stat().st_size / 2**20:.0f} MiB in {save_s:.1f} s")
        del exact, index, database
        out = subprocess.run(
            [sys.executable, __file__, "--load", str(path), "--dim", str(dim)],
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
