"""The vector file kept in step with the catalog by index runs: updated with a run's changes
(no rebuild from the catalog), or rebuilt when an update cannot be trusted; the results always
those of an exact search over the catalog's vectors. Searches never write, and threads share
one cached index."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pictures import photo_folder

import searchclip._vector_index as vector_index_package
from searchclip import SearchEngine
from searchclip import _vector_store as vector_store_module
from searchclip._vector_index import FlatIndex, IVFIndex, NumpyIndex, load_index
from searchclip._vector_store import VectorStore


@pytest.fixture
def rebuilds(monkeypatch) -> list[int]:
    """Sizes of the vector indexes rebuilt from the catalog."""
    calls: list[int] = []
    original = vector_index_package.build_index

    def counting(dim, ids, vectors, **kwargs):
        calls.append(len(ids))
        return original(dim, ids, vectors, **kwargs)

    monkeypatch.setattr(vector_index_package, "build_index", counting)
    return calls


def exact_results(engine: SearchEngine, query: np.ndarray, k: int) -> list[int]:
    ids, vectors = engine._catalog.all_vectors(engine._model)
    reference = NumpyIndex(engine._model.dim)
    reference.add(ids, vectors)
    return reference.search(query[None], k)[1][0].tolist()


def engine_results(engine: SearchEngine, query: np.ndarray, k: int) -> list[int]:
    index = engine._vectors.current(engine._catalog.state())
    return index.search(query[None], k)[1][0].tolist()


def vector_file(index_dir: Path) -> Path:
    (only,) = index_dir.glob("vectors-*.faiss")
    return only


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_an_index_run_updates_the_vector_file_without_a_rebuild(
    tmp_path, model, photos, rebuilds, monkeypatch, kind
):
    if kind == "ivf":
        monkeypatch.setattr("searchclip._vector_index.choice.EXACT_MAX_VECTORS", 2)
    expected_type = IVFIndex if kind == "ivf" else FlatIndex
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)
        assert rebuilds == [6]  # the first file: built from the catalog
        first = vector_file(engine.index_dir)

        more = photos / "more"
        photo_folder(more, 3, start_seed=90)
        os.remove(photos / "img000.png")
        report = engine.index(photos)
        assert (report.new, report.removed) == (3, 1)
        assert rebuilds == [6]  # updated, not rebuilt
        updated = vector_file(engine.index_dir)
        assert updated != first and not first.exists()  # the new generation's name only
        assert type(load_index(updated, engine._model.dim)) is expected_type

        ids = {record.id for record in engine._catalog.files_under(str(photos)).values()}
        loaded = load_index(updated, engine._model.dim)
        assert set(loaded.ids().tolist()) == ids  # the removed photo never comes back
        query = engine.encoder().encode_texts(["a photo"])[0]
        assert engine_results(engine, query, 8) == exact_results(engine, query, 8)
    with SearchEngine(tmp_path / "index") as reopened:  # a fresh process reads the saved file
        assert reopened.search("a photo", k=8)
        assert rebuilds == [6]


def test_changed_content_at_a_known_path_replaces_its_vector(tmp_path, model, photos, rebuilds):
    from pictures import write_picture

    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)
        target = photos / "img002.png"
        write_picture(target, seed=777)
        report = engine.index(photos)
        assert report.updated == 1 and rebuilds == [6]
        stored = engine.stored_vectors([str(target)])[str(target)]
        best = engine.search_vector(stored, k=1)[0]
        assert best.path == str(target) and best.score == pytest.approx(1.0, abs=1e-5)


def test_crossing_the_exact_threshold_rebuilds_as_ivf(
    tmp_path, model, photos, rebuilds, monkeypatch
):
    monkeypatch.setattr("searchclip._vector_index.choice.EXACT_MAX_VECTORS", 7)
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)
        photo_folder(photos / "more", 2, start_seed=60)
        engine.index(photos)
        assert rebuilds == [6, 8]
        assert type(load_index(vector_file(engine.index_dir), engine._model.dim)) is IVFIndex


def test_an_ivf_index_that_outgrew_its_centroids_is_rebuilt(
    tmp_path, model, photos, rebuilds, monkeypatch
):
    monkeypatch.setattr("searchclip._vector_index.choice.EXACT_MAX_VECTORS", 2)
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)  # 6 vectors: the centroids are trained on them
        photo_folder(photos / "more", 12, start_seed=70)
        engine.index(photos)  # 12 more: updated in place (18 <= 4 x 6)
        assert rebuilds == [6]
        photo_folder(photos / "yet more", 7, start_seed=90)
        engine.index(photos)  # 25 > 4 x 6: trained again on all of them
        assert rebuilds == [6, 25]
        rebuilt = load_index(vector_file(engine.index_dir), engine._model.dim)
        assert rebuilt.nlist == 20 and not rebuilt.outgrown  # 4 sqrt(25) lists
        ids = {record.id for record in engine._catalog.files_under(str(photos)).values()}
        assert set(rebuilt.ids().tolist()) == ids


def test_without_the_previous_file_the_run_rebuilds(tmp_path, model, photos, rebuilds):
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)
    vector_file(tmp_path / "index").unlink()
    with SearchEngine(tmp_path / "index") as engine:
        photo_folder(photos / "more", 2, start_seed=61)
        engine.index(photos)
        assert rebuilds == [6, 8]
        query = engine.encoder().encode_texts(["x"])[0]
        assert engine_results(engine, query, 8) == exact_results(engine, query, 8)


def test_too_many_changes_rebuild_instead(tmp_path, model, photos, rebuilds, monkeypatch):
    monkeypatch.setattr(vector_store_module, "MAX_PENDING_CHANGES", 1)
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)
        photo_folder(photos / "more", 2, start_seed=62)
        engine.index(photos)
        assert rebuilds == [6, 8]


def test_a_run_that_changes_no_vectors_touches_no_file(tmp_path, model, photos, rebuilds):
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)
        before = vector_file(engine.index_dir).stat().st_mtime_ns
        os.rename(photos / "img000.png", photos / "moved.png")  # a move keeps its vector
        report = engine.index(photos)
        assert report.moved == 1 and rebuilds == [6]
        assert vector_file(engine.index_dir).stat().st_mtime_ns == before


# --- the read path writes nothing; the cache is shared by threads -----------------------------


def store_of(tmp_path: Path, n: int = 6, dim: int = 8) -> tuple[VectorStore, FakeCatalog]:
    catalog = FakeCatalog(n, dim)
    return VectorStore(tmp_path, catalog), catalog


class FakeCatalog:
    """What VectorStore reads from a catalog: every vector of the model, counted."""

    def __init__(self, n: int, dim: int) -> None:
        rng = np.random.default_rng(n)
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
        self.ids = np.arange(1, n + 1, dtype=np.int64)
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.reads = 0
        self.model = SimpleNamespace(id=1, name="m", dim=dim)

    def all_vectors(self, model) -> tuple[np.ndarray, np.ndarray]:
        self.reads += 1
        return self.ids, self.vectors

    def state(self, generation: int = 3) -> SimpleNamespace:
        return SimpleNamespace(model=self.model, generation=generation, files=len(self.ids))


def test_a_search_never_writes_or_deletes_a_vector_file(tmp_path):
    store, catalog = store_of(tmp_path)
    stale = tmp_path / "vectors-1.faiss"
    stale.write_bytes(b"an older generation's file")
    index = store.current(catalog.state())  # generation 3 has no file: built in memory
    assert index.ntotal == 6 and catalog.reads == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors-1.faiss"]  # untouched
    assert store.current(catalog.state()) is index and catalog.reads == 1  # cached

    store.refresh(catalog.state())  # the writer saves what the reader built, and sweeps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors-3.faiss"]
    assert catalog.reads == 1  # not built again
    assert load_index(tmp_path / "vectors-3.faiss", 8).ntotal == 6


def test_a_stale_file_is_rebuilt_in_memory_by_a_search_and_written_by_refresh(tmp_path):
    store, catalog = store_of(tmp_path)
    short = FlatIndex(8)
    short.add(catalog.ids[:2], catalog.vectors[:2])  # out of step: 2 of the catalog's 6
    short.save(tmp_path / "vectors-3.faiss")
    before = (tmp_path / "vectors-3.faiss").read_bytes()
    assert VectorStore(tmp_path, catalog).current(catalog.state()).ntotal == 6
    assert (tmp_path / "vectors-3.faiss").read_bytes() == before  # a search wrote nothing
    store.refresh(catalog.state())
    assert load_index(tmp_path / "vectors-3.faiss", 8).ntotal == 6


def test_threads_share_one_build(tmp_path, monkeypatch):
    store, catalog = store_of(tmp_path)
    builds, started = [], threading.Event()
    original = vector_index_package.build_index

    def slow_build(dim, ids, vectors, **kwargs):
        builds.append(threading.get_ident())
        started.set()
        time.sleep(0.2)  # long enough for the other threads to arrive meanwhile
        return original(dim, ids, vectors, **kwargs)

    monkeypatch.setattr(vector_index_package, "build_index", slow_build)
    with ThreadPoolExecutor(4) as pool:
        indexes = list(pool.map(lambda _: store.current(catalog.state()), range(8)))
    assert len(builds) == 1 and all(index is indexes[0] for index in indexes)


def test_concurrent_searches_while_the_writer_updates(tmp_path):
    """Searches on the cached index go on, with the same results, while the writer applies
    changes: the writer changes a copy loaded from the file, never the index handed out."""
    store, catalog = store_of(tmp_path, n=200, dim=16)
    store.refresh(catalog.state(3))
    index = store.current(catalog.state(3))
    queries = catalog.vectors[:20]
    expected = index.search(queries[:1], 5)[1]
    failures: list[str] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            for q in queries[:1]:
                if not np.array_equal(index.search(q[None], 5)[1], expected):
                    failures.append("changed under a search")

    threads = [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        changes = store.begin_changes(catalog.state(3))
        changes.record([], [], removed=[1, 2, 3])
        catalog.ids, catalog.vectors = catalog.ids[3:], catalog.vectors[3:]
        store.apply(changes, catalog.state(4))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures and index.ntotal == 200  # the index handed out is unchanged
    assert store.current(catalog.state(4)).ntotal == 197
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors-4.faiss"]


def test_a_run_that_changes_nothing_writes_the_file_a_search_found_bad(tmp_path):
    store, catalog = store_of(tmp_path)
    store.refresh(catalog.state())
    (tmp_path / "vectors-3.faiss").write_bytes(b"\x00garbage" * 100)
    reader = VectorStore(tmp_path, catalog)  # another process: it searches, then indexes
    assert reader.current(catalog.state()).ntotal == 6
    assert (tmp_path / "vectors-3.faiss").read_bytes() == b"\x00garbage" * 100
    changes = reader.begin_changes(catalog.state())
    reader.apply(changes, catalog.state())  # the run changed no vector
    assert load_index(tmp_path / "vectors-3.faiss", 8).ntotal == 6


def test_a_reader_keeps_its_index_while_a_run_commits_batches(tmp_path, fake_model, rebuilds):
    """During an index run each batch is a new generation without a file; a reader that has
    an index keeps it instead of building one from the catalog per batch, and takes the run's
    file once the run ends (the lock released)."""
    from searchclip._encoder_session import IndexImageEncoding
    from searchclip._ingest import IngestListeners, IngestOptions, index_path

    photo_folder(tmp_path / "photos", 6)
    photo_folder(tmp_path / "more", 6, start_seed=50)
    with SearchEngine(tmp_path / "index", model=fake_model) as reader:
        reader.index(tmp_path / "photos")
        assert len(reader.search("a photo", 20)) == 6
        rebuilds.clear()
        with SearchEngine(tmp_path / "index", create=False) as writer:
            with writer._directory.write_lock():  # the run's batches, committed one by one
                model = writer._catalog.state().model
                encoding = IndexImageEncoding(writer._encoders, writer._precision, model)
                options = IngestOptions.checked(2, None, None)
                index_path(
                    tmp_path / "more", writer._catalog, model, encoding, options, IngestListeners()
                )
                during = reader.search("a photo", 20)
                assert len(during) == 6 and rebuilds == []  # the run's images come at its end
            writer._vectors.refresh(writer._catalog.state())  # its file, as a run ends
        assert rebuilds == [12]  # the writer's; the reader loads the file it wrote
        assert len(reader.search("a photo", 20)) == 12 and rebuilds == [12]
