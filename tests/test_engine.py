"""The library end to end: SearchEngine on real SQLite, real FAISS and real images, with the
fake model (deterministic vectors, no torch) where a test needs only that, and the tiny real
CLIP where the real model path is what is tested."""

from __future__ import annotations

import dataclasses
import fcntl
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from conftest import FAKE_DIM
from pictures import photo_folder, write_picture

import searchclip._ingest
from searchclip import (
    EmptyIndexError,
    FileError,
    ImageReadError,
    IndexBusyError,
    IndexNotFoundError,
    InvalidArgumentError,
    ModelLoadError,
    ModelMismatchError,
    SearchEngine,
)
from searchclip._vector_index import FlatIndex


@pytest.fixture
def engine(tmp_path: Path, fake_model: str):
    # fp32: every batch goes through the model once (auto encodes its first batch at every
    # precision it tries; test_precision.py covers that)
    with SearchEngine(
        tmp_path / "index", model=fake_model, batch_size=4, precision="fp32"
    ) as opened:
        yield opened


@pytest.fixture
def each_engine(tmp_path: Path, each_model: str):
    """``engine`` on the fake model, then on the tiny CLIP."""
    with SearchEngine(
        tmp_path / "index", model=each_model, batch_size=4, precision="fp32"
    ) as opened:
        yield opened


@pytest.fixture
def model_calls(engine: SearchEngine) -> list[int]:
    """Sizes of the batches that really went through the image model."""
    return _count_model_calls(engine)


def _count_model_calls(engine: SearchEngine) -> list[int]:
    encoder = engine.encoder()
    calls: list[int] = []
    original = encoder._embed_pixels

    def counting(pixels):
        calls.append(len(pixels))
        return original(pixels)

    encoder._embed_pixels = counting
    return calls


@pytest.fixture
def each_model_calls(each_engine: SearchEngine) -> list[int]:
    """``model_calls`` for ``each_engine``."""
    return _count_model_calls(each_engine)


def test_index_then_search_round_trip(each_engine, photos, each_model_calls):
    engine, model_calls = each_engine, each_model_calls
    report = engine.index(photos)
    assert (report.new, report.encoded, report.failed) == (6, 6, 0)
    assert sum(model_calls) == 6 and max(model_calls) <= 4

    probe = photos / "sub" / "img003.jpg"
    hits = engine.search_image(probe, k=3)
    assert hits[0].path == str(probe)
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert (hits[0].width, hits[0].height) == (64, 48)
    assert [hit.rank for hit in hits] == [1, 2, 3]

    text_hits = engine.search("a photo of a dog", k=10)
    assert len(text_hits) == 6  # k beyond the index size returns everything once
    assert {hit.path for hit in text_hits} == {str(p) for p in photos.rglob("img*")}
    scores = [hit.score for hit in text_hits]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        text_hits[0].score = 2.0  # type: ignore[misc]


def test_search_accepts_a_pil_image(engine, photos):
    from pictures import picture

    engine.index(photos)
    hits = engine.search_image(picture(2).convert("RGBA"), k=1)  # any mode is converted
    assert hits[0].path == str(photos / "img002.png")


def test_unchanged_folder_encodes_nothing(engine, photos, model_calls):
    engine.index(photos)
    model_calls.clear()
    report = engine.index(photos)
    assert (report.unchanged, report.new, report.encoded) == (6, 0, 0)
    assert model_calls == []


