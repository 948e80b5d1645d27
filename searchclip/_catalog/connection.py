"""Opening a catalog database: the SQLite connection settings, WAL, the schema upgrade."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DatabaseError

from searchclip._catalog.migrate import upgrade_to_head
from searchclip._errors import CatalogDamagedError, CatalogError, IndexBusyError

# SQLite's words for a file whose pages are damaged (as opposed to busy, locked or missing).
DAMAGE_WORDS = ("malformed", "file is not a database", "database corrupt")


def looks_damaged(message: str) -> bool:
    """Whether an SQLite error message says the file itself is damaged."""
    return any(words in message for words in DAMAGE_WORDS)


# How long a statement waits for another connection's lock before SQLite says "locked".
BUSY_TIMEOUT_MS = 10_000


def open_database(path: Path) -> Engine:
    """An engine on the catalog at ``path`` (created if missing), upgraded to Alembic head.

    Raises CatalogError when the file is not a readable searchclip catalog.
    """
    # URL.create, not an f-string: a path with "?" or "%" must not be parsed as a URL.
    engine = create_engine(URL.create("sqlite", database=str(path)))
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    event.listen(engine, "handle_error", functools.partial(_damage_as_error, path))
    try:
        with engine.begin() as connection:
            _check_is_catalog(connection, path)
            upgrade_to_head(connection, where=str(path.parent))
        _use_wal(engine)  # only once the file is known to be ours
    except (DatabaseError, sqlite3.DatabaseError) as exc:
        engine.dispose()
        if "database is locked" in _first_line(exc):  # another process creating it right now
            raise IndexBusyError(
                f"another searchclip process is indexing into {path.parent}", index_dir=path.parent
            ) from None
        raise CatalogError(
            f"{path} is not a readable searchclip catalog ({_first_line(exc)})", path=path
        ) from None
    except BaseException:
        engine.dispose()
        raise
    return engine


def _on_connect(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling commits DDL implicitly, so a migration that failed
    # half-way would leave tables behind; take over BEGIN ourselves (SQLAlchemy's documented
    # recipe) so every migration and every batch is all-or-nothing.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # NORMAL sync in WAL mode is durable against a crash of the process (kill -9), the failure
    # that matters for a batch-committing indexer. These settings last only for the connection.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # 64 MB of page cache (default 2 MB): a tagging run inserts hundreds of thousands of rows
    # into the per-label index in random order, which thrashes a small cache.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _damage_as_error(path: Path, context: ExceptionContext) -> Exception | None:
    """SQLite finding the file damaged, in any statement, is a CatalogDamagedError (which the
    CLI answers with what to run) rather than a database error deep in some query."""
    message = _first_line(context.original_exception)
    return CatalogDamagedError(path, message) if looks_damaged(message) else None


def _on_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _use_wal(engine: Engine) -> None:
    """WAL lets queries read while an index run writes; set once, it persists in the file."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()


def _check_is_catalog(connection: Connection, path: Path) -> None:
    """Refuse a SQLite file that holds some other application's tables."""
    tables = {
        name
        for (name,) in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    if tables and "alembic_version" not in tables:
        raise CatalogError(f"{path} is a SQLite database, but not a searchclip catalog", path=path)


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).splitlines()[0] if str(original) else type(original).__name__
