"""The files table's filterable columns as numpy arrays, for photo metadata filters.

SQLite answers a wide filter (a year, a camera, "has GPS") by visiting one row per kept id;
numpy compares whole columns at once (docs/benchmarks.md, section "Photo metadata filters
at a million images (issue 14)"). So
each catalog keeps a snapshot of the columns its filters read, loaded on first use and
reloaded when the files table has changed since: every transaction that changes files bumps
the ``files_generation`` setting (``bump_files_generation``), and each filter reads it first
(one small query). A snapshot holds only the column groups asked for so far, each loaded
with the counter in one read transaction, so every group describes the same rows.

Text columns are coded: the distinct values once, a small integer per row; a condition on
text is decided on the distinct values and then looked up per row.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection, Engine, select

from searchclip._catalog import schema
from searchclip._catalog.filter_match import Coded, Located, groups_needed, matching_rows
from searchclip._catalog.path_glob import Paths
from searchclip._errors import CatalogError
from searchclip._filters import PhotoFilter
from searchclip._id_subset import IdSubset

FILES_GENERATION_KEY = "files_generation"


def bump_files_generation(connection: Connection) -> None:
    """Say, inside the transaction that changes the files table, that it changed."""
    settings = schema.settings
    value = connection.scalar(
        select(settings.c.value).where(settings.c.key == FILES_GENERATION_KEY)
    )
    connection.execute(
        settings.insert()
        .prefix_with("OR REPLACE")
        .values(key=FILES_GENERATION_KEY, value=str(int(value or 0) + 1))
    )


def files_generation(connection: Connection) -> int:
    """The counter; 0 in a catalog no change has bumped yet (or one from before it)."""
    settings = schema.settings
    value = connection.scalar(
        select(settings.c.value).where(settings.c.key == FILES_GENERATION_KEY)
    )
    return int(value or 0)


@dataclass(frozen=True)
class _Snapshot:
    """The columns of one generation of the files table; never changed once made (readers
    share it without a lock), only replaced."""

    generation: int
    ids: np.ndarray  # sorted; row i of every group is the file ids[i]
    groups: dict[str, object] = field(default_factory=dict)


class FilterColumns:
    """A catalog's column snapshot and the filters evaluated on it; safe to share between
    threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def ids_matching(self, where: PhotoFilter) -> np.ndarray:
        """The ids of the files that meet ``where``, sorted (int64)."""
        return self.matching(where).ids

    def matching(self, where: PhotoFilter) -> IdSubset:
        """The files that meet ``where``, as a set whose id array is made only if asked for."""
        wanted = groups_needed(where)
        with self._engine.connect() as connection:
            generation = files_generation(connection)
        snapshot = self._snapshot
        if snapshot is None or snapshot.generation != generation or wanted - snapshot.groups.keys():
            snapshot = self._refreshed(wanted)
        return IdSubset(snapshot.ids, matching_rows(where, snapshot.groups, len(snapshot.ids)))

    def _refreshed(self, wanted: set[str]) -> _Snapshot:
        with self._lock, self._engine.connect() as connection:
            # One read transaction: the counter and every column read belong together.
            generation = files_generation(connection)
            snapshot = self._snapshot
            if snapshot is None or snapshot.generation != generation:
                snapshot = _Snapshot(generation, _read_only(_load_ids(connection)))
            try:
                snapshot = _with_groups(connection, snapshot, wanted)
            except _StaleRows:  # rows changed under an unchanged counter: read them all again
                snapshot = _Snapshot(generation, _read_only(_load_ids(connection)))
                snapshot = _with_groups(connection, snapshot, wanted)
            self._snapshot = snapshot
        return snapshot


def _with_groups(connection: Connection, snapshot: _Snapshot, wanted: set[str]) -> _Snapshot:
    missing = wanted - snapshot.groups.keys()
    if not missing:
        return snapshot
    groups = dict(snapshot.groups)
    for name in sorted(missing):
        groups[name] = _LOADERS[name](connection, snapshot.ids)
    return _Snapshot(snapshot.generation, snapshot.ids, groups)


class _StaleRows(Exception):
    """A column read does not line up with the snapshot's ids: the files table changed
    without its counter (a write from outside the catalog)."""


# --- loading ---------------------------------------------------------------------------------
# Python's sqlite3 builds a tuple per row, the bulk of a load: integers therefore travel as one
# group_concat string parsed by numpy, and text columns as one id list per distinct value.
# Floats keep a row each, as group_concat would print them with 15 digits, not exactly.


def _ints(text: str | None) -> np.ndarray:
    if not text:
        return np.empty(0, np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",")


def _raw(connection: Connection):
    """The DBAPI connection under ``connection``, in the same transaction."""
    return connection.connection.driver_connection


def _load_ids(connection: Connection) -> np.ndarray:
    text = connection.exec_driver_sql(
        "SELECT group_concat(id) FROM (SELECT id FROM files ORDER BY id)"
    ).scalar()
    return _ints(text)


