"""Switching an index to another model without downtime (issue 17, part 3): ``migrate`` encodes
the collection with a second model while queries use the first, switches in one transaction,
resumes after an interruption, and queries never mix the two models' vectors.

Two fake models of different sizes (so their vector spaces differ, and a mix-up would show as a
wrong length too) carry the logic; the tiny CLIP the plumbing of a real model and its exports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pictures import photo_folder, write_picture

from searchclip import SearchEngine
from searchclip._encoders.fake import write_fake_model
from searchclip._errors import (
    EmptyIndexError,
    IndexBusyError,
    InvalidArgumentError,
    MigrationPendingError,
    ModelLoadError,
    PrecisionMismatchError,
)
from searchclip._filters import PhotoFilter

QUERIES = ("red", "a photo of a dog", "blue green")
NEW_DIM = 24  # the second fake model's size: not conftest's FAKE_DIM


@pytest.fixture(scope="module")
def new_model(tmp_path_factory) -> str:
    return str(write_fake_model(tmp_path_factory.mktemp("fake-new"), dim=NEW_DIM, image_size=32))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    photo_folder(root, 10)
    return root


@pytest.fixture
def engine(tmp_path: Path, fake_model: str, photos: Path):
    with SearchEngine(tmp_path / "index", model=fake_model, batch_size=2) as opened:
        opened.index(photos)
        yield opened


def answers(engine: SearchEngine, where: PhotoFilter | None = None) -> dict:
    """Every query's results as (path, score) pairs: what "one model's results" are."""
    return {
        text: [(hit.path, round(hit.score, 5)) for hit in engine.search(text, k=5, where=where)]
        for text in QUERIES
    }


def alone(tmp_path: Path, model: str, photos: Path, name: str) -> dict:
    """The answers of an index of ``photos`` built with ``model`` alone."""
    with SearchEngine(tmp_path / name, model=model) as reference:
        reference.index(photos)
        return answers(reference)


def interrupt_after(files: int):
    def progress(event) -> None:
        if event.done == files:
            raise KeyboardInterrupt

    return progress


def test_migrate_switches_to_the_new_model_and_drops_the_old(
    engine, tmp_path, photos, fake_model, new_model
):
    before = answers(engine)
    assert before == alone(tmp_path, fake_model, photos, "old-alone")
    report = engine.migrate(new_model)
    assert (report.switched, report.encoded, report.total, report.already) == (True, 10, 10, 0)
    assert report.previous == fake_model and report.model == new_model
    assert answers(engine) == alone(tmp_path, new_model, photos, "new-alone") != before
    info = engine.info()
    assert (info.model, info.dim, info.files, info.migration, info.kept_models) == (
        new_model,
        NEW_DIM,
        10,
        None,
        (),
    )
    with SearchEngine(engine.index_dir, create=False) as reopened:  # the index's model now
        assert reopened.model_name == new_model
        assert answers(reopened) == answers(engine)
    assert not (engine.index_dir / "migration").exists()
    assert [p.name for p in engine.index_dir.glob("vectors-*.faiss")] == [
        f"vectors-{engine._catalog.vectors_generation()}.faiss"
    ]


def test_keep_old_keeps_both_and_switching_back_encodes_nothing(
    engine, fake_model, new_model, monkeypatch
):
    before = answers(engine)
    assert engine.migrate(new_model, keep_old=True).switched
    [kept] = engine.info().kept_models
    assert (kept.model, kept.dim, kept.vectors) == (fake_model, 32, 10)

    def no_model(*args, **kwargs):
        raise AssertionError("switching back to a kept model loaded it")

    monkeypatch.setattr("searchclip._migration_engine.load_encoder", no_model)
    monkeypatch.setattr("searchclip._encoder_session.load_encoder", no_model)
    back = engine.migrate(fake_model)
    assert (back.switched, back.encoded, back.already) == (True, 0, 10)
    monkeypatch.undo()
    assert answers(engine) == before
    assert engine.info().kept_models == ()  # the default drops the model switched away from


def test_switching_back_to_a_kept_model_encodes_only_what_changed_since(
    engine, photos, fake_model, new_model, tmp_path
):
    assert engine.migrate(new_model, keep_old=True).switched
    write_picture(photos / "img002.png", 321)  # its kept vector of the old model must go
    assert engine.index(photos).updated == 1
    back = engine.migrate(fake_model)
    assert (back.switched, back.encoded, back.already) == (True, 1, 9)
    assert answers(engine) == alone(tmp_path, fake_model, photos, "old-after")


