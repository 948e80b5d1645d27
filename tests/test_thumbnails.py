"""Thumbnails for the web page (issue 15): upright, at most 320 px, cached in the index directory
under a name that changes with the file's content, written atomically, made once however many
threads ask, and refused for hostile files as indexing refuses them. Real files, real indexes
(the fake model), records read back from the catalog."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
from hostile_files import png
from pictures import picture, write_picture
from PIL import Image

from searchclip import ImageReadError, InvalidArgumentError, SearchEngine, check_index
from searchclip._catalog import Catalog, FileRecord
from searchclip._errors import FileError
from searchclip._images import content_hash
from searchclip._index_dir import THUMBNAILS_DIR, IndexDirectory
from searchclip._thumbnails import STALE_TEMP_SECONDS, THUMBNAIL_SIDE, ThumbnailCache

ORIENTATION = 0x0112


def oriented_jpeg(path: Path, orientation: int, size=(640, 480)) -> Path:
    """A JPEG stored ``size`` wide and tall, red in its stored top-left quarter, whose EXIF
    orientation says how to turn it upright."""
    image = Image.new("RGB", size, (20, 20, 220))
    image.paste((230, 20, 20), (0, 0, size[0] // 2, size[1] // 2))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    image.save(path, "JPEG", quality=95, exif=exif)
    return path


def index(index_dir: Path, folder: Path, model: str) -> dict[str, FileRecord]:
    """Index ``folder``; its catalog records by file name."""
    with SearchEngine(index_dir, model=model, precision="fp32") as engine:
        engine.index(folder)
    with Catalog.open(index_dir / "catalog.sqlite") as catalog:
        return {
            Path(path).name: record for path, record in catalog.files_under(str(folder)).items()
        }


def hostile_record(record: FileRecord, path: Path, data: bytes) -> FileRecord:
    """A catalog row pointing at a hostile file, as if the index held it: the indexer refuses
    such files, so no real row names one."""
    path.write_bytes(data)
    return dataclasses.replace(record, path=str(path), content_hash=content_hash(data))


def files_in(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    oriented_jpeg(photos / "turned6.jpg", 6)
    oriented_jpeg(photos / "turned8.jpg", 8)
    write_picture(photos / "wide.jpg", 1, size=(1000, 500))
    write_picture(photos / "small.png", 2, size=(100, 80))
    alpha = picture(3, (400, 300)).convert("RGBA")
    alpha.putalpha(Image.new("L", alpha.size, 0))  # fully transparent: shows as white
    alpha.save(photos / "alpha.png")
    return photos


@pytest.fixture
def indexed(tmp_path, folder, fake_model) -> tuple[Path, dict[str, FileRecord]]:
    index_dir = tmp_path / "index"
    return index_dir, index(index_dir, folder, fake_model)


def test_thumbnails_are_upright_and_at_most_320_pixels(indexed):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    sizes = {}
    for name, record in records.items():
        path = cache.get(record)
        assert path.is_relative_to(index_dir / THUMBNAILS_DIR)
        with Image.open(path) as thumbnail:
            assert thumbnail.format == cache.format
            assert thumbnail.mode == "RGB"
            assert ORIENTATION not in thumbnail.getexif()  # would turn it a second time
            sizes[name] = thumbnail.size
    assert sizes == {
        "turned6.jpg": (240, 320),  # stored 640x480, shown turned a quarter
        "turned8.jpg": (240, 320),
        "wide.jpg": (THUMBNAIL_SIDE, 160),
        "small.png": (100, 80),  # never enlarged
        "alpha.png": (320, 240),
    }
    # Orientation 6 turns the picture clockwise: the stored top-left (red) ends top-right;
    # orientation 8 turns it anticlockwise: bottom-left.
    with Image.open(cache.get(records["turned6.jpg"])) as six:
        assert _reddish(six.convert("RGB").getpixel((200, 40)))
        assert not _reddish(six.convert("RGB").getpixel((40, 40)))
    with Image.open(cache.get(records["turned8.jpg"])) as eight:
        assert _reddish(eight.convert("RGB").getpixel((40, 280)))
        assert not _reddish(eight.convert("RGB").getpixel((40, 40)))
    with Image.open(cache.get(records["alpha.png"])) as alpha:
        assert min(alpha.convert("RGB").getpixel((160, 120))) > 240  # transparency over white


def _reddish(rgb: tuple[int, int, int]) -> bool:
    return rgb[0] > 150 and rgb[2] < 100


def test_a_thumbnail_is_made_once_and_named_by_id_and_key(indexed):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    record = records["wide.jpg"]
    path = cache.path_for(record)
    assert not path.exists()
    assert cache.get(record) == path
    assert path.parent.name == f"{record.id % 256:02x}"
    assert path.name == f"{record.id}-{cache.key(record.content_hash)}.webp"
    made = path.stat().st_mtime_ns
    assert cache.get(record) == path and path.stat().st_mtime_ns == made
    assert ThumbnailCache(index_dir).get(record) == path  # another process finds it too


def test_etag_is_strong_and_follows_the_content(indexed, tmp_path):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    record = records["wide.jpg"]
    etag = cache.etag(record)
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert etag == f'"{cache.key(record.content_hash)}"'
    gone = dataclasses.replace(record, path=str(tmp_path / "nowhere.jpg"))
    assert cache.etag(gone) == etag  # nothing is read
    other = dataclasses.replace(record, content_hash="0" * 32)
    assert cache.etag(other) != etag
    assert cache.etag(records["small.png"]) != etag


def test_a_rewritten_file_gets_a_new_thumbnail_and_the_old_one_goes(indexed, folder, fake_model):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    before = records["wide.jpg"]
    old = cache.get(before)
    cache.get(records["small.png"])

    write_picture(folder / "wide.jpg", 50, size=(1000, 500))
    after = index(index_dir, folder, fake_model)["wide.jpg"]
    assert after.id == before.id and after.content_hash != before.content_hash
    new = cache.get(after)
    assert new != old and new.is_file() and not old.exists()
    assert cache.etag(after) != cache.etag(before)
    assert cache.path_for(records["small.png"]).is_file()  # another file's is kept


def test_a_file_changed_since_indexing_is_not_thumbnailed_under_its_old_key(indexed, folder):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    write_picture(folder / "wide.jpg", 60, size=(1000, 500))  # not indexed again
    with pytest.raises(ImageReadError, match="changed since it was indexed") as raised:
        cache.get(records["wide.jpg"])
    assert raised.value.path == records["wide.jpg"].path
    assert not cache.path_for(records["wide.jpg"]).exists()


def test_unreadable_sources_raise_image_read_error_in_one_line(indexed, tmp_path):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    real = records["wide.jpg"]
    with open(real.path, "rb") as f:
        truncated = f.read()[: os.path.getsize(real.path) // 2]
    cases = {
        "truncated.jpg": (truncated, "truncated or corrupt"),
        "bomb.png": (png(20000, 20000, rows=1), "decompression-bomb guard"),
        "canvas.png": (png(12000, 12000, rows=64), "decode budget"),
        "text.jpg": (b"not a picture at all", "not an image"),
    }
    for name, (data, reason) in cases.items():
        record = hostile_record(real, tmp_path / name, data)
        # Above Pillow's warning threshold Pillow warns at open, as indexing does: the library
        # leaves its warning to the application (the CLI silences it).
        warns = pytest.warns(Image.DecompressionBombWarning) if "canvas" in name else nullcontext()
        with pytest.raises(ImageReadError, match=reason) as raised, warns:
            cache.get(record)
        assert "\n" not in str(raised.value)
        assert raised.value.path == record.path
        assert not cache.path_for(record).exists()

    (tmp_path / "bomb.png").unlink()
    gone = dataclasses.replace(real, path=str(tmp_path / "bomb.png"))
    with pytest.raises(FileError, match="file not found"):  # an ImageReadError too
        cache.get(gone)
    assert not list(index_dir.rglob("*.tmp"))


def test_only_catalog_records_are_accepted(indexed):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    record = records["wide.jpg"]
    with pytest.raises(InvalidArgumentError):
        cache.get(record.path)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        cache.get(dataclasses.replace(record, path="../photos/wide.jpg"))
    with pytest.raises(InvalidArgumentError):
        cache.path_for(dataclasses.replace(record, id=0))
    with pytest.raises(InvalidArgumentError):
        ThumbnailCache(index_dir, decoders=0)


def test_no_temp_file_is_left_after_success_or_a_failed_write(indexed):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    cache.get(records["small.png"])
    record = records["wide.jpg"]
    cache.path_for(record).mkdir(parents=True)  # in the way: the rename fails
    with pytest.raises(FileError, match="cannot write the thumbnail"):
        cache.get(record)
    assert [p for p in index_dir.rglob("*") if p.name.endswith(".tmp")] == []


def test_concurrent_gets_of_one_thumbnail_give_one_valid_file(indexed):
    index_dir, records = indexed
    record = records["turned6.jpg"]
    shared = ThumbnailCache(index_dir)
    # Threads of one cache share its locks; separate caches stand for separate processes,
    # which only the atomic rename keeps apart.
    caches = [shared, shared, ThumbnailCache(index_dir), ThumbnailCache(index_dir)]
    start = threading.Barrier(len(caches))
    results: list[Path] = []

    def ask(cache: ThumbnailCache) -> None:
        start.wait()
        results.append(cache.get(record))

    threads = [threading.Thread(target=ask, args=(cache,)) for cache in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    folder = results[0].parent
    assert [p.name for p in folder.iterdir()] == [results[0].name]  # no temp files
    with Image.open(results[0]) as thumbnail:
        thumbnail.load()
        assert thumbnail.size == (240, 320)


def test_make_all_counts_made_existing_and_failed(indexed, tmp_path):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    cache.get(records["small.png"])
    gone = dataclasses.replace(records["wide.jpg"], id=9999, path=str(tmp_path / "gone.jpg"))
    progress: list[tuple[int, int]] = []
    report = cache.make_all(
        [*records.values(), gone], workers=3, on_progress=lambda *p: progress.append(p)
    )
    assert (report.made, report.existing, report.failed) == (4, 1, 1)
    assert report.failures == ((str(tmp_path / "gone.jpg"), "file not found"),)
    assert progress == [(done, 6) for done in range(1, 7)]
    again = cache.make_all(records.values())
    assert (again.made, again.existing, again.failed, again.failures) == (0, 5, 0, ())
    assert all(cache.path_for(record).is_file() for record in records.values())


def test_remove_stale_keeps_only_current_thumbnails(indexed):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    cache.make_all(records.values())
    known = {record.id: record.content_hash for record in records.values()}
    dropped = records["small.png"]  # left the index
    changed = records["wide.jpg"]  # its content changed
    del known[dropped.id]
    known[changed.id] = "f" * 32
    folder = cache.path_for(changed).parent
    old_temp = folder / f".{cache.path_for(changed).name}.0123456789ab.tmp"
    young_temp = folder / f".{cache.path_for(changed).name}.ba9876543210.tmp"
    stray = cache.directory / "notes.txt"
    for path in (old_temp, young_temp, stray):
        path.write_bytes(b"x")
    long_ago = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(old_temp, (long_ago, long_ago))

    assert cache.remove_stale(known) == 3
    assert not cache.path_for(dropped).exists() and not cache.path_for(changed).exists()
    assert not old_temp.exists() and young_temp.exists()  # a live writer may own that one
    assert stray.exists()  # not a name the cache makes
    kept = [r for r in records.values() if r.id in known and r is not changed]
    assert all(cache.path_for(record).is_file() for record in kept)
    assert cache.remove_stale(known) == 0
    assert ThumbnailCache(index_dir / "elsewhere").remove_stale(known) == 0


def test_thumbnails_are_part_of_the_index_not_leftovers(indexed):
    index_dir, records = indexed
    cache = ThumbnailCache(index_dir)
    cache.make_all(records.values())
    (cache.directory / "stray.bin").write_bytes(b"\0" * 10)  # a damaged or stray file
    before = files_in(cache.directory)
    directory = IndexDirectory(index_dir, create=False)
    assert directory.leftovers() == []
    directory.remove_leftovers()
    report = check_index(index_dir)
    assert report.ok and report.problems == ()
    repaired = check_index(index_dir, repair=True)
    assert repaired.ok and repaired.problems == ()
    assert files_in(cache.directory) == before