def _load_taken(connection: Connection, ids: np.ndarray) -> np.ndarray:
    # 9e999 is SQLite's infinity: NULL as a float fromiter can take, NaN after
    rows = _raw(connection).execute("SELECT ifnull(taken_at, 9e999) FROM files ORDER BY id")
    taken = _counted(np.float64, itertools.chain.from_iterable(rows), len(ids))
    taken[np.isinf(taken)] = np.nan
    return _read_only(taken)


def _load_size(connection: Connection, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    widths, heights = connection.exec_driver_sql(
        "SELECT group_concat(width), group_concat(height) "
        "FROM (SELECT width, height FROM files ORDER BY id)"
    ).one()
    width, height = (_ints(text).astype(np.int32) for text in (widths, heights))
    if not len(width) == len(height) == len(ids):
        raise _StaleRows
    return _read_only(width), _read_only(height)


def _load_location(connection: Connection, ids: np.ndarray) -> Located:
    rows = _raw(connection).execute(
        "SELECT id, latitude, ifnull(longitude, 9e999) FROM files WHERE latitude IS NOT NULL"
    )
    flat = np.fromiter(itertools.chain.from_iterable(rows), np.float64).reshape(-1, 3)
    order = np.argsort(flat[:, 0], kind="stable")
    flat = flat[order]
    rows_of = _rows_of(ids, flat[:, 0].astype(np.int64))
    longitude = flat[:, 2].copy()
    longitude[np.isinf(longitude)] = np.nan
    latitude = _read_only(flat[:, 1].copy())
    return Located(_read_only(rows_of), latitude, _read_only(longitude), len(ids))


def _grouped(sql: str, value: Callable[[tuple], str | None]) -> Callable:
    """A loader of one text column, from ``sql``: each distinct value's row, then its ids."""

    def load(connection: Connection, ids: np.ndarray) -> Coded:
        codes = np.full(len(ids), -1, np.int32)
        values = []
        for row in connection.exec_driver_sql(sql):
            codes[_rows_of(ids, _ints(row[-1]))] = len(values)
            values.append(value(row))
        if len(ids) and codes.min() < 0:
            raise _StaleRows
        return Coded(tuple(values), _read_only(codes))

    return load


def _load_folder(connection: Connection, ids: np.ndarray) -> Coded:
    coded = _grouped("SELECT folder, group_concat(id) FROM files GROUP BY folder", _first)(
        connection, ids
    )
    if None not in coded.values:
        return coded
    # Rows from before revision 0003 whose metadata was not read yet: their path says.
    values, codes = list(coded.values), coded.codes.copy()
    known = {folder: code for code, folder in enumerate(values)}
    rows = connection.exec_driver_sql("SELECT id, path FROM files WHERE folder IS NULL")
    for file_id, path in rows:
        folder = os.path.dirname(path)
        code = known.setdefault(folder, len(known))
        if code == len(values):
            values.append(folder)
        codes[_rows_of(ids, np.array([file_id]))] = code
    return Coded(tuple(values), _read_only(codes))


def _load_paths(connection: Connection, ids: np.ndarray) -> Paths:
    # char(0) between paths: the one character no path holds
    listed, joined = connection.exec_driver_sql(
        "SELECT group_concat(id), group_concat(path, char(0)) "
        "FROM (SELECT id, path FROM files ORDER BY id)"
    ).one()
    if not np.array_equal(_ints(listed), ids):
        raise _StaleRows
    paths = Paths.joined(joined)
    if len(paths.bounds) != len(ids) + 1:
        raise CatalogError("a path in the catalog holds a NUL character")
    return paths


def _first(row: tuple) -> str | None:
    return row[0]


def _camera(row: tuple) -> str:
    # make and model joined as the filter reads them: "Apple iPhone 13"
    return f"{row[0] or ''} {row[1] or ''}"


_LOADERS: dict[str, Callable[[Connection, np.ndarray], object]] = {
    "taken": _load_taken,
    "size": _load_size,
    "location": _load_location,
    "camera": _grouped(
        "SELECT camera_make, camera_model, group_concat(id) FROM files "
        "GROUP BY camera_make, camera_model",
        _camera,
    ),
    "lens": _grouped("SELECT lens, group_concat(id) FROM files GROUP BY lens", _first),
    "format": _grouped("SELECT format, group_concat(id) FROM files GROUP BY format", _first),
    "folder": _load_folder,
    "paths": _load_paths,
}


def _rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The rows of ``wanted`` ids in the snapshot's sorted ``ids``."""
    rows = np.searchsorted(ids, wanted)
    if len(wanted) and (rows.max() >= len(ids) or not np.array_equal(ids[rows], wanted)):
        raise _StaleRows
    return rows


def _counted(dtype, values, count: int) -> np.ndarray:
    try:
        array = np.fromiter(values, dtype, count=count)
    except ValueError:  # fewer rows than ids
        raise _StaleRows from None
    if next(iter(values), None) is not None:
        raise _StaleRows
    return array


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
