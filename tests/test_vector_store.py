"""The vector file kept in step with the catalog by index runs: updated with a run's changes
(no rebuild from the catalog), or rebuilt when an update cannot be trusted; the results always
those of an exact search over the catalog's vectors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pictures import photo_folder

import searchclip._vector_index as vector_index_package
from searchclip import SearchEngine
from searchclip import _vector_store as vector_store_module
from searchclip._vector_index import FlatIndex, IVFIndex, NumpyIndex, load_index


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
    index = engine._vectors.current(engine._model)
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
