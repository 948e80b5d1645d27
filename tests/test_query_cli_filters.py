"""Every metadata filter, the orders and their combinations, through `searchclip query --json`
and the library, over photos written with known EXIF (issue 14).

The fake model (no torch) serves: filters and orders do not depend on what a model sees.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pictures import picture
from PIL import ExifTags, Image
from test_metadata_index import camera_photo
from typer.testing import CliRunner

from searchclip import PhotoFilter, Query, SearchEngine
from searchclip._cli import app

ORIENTATION = 0x0112


def oriented_photo(path: Path, orientation: int, taken: str, seed: int) -> Path:
    """A 96x64 JPEG from a Canon, with EXIF orientation ``orientation`` and no UTC offset."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS R6"
    exif[ORIENTATION] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    path.parent.mkdir(parents=True, exist_ok=True)
    picture(seed, (96, 64)).save(path, exif=exif)
    return path


@pytest.fixture(scope="module")
def collection(tmp_path_factory, fake_model_dir) -> tuple[Path, dict[str, Path]]:
    """Eight Canon photos, orientations 1-8, one a month of 2022; two phone photos with GPS
    (Santiago) in trip/; a square PNG."""
    root = tmp_path_factory.mktemp("filters")
    photos = root / "photos"
    named = {
        f"o{n}": oriented_photo(
            photos / "canon" / f"IMG_{n}.jpg", n, f"2022:{n:02d}:10 12:00:00", seed=n
        )
        for n in range(1, 9)
    }
    named["phone1"] = camera_photo(photos / "trip" / "a.jpg", "2023:06:15 14:30:05", seed=20)
    named["phone2"] = camera_photo(photos / "trip" / "b.jpg", "2023:07:01 09:00:00", seed=21)
    named["square"] = photos / "square.png"
    picture(30, (80, 80)).save(named["square"])
    with SearchEngine(root / "index", model=str(fake_model_dir)) as engine:
        engine.index(photos)
    return root / "index", named


def query(index_dir: Path, *args) -> list[dict]:
    result = CliRunner().invoke(
        app, ["query", "a photo", "--index", str(index_dir), "--json", *map(str, args)]
    )
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def names(hits: list[dict], named: dict[str, Path]) -> list[str]:
    by_path = {str(path): name for name, path in named.items()}
    return [by_path[hit["path"]] for hit in hits]


def test_orientations_one_to_eight_are_stored_upright(collection):
    index_dir, named = collection
    portrait = query(index_dir, "--orientation", "portrait", "-k", 20)
    assert sorted(names(portrait, named)) == ["o5", "o6", "o7", "o8"]
    assert all((hit["width"], hit["height"]) == (64, 96) for hit in portrait)
    landscape = query(index_dir, "--orientation", "landscape", "-k", 20)
    assert sorted(names(landscape, named)) == ["o1", "o2", "o3", "o4", "phone1", "phone2"]
    assert names(query(index_dir, "--orientation", "square"), named) == ["square"]


def test_each_filter_from_the_command_line(collection):
    index_dir, named = collection
    spring = query(index_dir, "--after", "2022-03", "--before", "2022-06", "--sort", "date")
    assert names(spring, named) == ["o3", "o4", "o5"]  # the camera's wall-clock months
    assert spring[0]["taken_at"] == "2022-03-10T12:00:00"  # no offset: no zone printed
    assert sorted(names(query(index_dir, "--camera", "canon eos", "-k", 20), named)) == [
        f"o{n}" for n in range(1, 9)
    ]
    assert sorted(names(query(index_dir, "--has-gps"), named)) == ["phone1", "phone2"]
    assert len(query(index_dir, "--no-gps", "-k", 20)) == 9
    santiago = query(index_dir, "--near", "-33.85,-70.5", "--within", "1")
    assert sorted(names(santiago, named)) == ["phone1", "phone2"]
    assert query(index_dir, "--near", "-33.4,-70.5", "--within", "40") == []  # 50 km away
    trip = query(index_dir, "--in", named["phone1"].parent, "--in", named["o1"].parent, "-k", 20)
    assert len(trip) == 10  # trip/ and canon/
    assert len(query(index_dir, "--in", named["square"].parent, "-k", 20)) == 11
    assert sorted(names(query(index_dir, "--path", "trip/*.jpg"), named)) == ["phone1", "phone2"]
    assert names(query(index_dir, "--format", "png"), named) == ["square"]
    assert names(query(index_dir, "--min-width", "90", "--min-height", "90"), named) == []
    assert len(query(index_dir, "--min-height", "90", "-k", 20)) == 4


def test_filters_terms_cut_off_and_order_combine(collection):
    index_dir, named = collection
    hits = query(
        index_dir,
        "--not",
        "a blurry photo",
        "--like",
        named["o2"],
        "--camera",
        "canon",
        "--orientation",
        "landscape",
        "--after",
        "2022-02",
        "-k",
        "20",
        "--sort",
        "-date",
    )
    assert names(hits, named) == ["o4", "o3", "o2"]  # every match, newest first
    assert sorted(hit["rank"] for hit in hits) == [1, 2, 3]
    with SearchEngine(index_dir, create=False) as engine:
        where = PhotoFilter(camera="canon", orientation="landscape", taken_from=1643673600.0)
        terms = Query.parse("a photo", not_texts=["a blurry photo"], like=[str(named["o2"])])
        library = engine.search(terms, 20, where=where).sorted_by("-date")
    assert [hit.path for hit in library] == [hit["path"] for hit in hits]
    by_path = query(index_dir, "--camera", "canon", "--sort", "path", "-k", 3)
    assert [hit["path"] for hit in by_path] == sorted(hit["path"] for hit in by_path)
