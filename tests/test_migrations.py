"""The catalog's schema: built by the Alembic revisions, equal to ``schema.metadata``, and refused
(untouched) when it comes from a newer searchclip or is not a searchclip catalog at all."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import alembic.command
import alembic.operations
import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, Text, create_engine

from searchclip._catalog import schema
from searchclip._catalog.catalog import Catalog, CatalogChanges, FileEntry
from searchclip._catalog.migrate import HEAD_REVISION, head_revision, migrations_dir
from searchclip._errors import CatalogError, SchemaTooNewError

TABLES = {
    "settings",
    "models",
    "files",
    "vectors",
    "failures",
    "vocabularies",
    "labels",
    "tagged",
    "tags",
    "keywords",
}


def query(path: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` read straight through sqlite3, bypassing searchclip."""
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


def execute(path: Path, *statements: str) -> None:
    with closing(sqlite3.connect(path)) as connection, connection:
        for statement in statements:
            connection.execute(statement)


def tables(path: Path) -> set[str]:
    """The application's tables in the SQLite file (SQLite's own ``sqlite_*`` tables left out)."""
    rows = query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows if not name.startswith("sqlite_")}


def stamped_revision(path: Path) -> list[str]:
    return [version for (version,) in query(path, "SELECT version_num FROM alembic_version")]


def alembic_config(path: Path) -> Config:
    """A plain Alembic config, as the ``alembic`` command line would build (no connection)."""
    config = Config(output_buffer=io.StringIO())
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    return config


def new_catalog(path: Path) -> Path:
    Catalog.open(path).close()
    return path


def test_migrations_dir_holds_the_alembic_environment() -> None:
    directory = migrations_dir()
    assert (directory / "env.py").is_file()
    assert (directory / "versions").is_dir()
    assert any((directory / "versions").glob("*.py"))


def test_opening_a_missing_path_creates_a_catalog_at_head(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    assert not path.exists()

    new_catalog(path)

    assert path.is_file()
    assert stamped_revision(path) == [head_revision()]
    assert tables(path) == TABLES | {"alembic_version"}


@pytest.mark.parametrize("make_empty", ["zero_bytes", "sqlite_without_tables"])
def test_an_empty_database_is_upgraded_to_head(tmp_path: Path, make_empty: str) -> None:
    path = tmp_path / "catalog.sqlite"
    if make_empty == "zero_bytes":
        path.write_bytes(b"")
    else:
        # A written SQLite header, but no tables.
        execute(path, "CREATE TABLE scratch (x)", "DROP TABLE scratch")
        assert path.stat().st_size > 0
    assert tables(path) == set()

    new_catalog(path)

    assert stamped_revision(path) == [head_revision()]
    assert tables(path) == TABLES | {"alembic_version"}


def test_migrated_schema_equals_schema_metadata(tmp_path: Path) -> None:
    """Keeps ``schema.py`` and the revisions in ``migrations/versions`` telling the same story."""
    path = new_catalog(tmp_path / "catalog.sqlite")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_schema_comparison_notices_drift(tmp_path: Path) -> None:
    """The check above is not vacuous: a column or type that only schema.py has is reported."""
    path = new_catalog(tmp_path / "catalog.sqlite")
    drifted = MetaData()
    for table in schema.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["files"].append_column(Column("caption", Text, nullable=True))
    drifted.tables["models"].c.dim.type = Text()
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), drifted)
    finally:
        engine.dispose()
    # Column modifications come grouped in a list of tuples; the others are plain tuples.
    kinds = {change[0] if isinstance(change, tuple) else change[0][0] for change in diff}
    assert kinds == {"add_column", "modify_type"}


def test_alembic_command_upgrade_and_downgrade(tmp_path: Path) -> None:
    """env.py's own branch (no connection handed in) works, as for the ``alembic`` command."""
    path = tmp_path / "catalog.sqlite"
    config = alembic_config(path)

    alembic.command.upgrade(config, "head")
    assert stamped_revision(path) == [head_revision()]
    assert tables(path) == TABLES | {"alembic_version"}

    alembic.command.downgrade(config, "base")
    assert tables(path) == {"alembic_version"}
    assert stamped_revision(path) == []

    alembic.command.upgrade(config, "head")  # and back up again
    assert tables(path) == TABLES | {"alembic_version"}