def test_an_interrupted_migration_resumes_without_encoding_again(engine, new_model):
    before = answers(engine)
    with pytest.raises(KeyboardInterrupt):
        engine.migrate(new_model, on_progress=interrupt_after(5))  # batches of 2: 4 committed
    pending = engine.info().migration
    assert (pending.model, pending.dim, pending.encoded, pending.total) == (new_model, 24, 4, 10)
    assert pending.precision == "fp32 (requested)" or pending.precision.startswith("fp32")
    assert engine.info().model != new_model and answers(engine) == before  # still the old one
    with pytest.raises(PrecisionMismatchError):  # its vectors so far were made in fp32
        engine.migrate(new_model, precision="bf16")
    report = engine.migrate(new_model)
    assert (report.switched, report.already, report.encoded) == (True, 4, 6)
    assert engine.precision == "fp32" and engine.info().precision == pending.precision


def test_another_model_while_one_is_pending_is_refused_until_abandoned(engine, new_model, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        engine.migrate(new_model, on_progress=interrupt_after(3))
    third = str(write_fake_model(tmp_path / "third", dim=16))
    with pytest.raises(MigrationPendingError, match="pending") as caught:
        engine.migrate(third)
    assert caught.value.pending == new_model
    assert engine.abandon_migration() == new_model
    assert engine.info().migration is None and engine.abandon_migration() is None
    assert engine.migrate(third).switched and engine.info().dim == 16


def test_abandoning_with_keep_vectors_lets_a_later_migration_resume(engine, new_model):
    with pytest.raises(KeyboardInterrupt):
        engine.migrate(new_model, on_progress=interrupt_after(5))
    engine.abandon_migration(keep_vectors=True)
    assert engine.migrate(new_model).already == 4


def test_files_indexed_while_a_migration_is_pending_get_new_vectors(
    engine, photos, tmp_path, new_model
):
    with pytest.raises(KeyboardInterrupt):
        engine.migrate(new_model, on_progress=interrupt_after(5))
    write_picture(photos / "img000.png", 900)  # new content at an encoded path (id 1 first)
    photo_folder(photos / "more", 3, start_seed=50)  # new files
    shutil.copy(photos / "img002.png", photos / "copy-of-2.png")  # a copy: no decoding
    (photos / "sub" / "img003.jpg").rename(photos / "moved-3.jpg")  # moved, vectors kept
    changed = engine.index(photos)
    assert (changed.new, changed.updated, changed.moved) == (4, 1, 1)
    assert engine.info().migration.encoded == 3  # the changed file's new-model vector went
    report = engine.migrate(new_model)
    assert report.switched and (report.already, report.copied) == (3, 1)
    assert report.encoded == 14 - 3 - 1
    assert answers(engine) == alone(tmp_path, new_model, photos, "final-alone")


def test_a_file_changed_since_the_last_index_run_holds_the_switch(engine, photos, new_model):
    write_picture(photos / "img004.png", 777)
    report = engine.migrate(new_model)
    assert not report.switched and report.encoded == 9
    [(path, reason)] = [(f.path, f.reason) for f in report.unreadable]
    assert path == str(photos / "img004.png") and "changed since the last index run" in reason
    engine.index(photos)
    assert engine.migrate(new_model).switched


def test_offline_images_hold_the_switch_until_they_are_back(tmp_path, fake_model, new_model):
    library = tmp_path / "library"
    photo_folder(library / "home", 4)
    photo_folder(library / "nas", 6, start_seed=20)
    shelf = tmp_path / "shelf"
    with SearchEngine(tmp_path / "index", model=fake_model, batch_size=4) as engine:
        engine.index(library)
        shutil.move(library / "nas", shelf)
        (library / "nas").mkdir()
        assert engine.index(library).offline == 6
        report = engine.migrate(new_model)
        assert not report.switched and report.encoded == 4
        assert {f.path: f.images for f in report.waiting_for} == {
            str(library / "nas"): 3,
            str(library / "nas" / "sub"): 3,
        }
        assert len(engine.info().migration.waiting_for) == 2
        assert engine.model_name == fake_model
        (library / "nas").rmdir()
        shutil.move(shelf, library / "nas")
        assert engine.index(library).back_online == 6
        again = engine.migrate(new_model)
        assert (again.switched, again.encoded, again.already) == (True, 6, 4)
        offline_too = PhotoFilter(include_offline=True)
        assert len(engine.search("red", k=20, where=offline_too)) == 10


def test_forget_offline_switches_without_the_offline_images(tmp_path, fake_model, new_model):
    library = tmp_path / "library"
    photo_folder(library / "home", 4)
    photo_folder(library / "nas", 6, start_seed=20)
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        engine.index(library)
        shutil.move(library / "nas", tmp_path / "shelf")
        (library / "nas").mkdir()
        engine.index(library)
        report = engine.migrate(new_model, forget_offline=True)
        assert (report.switched, report.forgotten, report.total) == (True, 6, 4)
        assert engine.info().offline == () and engine.info().files == 4


def test_tags_of_the_old_model_go_with_it_unless_kept(engine, fake_model, new_model, tmp_path):
    labels = tmp_path / "colours.txt"
    labels.write_text("red\ngreen\nblue\n")
    engine.tag(str(labels), top_k=1)
    assert [v.name for v in engine.info().vocabularies] == ["colours"]
    report = engine.migrate(new_model, keep_old=True)
    assert report.dropped_vocabularies == () and engine.info().vocabularies == ()
    back = engine.migrate(fake_model)  # the kept model's tags come back with it
    assert back.dropped_vocabularies == ()
    assert [v.name for v in engine.info().vocabularies] == ["colours"]
    assert engine.migrate(new_model).dropped_vocabularies == ("colours",)


def test_bad_requests_are_one_line_errors(engine, fake_model, tmp_path):
    with pytest.raises(InvalidArgumentError, match="already"):
        engine.migrate(fake_model)
    with pytest.raises(InvalidArgumentError, match="new model"):
        engine.migrate("")
    with pytest.raises(ModelLoadError):
        engine.migrate(str(tmp_path / "no-such-model"))
    with (
        SearchEngine(tmp_path / "empty", model=fake_model) as empty,
        pytest.raises(EmptyIndexError),
    ):
        empty.migrate(str(tmp_path))


def test_a_second_writer_fails_fast_while_a_migration_runs(engine, new_model):
    started, release = threading.Event(), threading.Event()

    def slow(event) -> None:
        started.set()
        release.wait(10)

    worker = threading.Thread(target=lambda: engine.migrate(new_model, on_progress=slow))
    worker.start()
    try:
        assert started.wait(10)
        with pytest.raises(IndexBusyError):
            engine.index(engine.index_dir.parent / "photos")
    finally:
        release.set()
        worker.join(10)
    assert engine.model_name == new_model


def test_a_long_running_engine_notices_the_switch(engine, tmp_path, photos, new_model):
    with SearchEngine(engine.index_dir, create=False) as server:
        before = answers(server)
        engine.migrate(new_model)
        assert answers(server) == alone(tmp_path, new_model, photos, "new") != before
        assert server.info().model == new_model and server.model_name == new_model


def test_an_index_run_of_an_engine_opened_before_the_switch_uses_the_new_model(
    engine, tmp_path, photos, new_model
):
    with SearchEngine(engine.index_dir, create=False) as other:
        answers(other)
        engine.migrate(new_model)
        write_picture(photos / "late.png", 4242)
        assert other.index(photos).encoded == 1  # its first call since the switch
        assert answers(other) == alone(tmp_path, new_model, photos, "new-late")


# --- the switch under load ---------------------------------------------------------------------

_READER = """
import json, sys, time
from pathlib import Path
from searchclip import SearchEngine
index, out, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
queries = json.loads(sys.argv[4])
with SearchEngine(index, create=False) as engine, out.open("w") as lines:
    while not stop.exists():
        for text in queries:
            try:
                found = [[h.path, round(h.score, 5)] for h in engine.search(text, k=5)]
                lines.write(json.dumps({"q": text, "r": found}) + "\\n")
            except Exception as exc:
                lines.write(json.dumps({"q": text, "error": repr(exc)}) + "\\n")
        lines.flush()
"""


def test_queries_during_a_migration_always_get_one_models_results(tmp_path, fake_model, new_model):
    photos = tmp_path / "photos"
    photo_folder(photos, 30)
    old = alone(tmp_path, fake_model, photos, "old-alone")
    new = alone(tmp_path, new_model, photos, "new-alone")
    assert all(old[q] != new[q] for q in QUERIES)
    out, stop = tmp_path / "reader.jsonl", tmp_path / "stop"
    with SearchEngine(tmp_path / "index", model=fake_model, batch_size=3) as engine:
        engine.index(photos)
        command = [sys.executable, "-c", _READER, str(engine.index_dir), str(out), str(stop)]
        reader = subprocess.Popen(
            [*command, json.dumps(QUERIES)],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        seen: list[list] = [[] for _ in range(3)]
        errors: list[BaseException] = []
        switched = threading.Event()
        done = threading.Event()

        def query_loop(mine: list) -> None:
            while not done.is_set():
                for text in QUERIES:
                    try:
                        found = [(h.path, round(h.score, 5)) for h in engine.search(text, k=5)]
                    except BaseException as exc:  # every error counts
                        errors.append(exc)
                        continue
                    mine.append((text, found, switched.is_set()))

        threads = [threading.Thread(target=query_loop, args=(mine,)) for mine in seen]
        for thread in threads:
            thread.start()
        while not out.exists() or out.stat().st_size == 0:  # the other process is answering
            time.sleep(0.02)
        report = engine.migrate(new_model, on_progress=lambda event: time.sleep(0.02))
        switched.set()
        time.sleep(0.3)  # queries after the switch, on both sides
        done.set()
        for thread in threads:
            thread.join(10)
        time.sleep(0.3)
        stop.touch()
        assert reader.wait(30) == 0
    assert report.switched and errors == []
    for mine in seen:
        models = []
        for text, found, after in mine:
            assert found in (old[text], new[text]), "a result of neither model alone"
            models.append("new" if found == new[text] else "old")
            assert not after or found == new[text], "the old model answered after the switch"
        assert "old" in models and models[-1] == "new"
        assert models == sorted(models, key=lambda m: m == "new")  # old ... old new ... new
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line for line in lines if "error" in line] == []
    models = []
    for line in lines:
        found = [tuple(hit) for hit in line["r"]]
        assert found in (old[line["q"]], new[line["q"]])
        models.append("new" if found == new[line["q"]] else "old")
    assert models[0] == "old" and models[-1] == "new"
    assert models == sorted(models, key=lambda m: m == "new")


# --- a real model: the tiny CLIP ---------------------------------------------------------------


def test_migrating_to_and_from_a_clip_model_moves_its_exports(tmp_path, fake_model, model):
    photos = tmp_path / "photos"
    photo_folder(photos, 6)
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        engine.index(photos)
        report = engine.migrate(model)  # auto: the precision is chosen on its first batch
        assert report.switched and report.encoded == 6 and report.precision_choice
        assert engine.info().precision == report.precision_choice
        assert engine.info().dim != 32 and engine.search("a red square", k=3)
        exports = ["text-encoder.json"] + (
            ["image-encoder-int8.json"] * (engine.precision == "int8")
        )
        for sidecar in exports:  # moved in from migration/ at the switch
            assert json.loads((engine.index_dir / sidecar).read_text())["model_id"] == model
        assert not (engine.index_dir / "migration").exists()
    with SearchEngine(tmp_path / "index", create=False) as reopened:
        assert len(reopened.search("a red square", k=3)) == 3
        assert reopened.migrate(fake_model).switched
        assert not (reopened.index_dir / "text-encoder.json").exists()  # the old model's export
        assert reopened.info().dim == 32


def test_a_search_overtaken_by_the_switch_runs_again_on_the_new_model(
    engine, tmp_path, photos, new_model, monkeypatch
):
    answers(engine)  # the old model's vector index is cached, its encoder loaded
    nearest = engine._searcher.nearest
    overtaken = []

    def switch_then_search(state, *args, **kwargs):
        if not overtaken:  # the switch lands between this search's state and its lookup
            with SearchEngine(engine.index_dir, create=False) as other:
                overtaken.append(other.migrate(new_model).switched)
        return nearest(state, *args, **kwargs)

    monkeypatch.setattr(engine._searcher, "nearest", switch_then_search)
    found = [(hit.path, round(hit.score, 5)) for hit in engine.search(QUERIES[0], k=5)]
    assert overtaken == [True]
    assert found == alone(tmp_path, new_model, photos, "new")[QUERIES[0]]


def test_the_http_server_reports_the_migration_and_answers_with_the_new_model(
    engine, tmp_path, photos, new_model
):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from searchclip.server import create_app

    with SearchEngine(engine.index_dir, create=False) as served:
        client = TestClient(create_app(served))
        with pytest.raises(KeyboardInterrupt):
            engine.migrate(new_model, keep_old=True, on_progress=interrupt_after(5))
        info = client.get("/api/info").json()
        assert info["model"] != new_model and info["migration"]["model"] == new_model
        assert (info["migration"]["encoded"], info["migration"]["total"]) == (4, 10)
        engine.migrate(new_model, keep_old=True)
        info = client.get("/api/info").json()
        assert (info["model"], info["dim"], info["migration"]) == (new_model, NEW_DIM, None)
        assert [kept["vectors"] for kept in info["kept_models"]] == [10]
        hits = client.get("/api/search", params={"q": QUERIES[0], "limit": 5}).json()
        expected = alone(tmp_path, new_model, photos, "new")[QUERIES[0]]
        assert [hit["path"] for hit in hits["hits"]] == [path for path, _ in expected]
