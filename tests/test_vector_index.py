"""The vector indexes: agreement with exact search, add/remove invariants, atomic files, and
the choice between exact and IVF by collection size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import searchclip._vector_index.choice
from searchclip._vector_index import (
    BLAS_MIN_QUERIES,
    BLAS_THRESHOLD,
    FlatIndex,
    IVFIndex,
    NumpyIndex,
    VectorIndex,
    VectorIndexFileError,
    build_flat_index,
    build_index,
    index_type_for,
    load_index,
)

DIM = 16
EXACT_KINDS = [FlatIndex, NumpyIndex]
KINDS = [*EXACT_KINDS, IVFIndex]  # benchmarks/hnsw_index.py: tests/test_hnsw_benchmark_index.py


def score_tolerance(kind: type[VectorIndex]) -> float:
    """IVF (and benchmarks' HNSW) store vectors as fp16: scores are off by up to ~1e-3
    (rankings are unaffected unless two scores are that close)."""
    return 2e-3 if kind.__name__ in ("HNSWIndex", "IVFIndex") else 1e-5


def unit_vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def filled(kind: type[VectorIndex], n: int = 200, seed: int = 0) -> VectorIndex:
    index = kind(DIM)
    index.add(np.arange(n, dtype=np.int64) * 7 + 1, unit_vectors(n, seed))
    return index


@pytest.mark.parametrize("kind", EXACT_KINDS)
def test_search_matches_brute_force(kind: type[VectorIndex]) -> None:
    ids = np.arange(300, dtype=np.int64) * 3 + 5
    vectors = unit_vectors(300, seed=1)
    index = kind(DIM)
    index.add(ids, vectors)
    queries = unit_vectors(25, seed=2)

    scores, found = index.search(queries, 10)

    assert scores.shape == found.shape == (25, 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    exact = queries @ vectors.T
    for row in range(25):
        best = np.argsort(-exact[row])[:10]
        np.testing.assert_array_equal(found[row], ids[best])
        np.testing.assert_allclose(scores[row], exact[row, best], atol=1e-5)
        assert np.all(np.diff(scores[row]) <= 1e-6)  # best first


def test_flat_and_numpy_agree() -> None:
    flat, ref = filled(FlatIndex, seed=3), filled(NumpyIndex, seed=3)
    queries = unit_vectors(40, seed=4)
    flat_scores, flat_ids = flat.search(queries, 5)
    ref_scores, ref_ids = ref.search(queries, 5)
    np.testing.assert_allclose(flat_scores, ref_scores, atol=1e-5)
    # Identical ids except where two scores tie within float error.
    differ = flat_ids != ref_ids
    assert np.all(np.abs(flat_scores - ref_scores)[differ] < 1e-5)
    assert differ.mean() < 0.01


@pytest.mark.parametrize("kind", KINDS)
def test_add_replaces_existing_ids(kind: type[VectorIndex]) -> None:
    index = filled(kind, n=50)
    new = unit_vectors(1, seed=99)
    index.add(np.array([8]), new)  # id 8 = 1 * 7 + 1 already present

    assert index.ntotal == 50
    assert sorted(index.ids().tolist()) == [i * 7 + 1 for i in range(50)]
    scores, found = index.search(new, 1)
    assert found[0, 0] == 8
    assert scores[0, 0] == pytest.approx(1.0, abs=score_tolerance(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_remove_and_readd(kind: type[VectorIndex]) -> None:
    index = filled(kind, n=100)
    gone = np.array([1, 8, 15, 700_000])  # the last id is not held
    assert index.remove(gone) == 3
    assert index.ntotal == 97
    assert index.remove(gone) == 0
    assert index.remove(np.array([], np.int64)) == 0

    _, found = index.search(unit_vectors(30, seed=5), 97)
    assert found.shape == (30, 97)
    assert not np.isin(found, gone).any()
    assert (found != -1).all()

    vector = unit_vectors(1, seed=6)
    index.add(np.array([8]), vector)
    assert index.ntotal == 98
    assert index.search(vector, 1)[1][0, 0] == 8


@pytest.mark.parametrize("kind", KINDS)
def test_ids_unique_after_many_operations(kind: type[VectorIndex]) -> None:
    rng = np.random.default_rng(7)
    index, expected = kind(DIM), set()
    for step in range(40):
        batch = rng.choice(60, size=int(rng.integers(1, 10)), replace=False)
        if step % 3 == 2:
            index.remove(batch)
            expected -= set(batch.tolist())
        else:
            index.add(batch, unit_vectors(len(batch), seed=step))
            expected |= set(batch.tolist())
    held = index.ids()
    assert held.dtype == np.int64
    assert len(held) == len(set(held.tolist())) == index.ntotal
    assert set(held.tolist()) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_k_larger_than_ntotal(kind: type[VectorIndex]) -> None:
    index = filled(kind, n=4)
    scores, found = index.search(unit_vectors(3, seed=8), 50)
    assert scores.shape == found.shape == (3, 4)
    assert all(sorted(row) == [1, 8, 15, 22] for row in found.tolist())


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index_search(kind: type[VectorIndex]) -> None:
    index = kind(DIM)
    assert index.ntotal == 0
    assert index.ids().shape == (0,)
    scores, found = index.search(unit_vectors(3, seed=9), 5)
    assert scores.shape == found.shape == (3, 0)
    assert scores.dtype == np.float32 and found.dtype == np.int64


@pytest.mark.parametrize("kind", KINDS)
def test_ties_are_all_returned(kind: type[VectorIndex]) -> None:
    index = kind(DIM)
    vector = unit_vectors(1, seed=10)
    index.add(np.array([3, 1, 2]), np.repeat(vector, 3, axis=0))
    scores, found = index.search(vector, 2)
    assert len(set(found[0].tolist())) == 2
    assert set(found[0].tolist()) <= {1, 2, 3}
    np.testing.assert_allclose(scores[0], [1.0, 1.0], atol=score_tolerance(kind))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("ids", "vectors"),
    [
        (np.arange(3), np.zeros((2, DIM), np.float32)),  # count mismatch
        (np.arange(2), np.zeros((2, DIM + 1), np.float32)),  # wrong dim
        (np.arange(2), np.zeros(DIM, np.float32)),  # not 2-D
        (np.arange(4).reshape(2, 2), np.zeros((2, DIM), np.float32)),  # ids not 1-D
        (np.array([1.5, 2.5]), np.zeros((2, DIM), np.float32)),  # ids not integers
        (np.array([1, 1]), np.zeros((2, DIM), np.float32)),  # duplicate ids in one batch
        (np.array([-1, 2]), np.zeros((2, DIM), np.float32)),  # -1 means "no result" in FAISS
        (np.arange(2), np.full((2, DIM), np.nan, np.float32)),  # NaN ranks nothing
    ],
)
def test_add_validates(kind: type[VectorIndex], ids: np.ndarray, vectors: np.ndarray) -> None:
    index = kind(DIM)
    with pytest.raises(ValueError):
        index.add(ids, vectors)
    assert index.ntotal == 0


@pytest.mark.parametrize("kind", KINDS)
def test_search_validates(kind: type[VectorIndex]) -> None:
    index = filled(kind, n=5)
    with pytest.raises(ValueError):
        index.search(unit_vectors(1, seed=0)[0], 1)  # 1-D query
    with pytest.raises(ValueError):
        index.search(np.zeros((1, DIM + 1), np.float32), 1)
    with pytest.raises(ValueError):
        index.search(unit_vectors(1, seed=0), 0)
    with pytest.raises(ValueError):
        kind(0)


# --- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind: type[VectorIndex], tmp_path: Path) -> None:
    index = filled(kind, n=120)
    index.remove(np.array([1, 8]))
    path = tmp_path / "vectors.idx"
    index.save(path)

    loaded = kind.load(path, DIM)

    assert isinstance(loaded, kind)
    assert loaded.ntotal == 118
    assert sorted(loaded.ids().tolist()) == sorted(index.ids().tolist())
    queries = unit_vectors(10, seed=11)
    for got, want in zip(loaded.search(queries, 7), index.search(queries, 7), strict=True):
        np.testing.assert_array_equal(got, want)
    loaded.add(np.array([1]), unit_vectors(1, seed=12))  # a loaded index is fully usable
    assert loaded.ntotal == 119
    assert os.listdir(tmp_path) == ["vectors.idx"]


@pytest.mark.parametrize("kind", KINDS)
def test_empty_index_round_trip(kind: type[VectorIndex], tmp_path: Path) -> None:
    kind(DIM).save(tmp_path / "empty.idx")
    loaded = kind.load(tmp_path / "empty.idx", DIM)
    assert loaded.ntotal == 0
    assert loaded.search(unit_vectors(2, seed=0), 3)[1].shape == (2, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_save_is_atomic(kind: type[VectorIndex], tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "vectors.idx"
    filled(kind, n=10).save(path)
    old = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        filled(kind, n=30, seed=1).save(path)
    monkeypatch.undo()

    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["vectors.idx"]  # no temp file left behind
    assert kind.load(path, DIM).ntotal == 10


@pytest.mark.parametrize("kind", KINDS)
def test_save_overwrites(kind: type[VectorIndex], tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    filled(kind, n=10).save(path)
    filled(kind, n=30).save(str(path))
    assert kind.load(str(path), DIM).ntotal == 30
    assert os.listdir(tmp_path) == ["vectors.idx"]


@pytest.mark.parametrize("kind", KINDS)
def test_load_missing_file(kind: type[VectorIndex], tmp_path: Path) -> None:
    with pytest.raises(VectorIndexFileError):
        kind.load(tmp_path / "nope.idx", DIM)
    with pytest.raises(VectorIndexFileError):
        kind.load(tmp_path, DIM)  # a directory


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"\x00" * 4096])
def test_load_garbage(kind: type[VectorIndex], content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    path.write_bytes(content)
    with pytest.raises(VectorIndexFileError):
        kind.load(path, DIM)


@pytest.mark.parametrize("kind", KINDS)
def test_load_truncated(kind: type[VectorIndex], tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    filled(kind, n=50).save(path)
    data = path.read_bytes()
    for cut in (1, 8, 40, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(VectorIndexFileError):
            kind.load(path, DIM)


@pytest.mark.parametrize("kind", KINDS)
def test_load_wrong_dim(kind: type[VectorIndex], tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    filled(kind, n=5).save(path)
    with pytest.raises(VectorIndexFileError, match="8"):
        kind.load(path, 8)


def test_load_other_kinds_file(tmp_path: Path) -> None:
    for kind in KINDS:
        filled(kind, n=5).save(tmp_path / f"{kind.__name__}.idx")
    for reader in KINDS:
        for kind in KINDS:
            if kind is not reader:
                with pytest.raises(VectorIndexFileError):
                    reader.load(tmp_path / f"{kind.__name__}.idx", DIM)


def test_build_flat_index() -> None:
    ids = np.array([10, 20, 30], np.int64)
    vectors = unit_vectors(3, seed=13)
    index = build_flat_index(DIM, ids, vectors)
    assert isinstance(index, FlatIndex)
    assert index.dim == DIM
    assert sorted(index.ids().tolist()) == [10, 20, 30]
    assert index.search(vectors[1:2], 1)[1][0, 0] == 20


@pytest.mark.parametrize("kind", EXACT_KINDS)
def test_search_restricted_to_allowed_ids(kind: type[VectorIndex]) -> None:
    index = filled(kind)
    held = index.ids()
    allowed = np.concatenate([held[::7], [10**9]])  # an unknown id is simply never found
    queries = unit_vectors(5, seed=3)
    scores, ids = index.search(queries, 10, allowed=allowed)
    assert set(ids.ravel()) <= set(allowed.tolist())
    # The same as an unrestricted search over an index that holds only the allowed ids.
    subset = kind(DIM)
    all_ids, all_vectors = np.arange(200, dtype=np.int64) * 7 + 1, unit_vectors(200, seed=0)
    keep = np.isin(all_ids, allowed)  # filled() holds exactly these ids and vectors
    subset.add(all_ids[keep], all_vectors[keep])
    expected_scores, expected_ids = subset.search(queries, 10)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_allowed_ids_beyond_k_pad_with_minus_one(kind: type[VectorIndex]) -> None:
    index = filled(kind)
    allowed = np.array([index.ids()[0], 10**9])  # one held id, one unknown
    _, ids = index.search(unit_vectors(1, seed=4), 5, allowed=allowed)
    assert ids.shape == (1, 2)
    assert ids[0, 0] == index.ids()[0] and ids[0, 1] == -1


# --- approximate indexes ------------------------------------------------------------------

HNSW_DIM = 32  # the approximate indexes' tests (the name kept from when HNSW was one of them)


def recall(found: np.ndarray, expected: np.ndarray) -> float:
    """Share of the expected ids (per row, -1 padding ignored) that were found."""
    hits = [len(set(f) & set(e) - {-1}) for f, e in zip(found, expected, strict=True)]
    return sum(hits) / sum(len(set(e) - {-1}) for e in expected)


def test_far_changes_nothing_for_exact_indexes() -> None:
    ids = np.arange(2000, dtype=np.int64) * 5 + 3
    vectors = unit_vectors(len(ids), 20, dim=HNSW_DIM)
    queries = unit_vectors(50, seed=24, dim=HNSW_DIM)
    for kind in EXACT_KINDS:  # exact indexes: the same results either way
        index = kind(HNSW_DIM)
        index.add(ids, vectors)
        assert np.array_equal(index.search(queries, 10, far=True)[1], index.search(queries, 10)[1])


def test_ivf_load_rejects_a_damaged_header(tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    filled(IVFIndex, n=50).save(path)
    data = bytearray(path.read_bytes())
    data[len(b"searchclip-ivf\n")] = 99  # the format version, right after the magic line
    path.write_bytes(bytes(data))
    with pytest.raises(VectorIndexFileError, match="version"):
        IVFIndex.load(path, DIM)


# --- IVF ---------------------------------------------------------------------------------------


def clustered(n: int, seed: int, dim: int = HNSW_DIM, clusters: int = 40) -> np.ndarray:
    """Unit vectors around ``clusters`` centres, as real embeddings are (uniform random vectors
    have no structure for an approximate index to use)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((clusters, dim)).astype(np.float32)
    vectors = centres[rng.integers(clusters, size=n)] + 0.35 * rng.standard_normal((n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def ivf_and_reference(n: int = 3000) -> tuple[IVFIndex, NumpyIndex, np.ndarray]:
    ids = np.arange(n, dtype=np.int64) * 5 + 3
    vectors = clustered(n, seed=30)
    ivf, reference = IVFIndex(HNSW_DIM), NumpyIndex(HNSW_DIM)
    ivf.add(ids, vectors)
    reference.add(ids, vectors)
    return ivf, reference, ids


def test_ivf_matches_exact_search() -> None:
    ivf, reference, _ = ivf_and_reference()
    assert ivf.nlist == round(4 * np.sqrt(3000))  # ~4 lists per square root of the count
    queries = clustered(100, seed=31)
    scores, found = ivf.search(queries, 10)
    ref_scores, ref_found = reference.search(queries, 10)
    assert scores.shape == found.shape == (100, 10) and (found >= 0).all()
    assert recall(found, ref_found) >= 0.95
    assert recall(ivf.search(queries, 10, far=True)[1], ref_found) >= 0.99
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    np.testing.assert_allclose(scores[:, 0], ref_scores[:, 0], atol=2e-3)


def test_ivf_far_queries_scan_more_lists() -> None:
    from searchclip._vector_index.ivf import FAR_WIDENING

    ivf, reference, _ = ivf_and_reference()
    queries = unit_vectors(60, seed=32, dim=HNSW_DIM)  # away from every cluster
    ivf.scan_share = 1 / 64
    far = ivf.search(queries, 10, far=True)[1]
    narrow = ivf.search(queries, 10)[1]
    ivf.scan_share = FAR_WIDENING / 64
    assert np.array_equal(far, ivf.search(queries, 10)[1])  # the same scan as a wider share
    truth = reference.search(queries, 10)[1]
    assert recall(far, truth) > recall(narrow, truth)


def test_ivf_filters_are_exact_when_small_and_widened_when_large() -> None:
    ivf, reference, ids = ivf_and_reference()
    queries = clustered(40, seed=33)
    for allowed in (ids[::100], ids[::2]):  # 30 and 1,500 of 3,000
        _, found = ivf.search(queries, 10, allowed=allowed)
        assert np.isin(found[found >= 0], allowed).all()
        assert recall(found, reference.search(queries, 10, allowed=allowed)[1]) >= 0.97
    _, found = ivf.search(queries[:1], 5, allowed=np.array([10**9]))
    assert found.tolist() == [[-1]]


def test_ivf_wide_filters_keep_their_results_when_the_best_vectors_are_not_allowed() -> None:
    # A filter keeping half of the vectors is applied to an unfiltered search's results; where
    # those hold too few allowed ids (here: the half least like the query is allowed), the
    # search falls back to scanning with the filter, and still finds the best allowed.
    ivf, reference, ids = ivf_and_reference()
    query = clustered(1, seed=41)
    ranked = reference.search(query, len(ids))[1][0]
    best, worst = np.sort(ranked[: len(ids) // 2]), np.sort(ranked[len(ids) // 2 :])
    _, found = ivf.search(query, 10, allowed=best, far=True)
    assert recall(found, reference.search(query, 10, allowed=best)[1]) >= 0.9
    _, found = ivf.search(query, 10, allowed=worst, far=True)  # none in the unfiltered 56
    assert found.shape == (1, 10) and np.isin(found, worst).all()


def test_ivf_removal_is_exact_and_survives_save_and_load(tmp_path: Path) -> None:
    ivf, reference, ids = ivf_and_reference()
    gone = ids[::3]
    assert ivf.remove(gone) == len(gone) == reference.remove(gone)
    assert ivf.ntotal == 2000 and not np.isin(ivf.ids(), gone).any()
    queries = clustered(30, seed=34)
    assert not np.isin(ivf.search(queries, 50, far=True)[1], gone).any()
    replaced = clustered(1, seed=35)
    ivf.add(ids[1:2], replaced)  # one live copy, with the new vector
    assert ivf.ntotal == 2000 and np.sum(ivf.ids() == ids[1]) == 1
    scores, found = ivf.search(replaced, 1)
    assert found[0, 0] == ids[1] and scores[0, 0] == pytest.approx(1.0, abs=2e-3)

    ivf.save(tmp_path / "vectors.idx")
    loaded = IVFIndex.load(tmp_path / "vectors.idx", HNSW_DIM)
    assert loaded.ntotal == 2000 and loaded.nlist == ivf.nlist
    assert np.array_equal(np.sort(loaded.ids()), np.sort(ivf.ids()))
    assert np.array_equal(loaded.search(queries, 10)[1], ivf.search(queries, 10)[1])


def test_ivf_reports_when_it_has_outgrown_its_centroids() -> None:
    from searchclip._vector_index.ivf import RETRAIN_GROWTH

    ivf = IVFIndex(HNSW_DIM)
    ivf.add(np.arange(100), clustered(100, seed=36))
    more = 100 * (RETRAIN_GROWTH - 1)
    ivf.add(np.arange(100, 100 + more), clustered(more, seed=37))
    assert not ivf.outgrown
    ivf.add(np.array([10**6]), clustered(1, seed=38))
    assert ivf.outgrown


def test_ivf_returns_k_results_even_when_the_scanned_lists_hold_fewer() -> None:
    ivf = IVFIndex(DIM)
    ivf.add(np.arange(400), unit_vectors(400, seed=39))  # 80 lists of ~5: 8 scanned ~ 40
    _, found = ivf.search(unit_vectors(3, seed=40), 200)
    assert (found >= 0).all() and len(np.unique(found[0])) == 200
    allowed = np.arange(0, 400, 2)  # a filter: its 200 are all found, not only the scanned ones
    _, found = ivf.search(unit_vectors(3, seed=40), 200, allowed=allowed)
    assert all(sorted(row) == allowed.tolist() for row in found.tolist())


# --- the choice by collection size ------------------------------------------------------------


def test_index_type_follows_the_count(monkeypatch) -> None:
    limit = searchclip._vector_index.choice.EXACT_MAX_VECTORS
    assert index_type_for(limit) is FlatIndex
    assert index_type_for(limit + 1) is IVFIndex
    assert index_type_for(10, exact_max=9) is IVFIndex
    monkeypatch.setattr(searchclip._vector_index.choice, "EXACT_MAX_VECTORS", 50)
    assert index_type_for(50) is FlatIndex and index_type_for(51) is IVFIndex

    ids, vectors = np.arange(60, dtype=np.int64), unit_vectors(60, seed=27)
    assert isinstance(build_index(DIM, ids[:50], vectors[:50]), FlatIndex)
    big = build_index(DIM, ids, vectors)
    assert isinstance(big, IVFIndex) and big.ntotal == 60
    assert big.search(vectors[5:6], 1)[1][0, 0] == 5


def test_load_index_tells_the_type_from_the_file(tmp_path: Path) -> None:
    for kind in (FlatIndex, IVFIndex):
        path = tmp_path / f"vectors-{kind.__name__}.faiss"
        filled(kind, n=30).save(path)
        loaded = load_index(path, DIM)
        assert type(loaded) is kind and loaded.ntotal == 30
    filled(NumpyIndex, n=5).save(tmp_path / "numpy.idx")
    for bad in (tmp_path / "numpy.idx", tmp_path / "missing.faiss", tmp_path):
        with pytest.raises(VectorIndexFileError):
            load_index(bad, DIM)


def test_load_index_refuses_an_hnsw_file(tmp_path: Path) -> None:
    """HNSW files (what large collections got before IVF) are no longer read: the engine
    rebuilds them from the catalog like any file it cannot read."""
    path = tmp_path / "vectors-1.faiss"
    path.write_bytes(b"searchclip-hnsw\n" + bytes(64))  # how HNSWIndex.save began its files
    with pytest.raises(VectorIndexFileError, match="HNSW"):
        load_index(path, DIM)


def test_faiss_blas_threshold_is_set() -> None:
    import faiss

    FlatIndex(DIM)  # any use of faiss through the package configures it
    # This faiss build compares queries x dim with the threshold: BLAS from BLAS_MIN_QUERIES
    # queries at 512 dimensions.
    assert faiss.cvar.distance_compute_blas_threshold == BLAS_THRESHOLD
    assert BLAS_THRESHOLD == BLAS_MIN_QUERIES * 512
    # Batched search on both sides of the threshold agrees with one query at a time.
    index = filled(FlatIndex, n=300)
    queries = unit_vectors(BLAS_THRESHOLD // DIM + 1, seed=28)
    batched = index.search(queries, 5)[1]
    single = np.concatenate([index.search(q[None], 5)[1] for q in queries[:3]])
    np.testing.assert_array_equal(batched[:3], single)
    np.testing.assert_array_equal(index.search(queries[:3], 5)[1], single)


def test_searches_change_no_process_wide_faiss_setting() -> None:
    """Single and batched searches from several threads at once: every other thread keeps its
    OpenMP thread count, and the BLAS threshold never moves (it is process-wide)."""
    import threading

    import faiss

    index = filled(FlatIndex, n=300)
    default_threads = faiss.omp_get_max_threads()
    seen_threads, seen_thresholds, errors = set(), set(), []
    stop = threading.Event()

    def search(batch: int) -> None:
        try:
            queries = unit_vectors(batch, seed=batch)
            while not stop.is_set():
                index.search(queries, 5)
        except Exception as err:  # surfaced below: a thread's failure must fail the test
            errors.append(err)

    def watch() -> None:
        while not stop.is_set():
            seen_threads.add(faiss.omp_get_max_threads())
            seen_thresholds.add(faiss.cvar.distance_compute_blas_threshold)

    threads = [threading.Thread(target=search, args=(n,)) for n in (1, 1, 1, 40)]
    threads.append(threading.Thread(target=watch))
    for thread in threads:
        thread.start()
    threading.Event().wait(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    assert seen_threads == {default_threads} and seen_thresholds == {BLAS_THRESHOLD}
    assert faiss.omp_get_max_threads() == default_threads


def test_one_openmp_thread_is_the_calling_threads_own() -> None:
    import faiss

    from searchclip._vector_index import one_openmp_thread

    before = faiss.omp_get_max_threads()
    with one_openmp_thread():
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before
    with pytest.raises(RuntimeError), one_openmp_thread():
        raise RuntimeError("a failed search")
    assert faiss.omp_get_max_threads() == before


def test_a_loaded_flat_index_is_mapped_and_still_changes(tmp_path: Path) -> None:
    """FlatIndex.load maps the file read-only; the first change copies the vectors to memory,
    and the file on disk keeps what was saved."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((50, DIM)).astype(np.float32)
    path = tmp_path / "flat.faiss"
    build_flat_index(DIM, np.arange(50), vectors).save(path)
    loaded = FlatIndex.load(path, DIM)
    _, before = loaded.search(vectors[:3], 1)
    assert before[:, 0].tolist() == [0, 1, 2]
    loaded.remove(np.array([0]))
    loaded.add(np.array([100]), vectors[:1])
    _, after = loaded.search(vectors[:1], 1)
    assert after[0, 0] == 100 and loaded.ntotal == 50
    reloaded = FlatIndex.load(path, DIM)
    assert reloaded.search(vectors[:1], 1)[1][0, 0] == 0


@pytest.mark.parametrize("n", [0, 1, 37])
def test_flat_file_size_check_matches_faiss_serialization(tmp_path: Path, n: int) -> None:
    """FlatIndex.load's length check assumes FAISS's layout; a FAISS upgrade that changes it
    must fail here, not refuse every saved index."""
    path = tmp_path / "flat.faiss"
    rng = np.random.default_rng(n)
    build_flat_index(DIM, np.arange(n), rng.standard_normal((n, DIM))).save(path)
    assert FlatIndex.load(path, DIM).ntotal == n
