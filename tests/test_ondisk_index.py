"""The on-disk IVF for collections too large for memory: built shard by shard from chunks,
merged on disk, memory-mapped; re-ranked with fp16 vectors; changed without touching its base;
chosen by the engine beyond ON_DISK_MIN_VECTORS and rebuilt when its changes outgrow it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import FAKE_DIM
from pictures import photo_folder

import searchclip._vector_index as vector_index_package
from searchclip import SearchEngine
from searchclip._id_subset import IdSubset
from searchclip._vector_index import (
    FlatIndex,
    IVFIndex,
    OnDiskIVFIndex,
    VectorIndexFileError,
    build_on_disk,
    files_in_use,
    index_type_for,
    load_index,
)
from searchclip._vector_index.ondisk import base_files
from searchclip._vector_index.ondisk_build import codes_for, run_shards_here

DIM = 64


def clustered(count: int, seed: int) -> np.ndarray:
    """Unit vectors around 40 centres: neighbours close together, as photo embeddings are."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((40, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, count)] + 0.4 * rng.standard_normal((count, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def chunks(ids: np.ndarray, vectors: np.ndarray, size: int = 700):
    return ((ids[i : i + size], vectors[i : i + size]) for i in range(0, len(ids), size))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in pairs]))


@pytest.fixture(scope="module")
def collection() -> tuple[np.ndarray, np.ndarray]:
    vectors = clustered(4000, seed=1)
    return np.arange(1, 4001, dtype=np.int64) * 3, vectors  # sparse ids, as after deletions


@pytest.fixture(scope="module")
def exact(collection) -> FlatIndex:
    flat = FlatIndex(DIM)
    flat.add(*collection)
    return flat


@pytest.mark.parametrize("codes", ["SQ8", "PQ8"])
def test_a_sharded_build_finds_what_exact_search_finds(tmp_path, collection, exact, codes):
    ids, vectors = collection
    index = build_on_disk(DIM, chunks(ids, vectors), tmp_path, codes=codes, shard_vectors=1500)
    assert sorted(p.name.split(".")[1] for p in tmp_path.iterdir()) == ["ivf", "ivfdata", "rerank"]
    assert index.ntotal == 4000 and np.array_equal(np.sort(index.ids()), ids)
    queries = clustered(50, seed=2)
    truth_scores, truth = exact.search(queries, 10)
    in_memory = IVFIndex(DIM)
    in_memory.add(ids, vectors)
    scores, found = index.search(queries, 10)
    # Re-ranked: as good as the in-memory IVF over fp16, whatever the codes lose.
    assert recall(found, truth) >= recall(in_memory.search(queries, 10)[1], truth) - 0.02
    assert recall(found, truth) > 0.8
    for row in range(len(queries)):  # the scores are the vectors' own (fp16), best first
        expected = vectors[np.searchsorted(ids, found[row])] @ queries[row]
        np.testing.assert_allclose(scores[row], expected, atol=2e-3)
        assert (np.diff(scores[row]) <= 1e-6).all()
    _, top = index.search(vectors[:5], 1)
    assert top[:, 0].tolist() == ids[:5].tolist()  # a stored vector finds itself
    np.testing.assert_allclose(truth_scores[:, 0], scores[:, 0], atol=0.05)


