"""Photo metadata filters on the catalog's column snapshot (issue 14): path globs, orientation,
distance from a point, several folders, the argument checks, and the snapshot following every
change of the files table (new, removed, moved and backfilled files, another connection's
writes, an old catalog without the counter, a recovered catalog)."""

from __future__ import annotations

import fnmatch
import math
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from pictures import photo_folder, picture
from test_metadata_index import camera_photo

from searchclip import InvalidArgumentError, PhotoFilter, SearchEngine
from searchclip._catalog.catalog import Catalog, CatalogChanges, FileEntry
from searchclip._catalog.filter_columns import FILES_GENERATION_KEY
from searchclip._catalog.recovery import recover_catalog
from searchclip._filters import EARTH_RADIUS_KM
from searchclip._results import PhotoMetadata

DIM = 4


def entry(path: str, width: int = 64, height: int = 48, *, read: bool = True, **meta) -> FileEntry:
    """A file as the indexer records it; ``read=False``: its metadata not read yet."""
    metadata = PhotoMetadata(taken_at_source="exif", format="JPEG", **meta) if read else None
    return FileEntry(path, 100, 1, "0" * 32, width, height, metadata)


def add(catalog: Catalog, *entries: FileEntry) -> dict[str, int]:
    """Upsert ``entries`` (one vector each) and return path -> id."""
    model = catalog.model() or catalog.set_model("fake", DIM)
    pairs = [(e, np.full(DIM, 0.5, np.float32)) for e in entries]
    ids = catalog.apply(CatalogChanges(upserts=pairs), model)
    return dict(zip([e.path for e in entries], ids, strict=True))


def paths_of(catalog: Catalog, where: PhotoFilter) -> set[str]:
    ids = catalog.ids_matching(where)
    assert ids.dtype == np.int64 and (np.diff(ids) > 0).all()
    return {record.path for record in catalog.files_by_id(ids.tolist()).values()}


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog.open(tmp_path / "catalog.sqlite") as opened:
        yield opened


PATHS = [
    "/photos/2023/IMG_001.jpg",
    "/photos/2023/trip/IMG_002.jpg",
    "/photos/2023/trip/IMG_010.JPG",
    "/photos/2024/IMG_003.png",
    "/photos/2024/été/plage à midi.jpg",
    "/archive/photos/2023/scan[1].jpg",
    "/IMG_004.jpg",
    "/photos/2023x/IMG_005.jpg",
]


@pytest.mark.parametrize(
    "glob",
    [
        "/photos/2023/*",  # "*" takes the subfolder too
        "/photos/2023/*.jpg",
        "*.JPG",  # case-sensitive
        "2023/*",  # relative: anywhere
        "IMG_00?.jpg",
        "IMG_0[!0]*",
        "*/été/*à*",
        "scan[[]1].jpg",
        "/IMG_004.jpg",
        "photos/*/IMG_*",
        "*",
        "/nowhere/*",
        "[",  # an unclosed set is a literal "["
    ],
)
def test_path_glob_matches_as_fnmatch_does(catalog, glob):
    add(catalog, *(entry(path) for path in PATHS))
    absolute = glob if glob.startswith(("/", "*")) else "*/" + glob
    expected = {path for path in PATHS if fnmatch.fnmatchcase(path, absolute)}
    assert paths_of(catalog, PhotoFilter(path_glob=glob)) == expected
    assert PhotoFilter(path_glob=glob).path_pattern == absolute


