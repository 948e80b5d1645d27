"""Is a catalog file sound? SQLite's own checks, our schema's, and the vectors' sizes.

These read the file through a plain read-only ``sqlite3`` connection, not the SQLAlchemy
engine: a damaged catalog must be inspected without being opened for writing, upgraded or
trusted. A catalog the integrity check finds damaged is recovered by
:mod:`searchclip._catalog.recovery`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from searchclip._catalog.connection import BUSY_TIMEOUT_MS
from searchclip._catalog.migrate import HEAD_REVISION
from searchclip._errors import CatalogDamagedError

# How many problems SQLite lists before it stops: enough to see the damage, not a flood.
_MAX_REPORTED = 20


def catalog_problems(path: Path, *, quick: bool = False) -> list[str]:
    """What is wrong with the catalog at ``path``; [] when sound.

    ``quick`` runs SQLite's ``quick_check`` (the page structure, without cross-checking every
    index against its table: docs/benchmarks.md, "Checking a catalog"), else the full
    ``integrity_check``; both then check foreign keys, the schema revision and the vectors'
    sizes.
    """
    if path.stat().st_size == 0 and not _has_wal(path):
        return ["the catalog file is empty (0 bytes)"]
    try:
        with _read_only(path) as connection:
            pragma = "quick_check" if quick else "integrity_check"
            found = [row[0] for row in connection.execute(f"PRAGMA {pragma}({_MAX_REPORTED})")]
            if found != ["ok"]:
                # one line a problem (SQLite's may span lines, under a "*** in database" head)
                lines = [line.strip() for text in found for line in text.splitlines()]
                return [f"SQLite {pragma}: {line}" for line in lines if not line.startswith("***")]
            return [*_schema_problems(connection), *_foreign_key_problems(connection)]
    except sqlite3.DatabaseError as exc:
        return [f"SQLite cannot read it: {exc}"]


def raise_if_damaged(path: Path, *, quick: bool = True) -> None:
    """Raise CatalogDamagedError naming the first problem of the catalog at ``path``."""
    problems = catalog_problems(path, quick=quick)
    if problems:
        raise CatalogDamagedError(path, problems[0])


def vector_ids(path: Path, model_id: int) -> Iterator[int]:
    """The ids of the files that have a vector of the model ``model_id``, in order."""
    with _read_only(path) as connection:
        query = "SELECT file_id FROM vectors WHERE model_id = ? ORDER BY file_id"
        for (file_id,) in connection.execute(query, (model_id,)):
            yield file_id


def indexed_paths(path: Path) -> Iterator[tuple[int, str]]:
    """Every indexed file's (id, path), in path order."""
    with _read_only(path) as connection:
        yield from connection.execute("SELECT id, path FROM files ORDER BY path")


def _schema_problems(connection: sqlite3.Connection) -> list[str]:
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    if "alembic_version" not in tables:
        return ["it holds no schema revision (not made by searchclip's migrations)"]
    revisions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
    if revisions != [HEAD_REVISION]:
        # an older revision is upgraded when the index is next opened: not damage
        return [] if len(revisions) == 1 else [f"its schema revision is {revisions!r}"]
    wrong_sizes = connection.execute(
        "SELECT count(*) FROM vectors JOIN models ON models.id = vectors.model_id "
        "WHERE length(vectors.vector) != 4 * models.dim"
    ).fetchone()[0]
    if wrong_sizes:
        return [f"{wrong_sizes} stored vectors have the wrong size for their model"]
    return []


def _foreign_key_problems(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute("PRAGMA foreign_key_check").fetchmany(_MAX_REPORTED)
    return [f"a row of {table} refers to a missing row of {parent}" for table, _, parent, _ in rows]


def _has_wal(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.is_file() and wal.stat().st_size > 0


def _read_only(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A read-only connection that waits for writers like the catalog's own connections."""
    uri = path.absolute().as_uri() + "?mode=ro"
    return contextlib.closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000))
