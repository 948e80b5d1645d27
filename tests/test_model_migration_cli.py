"""`searchclip index PATH --model NEW --migrate` and `searchclip info` during and after a model
switch, through Typer's CliRunner; and a migration killed with SIGKILL, then resumed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pictures import photo_folder
from test_cli import fails, invoke, ok

from searchclip._encoders.fake import write_fake_model


@pytest.fixture(scope="module")
def new_model(tmp_path_factory) -> str:
    return str(write_fake_model(tmp_path_factory.mktemp("fake-new"), dim=24, image_size=32))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    photo_folder(root, 12)
    return root


@pytest.fixture
def index_dir(tmp_path: Path, photos: Path, fake_model: str) -> Path:
    index_dir = tmp_path / "index"
    ok("index", photos, "--index", index_dir, "--model", fake_model)
    return index_dir


def info_json(index_dir: Path) -> dict:
    return json.loads(ok("info", "--index", index_dir, "--json").stdout)


def test_migrate_switches_and_info_shows_the_new_model(index_dir, photos, fake_model, new_model):
    result = ok("index", photos, "--index", index_dir, "--model", new_model, "--migrate")
    assert f"switched to {new_model}: 12 images encoded, 0 reused by content" in result.stdout
    assert f"{fake_model}'s vectors dropped" in result.stdout
    found = info_json(index_dir)
    assert (found["model"], found["dim"], found["migration"], found["kept_models"]) == (
        new_model,
        24,
        None,
        [],
    )
    text = ok("info", "--index", index_dir).stdout
    assert text.startswith(f"model:    {new_model} (24 dimensions") and "migrating" not in text


def test_info_shows_the_progress_of_an_interrupted_migration(
    index_dir, photos, new_model, monkeypatch
):
    from searchclip._cli import _common

    real = _common.ProgressBar.update

    def interrupt_at_five(bar, progress):
        if bar._description == "re-encoding" and progress.done == 5:
            raise KeyboardInterrupt
        real(bar, progress)

    monkeypatch.setattr(_common.ProgressBar, "update", interrupt_at_five)
    args = ("index", photos, "--index", index_dir, "--model", new_model, "--migrate")
    result = invoke(*args, "--batch-size", "2")
    assert result.exit_code == 130 and "run the same command to resume" in result.stderr
    monkeypatch.undo()
    migration = info_json(index_dir)["migration"]
    assert (migration["model"], migration["dim"], migration["total"]) == (new_model, 24, 12)
    assert migration["encoded"] == 4 and migration["precision"].startswith("fp32")
    text = ok("info", "--index", index_dir).stdout
    assert f"migrating: {new_model} (24 dimensions; images in fp32" in text
    assert "4/12 images re-embedded" in text
    resumed = ok(*args)
    assert "8 images encoded, 0 reused by content, 4 done before" in resumed.stdout


def test_keep_old_lists_the_kept_model_and_switching_back_encodes_nothing(
    index_dir, photos, fake_model, new_model
):
    ok("index", photos, "--index", index_dir, "--model", new_model, "--migrate", "--keep-old")
    [kept] = info_json(index_dir)["kept_models"]
    assert kept == {"model": fake_model, "dim": 32, "vectors": 12}
    assert f"kept:     {fake_model} (32 dimensions): 12 images' vectors" in (
        ok("info", "--index", index_dir).stdout
    )
    back = ok("index", photos, "--index", index_dir, "--model", fake_model, "--migrate")
    assert "switched to" in back.stdout and "0 images encoded" in back.stdout
    assert "12 done before" in back.stdout


def test_bad_migration_requests_are_one_line_errors(
    index_dir, photos, fake_model, new_model, tmp_path, monkeypatch
):
    fails("index", photos, "--index", index_dir, "--migrate", match="--migrate needs")
    fails("index", photos, "--index", index_dir, "--keep-old", match="--keep-old goes with")
    args = ("index", photos, "--index", index_dir, "--migrate", "--model")
    fails(*args, fake_model, match="uses")
    fails(*args, str(tmp_path / "missing-model"), match="no model directory")
    fails(
        "index", photos, "--index", tmp_path / "none", "--migrate", "--model", new_model,
        match="no index at",
    )  # fmt: skip
    from searchclip._cli import _common

    real = _common.ProgressBar.update

    def interrupt(bar, progress):
        if bar._description == "re-encoding":
            raise KeyboardInterrupt
        real(bar, progress)

    monkeypatch.setattr(_common.ProgressBar, "update", interrupt)
    assert invoke(*args, new_model).exit_code == 130
    monkeypatch.undo()
    third = str(write_fake_model(tmp_path / "third", dim=16))
    line = fails(*args, third, match="pending")
    assert f"--migrate --model {new_model}" in line and "--abandon-migration" in line
    result = ok("index", photos, "--index", index_dir, "--abandon-migration")
    assert f"abandoned the migration to {new_model}: its vectors deleted" in result.stderr
    assert "switched to" in ok(*args, third).stdout


def test_offline_folders_are_named_and_forget_offline_switches(tmp_path, fake_model, new_model):
    library = tmp_path / "library"
    photo_folder(library / "home", 4)
    photo_folder(library / "nas", 2, start_seed=30)
    index_dir = tmp_path / "index"
    ok("index", library, "--index", index_dir, "--model", fake_model)
    (library / "nas" / "img000.png").rename(tmp_path / "away.png")
    (library / "nas" / "sub" / "img001.jpg").unlink()
    (library / "nas" / "sub").rmdir()
    args = ("index", library, "--index", index_dir, "--model", new_model, "--migrate")
    result = ok(*args)
    assert "not switched yet" in result.stdout
    assert f"waiting for {library / 'nas'}: 1 images offline" in result.stderr
    assert f"waiting for {library / 'nas'}: 1 images offline" in (
        ok("info", "--index", index_dir).stdout
    )
    switched = ok(*args, "--forget-offline")
    assert "switched to" in switched.stdout and "2 offline images forgotten" in switched.stderr


# --- killed with SIGKILL mid-run ---------------------------------------------------------------

_SLOW_CLI = """
import sys, time
from searchclip._encoders.fake import FakeEncoder
real = FakeEncoder._embed_pixels
def slow(self, pixels):
    time.sleep(0.15)
    return real(self, pixels)
FakeEncoder._embed_pixels = slow
from searchclip._cli import main
sys.argv = ["searchclip", *sys.argv[1:]]
main()
"""


def new_vectors(index_dir: Path, model: str) -> int:
    with sqlite3.connect(index_dir / "catalog.sqlite") as connection:
        return connection.execute(
            "SELECT count(*) FROM vectors JOIN models ON models.id = vectors.model_id "
            "WHERE models.name = ?",
            (model,),
        ).fetchone()[0]


def test_a_migration_killed_mid_run_resumes_from_its_last_batch(index_dir, photos, new_model):
    args = ["index", str(photos), "--index", str(index_dir), "--model", new_model, "--migrate"]
    killed = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, *args, "--batch-size", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while new_vectors(index_dir, new_model) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
    committed = new_vectors(index_dir, new_model)
    assert 4 <= committed < 12 and committed % 2 == 0  # whole batches, never half of one
    assert info_json(index_dir)["migration"]["encoded"] == committed
    resumed = ok(*args)
    assert f"{12 - committed} images encoded, 0 reused by content, {committed} done before" in (
        resumed.stdout
    )
    assert info_json(index_dir)["model"] == new_model
    assert len(ok("query", "red", "--index", index_dir, "--json", "-k", "3").stdout.split()) >= 3