def test_relative_glob_and_folders(catalog):
    add(catalog, *(entry(path) for path in PATHS))
    assert paths_of(catalog, PhotoFilter(path_glob="2023/*.jpg")) == {
        "/photos/2023/IMG_001.jpg",
        "/photos/2023/trip/IMG_002.jpg",
        "/archive/photos/2023/scan[1].jpg",
    }
    several = PhotoFilter(folders=("/photos/2023/trip", "/photos/2024/"), formats=("JPEG",))
    assert paths_of(catalog, several) == {
        "/photos/2023/trip/IMG_002.jpg",
        "/photos/2023/trip/IMG_010.JPG",
        "/photos/2024/IMG_003.png",
        "/photos/2024/été/plage à midi.jpg",
    }
    # folder is one more folder; "/photos/2023" is not a prefix of "/photos/2023x"
    both = PhotoFilter(folder="/archive", folders=["/photos/2023"])
    assert both.folders == ("/photos/2023",) and len(both.folder_paths) == 2
    assert paths_of(catalog, both) == {
        p for p in PATHS if p.startswith(("/archive/", "/photos/2023/"))
    }
    assert paths_of(catalog, PhotoFilter(folders="/photos/2024")) == {
        "/photos/2024/IMG_003.png",
        "/photos/2024/été/plage à midi.jpg",
    }
    assert len(paths_of(catalog, PhotoFilter(folders=("/",)))) == len(PATHS)


def test_orientation(catalog):
    add(
        catalog,
        entry("/p/wide.jpg", 300, 200),
        entry("/p/tall.jpg", 200, 300),
        entry("/p/square.jpg", 250, 250),
    )
    for orientation, name in (("landscape", "wide"), ("portrait", "tall"), ("square", "square")):
        assert paths_of(catalog, PhotoFilter(orientation=orientation)) == {f"/p/{name}.jpg"}
    with_width = PhotoFilter(orientation="landscape", min_width=301)
    assert paths_of(catalog, with_width) == set()


def km_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2
    h += math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


PLACES = {
    "paris": (48.8584, 2.2945),
    "versailles": (48.8049, 2.1204),
    "fiji east": (-17.0, 179.95),  # either side of the antimeridian, ~11 km apart
    "fiji west": (-17.0, -179.95),
    "pole": (89.9, 100.0),
    "pole other side": (89.9, -80.0),  # ~22 km across the pole
    "quito": (-0.18, -78.47),
}


@pytest.mark.parametrize(
    ("near", "km"),
    [
        ((48.8566, 2.3522), 5),
        ((48.8566, 2.3522), 20),
        ((-17.0, 180.0), 6),  # both sides of the antimeridian
        ((-17.0, -180.0), 6),
        ((-16.9, 179.99), 15),
        ((90.0, 0.0), 12),  # the pole inside the circle: every longitude
        ((89.95, 10.0), 30),
        ((0.0, -78.0), 60),
        ((0.0, 0.0), 20_015.1),  # half the Earth's circumference: everywhere
    ],
)
def test_near_within_is_the_great_circle_distance(catalog, near, km):
    located = [
        entry(f"/gps/{name}.jpg", latitude=lat, longitude=lon)
        for name, (lat, lon) in PLACES.items()
    ]
    add(catalog, *located, entry("/gps/none.jpg"))
    expected = {
        f"/gps/{name}.jpg" for name, point in PLACES.items() if km_between(near, point) <= km
    }
    assert paths_of(catalog, PhotoFilter(near=near, within_km=km)) == expected
    assert expected  # each case keeps something
    if km < 100:
        assert len(expected) < len(PLACES)


