"""Self-joins: the pairs of a collection's own vectors (or binary codes) that lie close together.

Near-duplicate reports need every close pair, not the nearest images to one query. Two searches
give them without comparing all pairs in Python:

- :func:`similar_pairs`: each vector's ``k`` nearest others by inner product, kept where the
  score reaches ``min_score``. Up to ``EXACT_SELF_JOIN_MAX`` vectors the search is exact
  (FAISS's blocked product); beyond, an inverted-file index trained for the call is searched
  at ``nprobe`` lists, which finds near-copies (cosine ~0.95) nearly always: they fall in
  the same list, while the top-k of ordinary neighbours is what the approximation loses.
- :func:`hamming_pairs`: every pair of 64-bit codes within a Hamming distance (FAISS's binary
  flat range search: exact, one popcount per pair, ~1e10 pairs in seconds).

Pairs come back once each, as row numbers ``(a, b)`` with ``a < b``, plus their score.
"""

from __future__ import annotations

import numpy as np

from searchclip._vector_index.faiss_setup import import_faiss

EXACT_SELF_JOIN_MAX = 20_000
SELF_JOIN_NPROBE = 4
_TRAINING_PER_LIST = 16  # k-means points per list: enough to place lists, cheap to train
_QUERY_BLOCK = 16_384  # rows searched per call, to bound the result arrays' memory


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # rows a, rows b (a < b), their scores


def similar_pairs(vectors: np.ndarray, min_score: float, k: int = 8, *, seed: int = 0) -> Pairs:
    """Pairs of rows of ``vectors`` (n, d) among each other's ``k`` nearest whose inner
    product is at least ``min_score``: (a, b, score), ``a < b``, each pair once."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n < 2:
        return _no_pairs(np.float32)
    k = min(k + 1, n)  # each row finds itself first
    search = _exact_search(vectors) if n <= EXACT_SELF_JOIN_MAX else _ivf_search(vectors, seed)
    rows, cols, scores = [], [], []
    for start in range(0, n, _QUERY_BLOCK):
        block_scores, block_ids = search(vectors[start : start + _QUERY_BLOCK], k)
        keep = (block_scores >= min_score) & (block_ids >= 0)
        row = np.broadcast_to(np.arange(start, start + len(block_ids))[:, None], keep.shape)
        rows.append(row[keep])
        cols.append(block_ids[keep])
        scores.append(block_scores[keep])
    return _unique_pairs(np.concatenate(rows), np.concatenate(cols), np.concatenate(scores))


def hamming_pairs(codes: np.ndarray, max_distance: int) -> Pairs:
    """Pairs of rows of ``codes`` ((n, 8) uint8: 64-bit codes) that differ in at most
    ``max_distance`` bits: (a, b, distance), ``a < b``, each pair once."""
    faiss = import_faiss()
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2 or codes.shape[1] != 8:
        raise ValueError(f"codes must have shape (n, 8), got {codes.shape}")
    if len(codes) < 2:
        return _no_pairs(np.int32)
    index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    rows, cols, distances = [], [], []
    for start in range(0, len(codes), _QUERY_BLOCK):
        block = codes[start : start + _QUERY_BLOCK]
        limits, found_distances, found = index.range_search(block, max_distance + 1)  # radius: <
        rows.append(start + np.repeat(np.arange(len(block)), np.diff(limits).astype(np.int64)))
        cols.append(found)
        distances.append(found_distances)
    return _unique_pairs(np.concatenate(rows), np.concatenate(cols), np.concatenate(distances))


def _exact_search(vectors: np.ndarray):
    faiss = import_faiss()

    def search(queries: np.ndarray, k: int):
        return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)

    return search


def _ivf_search(vectors: np.ndarray, seed: int):
    faiss = import_faiss()
    n, dim = vectors.shape
    lists = int(4 * np.sqrt(n))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10
    index.cp.min_points_per_centroid = _TRAINING_PER_LIST // 2  # no warning for a lean sample
    index.cp.seed = seed
    sample = np.random.default_rng(seed).choice(n, min(n, _TRAINING_PER_LIST * lists), False)
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    index.nprobe = SELF_JOIN_NPROBE
    return index.search


def _unique_pairs(rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> Pairs:
    """Each unordered pair once (a < b), self-pairs dropped: a pair found from both ends keeps
    one of its (equal) values."""
    rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    distinct = a != b
    a, b, values = a[distinct], b[distinct], values[distinct]
    _, first = np.unique(a * (int(b.max(initial=0)) + 1) + b, return_index=True)
    return a[first], b[first], values[first]


def _no_pairs(value_type) -> Pairs:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, value_type)
