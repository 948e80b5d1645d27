"""Photo metadata in the index (issue 14, part 1): read while indexing, stored in the catalog,
carried by SearchHit, shown by `query --json` and `info`, and filled in for an index made
before it existed on its next run, without re-encoding a single image."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pictures import photo_folder, picture
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational
from typer.testing import CliRunner

from searchclip import InvalidArgumentError, PhotoFilter, SearchEngine
from searchclip._cli import app

GPS = ExifTags.GPS


def camera_photo(
    path: Path,
    taken: str = "2023:06:15 14:30:05",
    make: str = "Apple",
    model: str = "iPhone 13",
    gps: bool = True,
    seed: int = 7,
) -> Path:
    """A JPEG as a phone writes it: date with offset, make, model, lens, GPS south-west."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = make
    exif[ExifTags.Base.Model] = model
    exif.get_ifd(ExifTags.IFD.Exif).update(
        {
            ExifTags.Base.DateTimeOriginal: taken,
            ExifTags.Base.OffsetTimeOriginal: "+02:00",
            ExifTags.Base.LensModel: f"{model} back camera 5.1mm f/1.6",
        }
    )
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(
            {
                GPS.GPSLatitudeRef: "S",
                GPS.GPSLatitude: (IFDRational(33, 1), IFDRational(51, 1), IFDRational(0, 1)),
                GPS.GPSLongitudeRef: "W",
                GPS.GPSLongitude: (IFDRational(70, 1), IFDRational(30, 1), IFDRational(0, 1)),
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    picture(seed, (96, 64)).save(path, exif=exif)
    return path


def test_metadata_is_read_stored_and_returned(tmp_path, fake_model):
    photos = tmp_path / "photos"
    phone = camera_photo(photos / "trip" / "IMG_0001.jpg")
    (plain,) = [p for p in photo_folder(photos, 1)]
    os.utime(plain, ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        engine.index(photos)
        hits = {hit.path: hit for hit in engine.search("a photo", k=5)}

    meta = hits[str(phone)].metadata
    taken = datetime(2023, 6, 15, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert meta.taken_at == taken.timestamp() and meta.taken_at_source == "exif"
    assert meta.utc_offset_minutes == 120
    assert (meta.camera_make, meta.camera_model) == ("Apple", "iPhone 13")
    assert meta.lens.startswith("iPhone 13 back camera")
    assert abs(meta.latitude + 33.85) < 1e-6 and abs(meta.longitude + 70.5) < 1e-6
    assert meta.format == "JPEG" and hits[str(phone)].size == phone.stat().st_size
    assert (hits[str(phone)].width, hits[str(phone)].height) == (96, 64)
    other = hits[str(plain)].metadata
    assert (other.taken_at, other.taken_at_source, other.format) == (1.6e9, "mtime", "PNG")

    runner = CliRunner()
    result = runner.invoke(app, ["query", "a photo", "--index", str(index_dir), "--json"])
    rows = {row["path"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows[str(phone)]["taken_at"] == "2023-06-15T14:30:05+02:00"
    assert rows[str(phone)]["camera_model"] == "iPhone 13"
    assert rows[str(plain)]["taken_at"] == "2020-09-13T12:26:40+00:00"
    info = runner.invoke(app, ["info", "--index", str(index_dir)]).stdout
    assert "metadata: 2 images read (1 dated by EXIF, 1 with GPS, 1 cameras)" in info

    with sqlite3.connect(index_dir / "catalog.sqlite") as connection:  # stored for filters
        folders = dict(connection.execute("SELECT path, folder FROM files"))
    assert folders[str(phone)] == str(phone.parent)


def test_an_older_index_gets_its_metadata_without_re_encoding(tmp_path, fake_model):
    photos = tmp_path / "photos"
    phone = camera_photo(photos / "IMG_0002.jpg")
    photo_folder(photos, 4)
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        engine.index(photos)
    # what revision 0003 leaves in an index made before it: NULLs
    with sqlite3.connect(index_dir / "catalog.sqlite") as connection:
        connection.execute(
            "UPDATE files SET taken_at = NULL, taken_at_source = NULL, camera_make = NULL, "
            "camera_model = NULL, folder = NULL"
        )
    with SearchEngine(index_dir, create=False) as engine:
        assert engine.search("a photo", k=5)[0].metadata is None
        report = engine.index(photos)
        assert (report.encoded, report.metadata_read, report.unchanged) == (0, 5, 5)
        assert not report.changed_anything
        hits = {hit.path: hit for hit in engine.search("a photo", k=5)}
        assert hits[str(phone)].metadata.camera_make == "Apple"
        assert all(hit.metadata is not None for hit in hits.values())
        assert engine.index(photos).metadata_read == 0  # read once

    with sqlite3.connect(index_dir / "catalog.sqlite") as connection:
        connection.execute("UPDATE files SET taken_at_source = NULL")
    result = CliRunner().invoke(app, ["index", str(photos), "--index", str(index_dir)])
    assert "photo metadata read for 5 indexed images, none re-encoded" in result.stdout


@pytest.fixture
def library(tmp_path, fake_model) -> tuple[Path, dict[str, Path]]:
    """Five photos: three phones' JPEGs of 2023 and 2024, two PNGs without EXIF (2020)."""
    photos = tmp_path / "photos"
    named = {
        "june": camera_photo(photos / "trip" / "a.jpg", "2023:06:15 14:30:05", seed=1),
        "july": camera_photo(photos / "trip" / "b.jpg", "2023:07:01 00:30:00", seed=2),
        "pixel": camera_photo(
            photos / "c.jpg", "2024:01:02 10:00:00", "Google", "Pixel 8", gps=False, seed=3
        ),
    }
    for name, seed in (("png1", 4), ("png2", 5)):
        named[name] = photos / "old" / f"{name}.png"
        named[name].parent.mkdir(parents=True, exist_ok=True)
        picture(seed).save(named[name])
        os.utime(named[name], ns=(1_600_000_000 * 10**9,) * 2)
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=fake_model) as engine:
        engine.index(photos)
    return index_dir, named


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # 2023-07-01 00:30 at +02:00 is 2023-06-30 22:30 UTC: still June, as an instant
        (
            PhotoFilter(taken_from=datetime(2023, 6, 1), taken_until=datetime(2023, 7, 1)),
            {"june", "july"},
        ),
        (PhotoFilter(taken_from=datetime(2023, 1, 1)), {"june", "july", "pixel"}),
        (PhotoFilter(taken_until=datetime(2021, 1, 1)), {"png1", "png2"}),
        (PhotoFilter(camera="iphone"), {"june", "july"}),
        (PhotoFilter(camera="google pixel"), {"pixel"}),
        (PhotoFilter(lens="PIXEL 8 back"), {"pixel"}),
        (PhotoFilter(folder="PHOTOS/trip"), {"june", "july"}),
        (PhotoFilter(formats=("png",)), {"png1", "png2"}),
        (PhotoFilter(has_location=True), {"june", "july"}),
        (PhotoFilter(has_location=False, formats=("JPEG",)), {"pixel"}),
        (PhotoFilter(min_width=90), {"june", "july", "pixel"}),
        (PhotoFilter(camera="100%_"), set()),  # LIKE's wildcards match only themselves
    ],
)
def test_metadata_filters_are_exact(library, where, expected):
    index_dir, named = library
    if where.folder is not None:  # a path relative to the test's folder
        where = dataclasses.replace(where, folder=index_dir.parent / "photos" / "trip")
    with SearchEngine(index_dir, create=False) as engine:
        found = {hit.path for hit in engine.search("a photo", k=5, where=where)}
        by_image = {hit.path for hit in engine.search_image(named["june"], k=5, where=where)}
    assert found == by_image == {str(named[name]) for name in expected}


def test_a_filter_narrows_before_ranking(library):
    index_dir, named = library
    with SearchEngine(index_dir, create=False) as engine:
        near = engine.search_image(named["png1"], k=1)[0].path
        assert near == str(named["png1"])
        hits = engine.search_image(named["png1"], k=3, where=PhotoFilter(camera="Pixel"))
    assert [hit.path for hit in hits] == [str(named["pixel"])]  # k=3, one passes: one result


def test_query_filters_from_the_command_line(library):
    index_dir, named = library
    runner = CliRunner()
    args = ["query", "a photo", "--index", str(index_dir), "--paths"]
    june = runner.invoke(app, [*args, "--after", "2023-06", "--before", "2023-07"])
    assert set(june.stdout.split()) == {str(named["june"]), str(named["july"])}
    year = runner.invoke(app, [*args, "--after", "2024", "--no-gps", "--format", "jpg"])
    assert year.stdout.split() == [str(named["pixel"])]
    bad = runner.invoke(app, [*args, "--after", "2023-13"])
    assert bad.exit_code == 1 and "--after takes a date such as 2023" in bad.stderr
    empty = runner.invoke(app, [*args, "--after", "2024", "--before", "2023"])
    assert empty.exit_code == 1 and "the time range is empty" in empty.stderr
    unknown = runner.invoke(app, [*args, "--format", "bogus"])
    assert unknown.exit_code == 1 and "unknown image format 'bogus'" in unknown.stderr
    alone = runner.invoke(app, [*args, "--near", "48.85,2.29"])
    assert alone.exit_code == 1 and "--near needs --within KM" in alone.stderr
    place = runner.invoke(app, [*args, "--near", "north", "--within", "3"])
    assert place.exit_code == 1 and "--near takes LAT,LON in degrees" in place.stderr


def test_an_empty_time_range_is_refused():
    with pytest.raises(InvalidArgumentError, match="time range is empty"):
        PhotoFilter(taken_from=datetime(2024, 1, 1), taken_until=datetime(2023, 1, 1))
    with pytest.raises(InvalidArgumentError, match="min_width must be at least 1"):
        PhotoFilter(min_width=0)


def test_results_sorted_by_time_taken_or_path(library):
    index_dir, named = library
    with SearchEngine(index_dir, create=False) as engine:
        hits = engine.search("a photo", k=5)
    oldest = hits.sorted_by("date")
    assert [Path(hit.path).name for hit in oldest][2:] == ["a.jpg", "b.jpg", "c.jpg"]
    assert {Path(hit.path).name for hit in oldest[:2]} == {"png1.png", "png2.png"}  # same mtime
    assert oldest[0].rank < oldest[1].rank  # a tie keeps the relevance order
    newest = hits.sorted_by("-date")
    assert [Path(hit.path).name for hit in newest][:3] == ["c.jpg", "b.jpg", "a.jpg"]
    assert sorted(hit.rank for hit in newest) == [1, 2, 3, 4, 5]
    assert newest[3].rank < newest[4].rank  # the tie, newest first too, in rank order

    assert [hit.path for hit in hits.sorted_by("path")] == sorted(hit.path for hit in hits)
    assert hits.sorted_by("score") == hits
    with pytest.raises(InvalidArgumentError, match="unknown order 'size'"):
        hits.sorted_by("size")

    args = ["query", "a photo", "--index", str(index_dir), "--paths", "--sort", "-date"]
    result = CliRunner().invoke(app, args)
    assert result.stdout.split()[:3] == [str(named[n]) for n in ("pixel", "july", "june")]
    bad = CliRunner().invoke(app, [*args[:-1], "newest"])
    assert bad.exit_code == 1 and "--sort is one of score, date, -date, path" in bad.stderr
