"""`searchclip check` and `--repair` (issue 13): damaged catalogs found and recovered, the vector
file, exports and leftovers checked against the catalog, vanished files swept, and a crash of
the last writer answered by a quick check. Real SQLite files damaged on disk, real indexes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pictures import photo_folder
from typer.testing import CliRunner

from searchclip import CatalogDamagedError, SearchEngine, check_index
from searchclip._catalog.integrity import catalog_problems
from searchclip._cli import app

PHOTOS = 300  # enough rows for a catalog of dozens of pages, so that damage hits some of them


def cli(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [os.fspath(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def built(tmp_path, fake_model) -> tuple[Path, Path]:
    photos = tmp_path / "photos"
    photo_folder(photos, PHOTOS)
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        engine.index(photos)
    return photos, index_dir


def damage(catalog: Path, length: int = 8192) -> None:
    """Overwrite ``length`` bytes in the middle of the catalog, whole pages, with garbage."""
    with sqlite3.connect(catalog) as connection:  # all of the WAL into the main file first
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = catalog.stat().st_size
    assert size > 8 * length, size
    with open(catalog, "r+b") as file:
        file.seek(size // 2 // 4096 * 4096)
        file.write(os.urandom(length))


def damage_table(catalog: Path, table: str) -> None:
    """Overwrite the root page of ``table`` (which reads that do not touch it never notice)."""
    with sqlite3.connect(catalog) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        (page_size,) = connection.execute("PRAGMA page_size").fetchone()
    with open(catalog, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xff" * page_size)


def test_a_sound_index_checks_clean(built):
    _, index_dir = built
    report = check_index(index_dir)
    assert report.ok and report.problems == () and report.files == PHOTOS
    code, _, stderr = cli("check", "--index", index_dir)
    assert code == 0 and f"index is sound: {PHOTOS} images" in stderr


def test_garbage_in_the_middle_of_the_catalog_is_found_and_recovered(built):
    photos, index_dir = built
    catalog = index_dir / "catalog.sqlite"
    damage(catalog)
    assert catalog_problems(catalog)

    code, stdout, stderr = cli("check", "--index", index_dir)
    assert code == 1 and stdout.startswith("catalog: ")
    assert f"searchclip check --index {index_dir} --repair" in stderr

    report = check_index(index_dir, repair=True)
    assert report.ok, report.problems
    assert report.damaged_copy and Path(report.damaged_copy).is_file()
    assert Path(report.damaged_copy).name.startswith("catalog.sqlite.damaged-")
    assert catalog_problems(catalog) == []
    assert 0.8 * PHOTOS <= report.files <= PHOTOS  # 8 KB costs a few pages' rows, not the rest

    # what was lost is indexed again; nothing was lost for good
    with SearchEngine(index_dir, create=False) as engine:
        run = engine.index(photos)
        assert run.encoded == PHOTOS - report.files
        assert engine.info().files == PHOTOS
        assert len(engine.search("a photo", k=PHOTOS)) == PHOTOS
    assert check_index(index_dir).problems == ()


def test_a_damaged_catalog_is_refused_with_what_to_run(built, fake_model):
    _, index_dir = built
    damage_table(index_dir / "catalog.sqlite", "files")  # what every query reads
    for args in (["info"], ["query", "a photo"]):
        done = subprocess.run(
            [sys.executable, "-m", "searchclip", *args, "--index", str(index_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert len(errors) == 1 and "is damaged" in errors[0], done.stderr
        assert f"searchclip check --index {index_dir} --repair" in errors[0]


def test_a_zero_byte_catalog_beside_an_index_is_damaged_not_new(built, fake_model):
    photos, index_dir = built
    catalog = index_dir / "catalog.sqlite"
    assert any(index_dir.glob("vectors-*.faiss"))
    catalog.write_bytes(b"")
    with pytest.raises(CatalogDamagedError, match="is empty"):
        SearchEngine(index_dir, model=fake_model)
    code, _, stderr = cli("index", photos, "--index", index_dir, "--model", fake_model)
    assert code == 1 and "is damaged" in stderr and "--repair" in stderr
    assert catalog.stat().st_size == 0  # not taken for a new index, nothing written over it

    report = check_index(index_dir, repair=True)
    assert report.ok and report.files == 0 and report.damaged_copy
    with SearchEngine(index_dir, model=fake_model) as engine:
        assert engine.index(photos).new == PHOTOS


def test_a_killed_writer_makes_the_next_one_check_the_catalog_first(built):
    photos, index_dir = built
    lock = index_dir / "write.lock"
    assert lock.read_text() == ""  # a writer that ended cleanly leaves it empty
    damage_table(index_dir / "catalog.sqlite", "failures")
    before = (index_dir / "catalog.sqlite").read_bytes()
    lock.write_text("999999999")  # what a writer killed while it wrote leaves
    with (
        SearchEngine(index_dir, create=False) as engine,
        pytest.raises(CatalogDamagedError, match="is damaged"),
    ):
        engine.index(photos)
    assert (index_dir / "catalog.sqlite").read_bytes() == before  # nothing written to it


def test_vector_file_exports_and_leftovers_are_checked_and_repaired(built):
    _, index_dir = built
    (vector_file,) = index_dir.glob("vectors-*.faiss")
    vector_file.write_bytes(b"not a faiss file")
    (index_dir / "text-encoder.json").write_text(
        json.dumps({"model_id": "some/other-model", "dim": 7})
    )
    (index_dir / "text-encoder.onnx").write_bytes(b"stale")
    (index_dir / "image-encoder-int8.onnx").write_bytes(b"half")  # no sidecar
    (index_dir / ".vectors-9.faiss.0a1b.tmp").write_bytes(b"x" * 100)
    (index_dir / ".text-export-999999999").mkdir()

    parts = [problem.part for problem in check_index(index_dir).problems]
    assert sorted(parts) == ["exports", "exports", "leftovers", "leftovers", "vectors"]

    report = check_index(index_dir, repair=True)
    assert report.ok and all(problem.repaired for problem in report.problems)
    assert check_index(index_dir).problems == ()
    assert vector_file.is_file() and vector_file.stat().st_size > 1000  # rebuilt
    leftover = [".vectors-9.faiss.0a1b.tmp", ".text-export-999999999", "text-encoder.json"]
    assert not any((index_dir / name).exists() for name in leftover)
    assert not (index_dir / "image-encoder-int8.onnx").exists()


def test_vanished_files_leave_the_index_but_an_unmounted_drive_does_not(tmp_path, fake_model):
    drive = tmp_path / "mnt" / "usb"
    photo_folder(drive / "photos", 4)
    home = tmp_path / "home"
    kept = photo_folder(home, 4, start_seed=10)
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        engine.index(drive)
        engine.index(home)
    kept[0].unlink()
    for path in (drive / "photos").rglob("*"):  # the drive unmounted: its mount point empty
        if path.is_file():
            path.unlink()
    for folder in sorted((drive / "photos").rglob("*"), reverse=True):
        folder.rmdir()
    (drive / "photos").rmdir()

    report = check_index(index_dir)
    assert [problem.part for problem in report.problems] == ["files"]
    assert "1 indexed files no longer exist" in report.problems[0].message
    assert str(kept[0]) in report.problems[0].message
    assert report.notes and str(drive) in report.notes[0]

    report = check_index(index_dir, repair=True)
    assert report.ok and report.files == 7  # the unmounted drive's 4 are kept
    code, stdout, _ = cli("check", "--index", index_dir, "--json")
    body = json.loads(stdout)
    assert code == 0 and body["ok"] and body["problems"] == [] and body["files"] == 7


def test_repair_waits_for_no_one(built):
    from searchclip import IndexBusyError
    from searchclip._index_dir import IndexDirectory

    _, index_dir = built
    with IndexDirectory(index_dir, create=False).write_lock():
        with pytest.raises(IndexBusyError):
            check_index(index_dir, repair=True)
        assert check_index(index_dir).ok  # a check only reads: it runs beside a writer