def test_changes_go_beside_the_base_and_survive_a_reload(tmp_path, collection):
    ids, vectors = collection
    index = build_on_disk(DIM, chunks(ids, vectors), tmp_path, shard_vectors=1000)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    fresh = clustered(30, seed=9)
    assert index.remove(ids[:20]) == 20
    index.add(ids[20:30], fresh[:10])  # replaced: the base no longer answers for them
    index.add(np.arange(10**6, 10**6 + 20), fresh[10:])  # new
    assert index.remove(np.array([10**6, 5])) == 1  # a delta id; 5 was never held
    assert index.ntotal == 4000 - 20 + 19 and index.changes == 30 + 29  # tombstones + delta
    path = tmp_path / "vectors-7.faiss"
    index.save(path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p != path} == before
    assert files_in_use(path) == {path, *base_files(tmp_path, index.base)}

    moved = tmp_path.parent / "moved"
    shutil.copytree(tmp_path, moved)  # the index directory may move: names are relative
    again = load_index(moved / "vectors-7.faiss", DIM)
    assert isinstance(again, OnDiskIVFIndex) and again.ntotal == index.ntotal
    expected = set(ids[20:].tolist()) | set(range(10**6 + 1, 10**6 + 20))
    assert set(again.ids().tolist()) == expected
    scores, found = again.search(fresh[:10], 1)
    assert found[:, 0].tolist() == ids[20:30].tolist()  # the new vectors, not the base's
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    _, found = again.search(vectors[:20], 5)
    assert not set(found.ravel().tolist()) & set(ids[:20].tolist())  # removed: never found
    assert again.search(fresh[11:12], 1)[1][0, 0] == 10**6 + 1

    # Filters reach both the base (less its removed ids) and the changes.
    allowed = np.array([ids[0], ids[25], ids[400], 10**6 + 3])
    for subset in (allowed, IdSubset(np.sort(allowed))):
        _, found = again.search(vectors[400:401], 10, allowed=subset)
        assert set(found[0].tolist()) == {int(ids[25]), int(ids[400]), 10**6 + 3, -1}  # padded
        assert found[0, 0] == ids[400]
    _, found = again.search(vectors[:1], 3, allowed=ids[:2])  # removed ones only: nothing
    assert found.tolist() == [[-1, -1]]
    _, found = again.search(vectors[:1], 3, allowed=np.array([ids[0], ids[1], ids[500]]))
    assert found.tolist() == [[ids[500], -1, -1]]  # k results, padded
    _, found = again.search(fresh[10:11], 3, allowed=np.array([10**6 + 5, 10**6 + 6]))
    assert sorted(found[0].tolist()) == [10**6 + 5, 10**6 + 6]  # changes only


def test_the_index_outgrows_its_base_with_enough_changes(tmp_path, collection):
    ids, vectors = collection
    index = build_on_disk(DIM, chunks(ids[:1000], vectors[:1000]), tmp_path)
    index.remove(ids[:100])
    assert not index.outgrown
    index.remove(ids[100:101])
    assert index.outgrown  # more than a tenth of the base changed


