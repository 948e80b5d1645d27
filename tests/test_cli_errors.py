"""Every failure of the command line is one line on stderr and exit code 1 (issue 13): the
cases found by trying to break searchclip, each run as a real subprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pictures import photo_folder

from searchclip import IndexBusyError
from searchclip._catalog import Catalog


def run_cli(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "searchclip", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def one_error_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    """The run failed with exit 1 and one `error:` line, and no traceback."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("index: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def indexed(tmp_path, fake_model) -> tuple[Path, Path]:
    photos = tmp_path / "photos"
    photo_folder(photos, 4)
    index_dir = tmp_path / "index"
    result = run_cli("index", photos, "--index", index_dir, "--model", fake_model)
    assert result.returncode == 0, result.stderr
    return photos, index_dir


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["-1", "0"])
def test_workers_below_one(indexed, workers):
    photos, index_dir = indexed
    one_error_line(
        run_cli("index", photos, "--index", index_dir, "--workers", workers),
        f"workers must be at least 1, got {workers}",
    )


@pytest.mark.slow
def test_an_index_path_that_is_a_file(indexed):
    photos, _ = indexed
    image = next(photos.glob("*.png"))
    one_error_line(
        run_cli("index", photos, "--index", image), str(image), "is a file, not an index directory"
    )
    assert image.is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("index_dir", "cause"),
    [("/dev/null/idx", "not a directory"), ("/proc/idx_x", "no such file or directory")],
)
def test_an_index_directory_that_cannot_be_created(indexed, index_dir, cause):
    photos, _ = indexed
    one_error_line(
        run_cli("index", photos, "--index", index_dir),
        f"cannot create the index directory {index_dir}: {cause}",
    )


@pytest.mark.slow
def test_a_new_index_under_a_parent_that_cannot_be_written(tmp_path, fake_model, monkeypatch):
    # Root may write anywhere: the kernel's refusal is stood in for, in the library's own call.
    from searchclip import FileError, SearchEngine

    parent = tmp_path / "locked"
    parent.mkdir()

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(FileError, match=r"cannot create the index directory .*permission denied"):
        SearchEngine(parent / "index", model=fake_model)
    if os.geteuid() != 0:  # and for real, where permissions apply
        monkeypatch.undo()
        parent.chmod(0o500)
        try:
            one_error_line(
                run_cli("index", tmp_path, "--index", parent / "index", "--model", fake_model),
                "cannot create the index directory",
                "permission denied",
            )
        finally:
            parent.chmod(0o700)


@pytest.mark.slow
def test_a_lock_file_replaced_by_a_directory(indexed):
    photos, index_dir = indexed
    lock = index_dir / "write.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    one_error_line(
        run_cli("index", photos, "--index", index_dir),
        f"cannot open the index's lock file {lock}: is a directory",
    )


@pytest.mark.slow
def test_an_unknown_device_is_refused_even_where_no_model_loads(indexed):
    _, index_dir = indexed
    one_error_line(
        run_cli("query", "a photo", "--index", index_dir, "--device", "bogus"),
        "unknown device 'bogus'",
    )


@pytest.mark.slow
def test_a_threshold_outside_the_cosine_range(indexed):
    _, index_dir = indexed
    one_error_line(
        run_cli("tag", "--index", index_dir, "--threshold", "2"),
        "between -1 and 1; got 2.0",
    )


@pytest.mark.slow
def test_an_empty_folder_or_a_non_image_says_no_images_were_found(tmp_path, indexed):
    _, index_dir = indexed
    empty = tmp_path / "empty"
    empty.mkdir()
    document = tmp_path / "doc.pdf"
    document.write_bytes(b"%PDF-1.4\n")
    for path in (empty, document):
        result = run_cli("index", path, "--index", index_dir)
        assert result.returncode == 0, result.stderr
        assert f"indexed {path}: no image files found" in result.stdout
        assert "already indexed" not in result.stdout


_FAILING_RUN = """
import sys
from searchclip import _engine
from searchclip._cli import main

WHERE = sys.argv[1]

def fail(*args, **kwargs):
    raise OSError(5, "Input/output error", WHERE)

_engine.index_path = fail  # an OSError the library does not expect, in the middle of a run
sys.argv = ["searchclip", *sys.argv[2:]]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("debug", ["", "--debug", "SEARCHCLIP_DEBUG=1"])
def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(indexed, debug):
    photos, index_dir = indexed
    where = str(photos / "img000.png")
    args = ["--debug"] if debug == "--debug" else []
    env = {**os.environ, "SEARCHCLIP_DEBUG": "1" if debug.startswith("SEARCHCLIP") else "0"}
    result = subprocess.run(
        [sys.executable, "-c", _FAILING_RUN, where, *args, "index", photos, "--index", index_dir],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 1, result.stderr
    if debug:
        assert "Traceback" in result.stderr and "Input/output error" in result.stderr
    else:
        one_error_line(result, f"error: {where}: Input/output error")


def test_a_new_index_that_another_process_is_creating_reports_busy(tmp_path, monkeypatch):
    catalog = tmp_path / "catalog.sqlite"
    holder = sqlite3.connect(catalog, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # what a second run meets while the first creates it
    monkeypatch.setattr("searchclip._catalog.connection.BUSY_TIMEOUT_MS", 100)
    try:
        with pytest.raises(IndexBusyError, match="another searchclip process is indexing into"):
            Catalog.open(catalog)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_usage_errors_exit_2_as_documented(tmp_path):
    result = run_cli("query", "--no-such-option")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "exit code 2" in readme


_KILLED_AT_THE_RENAME = """
import os, signal, sys
real_replace = os.replace

def replace(src, dst, *args, **kwargs):
    if str(dst).endswith(".faiss"):  # the vector file's atomic rename: die just before it
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
from searchclip._cli import main
sys.argv = ["searchclip", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_a_run_killed_at_the_rename_leaves_nothing_after_the_next_run(tmp_path, fake_model):
    photos = tmp_path / "photos"
    photo_folder(photos, 4)
    index_dir = tmp_path / "index"
    args = ["index", photos, "--index", index_dir, "--model", fake_model, "--precision", "fp32"]
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_AT_THE_RENAME, *map(str, args)],
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9
    assert list(index_dir.glob(".vectors-*.faiss.*.tmp"))  # the kill left its temporary file
    dead_export = index_dir / ".text-export-999999999-1"  # a staging folder of a dead process
    dead_export.mkdir()
    (dead_export / "model.onnx").write_bytes(b"half written")
    live_export = index_dir / f".text-export-{os.getpid()}-1"  # a live process's: kept
    live_export.mkdir()
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert not list(index_dir.glob(".vectors-*.faiss.*.tmp"))
    assert not dead_export.exists()
    assert live_export.exists()
    assert run_cli("query", "a photo", "--index", index_dir, "-k", "4").returncode == 0


@pytest.mark.slow
def test_the_whole_file_system_is_refused_without_force(tmp_path, fake_model):
    link = tmp_path / "link_to_root"
    link.symlink_to("/")
    for root in ("/", link):
        one_error_line(
            run_cli("index", root, "--index", tmp_path / "index", "--model", fake_model),
            "refusing to index",
            "whole file system",
            "pass --force to index it anyway",
        )
    assert not (tmp_path / "index").exists()  # refused before anything was created