def test_near_across_the_antimeridian(catalog):
    add(
        catalog,
        *(
            entry(f"/gps/{name}.jpg", latitude=lat, longitude=lon)
            for name, (lat, lon) in PLACES.items()
        ),
    )
    fiji = {"/gps/fiji east.jpg", "/gps/fiji west.jpg"}
    assert paths_of(catalog, PhotoFilter(near=(-17.0, 179.99), within_km=10)) == fiji
    assert paths_of(catalog, PhotoFilter(near=(-17.0, -179.0), within_km=50)) == set()
    assert paths_of(catalog, PhotoFilter(near=(-17, 180), within_km=1, has_location=False)) == set()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"orientation": "diagonal"},
            "orientation is landscape, portrait or square, got 'diagonal'",
        ),
        ({"near": (48.8, 2.3)}, "near needs within_km"),
        ({"within_km": 5}, "within_km needs near"),
        ({"near": (91, 0), "within_km": 5}, r"latitude in \[-90, 90\].*\(91, 0\)"),
        ({"near": (0, -180.5), "within_km": 5}, r"longitude in \[-180, 180\].*-180.5"),
        ({"near": (0, 0), "within_km": 0}, "within_km must be a positive number.*got 0"),
        ({"near": (0, 0), "within_km": -2.5}, "got -2.5"),
        ({"near": (0, 0), "within_km": float("nan")}, "got nan"),
        ({"near": ("48.8", 2.3), "within_km": 1}, "near must be \\(latitude, longitude\\)"),
        ({"near": (1, 2, 3), "within_km": 1}, "near must be"),
        ({"near": (True, 2), "within_km": 1}, "near must be"),
        ({"path_glob": ""}, "path_glob must be a non-empty glob"),
        ({"path_glob": "a\0b"}, "without NUL"),
    ],
)
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(InvalidArgumentError, match=message) as raised:
        PhotoFilter(**arguments)
    assert "\n" not in str(raised.value)


def test_near_is_kept_as_floats():
    where = PhotoFilter(near=(np.float32(10), 20), within_km=np.int64(3))
    assert where.near == (10.0, 20.0) and where.within_km == 3.0
    assert type(where.within_km) is float


def test_the_snapshot_follows_every_change_of_the_files_table(catalog):
    ids = add(catalog, entry("/a/one.jpg", camera_make="Apple"), entry("/a/two.jpg", read=False))
    apple = PhotoFilter(camera="apple")
    under_b = PhotoFilter(folder="/b")
    assert paths_of(catalog, apple) == {"/a/one.jpg"}
    assert paths_of(catalog, under_b) == set()
    generation = int(catalog.get_setting(FILES_GENERATION_KEY))

    add(catalog, entry("/b/three.jpg", camera_make="Apple"))  # a new file
    assert paths_of(catalog, apple) == {"/a/one.jpg", "/b/three.jpg"}
    model = catalog.model()
    catalog.apply(CatalogChanges(removed=[ids["/a/one.jpg"]]), model)  # a removed file
    assert paths_of(catalog, apple) == {"/b/three.jpg"}
    moved = entry("/b/two.jpg", read=False)  # a move: the same content at another path
    catalog.apply(CatalogChanges(restats=[(ids["/a/two.jpg"], moved)]), model)
    assert paths_of(catalog, under_b) == {"/b/three.jpg", "/b/two.jpg"}
    assert paths_of(catalog, PhotoFilter(path_glob="two.jpg")) == {"/b/two.jpg"}
    backfilled = entry("/b/two.jpg", camera_make="Apple", camera_model="iPhone")  # metadata read
    catalog.apply(CatalogChanges(restats=[(ids["/a/two.jpg"], backfilled)]), model)
    assert paths_of(catalog, PhotoFilter(camera="apple iphone")) == {"/b/two.jpg"}
    assert int(catalog.get_setting(FILES_GENERATION_KEY)) == generation + 4

    catalog.apply(CatalogChanges(failures=[("/b/bad.jpg", "unreadable")]), model)
    assert int(catalog.get_setting(FILES_GENERATION_KEY)) == generation + 4  # files unchanged


def test_another_connections_writes_are_seen(catalog, tmp_path):
    add(catalog, entry("/a/one.jpg", width=10, height=20))
    portrait = PhotoFilter(orientation="portrait")
    assert paths_of(catalog, portrait) == {"/a/one.jpg"}
    with Catalog.open(tmp_path / "catalog.sqlite") as other:  # as another process would
        add(other, entry("/a/two.jpg", width=10, height=30))
    assert paths_of(catalog, portrait) == {"/a/one.jpg", "/a/two.jpg"}