def test_alembic_command_upgrade_offline_renders_sql(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    config = alembic_config(path)

    alembic.command.upgrade(config, "head", sql=True)

    sql = config.output_buffer.getvalue()
    for table in TABLES:
        assert f"CREATE TABLE {table}" in sql
    assert "CREATE INDEX ix_files_content_hash" in sql
    assert f"'{head_revision()}'" in sql
    assert not path.exists() or tables(path) == set()  # offline mode touches no database


def test_reopening_an_up_to_date_catalog_runs_no_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog.sqlite"
    with Catalog.open(path) as catalog:
        model = catalog.set_model("tiny", 4)
        entry = FileEntry("/photos/a.jpg", 10, 1, "hash-a", 3, 2)
        catalog.apply(CatalogChanges(upserts=[(entry, np.ones(4, np.float32))]), model)

    def no_migration(*args, **kwargs):
        raise AssertionError("an up-to-date catalog must not be migrated")

    monkeypatch.setattr(alembic.command, "upgrade", no_migration)
    with Catalog.open(path) as catalog:
        assert catalog.model() == model
        assert list(catalog.files_under("/photos")) == ["/photos/a.jpg"]
    assert stamped_revision(path) == [head_revision()]


def test_catalog_from_a_newer_searchclip_is_refused_and_untouched(tmp_path: Path) -> None:
    path = new_catalog(tmp_path / "catalog.sqlite")
    execute(path, "UPDATE alembic_version SET version_num = '9999_future'")
    before = path.read_bytes()

    with pytest.raises(SchemaTooNewError, match="upgrade searchclip") as raised:
        Catalog.open(path)

    assert "9999_future" in str(raised.value)
    assert path.read_bytes() == before
    assert stamped_revision(path) == ["9999_future"]


def test_a_file_that_is_not_sqlite_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    before = path.read_bytes()

    # CatalogDamagedError, a CatalogError: the CLI then names `check --repair`, which keeps it
    with pytest.raises(CatalogError, match=r"is damaged \(file is not a database\)"):
        Catalog.open(path)

    assert path.read_bytes() == before


def foreign_database(path: Path) -> Path:
    """A SQLite database of some other application (default rollback journal, no alembic)."""
    execute(path, "CREATE TABLE foo (x INTEGER)", "INSERT INTO foo VALUES (1)")
    return path


def test_another_applications_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = foreign_database(tmp_path / "catalog.sqlite")

    with pytest.raises(CatalogError, match="not a searchclip catalog"):
        Catalog.open(path)

    assert tables(path) == {"foo"}


def test_another_applications_sqlite_database_is_left_byte_for_byte_untouched(
    tmp_path: Path,
) -> None:
    path = foreign_database(tmp_path / "catalog.sqlite")
    before = path.read_bytes()

    with pytest.raises(CatalogError):
        Catalog.open(path)

    assert path.read_bytes() == before


def test_a_failed_first_migration_leaves_a_catalog_that_opens_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog.sqlite"

    def interrupted(*args, **kwargs):
        raise RuntimeError("interrupted mid-migration")

    with monkeypatch.context() as patch:
        # 0001_initial creates settings, models and files, then fails on the files index.
        patch.setattr(alembic.operations.Operations, "create_index", interrupted)
        with pytest.raises(RuntimeError, match="interrupted"):
            Catalog.open(path)

    new_catalog(path)  # a plain retry must succeed
    assert stamped_revision(path) == [head_revision()]


@pytest.mark.parametrize("name", ["photos #1.sqlite", "what?.sqlite", "100%41.sqlite"])
def test_catalog_path_with_url_special_characters(tmp_path: Path, name: str) -> None:
    path = tmp_path / name

    new_catalog(path)

    assert sorted(os.listdir(tmp_path)) == [name]
    assert stamped_revision(path) == [head_revision()]


def test_head_revision_constant_is_alembics_head() -> None:
    """A new revision must bump HEAD_REVISION, or up-to-date catalogs would skip it."""
    assert head_revision() == HEAD_REVISION


def test_opening_a_current_catalog_does_not_import_alembic(tmp_path: Path) -> None:
    """A cold query skips Alembic (~0.1 s) when the schema is already at head."""
    path = tmp_path / "catalog.sqlite"
    Catalog.open(path).close()
    code = (
        "import sys; from searchclip._catalog.catalog import Catalog; "
        f"Catalog.open({str(path)!r}).close(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- an index from revision 0001, with rows in it ---------------------------------------------

FIRST_REVISION = "0001_initial"
MODEL_NAME = "/models/clip-from-0001"
OLD_DIM = 4


def _old_vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(OLD_DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


# What a catalog written at revision 0001 held, as that revision's tables stored it: the model
# name and vector generation in settings, vectors as little-endian float32 BLOBs, times as floats.
OLD_ROWS: dict[str, list[tuple]] = {
    "settings": [("model", MODEL_NAME), ("vectors_generation", "7")],
    "models": [(1, MODEL_NAME, OLD_DIM, 1700000000.25)],
    "files": [
        (1, "/photos/a.jpg", 1234, 1700000000123456789, "0" * 32, 640, 480, 1700000001.5),
        (2, "/photos/sub/b.png", 99, 1700000000000000001, "f" * 32, 48, 64, 1700000002.5),
        (5, "/photos/café ☕.jpg", 7, 1, "a" * 32, 1, 1, 1700000003.5),  # 3, 4, 6-8 removed
    ],
    "vectors": [
        (1, 1, _old_vector(1).astype("<f4").tobytes()),
        (2, 1, _old_vector(2).astype("<f4").tobytes()),
        (5, 1, _old_vector(5).astype("<f4").tobytes()),
    ],
    "failures": [
        ("/photos/broken.jpg", "truncated or corrupt image data", 1700000004.5),
        ("/photos/empty.jpg", "empty file", 1700000005.5),
    ],
}
OLD_COLUMNS = {
    "settings": "key, value",
    "models": "id, name, dim, created_at",
    "files": "id, path, size, mtime_ns, content_hash, width, height, indexed_at",
    "vectors": "file_id, model_id, vector",
    "failures": "path, reason, failed_at",
}


def catalog_at_first_revision(path: Path) -> Path:
    """A catalog built by revision 0001 alone, holding ``OLD_ROWS``."""
    alembic.command.upgrade(alembic_config(path), FIRST_REVISION)
    assert stamped_revision(path) == [FIRST_REVISION]
    with closing(sqlite3.connect(path)) as connection, connection:
        for table, rows in OLD_ROWS.items():
            marks = ", ".join("?" * len(rows[0]))
            connection.executemany(
                f"INSERT INTO {table} ({OLD_COLUMNS[table]}) VALUES ({marks})", rows
            )
        # as 0001's AUTOINCREMENT left it once files 6 to 8 were added and removed again
        connection.execute("UPDATE sqlite_sequence SET seq = 8 WHERE name = 'files'")
    return path


def test_a_catalog_from_revision_0001_keeps_every_row_when_opened(tmp_path: Path) -> None:
    path = catalog_at_first_revision(tmp_path / "catalog.sqlite")

    with Catalog.open(path) as catalog:  # the normal open path upgrades it
        model = catalog.model()
        assert (model.id, model.name, model.dim) == (1, MODEL_NAME, OLD_DIM)
        assert catalog.vectors_generation() == 7
        assert catalog.count_files() == 3
        files = catalog.files_under("/photos")
        assert {path: (f.id, f.size, f.mtime_ns, f.content_hash) for path, f in files.items()} == {
            row[1]: (row[0], row[2], row[3], row[4]) for row in OLD_ROWS["files"]
        }
        ids, vectors = catalog.all_vectors(model)
        assert ids.tolist() == [1, 2, 5]
        np.testing.assert_array_equal(vectors, np.stack([_old_vector(i) for i in (1, 2, 5)]))
        assert [(f.path, f.reason) for f in catalog.failures()] == [
            (row[0], row[1]) for row in OLD_ROWS["failures"]
        ]

    assert stamped_revision(path) == [head_revision()]
    assert tables(path) == TABLES | {"alembic_version"}
    for table, rows in OLD_ROWS.items():  # every value as it was, bit for bit
        assert query(path, f"SELECT {OLD_COLUMNS[table]} FROM {table} ORDER BY 1") == sorted(rows)
    for table in OLD_ROWS:  # columns later revisions added hold their defaults
        old = {name.strip() for name in OLD_COLUMNS[table].split(",")}
        for _, column, _, _, default, _ in query(path, f"PRAGMA table_info({table})"):
            if column not in old:
                expected = query(path, f"SELECT {default}") if default is not None else [(None,)]
                assert query(path, f"SELECT DISTINCT {column} FROM {table}") == expected, column
    for table in TABLES - OLD_ROWS.keys():  # the tables later revisions added start empty
        assert query(path, f"SELECT count(*) FROM {table}") == [(0,)]


def test_a_catalog_from_revision_0001_takes_new_rows_after_the_upgrade(tmp_path: Path) -> None:
    path = catalog_at_first_revision(tmp_path / "catalog.sqlite")

    with Catalog.open(path) as catalog:
        model = catalog.set_model(MODEL_NAME, OLD_DIM)
        assert model.id == 1  # the old row, not a second one
        entry = FileEntry("/photos/new.jpg", 10, 2, "b" * 32, 3, 2)
        catalog.apply(CatalogChanges(upserts=[(entry, _old_vector(9))]), model)
        new_id = catalog.files_under("/photos/new.jpg")["/photos/new.jpg"].id

    assert new_id == 9  # past the old ids, removed ones included: never reused
    assert query(path, "SELECT count(*) FROM files") == [(4,)]
    assert query(path, "SELECT value FROM settings WHERE key = 'vectors_generation'") == [("8",)]
