"""Drives that go offline (issue 16): a folder that is missing or empty keeps its images,
marked offline and left out of results, until a run finds them again, where they were or at
another mount point; a file deleted from a folder that is there is still removed. Real SQLite,
real FAISS, real pictures, the fake model; a "drive" is a folder moved away and back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pictures import photo_folder, write_picture
from typer.testing import CliRunner

from searchclip import FileError, PhotoFilter, SearchEngine
from searchclip._cli import app

OFFLINE = PhotoFilter(include_offline=True)


@pytest.fixture
def engine(tmp_path: Path, fake_model: str):
    with SearchEngine(tmp_path / "index", model=fake_model, batch_size=4) as opened:
        yield opened


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """photos/ with a folder of its own and a "drive" mounted at photos/nas."""
    root = tmp_path / "photos"
    photo_folder(root / "home", 4, start_seed=0)
    photo_folder(root / "nas" / "2023", 6, start_seed=20)
    return root


def unmount(mount_point: Path, shelf: Path) -> None:
    """Take the drive away and leave its mount point empty, as umount does."""
    shutil.move(mount_point, shelf)
    mount_point.mkdir()


def found(engine: SearchEngine, where: PhotoFilter | None = None) -> dict[str, int]:
    return {hit.path: hit.id for hit in engine.search("a photo", k=100, where=where)}


def test_an_unmounted_drive_is_kept_offline_and_comes_back_with_its_vectors(
    engine, library, tmp_path
):
    engine.index(library)
    engine.tag("coco", top_k=2)
    before = found(engine)
    nas = library / "nas"
    tags = engine.tags(nas / "2023" / "img000.png")
    unmount(nas, tmp_path / "shelf")

    report = engine.index(library)
    assert (report.removed, report.offline, report.unchanged) == (0, 6, 4)
    assert report.offline_roots == (str(nas),)
    results = engine.search("a photo", k=100)
    assert len(results) == 4 and results.missing == ()  # left out, and not called missing
    offline = engine.search("a photo", k=100, where=OFFLINE)
    assert len(offline) == 10 and sum(hit.offline for hit in offline) == 6
    assert {hit.path: hit.id for hit in offline} == before
    [folder] = engine.info().offline
    assert (folder.path, folder.images) == (str(nas), 6)

    again = engine.index(library)  # still away: nothing changes, nothing is removed
    assert (again.removed, again.offline) == (0, 6)
    assert engine.info().offline[0].since == folder.since

    nas.rmdir()
    shutil.move(tmp_path / "shelf", nas)
    back = engine.index(library)
    assert (back.back_online, back.offline, back.encoded, back.new) == (6, 0, 0, 0)
    assert found(engine) == before  # the same ids: vectors and tags were kept
    assert engine.tags(nas / "2023" / "img000.png") == tags
    assert engine.info().offline == ()


def test_a_drive_that_returns_at_another_mount_point_is_matched_by_content(
    engine, library, tmp_path
):
    engine.index(library)
    before = {Path(path).name: file_id for path, file_id in found(engine).items()}
    shutil.move(library / "nas", tmp_path / "shelf")  # the mount point goes with the drive
    assert engine.index(library).offline == 6

    elsewhere = tmp_path / "media" / "usb"
    elsewhere.parent.mkdir()
    shutil.move(tmp_path / "shelf", elsewhere)
    report = engine.index(elsewhere)
    assert (report.moved, report.back_online, report.encoded) == (6, 6, 0)
    after = found(engine)
    assert len(after) == 10
    assert {Path(path).name: file_id for path, file_id in after.items()} == before
    assert sum(path.startswith(str(elsewhere)) for path in after) == 6


def test_a_root_that_is_gone_with_its_parents_is_offline_not_an_error(engine, tmp_path):
    drive = tmp_path / "mnt" / "drive"
    photo_folder(drive / "photos", 3, start_seed=40)
    engine.index(drive / "photos")
    shutil.move(tmp_path / "mnt", tmp_path / "shelf")
    report = engine.index(drive / "photos")
    assert (report.root_gone, report.offline, report.removed) == (True, 3, 0)
    with pytest.raises(FileError, match="does not exist"):  # nothing was ever indexed there
        engine.index(tmp_path / "mnt" / "other")


def test_a_file_deleted_from_a_folder_that_is_there_is_removed(engine, library):
    engine.index(library)
    (library / "nas" / "2023" / "img000.png").unlink()
    report = engine.index(library)
    assert (report.removed, report.offline) == (1, 0)
    assert len(found(engine, OFFLINE)) == 9


def test_forget_offline_removes_what_a_missing_folder_held(engine, library, tmp_path):
    engine.index(library)
    unmount(library / "nas", tmp_path / "shelf")
    engine.index(library)
    report = engine.index(library, forget_offline=True)
    assert (report.removed, report.offline) == (6, 0)
    assert len(found(engine, OFFLINE)) == 4 and engine.info().offline == ()


def test_filters_and_offline_images_combine(engine, library, tmp_path):
    write_picture(library / "nas" / "2023" / "wide.png", seed=60, size=(96, 48))
    engine.index(library)
    unmount(library / "nas", tmp_path / "shelf")
    engine.index(library)
    wide = PhotoFilter(orientation="landscape", include_offline=True)
    paths = [hit.path for hit in engine.search("a photo", k=100, where=wide)]
    assert str(library / "nas" / "2023" / "wide.png") in paths
    online_only = PhotoFilter(orientation="landscape")
    assert not any("nas" in hit.path for hit in engine.search("a photo", where=online_only))


# --- the command line --------------------------------------------------------------------------


def test_cli_reports_offline_images_and_shows_them_on_request(tmp_path, fake_model, library):
    index_dir = str(tmp_path / "index")
    runner = CliRunner()
    run = lambda *args: runner.invoke(app, [*args, "--index", index_dir])  # noqa: E731
    first = runner.invoke(app, ["index", str(library), "--index", index_dir, "--model", fake_model])
    assert first.exit_code == 0, first.stderr
    unmount(library / "nas", tmp_path / "shelf")
    result = run("index", str(library))
    assert result.exit_code == 0, result.stderr
    nas = library / "nas"
    assert "0 removed" in result.stdout
    assert f"6 images kept offline: {nas} missing or empty" in result.stdout
    result = run("query", "a photo", "--json")
    assert len(result.stdout.splitlines()) == 4 and "no longer exist" not in result.stderr
    result = run("query", "a photo", "--json", "--include-offline", "-k", "20")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 10 and sum(line.get("offline", False) for line in lines) == 6
    result = run("query", "a photo", "--include-offline", "-k", "20")
    assert result.stdout.count("(offline)") == 6
    result = run("info")
    assert f"offline:  {nas}: 6 images since" in result.stdout
    nas.rmdir()
    shutil.move(tmp_path / "shelf", nas)
    result = run("index", str(library))
    assert "6 back online" in result.stdout and "kept offline" not in result.stdout


def test_the_http_api_leaves_offline_images_out_unless_asked(engine, library, tmp_path):
    pytest.importorskip("fastapi", reason="the HTTP API needs searchclip[serve]")
    from fastapi.testclient import TestClient

    from searchclip.server import create_app

    engine.index(library)
    unmount(library / "nas", tmp_path / "shelf")
    engine.index(library)
    client = TestClient(create_app(engine))
    online = client.get("/api/search", params={"q": "a photo", "limit": 50}).json()
    assert len(online["hits"]) == 4 and online["missing"] == 0
    every = client.get(
        "/api/search", params={"q": "a photo", "limit": 50, "include_offline": "true"}
    ).json()
    assert len(every["hits"]) == 10 and sum(hit["offline"] for hit in every["hits"]) == 6