def test_a_catalog_without_the_counter(catalog):
    add(catalog, entry("/a/one.jpg"))
    with sqlite3.connect(catalog.path) as connection:  # as a catalog from before the counter
        connection.execute("DELETE FROM settings WHERE key = ?", (FILES_GENERATION_KEY,))
    with Catalog.open(catalog.path) as old:
        assert paths_of(old, PhotoFilter(formats=("jpeg",))) == {"/a/one.jpg"}
        add(old, entry("/a/two.jpg"))
        assert old.get_setting(FILES_GENERATION_KEY) == "1"
        assert paths_of(old, PhotoFilter(formats=("jpeg",))) == {"/a/one.jpg", "/a/two.jpg"}


def test_rows_changed_behind_the_counter_are_read_again(catalog):
    add(catalog, entry("/a/one.jpg"), entry("/a/two.jpg"))
    assert len(catalog.ids_matching(PhotoFilter(formats=("JPEG",)))) == 2
    with sqlite3.connect(catalog.path) as connection:  # a write that did not bump it
        connection.execute("DELETE FROM files WHERE path = '/a/one.jpg'")
    assert paths_of(catalog, PhotoFilter(camera="x", lens="y")) == set()  # new groups: re-read
    assert paths_of(catalog, PhotoFilter(folder="/a")) == {"/a/two.jpg"}


def test_recovery_bumps_the_files_generation(catalog):
    add(catalog, entry("/a/one.jpg"))
    before = int(catalog.get_setting(FILES_GENERATION_KEY))
    path = catalog.path
    catalog.close()
    recover_catalog(path)
    with Catalog.open(path) as recovered:
        assert int(recovered.get_setting(FILES_GENERATION_KEY)) == before + 1
        assert paths_of(recovered, PhotoFilter(folder="/a")) == {"/a/one.jpg"}


def test_filters_from_several_threads_while_files_change(catalog):
    add(catalog, *(entry(f"/a/{i}.jpg", latitude=1.0, longitude=1.0) for i in range(20)))
    where = PhotoFilter(near=(1.0, 1.0), within_km=1, folder="/a")
    counts, errors = [], []

    def search() -> None:
        try:
            for _ in range(30):
                counts.append(len(catalog.ids_matching(where)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(20, 30):
        add(catalog, entry(f"/a/{i}.jpg", latitude=1.0, longitude=1.0))
    for thread in threads:
        thread.join()
    assert not errors and set(counts) <= set(range(20, 31))
    assert len(catalog.ids_matching(where)) == 30


def test_the_new_filters_through_the_engine(tmp_path, fake_model):
    photos = tmp_path / "photos"
    wide = camera_photo(photos / "2023" / "wide.jpg")  # 96 x 64, GPS 33.85 S 70.5 W
    tall = photos / "2024" / "tall.png"
    tall.parent.mkdir(parents=True)
    picture(1, (40, 90)).save(tall)
    photo_folder(photos / "other", 3, start_seed=5)
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        engine.index(photos)

        def found(**conditions) -> set[str]:
            return {
                hit.path for hit in engine.search("a photo", k=10, where=PhotoFilter(**conditions))
            }

        assert found(orientation="portrait") == {str(tall)}
        assert found(path_glob="2023/*") == {str(wide)}
        assert found(near=(-33.9, -70.5), within_km=10) == {str(wide)}
        assert found(near=(-33.9, -70.5), within_km=1) == set()
        assert found(folders=(photos / "2023", photos / "2024")) == {str(wide), str(tall)}
        assert len(found(path_glob=str(photos / "other" / "*"))) == 3
        new = camera_photo(photos / "2023" / "more.jpg", seed=9)
        engine.index(photos)  # the engine's own writes invalidate the snapshot
        assert found(path_glob="2023/*") == {str(wide), str(new)}
