"""Recovering what SQLite can still read from a damaged catalog into a new one.

Each table is read in key order, a chunk at a time, so damage costs the rows on the damaged
pages, not the table: when a chunk cannot be read, the reader probes ever further ahead for a
key it can seek to again, then halves its way back to the first readable key after the damage
(a few dozen probes a damaged region). The rows are written into a fresh catalog made by
searchclip's own migrations; rows whose parent row was lost (a vector without its file) are
dropped; the vectors generation is bumped so the vector file is rebuilt from what was
recovered, and the files generation so that no filter reads columns cached before. The
damaged file is kept beside it as ``catalog.sqlite.damaged-YYYYmmdd-HHMMSS``.

The caller holds the index's write lock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from searchclip._catalog.catalog import GENERATION_KEY
from searchclip._catalog.connection import open_database
from searchclip._catalog.filter_columns import FILES_GENERATION_KEY

_CHUNK = 500
# Parents first, so that a child row's parent is in the new file before the orphan sweep; with
# each table's key, the first column of which the reader skips damage by.
_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("settings", ("rowid",)),
    ("models", ("id",)),
    ("files", ("id",)),
    ("vectors", ("rowid",)),
    ("failures", ("rowid",)),
    ("vocabularies", ("id",)),
    ("labels", ("rowid",)),
    ("tagged", ("file_id", "vocabulary_id")),
    ("tags", ("file_id", "vocabulary_id", "position")),
)
# Rows that lost their parent row, deleted after the copy (the schema's foreign keys).
_ORPHANS = (
    # a file whose vector was lost leaves the index, so that the next run encodes it again
    ("files", "id NOT IN (SELECT file_id FROM vectors)"),
    ("vectors", "file_id NOT IN (SELECT id FROM files) OR model_id NOT IN (SELECT id FROM models)"),
    ("vocabularies", "model_id NOT IN (SELECT id FROM models)"),
    ("labels", "vocabulary_id NOT IN (SELECT id FROM vocabularies)"),
    (
        "tagged",
        "file_id NOT IN (SELECT id FROM files) "
        "OR vocabulary_id NOT IN (SELECT id FROM vocabularies)",
    ),
    (
        "tags",
        "file_id NOT IN (SELECT id FROM files) "
        "OR vocabulary_id NOT IN (SELECT id FROM vocabularies)",
    ),
)


@dataclass(frozen=True)
class TableRecovery:
    """One table's recovery: rows copied, rows dropped for a lost parent, and how many
    stretches of keys could not be read (their rows are lost)."""

    table: str
    kept: int
    orphans: int
    unreadable_stretches: int


@dataclass(frozen=True)
class RecoveryReport:
    tables: tuple[TableRecovery, ...]
    damaged_copy: Path

    def kept(self, table: str) -> int:
        return next((t.kept - t.orphans for t in self.tables if t.table == table), 0)


def recover_catalog(path: Path) -> RecoveryReport:
    """Replace the damaged catalog at ``path`` by a new one holding every row SQLite can read."""
    fresh = path.with_name(f".{path.name}.recovering-{os.getpid()}")
    _remove_database(fresh)
    open_database(fresh).dispose()  # our migrations make the schema
    copied: dict[str, tuple[int, int]] = {}
    target = sqlite3.connect(fresh, isolation_level=None)
    try:
        target.execute("BEGIN")
        with contextlib.closing(_open_damaged(path)) as source:
            for table, key in _TABLES:
                copied[table] = _copy_table(source, target, table, key)
            _keep_id_sequence(source, target)
        orphans = {
            table: target.execute(f"DELETE FROM {table} WHERE {where}").rowcount
            for table, where in _ORPHANS
        }
        _bump_generation(target)
        target.execute("COMMIT")
    finally:
        target.close()
    damaged_copy = _swap_in(path, fresh)
    return RecoveryReport(
        tables=tuple(
            TableRecovery(table, kept, orphans.get(table, 0), stretches)
            for table, (kept, stretches) in copied.items()
        ),
        damaged_copy=damaged_copy,
    )


def _open_damaged(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
    # A flipped byte in a path must not stop the chunk it is in: keep it, visibly replaced.
    connection.text_factory = lambda data: data.decode("utf-8", errors="replace")
    return connection


def _copy_table(
    source: sqlite3.Connection, target: sqlite3.Connection, table: str, key: tuple[str, ...]
) -> tuple[int, int]:
    """Copy every readable row of ``table``; returns (rows copied, unreadable stretches)."""
    columns = _shared_columns(source, target, table)
    if not columns:
        return 0, 1
    listed = ", ".join(columns)
    keys = ", ".join(key)
    select = f"SELECT {keys}, {listed} FROM {table}"
    insert = f"INSERT OR IGNORE INTO {table} ({listed}) VALUES ({', '.join('?' * len(columns))})"
    width = len(key)
    after: tuple | None = None  # read up to this key (exclusive bound)...
    seek: int | None = None  # ...or, resuming after damage, from this first-column key on
    chunk, copied, stretches = _CHUNK, 0, 0
    while True:
        if seek is not None:
            where, args = f"WHERE {key[0]} >= ?", (seek,)
        elif after is not None:
            where, args = f"WHERE ({keys}) > ({', '.join('?' * width)})", after
        else:
            where, args = "", ()
        try:
            rows = source.execute(f"{select} {where} ORDER BY {keys} LIMIT {chunk}", args)
            rows = rows.fetchall()
        except sqlite3.DatabaseError:
            if chunk > 1:  # read up to the damage row by row
                chunk = 1
                continue
            stretches += 1
            start = seek + 1 if seek is not None else after[0] + 1 if after else 0
            seek = _next_readable_key(source, select, key[0], start)
            if seek is None:
                return copied, stretches
            chunk = _CHUNK
            continue
        if not rows:
            return copied, stretches
        target.executemany(insert, (row[width:] for row in rows))
        copied += len(rows)
        after, seek = tuple(rows[-1][:width]), None


def _next_readable_key(
    source: sqlite3.Connection, select: str, column: str, start: int
) -> int | None:
    """The smallest key >= ``start`` from which SQLite can read again, found by probing
    ahead in doubling steps and then halving back; None when nothing after is readable."""

    def readable(first: int) -> bool:
        try:
            query = f"{select} WHERE {column} >= ? ORDER BY {column} LIMIT 1"
            source.execute(query, (first,)).fetchall()
            return True
        except sqlite3.DatabaseError:
            return False

    if readable(start):
        return start
    step = 1
    while not readable(start + step):
        step *= 2
        if start + step > 2**62:  # keys are 64-bit: nothing readable after
            return None
    low, high = start + step // 2, start + step  # low: unreadable; high: readable
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if readable(middle) else (middle, high)
    return high


def _shared_columns(source: sqlite3.Connection, target: sqlite3.Connection, table: str):
    def columns(connection: sqlite3.Connection) -> list[str]:
        try:
            return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        except sqlite3.DatabaseError:
            return []

    old = set(columns(source))
    return [name for name in columns(target) if name in old]


def _keep_id_sequence(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    """Ids are never reused (a stale vector id must not alias a new file): keep the counter."""
    with contextlib.suppress(sqlite3.DatabaseError):
        for name, seq in source.execute("SELECT name, seq FROM sqlite_sequence").fetchall():
            target.execute(
                "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, name)
            )


def _bump_generation(target: sqlite3.Connection) -> None:
    """New generations: no vector file, and no filter's cached columns, of the damaged
    catalog's are taken as current."""
    for key in (GENERATION_KEY, FILES_GENERATION_KEY):
        row = target.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        generation = int(row[0]) + 1 if row and str(row[0]).isdigit() else 1
        target.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, str(generation))
        )


def _swap_in(path: Path, fresh: Path) -> Path:
    """Put ``fresh`` in ``path``'s place, keeping the damaged file (and its WAL, which belongs
    to it alone) under a dated name. At every moment ``path`` is either file, complete."""
    damaged = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.link(path, damaged)
    except OSError:  # a file system without hard links
        shutil.copy2(path, damaged)
    for suffix in ("-wal", "-journal"):
        journal = path.with_name(path.name + suffix)
        if journal.exists() and journal.stat().st_size:
            os.replace(journal, damaged.with_name(damaged.name + suffix))
        journal.unlink(missing_ok=True)
    path.with_name(path.name + "-shm").unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):  # closed cleanly, the fresh file has none left
        fresh.with_name(fresh.name + suffix).unlink(missing_ok=True)
    os.replace(fresh, path)
    return damaged


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
