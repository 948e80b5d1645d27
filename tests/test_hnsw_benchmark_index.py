"""The HNSW graph of benchmarks/hnsw_index.py (no longer part of searchclip: ann_recall.py
compares it with IVF): agreement with exact search, tombstones, filters, files.

benchmarks/ is not a package, so this one test module puts it on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import test_vector_index as generic
from test_vector_index import HNSW_DIM, filled, recall, unit_vectors

from searchclip._vector_index import NumpyIndex, VectorIndexFileError, load_index

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from hnsw_index import FAR_WIDENING, HNSWIndex

DIM = generic.DIM


# --- what every index does (test_vector_index's checks, run on HNSW) ---------------------------


@pytest.mark.parametrize(
    "check",
    [
        generic.test_add_replaces_existing_ids,
        generic.test_remove_and_readd,
        generic.test_ids_unique_after_many_operations,
        generic.test_k_larger_than_ntotal,
        generic.test_empty_index_search,
        generic.test_ties_are_all_returned,
        generic.test_search_validates,
        generic.test_allowed_ids_beyond_k_pad_with_minus_one,
    ],
    ids=lambda check: check.__name__.removeprefix("test_"),
)
def test_hnsw_behaves_like_every_index(check) -> None:
    check(HNSWIndex)


@pytest.mark.parametrize(
    "check",
    [
        generic.test_save_load_round_trip,
        generic.test_empty_index_round_trip,
        generic.test_save_overwrites,
        generic.test_load_missing_file,
        generic.test_load_truncated,
        generic.test_load_wrong_dim,
    ],
    ids=lambda check: check.__name__.removeprefix("test_"),
)
def test_hnsw_files_behave_like_every_index(check, tmp_path: Path) -> None:
    check(HNSWIndex, tmp_path)


def test_hnsw_save_is_atomic(tmp_path: Path, monkeypatch) -> None:
    generic.test_save_is_atomic(HNSWIndex, tmp_path, monkeypatch)


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"\x00" * 4096])
def test_hnsw_load_garbage(content: bytes, tmp_path: Path) -> None:
    generic.test_load_garbage(HNSWIndex, content, tmp_path)


def test_hnsw_add_validates() -> None:
    for ids, vectors in [
        (np.arange(3), np.zeros((2, DIM), np.float32)),
        (np.array([1, 1]), np.zeros((2, DIM), np.float32)),
        (np.arange(2), np.full((2, DIM), np.nan, np.float32)),
    ]:
        generic.test_add_validates(HNSWIndex, ids, vectors)


def test_hnsw_and_the_product_indexes_refuse_each_others_files(tmp_path: Path) -> None:
    kinds = [*generic.KINDS, HNSWIndex]
    for kind in kinds:
        filled(kind, n=5).save(tmp_path / f"{kind.__name__}.idx")
    for reader in kinds:
        for kind in kinds:
            if kind is not reader:
                with pytest.raises(VectorIndexFileError):
                    reader.load(tmp_path / f"{kind.__name__}.idx", DIM)
    with pytest.raises(VectorIndexFileError, match="HNSW"):  # searchclip no longer reads them
        load_index(tmp_path / "HNSWIndex.idx", DIM)


def test_hnsw_load_rejects_a_damaged_header(tmp_path: Path) -> None:
    path = tmp_path / "vectors.idx"
    filled(HNSWIndex, n=50).save(path)
    data = bytearray(path.read_bytes())
    data[len(b"searchclip-hnsw\n")] = 99  # the format version, right after the magic line
    path.write_bytes(bytes(data))
    with pytest.raises(VectorIndexFileError, match="version"):
        HNSWIndex.load(path, DIM)
    path.write_bytes(bytes(data[:16]) + b"\xff" * 16)  # an absurd vector count
    with pytest.raises(VectorIndexFileError):
        HNSWIndex.load(path, DIM)


# --- HNSW itself: approximate, with tombstones -------------------------------------------------


def hnsw_and_reference(
    n: int = 2000, seed: int = 20, ef_search: int = 256
) -> tuple[HNSWIndex, NumpyIndex, np.ndarray]:
    """The same ``n`` vectors in an HNSW index and in the exact reference; and their ids."""
    ids = np.arange(n, dtype=np.int64) * 5 + 3
    vectors = unit_vectors(n, seed, dim=HNSW_DIM)
    hnsw, reference = HNSWIndex(HNSW_DIM, ef_search=ef_search), NumpyIndex(HNSW_DIM)
    hnsw.add(ids, vectors)
    reference.add(ids, vectors)
    return hnsw, reference, ids


def test_hnsw_matches_exact_search() -> None:
    hnsw, reference, _ = hnsw_and_reference()
    queries = unit_vectors(100, seed=21, dim=HNSW_DIM)

    scores, found = hnsw.search(queries, 10)
    ref_scores, ref_found = reference.search(queries, 10)

    assert scores.shape == found.shape == (100, 10)
    assert scores.dtype == np.float32 and found.dtype == np.int64
    assert recall(found, ref_found) >= 0.99  # approximate by design, near-exact at this ef
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    np.testing.assert_allclose(scores[:, 0], ref_scores[:, 0], atol=2e-3)


def test_far_queries_walk_the_graph_wider() -> None:
    hnsw, reference, _ = hnsw_and_reference()
    queries = unit_vectors(50, seed=24, dim=HNSW_DIM)
    hnsw.ef_search = 8
    narrow = hnsw.search(queries, 10)
    far = hnsw.search(queries, 10, far=True)
    hnsw.ef_search = 8 * FAR_WIDENING
    assert np.array_equal(far[1], hnsw.search(queries, 10)[1])  # the same walk as a wider ef
    assert recall(far[1], reference.search(queries, 10)[1]) >= recall(
        narrow[1], reference.search(queries, 10)[1]
    )


def test_hnsw_filtered_search_exact_and_graph_paths() -> None:
    hnsw, reference, ids = hnsw_and_reference()
    queries = unit_vectors(40, seed=22, dim=HNSW_DIM)
    for allowed in (ids[::40], ids[::3]):  # 50 and 667 of 2,000
        expected = reference.search(queries, 10, allowed=allowed)[1]

        # A small filter is scanned exactly (fp16 scores: only near-ties may swap).
        _, found = hnsw.search(queries, 10, allowed=allowed)
        assert np.isin(found, allowed).all()
        assert recall(found, expected) >= 0.99

        hnsw.exact_filter_max = 0  # force the graph walk with a filter
        _, found = hnsw.search(queries, 10, allowed=allowed)
        del hnsw.exact_filter_max
        assert np.isin(found[found != -1], allowed).all()
        assert recall(found, expected) >= 0.95


def test_hnsw_removed_ids_never_come_back(tmp_path: Path) -> None:
    hnsw, reference, ids = hnsw_and_reference()
    gone = ids[:150]  # 7.5 %: below the rebuild share, so these stay as tombstones
    assert hnsw.remove(gone) == 150 == reference.remove(gone)
    assert hnsw.tombstones == 150 and hnsw.ntotal == 1850
    assert not np.isin(hnsw.ids(), gone).any()
    queries = unit_vectors(30, seed=23, dim=HNSW_DIM)

    def check(index: HNSWIndex) -> None:
        _, found = index.search(queries, 50)
        assert not np.isin(found, gone).any()
        assert recall(found, reference.search(queries, 50)[1]) >= 0.97
        mixed = np.concatenate([gone, ids[150:200]])  # a filter naming removed ids too
        for exact_filter_max in (10**6, 0):
            index.exact_filter_max = exact_filter_max
            _, found = index.search(queries, 10, allowed=mixed)
            assert not np.isin(found, gone).any()
        del index.exact_filter_max

    check(hnsw)
    later = ids[200:210]  # removed after searches: the cached live mask must follow
    hnsw.remove(later)
    reference.remove(later)
    assert not np.isin(hnsw.search(queries, 50)[1], later).any()
    hnsw.add(later, unit_vectors(10, seed=25, dim=HNSW_DIM))  # and back again
    reference.add(later, unit_vectors(10, seed=25, dim=HNSW_DIM))
    assert np.isin(later, hnsw.search(unit_vectors(10, seed=25, dim=HNSW_DIM), 1)[1]).all()
    check(hnsw)
    hnsw.save(tmp_path / "vectors.idx")
    loaded = HNSWIndex.load(tmp_path / "vectors.idx", HNSW_DIM)
    assert loaded.tombstones == 160 and loaded.ntotal == 1850  # 10 replaced vectors too
    check(loaded)

    # Past the rebuild share the graph is rebuilt from the live vectors only.
    more = ids[150:500]
    loaded.remove(more)
    reference.remove(more)
    gone = np.concatenate([gone, more])
    assert loaded.tombstones == 0 and loaded.ntotal == 1500
    check(loaded)

    # A removed id can come back, with its new vector only.
    vector = unit_vectors(1, seed=24, dim=HNSW_DIM)
    loaded.add(gone[:1], vector)
    scores, found = loaded.search(vector, 1)
    assert found[0, 0] == gone[0] and scores[0, 0] == pytest.approx(1.0, abs=2e-3)
    assert loaded.ntotal == 1501


def test_hnsw_replacing_a_vector_leaves_one_live_copy() -> None:
    hnsw, _, ids = hnsw_and_reference(n=300)
    old = unit_vectors(300, seed=20, dim=HNSW_DIM)[7:8]  # ids[7]'s vector
    new = unit_vectors(1, seed=25, dim=HNSW_DIM)
    hnsw.add(ids[7:8], new)

    assert hnsw.ntotal == 300 and hnsw.tombstones == 1
    assert len(set(hnsw.ids().tolist())) == 300
    assert hnsw.search(new, 1)[1][0, 0] == ids[7]
    scores, found = hnsw.search(old, 300)
    assert (found == ids[7]).sum() == 1  # only once, at its new vector's score
    np.testing.assert_allclose(scores[found == ids[7]], new @ old[0], atol=2e-3)


def test_hnsw_empty_filter_and_unknown_ids() -> None:
    hnsw, _, _ = hnsw_and_reference(n=100)
    query = unit_vectors(1, seed=26, dim=HNSW_DIM)
    _, found = hnsw.search(query, 5, allowed=np.array([10**9, 10**9 + 1]))
    assert found.tolist() == [[-1, -1]]
    hnsw.exact_filter_max = 0
    assert hnsw.search(query, 5, allowed=np.array([10**9]))[1].tolist() == [[-1]]
