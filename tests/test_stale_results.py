"""A result is a file that exists (issue 13): folders moved out of an indexed root, deleted
folders, what an index run refuses to walk and what it leaves alone on purpose. Real SQLite,
real FAISS, real pictures, the fake model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pictures import photo_folder, write_picture
from typer.testing import CliRunner

from searchclip import FileError, SearchEngine, WholeFileSystemError
from searchclip._cli import app


@pytest.fixture
def engine(tmp_path: Path, fake_model: str):
    with SearchEngine(tmp_path / "index", model=fake_model, batch_size=4) as opened:
        yield opened


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    photo_folder(root / "a", 5, start_seed=0)
    photo_folder(root / "c", 5, start_seed=10)
    return root


C_NAMES = ["img000.png", "sub/img001.jpg", "img002.png", "sub/img003.jpg", "img004.png"]


def all_paths(engine: SearchEngine) -> list[str]:
    return [hit.path for hit in engine.search("a photo", k=100)]


def test_a_folder_moved_out_of_the_indexed_root_moves_in_the_index(engine, photos):
    engine.index(photos / "a")
    engine.index(photos / "c")
    shutil.move(photos / "a", photos / "b")
    report = engine.index(photos / "b")
    assert (report.moved, report.new, report.encoded) == (5, 0, 0)
    paths = all_paths(engine)
    assert len(paths) == 10
    assert all(os.path.exists(path) for path in paths)
    assert not any(f"{os.sep}a{os.sep}" in path for path in paths)
    with pytest.raises(FileError, match="does not exist"):  # nothing left under it
        engine.index(photos / "a")


def test_a_moved_file_keeps_its_tags(engine, photos):
    engine.index(photos)
    engine.tag("coco", top_k=2)
    before = engine.tags(photos / "a" / "img000.png")
    shutil.move(photos / "a", photos.parent / "elsewhere")
    engine.index(photos.parent / "elsewhere")
    assert engine.tags(photos.parent / "elsewhere" / "img000.png") == before


def test_a_copy_is_not_taken_for_a_move(engine, photos):
    engine.index(photos / "a")
    shutil.copytree(photos / "a", photos / "copy")
    report = engine.index(photos / "copy")
    assert (report.new, report.moved, report.encoded) == (5, 0, 0)  # vectors reused
    assert len(all_paths(engine)) == 10


def test_files_gone_since_the_last_run_are_left_out_and_named(engine, photos):
    engine.index(photos)
    shutil.rmtree(photos / "c")
    results = engine.search("a photo", k=10)
    assert len(results) == 5 and all(os.path.exists(hit.path) for hit in results)
    assert [hit.rank for hit in results] == [1, 2, 3, 4, 5]
    assert sorted(results.missing) == sorted(str(photos / "c" / name) for name in C_NAMES)
    top = engine.search("a photo", k=2)  # the top k is filled from further down
    assert len(top) == 2 and all(os.path.exists(hit.path) for hit in top)
    image = engine.search_image(photos / "a" / "img000.png", k=10)
    assert len(image) == 5 and len(image.missing) == 5


def test_indexing_a_deleted_folder_keeps_its_images_offline_until_forgotten(engine, photos):
    # A folder that is gone may be a drive that is not mounted: nothing is removed unasked.
    engine.index(photos)
    shutil.rmtree(photos / "c")
    report = engine.index(photos / "c")
    assert (report.removed, report.offline, report.root_gone) == (0, 5, True)
    assert report.offline_roots == (str(photos / "c"),)
    results = engine.search("a photo", k=10)
    assert (len(results), results.missing) == (5, ())  # offline: left out, not "missing"
    report = engine.index(photos / "c", forget_offline=True)
    assert (report.removed, report.offline) == (5, 0)
    assert len(all_paths(engine)) == 5


def test_a_missing_path_the_index_knows_nothing_of_is_an_error(engine, photos, tmp_path):
    engine.index(photos)
    for missing in (photos / "typo", tmp_path / "gone" / "deeper"):
        with pytest.raises(FileError, match="does not exist"):
            engine.index(missing)
    assert len(all_paths(engine)) == 10


def test_the_whole_file_system_needs_force(engine, tmp_path):
    link = tmp_path / "link_to_root"
    link.symlink_to("/")
    for root in ("/", link, tmp_path / ".." / ".." / ".." / ".." / ".." / ".."):
        with pytest.raises(WholeFileSystemError, match="whole file system"):
            engine.index(root)


def test_files_left_alone_on_purpose_are_counted(engine, tmp_path):
    root = tmp_path / "mixed"
    write_picture(root / "kept.png", seed=1)
    write_picture(root / ".hidden.png", seed=2)
    write_picture(root / "._kept.png", seed=3)
    (root / "photo.jxl").write_bytes(b"\0" * 64)
    (root / "layers.PSD").write_bytes(b"\0" * 64)
    (root / "notes.txt").write_text("not a picture, not ignored")
    write_picture(tmp_path / "outside" / "elsewhere.png", seed=4)
    (root / "folder_link").symlink_to(tmp_path / "outside", target_is_directory=True)
    report = engine.index(root)
    assert report.new == 1
    assert dict(report.ignored) == {
        "hidden": 1,
        "macOS ._ metadata": 1,
        ".jxl: format not read yet": 1,
        ".psd: format not read yet": 1,
        "folder symlink: not followed": 1,
    }


# --- the command line --------------------------------------------------------------------------


def test_cli_says_which_results_were_left_out(tmp_path, fake_model, photos):
    index_dir = tmp_path / "index"
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["index", str(photos), "--index", str(index_dir), "--model", fake_model]
        ).exit_code
        == 0
    )
    shutil.rmtree(photos / "c")
    result = runner.invoke(app, ["query", "a photo", "--index", str(index_dir), "--paths"])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5
    note = result.stderr.splitlines()[-1]
    assert note.startswith("note: 5 indexed files that no longer exist were left out")
    assert "searchclip check --repair" in note
    result = runner.invoke(app, ["index", str(photos / "c"), "--index", str(index_dir)])
    assert result.exit_code == 0, result.stderr
    assert "0 removed" in result.stdout
    assert f"5 images kept offline: {photos / 'c'} missing or empty" in result.stdout
    forget = ["index", str(photos / "c"), "--index", str(index_dir), "--forget-offline"]
    result = runner.invoke(app, forget)
    assert result.exit_code == 0, result.stderr
    assert "5 removed" in result.stdout and "offline" not in result.stdout


def test_cli_summary_counts_ignored_files(tmp_path, fake_model):
    root = tmp_path / "mixed"
    write_picture(root / "kept.png", seed=1)
    write_picture(root / ".hidden.png", seed=2)
    (root / "photo.jxl").write_bytes(b"\0" * 64)
    result = CliRunner().invoke(
        app, ["index", str(root), "--index", str(tmp_path / "index"), "--model", fake_model]
    )
    assert result.exit_code == 0, result.stderr
    assert "2 ignored (1 hidden, 1 .jxl: format not read yet)" in result.stdout
    only_heic = CliRunner().invoke(
        app, ["index", str(root / "photo.jxl"), "--index", str(tmp_path / "index")]
    )
    assert "1 ignored" in only_heic.stdout and "nothing to encode;" not in only_heic.stdout