def test_changed_deleted_moved_touched_and_copied_files(engine, photos, model_calls):
    engine.index(photos)
    model_calls.clear()

    write_picture(photos / "img000.png", seed=100)  # changed content
    (photos / "img002.png").unlink()  # deleted
    (photos / "moved").mkdir()
    os.rename(photos / "img004.png", photos / "moved" / "renamed.png")  # moved and renamed
    stat = (photos / "sub" / "img001.jpg").stat()
    os.utime(photos / "sub" / "img001.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    shutil.copy(photos / "sub" / "img003.jpg", photos / "copy.jpg")  # duplicate content

    report = engine.index(photos)
    assert (report.updated, report.removed, report.moved) == (1, 1, 1)
    assert (report.new, report.unchanged, report.failed) == (1, 3, 0)  # 3: two + the touched one
    assert report.encoded == 1 and sum(model_calls) == 1  # only the changed content

    paths = {hit.path for hit in engine.search("anything", k=100)}
    assert str(photos / "img002.png") not in paths
    assert str(photos / "img004.png") not in paths
    assert str(photos / "moved" / "renamed.png") in paths
    assert str(photos / "copy.jpg") in paths
    assert engine.search_image(photos / "img000.png", k=1)[0].path == str(photos / "img000.png")
    assert engine.search_image(photos / "moved" / "renamed.png", k=1)[0].score > 0.999


def test_deleting_everything_empties_the_index(engine, photos):
    engine.index(photos)
    shutil.rmtree(photos)
    photos.mkdir()  # an empty folder: an unmounted drive looks the same, so kept offline
    report = engine.index(photos)
    assert (report.removed, report.offline) == (0, 6)
    assert len(engine.search("x")) == 0
    report = engine.index(photos, forget_offline=True)
    assert report.removed == 6
    with pytest.raises(EmptyIndexError):
        engine.search("x")


def test_runs_on_one_folder_leave_other_folders_alone(engine, tmp_path):
    photo_folder(tmp_path / "a", 3)
    photo_folder(tmp_path / "ab", 3, start_seed=10)  # a sibling whose name extends "a"
    engine.index(tmp_path / "a")
    engine.index(tmp_path / "ab")
    shutil.rmtree(tmp_path / "a")
    (tmp_path / "a").mkdir()
    report = engine.index(tmp_path / "a", forget_offline=True)
    assert report.removed == 3
    assert engine.info().files == 3


def _bad_files(root: Path) -> dict[str, str]:
    """Every kind of unreadable file, with the reason the index must record for it."""
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("not an image at all")
    whole = (root / "whole.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    write_picture(root / "huge.png", seed=7, size=(400, 300))
    os.symlink(root / "nowhere.jpg", root / "broken.jpg")
    return {
        "empty.jpg": "empty file",
        "notes.png": "not an image",
        "truncated.jpg": "truncated",
        "huge.png": "too large",
        "broken.jpg": "broken symbolic link",
    }


def test_bad_files_are_recorded_and_never_stop_the_run(engine, tmp_path):
    root = tmp_path / "mixed"
    write_picture(root / "good1.png", seed=1)
    write_picture(root / "whole.jpg", seed=2, size=(256, 256))
    expected = _bad_files(root)

    report = engine.index(root, max_pixels=100_000)  # huge.png has 120,000 pixels
    assert (report.new, report.failed) == (2, len(expected))
    reasons = {Path(f.path).name: f.reason for f in report.failures}
    assert reasons.keys() == expected.keys()
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
    assert {Path(f.path).name for f in engine.failures()} == expected.keys()
    assert engine.info().failures == len(expected)

    # Still failing next time (and still reported); a repaired file is indexed and forgiven.
    write_picture(root / "empty.jpg", seed=3)
    again = engine.index(root, max_pixels=100_000)
    assert (again.new, again.failed) == (1, len(expected) - 1)
    assert "empty.jpg" not in {Path(f.path).name for f in engine.failures()}
    # A failing file that disappears leaves the failure list too.
    (root / "notes.png").unlink()
    engine.index(root, max_pixels=100_000)
    assert "notes.png" not in {Path(f.path).name for f in engine.failures()}


def test_a_file_that_becomes_unreadable_leaves_the_index(engine, photos):
    engine.index(photos)
    (photos / "img000.png").write_bytes(b"garbage, not a png any more")
    report = engine.index(photos)
    assert report.failed == 1
    assert str(photos / "img000.png") not in {h.path for h in engine.search("x", k=100)}


def test_permission_denied_is_recorded(engine, photos, monkeypatch):
    target = str(photos / "img000.png")
    if os.geteuid() != 0:
        os.chmod(target, 0)
    else:  # root reads anything: make just this file refuse to open, as it would for a user
        real_open = open

        def refusing_open(path, *args, **kwargs):
            if os.fspath(path) == target:
                raise PermissionError(13, "Permission denied", target)
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr("builtins.open", refusing_open)
    report = engine.index(photos)
    assert report.new == 5
    assert [(f.path, f.reason) for f in report.failures] == [(target, "permission denied")]


def test_interrupted_run_resumes_without_re_encoding(tmp_path, fake_model, monkeypatch):
    photos = tmp_path / "photos"
    photo_folder(photos, 10)
    index_dir = tmp_path / "index"

    calls = []
    real_flush = searchclip._ingest._Run.flush

    def flush_then_interrupt(self):
        if self.to_encode and len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third batch is being encoded
        calls.append(len(self.to_encode))
        real_flush(self)

    monkeypatch.setattr(searchclip._ingest._Run, "flush", flush_then_interrupt)
    with SearchEngine(index_dir, model=fake_model, batch_size=3) as engine:
        with pytest.raises(KeyboardInterrupt):
            engine.index(photos)
        assert engine.info().files == 6  # two committed batches of three
    monkeypatch.setattr(searchclip._ingest._Run, "flush", real_flush)

    with SearchEngine(index_dir, batch_size=3) as engine:
        report = engine.index(photos)
        assert (report.unchanged, report.new, report.encoded) == (6, 4, 4)
        assert len(engine.search("x", k=100)) == 10


@pytest.mark.parametrize("damage", ["delete", "corrupt", "stale"])
def test_vector_file_is_rebuilt_from_the_catalog(tmp_path, fake_model, photos, damage):
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        engine.index(photos)
        expected = [(h.path, round(h.score, 5)) for h in engine.search("a cat", k=6)]
    (vector_file,) = index_dir.glob("vectors-*.faiss")
    if damage == "delete":
        vector_file.unlink()
    elif damage == "corrupt":
        vector_file.write_bytes(b"\x00garbage" * 100)
    else:  # a file from another generation, renamed to pass for the current one
        with SearchEngine(tmp_path / "other", model=fake_model) as other:
            other.index(photos / "sub")
        (other_file,) = (tmp_path / "other").glob("vectors-*.faiss")
        shutil.copy(other_file, vector_file)

    left = {path.name: path.read_bytes() for path in index_dir.glob("vectors-*.faiss")}
    with SearchEngine(index_dir) as engine:
        assert [(h.path, round(h.score, 5)) for h in engine.search("a cat", k=6)] == expected
        # a search never writes: the damage stays until the next writer
        assert {path.name: path.read_bytes() for path in index_dir.glob("vectors-*.faiss")} == left
        engine.index(photos)  # nothing changed, but the writer mends the file
        assert [(h.path, round(h.score, 5)) for h in engine.search("a cat", k=6)] == expected
    (rebuilt,) = index_dir.glob("vectors-*.faiss")
    assert FlatIndex.load(rebuilt, dim=FAKE_DIM).ntotal == 6  # rewritten whole, for the next open


def test_a_failed_first_run_leaves_no_blank_index_but_keeps_what_was_there(tmp_path, model):
    index_dir = tmp_path / "index"
    missing_model = str(tmp_path / "missing-model")
    with pytest.raises(ModelLoadError), SearchEngine(index_dir, model=missing_model) as engine:
        engine.index(tmp_path)
    assert not index_dir.exists()

    index_dir.mkdir()
    (index_dir / "notes.txt").write_text("the user's own file")
    with pytest.raises(ModelLoadError), SearchEngine(index_dir, model=missing_model) as engine:
        engine.index(tmp_path)
    assert os.listdir(index_dir) == ["notes.txt"]

    with SearchEngine(index_dir, model=model) as engine:  # opened, closed, nothing indexed
        pass
    assert os.listdir(index_dir) == ["notes.txt"]


def test_an_index_is_kept_once_it_records_its_model(tmp_path, fake_model):
    empty = tmp_path / "empty"
    empty.mkdir()
    with SearchEngine(tmp_path / "index", model=fake_model, precision="fp32") as engine:
        engine.index(empty)
    with SearchEngine(tmp_path / "index", create=False) as engine:
        assert engine.model_name == fake_model


def test_model_mismatch_is_an_error(tmp_path, each_model, photos):
    model = each_model
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=model) as engine:
        engine.index(photos)
    with pytest.raises(ModelMismatchError, match="built with model"):
        SearchEngine(index_dir, model="openai/clip-vit-large-patch14")
    other = tmp_path / "other-model"
    shutil.copytree(model, other)
    with pytest.raises(ModelMismatchError):
        SearchEngine(index_dir, model=str(other))
    with SearchEngine(index_dir, model=model) as engine:  # the same model by its own path is fine
        assert engine.model_name == str(Path(model).resolve())


def test_errors_for_missing_empty_and_bad_queries(tmp_path, fake_model, photos):
    with pytest.raises(IndexNotFoundError, match="no index at"):
        SearchEngine(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()
    with SearchEngine(tmp_path / "new", model=fake_model) as engine:
        with pytest.raises(EmptyIndexError, match="holds no images"):
            engine.search("x")
        engine.index(photos)
        for bad_k in (0, -1):
            with pytest.raises(InvalidArgumentError, match="k must be"):
                engine.search("x", k=bad_k)
        with pytest.raises(InvalidArgumentError, match="empty"):
            engine.search("   ")
        (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
        with pytest.raises(ImageReadError, match=r"broken\.jpg"):
            engine.search_image(tmp_path / "broken.jpg")
        with pytest.raises(ImageReadError):
            engine.search_image(tmp_path / "does-not-exist.jpg")


def test_a_second_writer_is_refused(engine, photos):
    engine.index(photos)
    with open(engine.index_dir / "write.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(IndexBusyError, match="another searchclip process"):
            engine.index(photos)
    assert engine.index(photos).unchanged == 6  # the lock is free again


def test_a_file_name_that_is_not_utf8_is_a_reported_skip(engine, photos):
    # Linux allows any bytes in names; Python hands them over as lone surrogates.
    odd = os.fsdecode(os.fsencode(photos) + b"/caf\xe9.png")
    write_picture(Path(odd), seed=50)
    for _ in range(2):  # the failure is recorded again, not forgotten, on the next run
        report = engine.index(photos)
        assert report.failed == 1
        assert "not valid UTF-8" in report.failures[0].reason
        assert [f.path for f in engine.failures()] == [str(photos / "caf\ufffd.png")]
    assert engine.info().files == 6


def _vector_index_type(index_dir: Path) -> type:
    from searchclip._vector_index import load_index

    (vector_file,) = index_dir.glob("vectors-*.faiss")
    return type(load_index(vector_file, dim=FAKE_DIM))


def test_index_type_switches_with_collection_size(tmp_path, fake_model, monkeypatch):
    from searchclip._vector_index import IVFIndex

    monkeypatch.setattr("searchclip._vector_index.choice.EXACT_MAX_VECTORS", 8)
    photos = tmp_path / "photos"
    photo_folder(photos, 6)
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        engine.index(photos)
        assert _vector_index_type(engine.index_dir) is FlatIndex

        photo_folder(tmp_path / "more", 4, start_seed=20)
        engine.index(tmp_path / "more")  # 10 images: past the threshold, rebuilt as IVF
        assert _vector_index_type(engine.index_dir) is IVFIndex
        probe = tmp_path / "more" / "img002.png"
        hits = engine.search_image(probe, k=10)
        assert hits[0].path == str(probe) and len(hits) == 10
        removed = photos / "img000.png"
        removed.unlink()
        engine.index(photos)
        assert str(removed) not in {h.path for h in engine.search("x", k=10)}

        shutil.rmtree(tmp_path / "more")
        (tmp_path / "more").mkdir()
        engine.index(tmp_path / "more", forget_offline=True)  # 5 images: back to exact
        assert _vector_index_type(engine.index_dir) is FlatIndex
        assert {h.path for h in engine.search("x", k=10)} == {str(p) for p in photos.rglob("img*")}


def _benchmarks_hnsw_module():
    """benchmarks/hnsw_index.py, which still writes the HNSW files older searchclips wrote."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "hnsw_index.py"
    spec = importlib.util.spec_from_file_location("benchmarks_hnsw_index", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_vector_file_of_the_wrong_type_is_rebuilt(tmp_path, fake_model, photos, monkeypatch):
    from searchclip._vector_index import IVFIndex

    hnsw = _benchmarks_hnsw_module()

    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        engine.index(photos)
        expected = [h.path for h in engine.search_image(photos / "img002.png", k=3)]
    (vector_file,) = index_dir.glob("vectors-*.faiss")
    assert _vector_index_type(index_dir) is FlatIndex

    # A lower threshold (as after an upgrade): the same generation's file is now the wrong type.
    monkeypatch.setattr("searchclip._vector_index.choice.EXACT_MAX_VECTORS", 4)
    with SearchEngine(index_dir) as engine:
        assert [h.path for h in engine.search_image(photos / "img002.png", k=3)] == expected
        assert _vector_index_type(index_dir) is FlatIndex  # a search never writes
        engine.index(photos)  # the writer does
    (rewritten,) = index_dir.glob("vectors-*.faiss")
    assert rewritten == vector_file  # the same generation's name, rewritten in place
    assert _vector_index_type(index_dir) is IVFIndex

    # An HNSW file, as searchclip wrote for large collections before IVF: rebuilt as IVF.
    with SearchEngine(index_dir) as engine:
        graph = hnsw.HNSWIndex(engine._model.dim)
        graph.add(*engine._catalog.all_vectors(engine._model))
    graph.save(vector_file)
    assert hnsw.is_hnsw_file(vector_file)
    with SearchEngine(index_dir) as engine:
        assert [h.path for h in engine.search_image(photos / "img002.png", k=3)] == expected
        assert hnsw.is_hnsw_file(vector_file)
        engine.index(photos)
    assert _vector_index_type(index_dir) is IVFIndex


def test_a_missing_folder_is_refused_before_any_model_is_loaded_or_recorded(tmp_path):
    index_dir = tmp_path / "indexes" / "new"
    # A model that cannot load: were it loaded first, this would be a ModelLoadError.
    with SearchEngine(index_dir, model=str(tmp_path / "no-model-here")) as engine:
        with pytest.raises(FileError) as raised:
            engine.index(tmp_path / "no-such-folder")
        assert raised.value.path == str(tmp_path / "no-such-folder")
        with pytest.raises(InvalidArgumentError):
            engine.index(tmp_path, workers=0)
    assert not (tmp_path / "indexes").exists()  # nothing recorded: no blank index left
