"""The ``searchclip`` command: arguments, output formats, the stdout/stderr split, exit codes
and messages. The library behind it is tested in ``test_engine.py``; these tests check the CLI
layer, in-process through Typer's ``CliRunner`` and, where a real process matters (lazy
imports, SIGKILL, Ctrl-C), through ``python -m searchclip``. In-process tests use the fake model
(deterministic vectors, no torch) unless the real CLIP path is what they check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pictures import COCO_IMAGES, write_picture
from typer.testing import CliRunner, Result

from searchclip._cli import app

PHOTOS = 6  # pictures in the `photos` fixture (conftest.py)
BIG_RUN = 120  # pictures for the interrupted-run tests
BIG_BATCH = 4


# --- helpers ---------------------------------------------------------------------------------


def invoke(*args: str | os.PathLike, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [os.fspath(arg) for arg in args], env=env)


def ok(*args: str | os.PathLike, env: dict[str, str] | None = None) -> Result:
    """Run a command that must succeed; show its output when it does not."""
    result = invoke(*args, env=env)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    assert result.exception is None, result.exception
    return result


def fails(*args: str | os.PathLike, match: str, env: dict[str, str] | None = None) -> str:
    """Run a command that must fail with one ``error:`` line containing ``match``; return it.

    stderr may first name the index that was opened (``index: DIR``, printed as soon as it is
    open); apart from that, the error is the only thing on stderr and nothing is on stdout.
    """
    result = invoke(*args, env=env)
    assert result.exit_code not in (0, None), (result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no crash
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("index: "):
        lines = lines[1:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert match in lines[0], lines[0]
    return lines[0]


def table_rows(stdout: str) -> list[tuple[int, float, str]]:
    header, *rows = stdout.splitlines()
    assert header.split() == ["rank", "score", "path"]
    parsed = []
    for row in rows:
        rank, score, path = row.split(maxsplit=2)
        parsed.append((int(rank), float(score), path))
    return parsed


def json_hits(stdout: str) -> list[dict]:
    hits = [json.loads(line) for line in stdout.splitlines()]
    for hit in hits:
        assert {"rank", "score", "path", "width", "height", "size", "taken_at"} <= hit.keys()
        assert hit["taken_at_source"] in ("exif", "mtime")
        assert type(hit["rank"]) is int
        assert type(hit["score"]) is float
        assert type(hit["path"]) is str
    return hits


def index_stderr_line(index_dir: Path) -> str:
    return f"index: {index_dir.absolute()}"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path: Path, photos: Path, fake_model: str) -> Path:
    """An index of ``photos``, built through the CLI with the fake model."""
    index_dir = tmp_path / "index"
    ok("index", photos, "--index", index_dir, "--model", fake_model)
    return index_dir


# --- index and query -------------------------------------------------------------------------


def test_index_reports_to_stdout_and_names_the_index_on_stderr(tmp_path, photos, each_model):
    index_dir = tmp_path / "index"
    result = ok("index", photos, "--index", index_dir, "--model", each_model)
    assert f"indexed {photos}:" in result.stdout
    assert f"{PHOTOS} new" in result.stdout and f"encoded {PHOTOS}" in result.stdout
    assert "0 failed" in result.stdout
    assert index_stderr_line(index_dir) in result.stderr.splitlines()
    assert "index:" not in result.stdout

    again = ok("index", photos, "--index", index_dir)  # the index remembers its model
    assert "nothing to encode" in again.stdout
    assert f"{PHOTOS} unchanged" in again.stdout and "0 new" in again.stdout


def test_query_prints_a_table(built, photos):
    result = ok("query", "a photo", "--index", built)
    rows = table_rows(result.stdout)
    assert [rank for rank, _, _ in rows] == list(range(1, PHOTOS + 1))  # default k=10 > 6
    scores = [score for _, score, _ in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(Path(path).is_file() for _, _, path in rows)
    assert {path for _, _, path in rows} == {str(p) for p in photos.rglob("img*")}
    assert "index:" not in result.stdout
    assert index_stderr_line(built) in result.stderr.splitlines()

    for k_option in ("-k", "--top-k"):
        rows = table_rows(ok("query", "a photo", "--index", built, k_option, "2").stdout)
        assert [rank for rank, _, _ in rows] == [1, 2]


def test_query_json_lines(built):
    result = ok("query", "a photo", "--index", built, "-k", "3", "--json")
    hits = json_hits(result.stdout)
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert all(Path(hit["path"]).is_file() for hit in hits)
    assert "index:" not in result.stdout


def test_query_paths_only(built, photos):
    result = ok("query", "a photo", "--index", built, "-k", "4", "--paths")
    paths = result.stdout.splitlines()
    assert len(paths) == 4 and len(set(paths)) == 4
    assert all(Path(path).is_file() and path.startswith(str(photos)) for path in paths)
    table = table_rows(ok("query", "a photo", "--index", built, "-k", "4").stdout)
    assert paths == [path for _, _, path in table]  # same hits, same order


def test_query_by_image_finds_the_image_first(built, photos):
    probe = photos / "sub" / "img003.jpg"
    result = ok("query", "--image", probe, "--index", built, "--json")
    hits = json_hits(result.stdout)
    assert hits[0]["path"] == str(probe)
    assert hits[0]["score"] > 0.999
    assert len(hits) == PHOTOS
    assert "index:" not in result.stdout


# --- which index -----------------------------------------------------------------------------


def test_index_comes_from_the_environment(tmp_path, photos, fake_model, monkeypatch):
    model = fake_model
    index_dir = tmp_path / "from-env"
    monkeypatch.setenv("SEARCHCLIP_INDEX", str(index_dir))
    result = ok("index", photos, "--model", model)
    assert index_stderr_line(index_dir) in result.stderr.splitlines()
    assert (index_dir / "catalog.sqlite").is_file()
    assert len(json_hits(ok("query", "a photo", "--json").stdout)) == PHOTOS

    explicit = tmp_path / "explicit"  # --index wins over the environment
    result = ok("index", photos, "--index", explicit, "--model", model)
    assert index_stderr_line(explicit) in result.stderr.splitlines()


def test_index_defaults_to_indexes_default_in_the_working_directory(
    tmp_path, photos, fake_model, monkeypatch
):
    model = fake_model
    monkeypatch.delenv("SEARCHCLIP_INDEX", raising=False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    result = ok("index", photos, "--model", model)
    expected = workdir / "indexes" / "default"
    assert f"index: {expected}" in result.stderr.splitlines()
    assert (expected / "catalog.sqlite").is_file()
    result = ok("info")
    assert f"index: {expected}" in result.stderr.splitlines()
    assert f"images:   {PHOTOS}" in result.stdout.splitlines()


# --- errors: one line, no traceback ----------------------------------------------------------


def test_query_on_a_missing_index(tmp_path):
    missing = tmp_path / "missing"
    line = fails("query", "x", "--index", missing, match="no index at")
    assert str(missing) in line and "searchclip index PATH" in line
    assert not missing.exists()  # a query never creates an index
    fails("info", "--index", missing, match="no index at")


def test_query_on_an_empty_index(tmp_path, fake_model):
    model = fake_model
    empty_folder = tmp_path / "nothing-here"
    empty_folder.mkdir()
    index_dir = tmp_path / "index"
    result = ok("index", empty_folder, "--index", index_dir, "--model", model)
    assert "no image files found" in result.stdout  # issue 13: not "already indexed"
    fails("query", "x", "--index", index_dir, match="holds no images")


@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_must_be_positive(built, k):
    fails("query", "a photo", "--index", built, "-k", k, match="k must be")


def test_unreadable_query_image(built, tmp_path):
    text_file = tmp_path / "x.jpg"
    text_file.write_text("this is not a jpeg")
    line = fails("query", "--image", text_file, "--index", built, match="cannot read image")
    assert str(text_file) in line


def test_missing_query_image(built, tmp_path):
    missing = tmp_path / "nowhere.jpg"
    line = fails("query", "--image", missing, "--index", built, match="cannot read image")
    assert str(missing) in line


def test_query_combines_text_and_image_and_needs_one_of_them(built, photos):
    probe = photos / "img000.png"
    both = CliRunner().invoke(
        app, ["query", "a photo", "--image", str(probe), "--index", str(built)]
    )
    assert both.exit_code == 0, both.stderr
    fails("query", "--index", built, match="give a query TEXT, --like PATH or --tag LABEL")


def test_json_and_paths_exclude_each_other(built):
    fails("query", "a photo", "--index", built, "--json", "--paths", match="--json, --paths")
    fails("query", "a photo", "--index", built, "--paths", "-0", match="one output format")


def test_null_separated_paths_survive_newlines_in_names(tmp_path, fake_model):
    model = fake_model
    from pictures import write_picture

    root = tmp_path / "odd names"
    write_picture(root / "two\nlines.png", seed=1)
    write_picture(root / "plain.png", seed=2)
    index_dir = tmp_path / "index"
    ok("index", root, "--index", index_dir, "--model", model)
    out = ok("query", "a photo", "--index", index_dir, "-0").stdout
    assert out.endswith("\0")
    assert sorted(out.split("\0")[:-1]) == sorted(str(p) for p in root.iterdir())


def test_index_of_a_missing_path(tmp_path, fake_model):
    model = fake_model
    index_dir = tmp_path / "index"
    missing = tmp_path / "no-such-folder"
    line = fails("index", missing, "--index", index_dir, "--model", model, match="does not exist")
    assert str(missing) in line


def test_index_with_a_missing_model_directory(tmp_path, photos):
    index_dir = tmp_path / "indexes" / "new"
    fails("index", photos, "--index", index_dir, "--model", "/nonexistent/dir", match="no model")
    assert not (tmp_path / "indexes").exists()  # no blank index left behind to confuse `info`


def test_index_with_another_model_than_the_index_was_built_with(
    built, photos, fake_model, tmp_path
):
    model = fake_model
    other = tmp_path / "other-model"
    shutil.copytree(model, other)
    line = fails("index", photos, "--index", built, "--model", other, match="built with model")
    assert "--model" in line  # says what to do
    assert "unchanged" in ok("index", photos, "--index", built, "--model", model).stdout


def test_hub_model_that_cannot_be_downloaded(tmp_path, photos, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never touch the network, whatever the machine
    fails(
        "index",
        photos,
        "--index",
        tmp_path / "index",
        "--model",
        "nobody/not-a-model",
        match="--model PATH",
    )


# --- bad files -------------------------------------------------------------------------------


def test_bad_files_are_skipped_reported_and_listed(tmp_path, fake_model):
    model = fake_model
    root = tmp_path / "mixed"
    write_picture(root / "good1.png", seed=1)
    write_picture(root / "good2.jpg", seed=2)
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("just some text")
    index_dir = tmp_path / "index"

    result = ok("index", root, "--index", index_dir, "--model", model)
    assert "2 new" in result.stdout and "2 failed" in result.stdout
    skipped = {
        line.strip() for line in result.stderr.splitlines() if line.strip().startswith("skipped")
    }
    assert len(skipped) == 2, result.stderr
    for name in ("empty.jpg", "notes.png"):
        (line,) = [line for line in skipped if line.startswith(f"skipped {root / name}: ")]
        assert line.split(": ", 1)[1].strip(), line  # a reason follows the path
    assert not [line for line in result.stdout.splitlines() if "skipped " in line]

    info = ok("info", "--index", index_dir, "--failures").stdout.splitlines()
    assert "images:   2" in info
    assert "failures: 2" in info
    failures = [line for line in info if line.startswith("  ")]  # after the summary lines
    listed = {line.strip().split(": ", 1)[0]: line.split(": ", 1)[1] for line in failures}
    assert listed.keys() == {str(root / "empty.jpg"), str(root / "notes.png")}
    assert "empty" in listed[str(root / "empty.jpg")]
    assert "not an image" in listed[str(root / "notes.png")]

    plain = ok("info", "--index", index_dir).stdout.splitlines()
    assert len(plain) == 4  # without --failures, only the counts
    assert plain[3] == "metadata: 2 images read (0 dated by EXIF, 0 with GPS, 0 cameras)"


# --- help ------------------------------------------------------------------------------------

OPTIONS = {
    "index": ["--index", "--model", "--batch-size", "--workers", "--device"],
    "query": ["--index", "-k", "--top-k", "--image", "--json", "--paths", "--null", "--device"],
    "info": ["--index", "--failures"],
}


def test_app_help_lists_the_commands():
    result = ok("--help")
    for command in OPTIONS:
        assert command in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_command_help_mentions_every_option(command):
    result = ok(command, "--help")
    for option in OPTIONS[command]:
        assert option in result.stdout, option
    assert result.stderr == ""


def test_help_shows_the_defaults_written_in_brackets():
    # Undo the help formatter's line wrapping, which may break a long id after a hyphen.
    index_help = re.sub(r"-\s+", "-", " ".join(ok("index", "--help").stdout.split()))
    assert "SEARCHCLIP_INDEX" in index_help
    assert "indexes/default" in index_help
    assert "openai/clip-vit-base-patch32" in index_help
    assert "up to 4" in index_help


# --- as a real process -----------------------------------------------------------------------


def searchclip_process(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "searchclip", *(os.fspath(arg) for arg in args)]


def child_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def run_searchclip(*args: str | os.PathLike) -> subprocess.CompletedProcess:
    return subprocess.run(
        searchclip_process(*args),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_index_and_query_as_real_processes(tmp_path, photos, model):
    index_dir = tmp_path / "index"
    indexed = run_searchclip("index", photos, "--index", index_dir, "--model", model)
    assert indexed.returncode == 0, indexed.stderr
    assert f"{PHOTOS} new" in indexed.stdout
    assert index_stderr_line(index_dir) in indexed.stderr

    queried = run_searchclip("query", "a photo", "--index", index_dir, "-k", "3", "--json")
    assert queried.returncode == 0, queried.stderr
    assert [hit["rank"] for hit in json_hits(queried.stdout)] == [1, 2, 3]

    missing = run_searchclip("query", "x", "--index", tmp_path / "missing")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.startswith("error: no index at") and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_import_and_help_stay_light():
    probe = (
        "import searchclip, searchclip._cli, sys; "
        "print(sorted(m for m in ('torch','transformers','faiss') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

    probe_help = (
        "import sys, runpy; sys.argv = ['searchclip', '--help']\n"
        "try:\n    runpy.run_module('searchclip', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch','transformers','faiss') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe_help], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BIG_RUN pictures, large enough that indexing them takes about a second."""
    root = tmp_path_factory.mktemp("big")
    for i in range(BIG_RUN):
        name = f"img{i:03d}.png" if i % 2 == 0 else f"sub/img{i:03d}.jpg"
        write_picture(root / name, seed=1000 + i, size=(1024, 768))
    return root


