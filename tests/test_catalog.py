"""The SQLite catalog: model, atomic batches, prefix queries, vector BLOBs, WAL sharing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from searchclip._catalog import schema
from searchclip._catalog.catalog import (
    Catalog,
    CatalogChanges,
    FileEntry,
    FileRecord,
    ModelRecord,
)
from searchclip._errors import CatalogError
from searchclip._results import FailedFile

DIM = 4


def entry(path: str, content_hash: str = "hash", size: int = 100, mtime_ns: int = 1) -> FileEntry:
    return FileEntry(path, size, mtime_ns, content_hash, width=64, height=48)


def vector(*values: float) -> np.ndarray:
    return np.array(values or [0.5] * DIM, dtype=np.float32)


def random_vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def raw(catalog: Catalog, sql: str, *params) -> list[tuple]:
    """A query straight through sqlite3, bypassing the Catalog under test."""
    connection = sqlite3.connect(catalog.path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog.open(tmp_path / "catalog.sqlite") as opened:
        yield opened


@pytest.fixture
def model(catalog: Catalog) -> ModelRecord:
    return catalog.set_model("tiny-clip", DIM)


def upsert(catalog: Catalog, model: ModelRecord, *pairs: tuple[FileEntry, np.ndarray]) -> None:
    catalog.apply(CatalogChanges(upserts=list(pairs)), model)


def record(catalog: Catalog, path: str) -> FileRecord:
    return catalog.files_under(path)[path]


def stored_vector(catalog: Catalog, model: ModelRecord, file_id: int) -> np.ndarray:
    ids, vectors = catalog.all_vectors(model)
    (row,) = np.flatnonzero(ids == file_id)
    return vectors[row]


# --- model ------------------------------------------------------------------------------------


def test_new_catalog_has_no_model_and_generation_zero(catalog: Catalog) -> None:
    assert catalog.model() is None
    assert catalog.vectors_generation() == 0
    assert catalog.count_files() == 0


def test_set_model_round_trips_across_reopen(catalog: Catalog) -> None:
    recorded = catalog.set_model("tiny-clip", DIM)

    assert recorded == ModelRecord(recorded.id, "tiny-clip", DIM)
    assert catalog.model() == recorded
    with Catalog.open(catalog.path) as reopened:
        assert reopened.model() == recorded


def test_set_model_twice_with_the_same_name_reuses_the_row(catalog: Catalog) -> None:
    first = catalog.set_model("tiny-clip", DIM)
    second = catalog.set_model("tiny-clip", DIM)

    assert second == first
    assert raw(catalog, "SELECT id, name, dim FROM models") == [(first.id, "tiny-clip", DIM)]


# --- apply ------------------------------------------------------------------------------------


def test_upserts_insert_rows_and_vectors(catalog: Catalog, model: ModelRecord) -> None:
    upsert(catalog, model, (entry("/p/a.jpg", "ha"), vector(1, 0, 0, 0)))
    upsert(catalog, model, (entry("/p/b.jpg", "hb"), vector(0, 1, 0, 0)))

    files = catalog.files_under("/p")
    assert sorted(files) == ["/p/a.jpg", "/p/b.jpg"]
    a = files["/p/a.jpg"]
    assert (a.path, a.size, a.mtime_ns, a.content_hash, a.width, a.height) == (
        "/p/a.jpg",
        100,
        1,
        "ha",
        64,
        48,
    )
    assert catalog.count_files() == 2
    np.testing.assert_array_equal(stored_vector(catalog, model, a.id), vector(1, 0, 0, 0))
    np.testing.assert_array_equal(
        stored_vector(catalog, model, files["/p/b.jpg"].id), vector(0, 1, 0, 0)
    )


def test_upsert_of_an_existing_path_keeps_its_id_and_replaces_its_vector(
    catalog: Catalog, model: ModelRecord
) -> None:
    upsert(catalog, model, (entry("/p/a.jpg", "old", size=1), vector(1, 0, 0, 0)))
    before = record(catalog, "/p/a.jpg")

    upsert(catalog, model, (entry("/p/a.jpg", "new", size=2), vector(0, 0, 0, 1)))

    after = record(catalog, "/p/a.jpg")
    assert after.id == before.id
    assert (after.content_hash, after.size) == ("new", 2)
    assert catalog.count_files() == 1
    np.testing.assert_array_equal(stored_vector(catalog, model, after.id), vector(0, 0, 0, 1))
    assert raw(catalog, "SELECT count(*) FROM vectors") == [(1,)]


def test_restat_changes_path_and_stat_but_keeps_id_and_vector(
    catalog: Catalog, model: ModelRecord
) -> None:
    upsert(catalog, model, (entry("/p/a.jpg", "ha", size=1, mtime_ns=10), vector(1, 2, 3, 4)))
    original = record(catalog, "/p/a.jpg")

    moved = entry("/p/moved/a.jpg", "ha", size=5, mtime_ns=20)
    catalog.apply(CatalogChanges(restats=[(original.id, moved)]), model)

    files = catalog.files_under("/p")
    assert list(files) == ["/p/moved/a.jpg"]
    assert files["/p/moved/a.jpg"] == FileRecord(**vars(moved), id=original.id)
    np.testing.assert_array_equal(stored_vector(catalog, model, original.id), vector(1, 2, 3, 4))


def test_removed_deletes_rows_and_their_vectors(catalog: Catalog, model: ModelRecord) -> None:
    upsert(
        catalog,
        model,
        (entry("/p/a.jpg", "ha"), vector(1, 0, 0, 0)),
        (entry("/p/b.jpg", "hb"), vector(0, 1, 0, 0)),
    )
    a, b = record(catalog, "/p/a.jpg"), record(catalog, "/p/b.jpg")

    catalog.apply(CatalogChanges(removed=[a.id]), model)

    assert list(catalog.files_under("/p")) == ["/p/b.jpg"]
    assert raw(catalog, "SELECT file_id FROM vectors") == [(b.id,)]
    orphans = "SELECT count(*) FROM vectors WHERE file_id NOT IN (SELECT id FROM files)"
    assert raw(catalog, orphans) == [(0,)]
    assert catalog.find_by_hash("ha", model) is None


def test_removed_ids_are_never_reused(catalog: Catalog, model: ModelRecord) -> None:
    """FAISS ids are file ids: a new file must not take the id of a removed one."""
    upsert(catalog, model, (entry("/p/a.jpg"), vector()))
    old_id = record(catalog, "/p/a.jpg").id
    catalog.apply(CatalogChanges(removed=[old_id]), model)

    upsert(catalog, model, (entry("/p/b.jpg"), vector()))

    assert record(catalog, "/p/b.jpg").id > old_id


def test_failures_are_recorded_and_replaced(catalog: Catalog, model: ModelRecord) -> None:
    catalog.apply(CatalogChanges(failures=[("/p/bad.jpg", "not an image")]), model)
    catalog.apply(CatalogChanges(failures=[("/p/bad.jpg", "truncated image data")]), model)

    assert catalog.failures() == [FailedFile("/p/bad.jpg", "truncated image data")]
    assert raw(catalog, "SELECT count(*) FROM failures") == [(1,)]


def test_cleared_failures_are_removed(catalog: Catalog, model: ModelRecord) -> None:
    catalog.apply(
        CatalogChanges(failures=[("/p/bad.jpg", "not an image"), ("/p/worse.jpg", "empty")]),
        model,
    )

    catalog.apply(CatalogChanges(cleared_failures=["/p/bad.jpg"]), model)

    assert catalog.failures() == [FailedFile("/p/worse.jpg", "empty")]


def test_upsert_and_restat_of_a_path_clear_its_failure(
    catalog: Catalog, model: ModelRecord
) -> None:
    upsert(catalog, model, (entry("/p/old.jpg", "h"), vector()))
    old = record(catalog, "/p/old.jpg")
    failures = [("/p/fixed.jpg", "truncated"), ("/p/moved.jpg", "gone"), ("/p/other.jpg", "x")]
    catalog.apply(CatalogChanges(failures=failures), model)

    catalog.apply(
        CatalogChanges(
            upserts=[(entry("/p/fixed.jpg"), vector())],
            restats=[(old.id, entry("/p/moved.jpg", "h"))],
        ),
        model,
    )

    assert catalog.failures() == [FailedFile("/p/other.jpg", "x")]


def test_empty_changes_do_nothing(catalog: Catalog, model: ModelRecord) -> None:
    assert not CatalogChanges()
    catalog.apply(CatalogChanges(), model)
    assert catalog.vectors_generation() == 0


# --- vectors_generation -----------------------------------------------------------------------


def test_vectors_generation_counts_changes_to_the_set_of_vectors(
    catalog: Catalog, model: ModelRecord
) -> None:
    generation = catalog.vectors_generation
    assert generation() == 0

    upsert(catalog, model, (entry("/p/a.jpg", "ha"), vector()))
    assert generation() == 1

    a = record(catalog, "/p/a.jpg")
    catalog.apply(CatalogChanges(restats=[(a.id, entry("/p/b.jpg", "ha"))]), model)
    assert generation() == 1  # a move keeps the vector

    catalog.apply(CatalogChanges(failures=[("/p/bad.jpg", "not an image")]), model)
    catalog.apply(CatalogChanges(cleared_failures=["/p/bad.jpg"]), model)
    assert generation() == 1

    upsert(catalog, model, (entry("/p/b.jpg", "hb"), vector(0, 0, 1, 0)))  # same path, new content
    assert generation() == 2

    catalog.apply(CatalogChanges(removed=[a.id]), model)
    assert generation() == 3

    with Catalog.open(catalog.path) as reopened:
        assert reopened.vectors_generation() == 3


# --- atomicity --------------------------------------------------------------------------------


def test_a_failing_apply_leaves_nothing_of_its_batch(catalog: Catalog, model: ModelRecord) -> None:
    upsert(catalog, model, (entry("/p/kept.jpg", "hk"), vector(1, 0, 0, 0)))
    kept = record(catalog, "/p/kept.jpg")
    generation = catalog.vectors_generation()
    before = raw(catalog, "SELECT * FROM files ORDER BY id")

    batch = CatalogChanges(
        upserts=[
            (entry("/p/new.jpg", "hn"), vector(0, 1, 0, 0)),
            (entry("/p/kept.jpg", "changed"), vector(0, 0, 1, 0)),
            (entry("/p/wrong.jpg", "hw"), np.zeros(DIM + 1, np.float32)),
        ],
        removed=[kept.id],
        failures=[("/p/bad.jpg", "not an image")],
    )
    with pytest.raises(ValueError, match="expected 4"):
        catalog.apply(batch, model)

    assert raw(catalog, "SELECT * FROM files ORDER BY id") == before
    assert catalog.failures() == []
    assert catalog.vectors_generation() == generation
    ids, vectors = catalog.all_vectors(model)
    assert ids.tolist() == [kept.id]
    np.testing.assert_array_equal(vectors, [vector(1, 0, 0, 0)])


# --- files_under and failures(root) -----------------------------------------------------------

TREE = [
    "/x/a",  # a file at the root path itself
    "/x/a/1.jpg",
    "/x/a/deep/er/2.jpg",
    "/x/ab",
    "/x/ab/3.jpg",
    "/x/a-b/4.jpg",
    "/x/a.b/5.jpg",
    "/x/a0/6.jpg",
    "/x/b.jpg",
    "/x.jpg",
]
UNDER_X_A = ["/x/a", "/x/a/1.jpg", "/x/a/deep/er/2.jpg"]


def test_files_under_takes_the_root_and_everything_inside_it_only(
    catalog: Catalog, model: ModelRecord
) -> None:
    upsert(catalog, model, *[(entry(path), vector()) for path in TREE])

    assert sorted(catalog.files_under("/x/a")) == UNDER_X_A
    assert sorted(catalog.files_under("/x/a/")) == UNDER_X_A[1:]
    assert sorted(catalog.files_under("/x/a/deep")) == ["/x/a/deep/er/2.jpg"]
    assert list(catalog.files_under("/x/a/1.jpg")) == ["/x/a/1.jpg"]
    assert sorted(catalog.files_under("/x")) == sorted(set(TREE) - {"/x.jpg"})
    assert sorted(catalog.files_under("/")) == sorted(TREE)
    assert catalog.files_under("/nowhere") == {}
    records = catalog.files_under("/x/ab")
    assert sorted(records) == ["/x/ab", "/x/ab/3.jpg"]
    assert all(isinstance(r, FileRecord) and r.path == path for path, r in records.items())


def test_failures_filter_by_root_like_files_under(catalog: Catalog, model: ModelRecord) -> None:
    catalog.apply(CatalogChanges(failures=[(path, "bad") for path in TREE]), model)

    def failed_under(root: str | None) -> list[str]:
        return [failure.path for failure in catalog.failures(root)]

    assert failed_under("/x/a") == UNDER_X_A
    assert failed_under("/x/a/") == UNDER_X_A[1:]
    assert failed_under(None) == sorted(TREE)


# --- hashes -----------------------------------------------------------------------------------


def test_content_hashes_and_find_by_hash(catalog: Catalog, model: ModelRecord) -> None:
    assert catalog.content_hashes(model) == set()
    upsert(
        catalog,
        model,
        (entry("/p/a.jpg", "ha"), vector(1, 2, 3, 4)),
        (entry("/p/b.jpg", "hb"), vector(5, 6, 7, 8)),
        (entry("/p/copy-of-b.jpg", "hb"), vector(5, 6, 7, 8)),
    )

    assert catalog.content_hashes(model) == {"ha", "hb"}
    found = catalog.find_by_hash("ha", model)
    assert found is not None
    found_record, found_vector = found
    assert found_record == record(catalog, "/p/a.jpg")
    assert found_vector.dtype == np.float32
    np.testing.assert_array_equal(found_vector, vector(1, 2, 3, 4))
    found_b = catalog.find_by_hash("hb", model)
    assert found_b is not None
    assert found_b[0].path in {"/p/b.jpg", "/p/copy-of-b.jpg"}
    assert catalog.find_by_hash("unknown", model) is None


def test_hashes_are_per_model(catalog: Catalog, model: ModelRecord) -> None:
    upsert(catalog, model, (entry("/p/a.jpg", "ha"), vector()))
    other = catalog.set_model("other-clip", 8)

    assert catalog.content_hashes(other) == set()
    assert catalog.find_by_hash("ha", other) is None
    assert catalog.all_vectors(other)[0].shape == (0,)


# --- all_vectors and files_by_id --------------------------------------------------------------


def test_all_vectors_are_sorted_by_id_and_equal_to_what_was_stored(
    catalog: Catalog, model: ModelRecord
) -> None:
    paths = [f"/p/{name}.jpg" for name in "dcbae"]  # path order is not id order
    stored = {path: random_vector(seed) for seed, path in enumerate(paths)}
    upsert(catalog, model, *[(entry(path), stored[path]) for path in paths])
    catalog.apply(CatalogChanges(removed=[record(catalog, "/p/b.jpg").id]), model)
    upsert(catalog, model, (entry("/p/d.jpg"), stored["/p/d.jpg"] * 2))  # keeps its low id
    stored["/p/d.jpg"] = stored["/p/d.jpg"] * 2
    del stored["/p/b.jpg"]

    ids, vectors = catalog.all_vectors(model)

    assert ids.dtype == np.int64
    assert vectors.dtype == np.float32
    assert vectors.shape == (4, DIM)
    assert ids.tolist() == sorted(ids.tolist())
    by_id = catalog.files_by_id(ids.tolist())
    expected = np.stack([stored[by_id[file_id].path] for file_id in ids.tolist()])
    np.testing.assert_array_equal(vectors, expected)


def test_vector_chunks_stream_what_all_vectors_reads(catalog: Catalog, model: ModelRecord):
    upsert(catalog, model, *[(entry(f"/p/{i:03d}.jpg"), random_vector(i)) for i in range(23)])
    ids, vectors = catalog.all_vectors(model)
    chunks = list(catalog.vector_chunks(model, rows=5))
    assert [len(chunk_ids) for chunk_ids, _ in chunks] == [5, 5, 5, 5, 3]
    assert np.array_equal(np.concatenate([c for c, _ in chunks]), ids)
    assert np.array_equal(np.concatenate([v for _, v in chunks]), vectors)
    with catalog._engine.begin() as connection:  # a blob of another model's length
        connection.execute(
            schema.vectors.update()
            .where(schema.vectors.c.file_id == int(ids[7]))
            .values(vector=b"\0" * 12)
        )
    with pytest.raises(CatalogError, match="wrong length"):
        catalog.all_vectors(model)
    with pytest.raises(CatalogError, match="wrong length"):
        list(catalog.vector_chunks(model, rows=5))


def test_all_vectors_of_an_empty_catalog(catalog: Catalog, model: ModelRecord) -> None:
    ids, vectors = catalog.all_vectors(model)
    assert ids.shape == (0,)
    assert vectors.shape == (0, DIM)
    assert vectors.dtype == np.float32


def test_files_by_id_reads_more_ids_than_one_query_may_bind(
    catalog: Catalog, model: ModelRecord
) -> None:
    n = 1234
    upsert(catalog, model, *[(entry(f"/p/{i:05d}.jpg"), vector()) for i in range(n)])
    ids = catalog.all_vectors(model)[0].tolist()
    assert len(ids) == n

    found = catalog.files_by_id([*ids, 10**9])  # an unknown id is simply absent

    assert sorted(found) == ids
    assert all(found[file_id].id == file_id for file_id in ids)
    assert sorted(r.path for r in found.values()) == [f"/p/{i:05d}.jpg" for i in range(n)]
    assert catalog.files_by_id([]) == {}


# --- vector BLOBs -----------------------------------------------------------------------------


def awkward_vectors(count: int = 50) -> list[np.ndarray]:
    """Seeded random float32 vectors, mixed with zeros of both signs, subnormals and extremes."""
    rng = np.random.default_rng(20240611)
    info = np.finfo(np.float32)
    special = np.array(
        [0.0, -0.0, info.smallest_subnormal, -info.smallest_subnormal, info.tiny, info.max,
         -info.max, 1e-40, -3.4e38, 1.0, -1.0, info.eps],
        dtype=np.float32,
    )  # fmt: skip
    vectors = []
    for _ in range(count):
        magnitudes = 10.0 ** rng.integers(-40, 38, DIM)  # some underflow to subnormals
        values = (rng.standard_normal(DIM) * magnitudes).clip(info.min, info.max)
        values = values.astype(np.float32)
        replaced = rng.random(DIM) < 0.4
        values[replaced] = rng.choice(special, int(replaced.sum()))
        vectors.append(values)
    return vectors


def test_vectors_survive_the_blob_round_trip_bit_for_bit(
    catalog: Catalog, model: ModelRecord
) -> None:
    vectors = awkward_vectors()
    sample = np.stack(vectors)
    magnitude = np.abs(sample)
    assert ((sample == 0) & np.signbit(sample)).any()  # the sample does hold -0.0,
    assert ((magnitude > 0) & (magnitude < np.finfo(np.float32).tiny)).any()  # subnormals,
    assert (magnitude == np.finfo(np.float32).max).any()  # and the largest float32
    upsert(catalog, model, *[(entry(f"/p/{i:03d}.jpg", f"h{i}"), v) for i, v in enumerate(vectors)])

    ids, stored = catalog.all_vectors(model)
    by_id = catalog.files_by_id(ids.tolist())
    for file_id, got in zip(ids.tolist(), stored, strict=True):
        i = int(by_id[file_id].path[3:6])
        assert got.view(np.uint32).tolist() == vectors[i].view(np.uint32).tolist(), i
        found = catalog.find_by_hash(f"h{i}", model)
        assert found is not None
        assert found[1].view(np.uint32).tolist() == vectors[i].view(np.uint32).tolist(), i


def test_float64_and_non_contiguous_vectors_are_stored_as_float32(
    catalog: Catalog, model: ModelRecord
) -> None:
    wide = np.arange(2 * DIM, dtype=np.float64)[::2] / 3  # float64, strided
    upsert(catalog, model, (entry("/p/a.jpg"), wide))

    np.testing.assert_array_equal(catalog.all_vectors(model)[1], [wide.astype(np.float32)])
    assert raw(catalog, "SELECT length(vector) FROM vectors") == [(DIM * 4,)]


# --- two processes on one file ----------------------------------------------------------------


def test_two_catalogs_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    with Catalog.open(path) as indexer, Catalog.open(path) as reader:
        assert raw(indexer, "PRAGMA journal_mode") == [("wal",)]
        model = indexer.set_model("tiny-clip", DIM)
        assert reader.model() == model

        upsert(indexer, model, (entry("/p/a.jpg", "ha"), vector(1, 0, 0, 0)))
        assert reader.count_files() == 1
        assert reader.vectors_generation() == 1
        np.testing.assert_array_equal(reader.all_vectors(model)[1], [vector(1, 0, 0, 0)])

        reader.apply(CatalogChanges(failures=[("/p/bad.jpg", "not an image")]), model)
        assert indexer.failures() == [FailedFile("/p/bad.jpg", "not an image")]


def test_set_model_refuses_a_known_model_with_another_dimension(catalog: Catalog) -> None:
    catalog.set_model("tiny", DIM)
    with pytest.raises(CatalogError, match="recorded with 4 dimensions"):
        catalog.set_model("tiny", DIM * 2)
    assert catalog.model().dim == DIM