def test_damaged_or_missing_base_files_are_refused(tmp_path, collection):
    ids, vectors = collection
    index = build_on_disk(DIM, chunks(ids[:1000], vectors[:1000]), tmp_path)
    path = tmp_path / "vectors-1.faiss"
    index.save(path)
    ivf, lists, rerank = base_files(tmp_path, index.base)
    with pytest.raises(ValueError, match="with its base"):
        index.save(tmp_path.parent / "elsewhere.faiss")
    with pytest.raises(VectorIndexFileError, match="64-d"):
        load_index(path, 32)
    for damaged, how in ((lists, "truncated"), (rerank, "truncated"), (ivf, "damaged")):
        saved = damaged.read_bytes()
        damaged.write_bytes(saved[: len(saved) // 2])
        with pytest.raises(VectorIndexFileError, match=how):
            load_index(path, DIM)
        damaged.unlink()
        with pytest.raises(VectorIndexFileError):
            load_index(path, DIM)
        damaged.write_bytes(saved)
    assert load_index(path, DIM).ntotal == 1000
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(VectorIndexFileError):
        load_index(path, DIM)


def test_a_failed_build_leaves_no_files(tmp_path, collection):
    ids, vectors = collection
    unordered = [(ids[700:1400], vectors[700:1400]), (ids[:700], vectors[:700])]
    with pytest.raises(ValueError, match="ascend"):
        build_on_disk(DIM, iter(unordered), tmp_path)

    def failing(function, shared, jobs):
        yield from run_shards_here(function, shared, [next(iter(jobs))])
        raise RuntimeError("a shard failed")

    with pytest.raises(RuntimeError, match="a shard failed"):
        build_on_disk(DIM, chunks(ids, vectors), tmp_path, run_shards=failing, shard_vectors=999)
    assert list(tmp_path.iterdir()) == []


def test_the_codes_follow_the_memory_budget(monkeypatch):
    assert codes_for(1_000_000, 512, budget=1 << 30) == "SQ8"  # 512 MB of codes fit
    assert codes_for(10_000_000, 512, budget=1 << 30) == "PQ64"
    assert codes_for(10_000_000, 100, budget=1) == "PQ10"
    monkeypatch.setattr("searchclip._vector_index.choice.EXACT_MAX_VECTORS", 10)
    monkeypatch.setattr("searchclip._vector_index.choice.ON_DISK_MIN_VECTORS", 100)
    assert [index_type_for(n) for n in (10, 11, 99, 100)] == [
        FlatIndex,
        IVFIndex,
        IVFIndex,
        OnDiskIVFIndex,
    ]


@pytest.fixture
def on_disk_from_40(monkeypatch) -> list[int]:
    """Collections from 40 images get the on-disk index; the sizes of the bases built."""
    monkeypatch.setattr("searchclip._vector_index.choice.EXACT_MAX_VECTORS", 4)
    monkeypatch.setattr("searchclip._vector_index.choice.ON_DISK_MIN_VECTORS", 40)
    built: list[int] = []
    original = vector_index_package.build_on_disk

    def counting(dim, chunks, directory, **options):
        index = original(dim, chunks, directory, **options)
        built.append(index.ntotal)
        return index

    monkeypatch.setattr(vector_index_package, "build_on_disk", counting)
    return built


def test_the_engine_keeps_a_large_index_on_disk(tmp_path, fake_model, on_disk_from_40):
    photos = tmp_path / "photos"
    photo_folder(photos, 44)
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        report = engine.index(photos)
        assert on_disk_from_40 == [44]
        assert report.vector_index.startswith("a new on-disk vector index: 44 vectors, built in")
        (vector_file,) = index_dir.glob("vectors-*.faiss")
        assert isinstance(load_index(vector_file, FAKE_DIM), OnDiskIVFIndex)
        base = sorted(p.name for p in index_dir.glob("ondisk-*"))
        assert len(base) == 3
        probe = photos / "img006.png"
        assert engine.search_image(probe, k=3)[0].path == str(probe)

        photo_folder(tmp_path / "more", 3, start_seed=50)  # a few more: beside the base
        assert not engine.index(tmp_path / "more").vector_index
        assert on_disk_from_40 == [44]
        assert sorted(p.name for p in index_dir.glob("ondisk-*")) == base
        (newer,) = index_dir.glob("vectors-*.faiss")
        assert newer != vector_file
        new_photo = tmp_path / "more" / "img002.png"
        assert engine.search_image(new_photo, k=1)[0].path == str(new_photo)

        for gone in ("img000.png", "img002.png"):
            (photos / gone).unlink()
        report = engine.index(photos)  # 5 changes of 44: more than a tenth, a new base
        assert on_disk_from_40 == [44, 45]
        assert report.vector_index.endswith("(the changes had outgrown the last one)")
        assert sorted(p.name for p in index_dir.glob("ondisk-*")) != base
        assert len(list(index_dir.glob("ondisk-*"))) == 3  # the old base deleted
        hits = {h.path for h in engine.search("x", k=50)}
        assert len(hits) == 45 and str(photos / "img000.png") not in hits


def test_a_search_builds_a_missing_on_disk_index_elsewhere(tmp_path, fake_model, on_disk_from_40):
    photos = tmp_path / "photos"
    photo_folder(photos, 40)
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        engine.index(photos)
    for path in [*index_dir.glob("vectors-*.faiss"), *index_dir.glob("ondisk-*")]:
        path.unlink()
    with SearchEngine(index_dir) as engine:
        probe = photos / "sub" / "img003.jpg"
        assert engine.search_image(probe, k=1)[0].path == str(probe)
        assert not list(index_dir.glob("ondisk-*"))  # a search never writes index files
        engine.index(photos)  # the writer does: built again, into the index directory
    assert on_disk_from_40 == [40, 40, 40]
    assert len(list(index_dir.glob("ondisk-*"))) == 3


def test_the_cli_says_when_it_built_an_on_disk_index(tmp_path, fake_model, on_disk_from_40):
    from typer.testing import CliRunner

    from searchclip._cli import app

    photo_folder(tmp_path / "photos", 40)
    index = str(tmp_path / "index")
    args = ["index", str(tmp_path / "photos"), "--index", index, "--model", fake_model]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "a new on-disk vector index: 40 vectors, built in" in result.stderr
    again = CliRunner().invoke(app, args[:4])
    assert again.exit_code == 0 and "on-disk" not in again.stderr
