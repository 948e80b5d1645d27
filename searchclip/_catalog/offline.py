"""Files whose volume is missing (an unmounted drive, a root that is gone): kept, marked offline.

An index run that finds a file's folder gone or empty marks the file offline instead of removing
it (``CatalogChanges.offline``); seeing it again, at its path or moved (a drive mounted
elsewhere), brings it back online with its id, vector and tags.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, select, update

from searchclip._catalog import schema

_CHUNK = 500  # ids per statement: well under SQLite's limit on bound parameters


def mark_offline(connection: Connection, ids: Sequence[int], now: float) -> None:
    """Mark ``ids`` offline, keeping the time of files already offline."""
    files = schema.files
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        connection.execute(
            update(files)
            .where(files.c.id.in_(chunk))
            .values(offline_since=func.coalesce(files.c.offline_since, now))
        )


def mark_online(connection: Connection, ids: Sequence[int]) -> None:
    files = schema.files
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        connection.execute(update(files).where(files.c.id.in_(chunk)).values(offline_since=None))


def offline_folders(connection: Connection) -> list[tuple[str, int, float]]:
    """(folder, offline files in it, the earliest time one went offline), by folder."""
    files = schema.files
    folder = func.coalesce(files.c.folder, files.c.path)  # a row from before folders: its path
    query = (
        select(folder, func.count(), func.min(files.c.offline_since))
        .where(files.c.offline_since.is_not(None))
        .group_by(folder)
        .order_by(folder)
    )
    return [(folder, count, since) for folder, count, since in connection.execute(query)]