def committed_rows(catalog: Path) -> int | None:
    """Rows in the catalog's ``files`` table, read-only; None while it cannot be read yet."""
    if not catalog.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=0.1)
        try:
            return connection.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.OperationalError:  # no such table yet, locked, ...
        return None


def _restore_sigint() -> None:
    # A child whose parent ignores SIGINT (a background job) would ignore it too, and Python
    # would then never raise KeyboardInterrupt: give it the default disposition back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_mid_run(folder: Path, index_dir: Path, model: str, sig: int):
    """Start indexing ``folder`` in a process, send ``sig`` once 2 batches are committed."""
    proc = subprocess.Popen(
        searchclip_process(
            "index",
            folder,
            "--index",
            index_dir,
            "--model",
            model,
            "--batch-size",
            str(BIG_BATCH),
            "--workers",
            "1",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        preexec_fn=_restore_sigint,
    )
    try:
        deadline = time.monotonic() + 90
        while (committed_rows(index_dir / "catalog.sqlite") or 0) < 2 * BIG_BATCH:
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(
                f"the index run ended (exit {proc.returncode}) before it could be interrupted; "
                f"make the test folder bigger.\nstdout: {out}\nstderr: {err}"
            )
        assert time.monotonic() <= deadline, "no batch was committed within 90 s"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def check_interrupted_index_resumes(folder: Path, index_dir: Path) -> None:
    catalog = index_dir / "catalog.sqlite"
    connection = sqlite3.connect(catalog)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        committed = connection.execute("SELECT count(*) FROM files").fetchone()[0]
    finally:
        connection.close()
    assert 2 * BIG_BATCH <= committed < BIG_RUN
    assert committed % BIG_BATCH == 0, committed  # whole batches, never part of one

    resumed = ok("index", folder, "--index", index_dir, "--batch-size", str(BIG_BATCH))
    left = BIG_RUN - committed
    assert f"{left} new" in resumed.stdout, resumed.stdout
    assert f"{committed} unchanged" in resumed.stdout, resumed.stdout
    assert f"encoded {left} images" in resumed.stdout, resumed.stdout
    assert "0 failed" in resumed.stdout

    hits = json_hits(ok("query", "a photo", "--index", index_dir, "-k", "5", "--json").stdout)
    assert len(hits) == 5
    assert "images:   120" in ok("info", "--index", index_dir).stdout.splitlines()


@pytest.mark.slow
def test_killed_run_resumes(big_folder, tmp_path, model):
    index_dir = tmp_path / "index"
    code, _, _ = interrupt_mid_run(big_folder, index_dir, model, signal.SIGKILL)
    assert code == -signal.SIGKILL
    check_interrupted_index_resumes(big_folder, index_dir)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resumes(big_folder, tmp_path, model):
    index_dir = tmp_path / "index"
    code, out, err = interrupt_mid_run(big_folder, index_dir, model, signal.SIGINT)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "indexed" not in out  # no summary for a run that did not finish
    check_interrupted_index_resumes(big_folder, index_dir)


# --- real photos -----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_photos_find_themselves(tmp_path, fake_model):
    model = fake_model
    if not COCO_IMAGES.is_dir():
        pytest.skip(f"../shared/data not found: {COCO_IMAGES}")
    count = len(list(COCO_IMAGES.glob("*.jpg")))
    index_dir = tmp_path / "index"
    result = ok("index", COCO_IMAGES, "--index", index_dir, "--model", model)  # read in place
    assert f"{count} new" in result.stdout and "0 failed" in result.stdout

    probe = sorted(COCO_IMAGES.glob("*.jpg"))[count // 2]
    result = ok("query", "--image", probe, "--index", index_dir, "--json", "-k", "3")
    hits = json_hits(result.stdout)
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert hits[0]["path"] == str(probe)
    assert hits[0]["score"] > 0.999
