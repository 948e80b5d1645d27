"""Photo metadata to and from the files table's columns (revision 0003)."""

from __future__ import annotations

import os

import numpy as np
from sqlalchemy import func, select

from searchclip._catalog import schema
from searchclip._filters import PhotoFilter
from searchclip._results import PhotoMetadata

_FIELDS = (
    "taken_at",
    "taken_at_source",
    "utc_offset_minutes",
    "camera_make",
    "camera_model",
    "lens",
    "latitude",
    "longitude",
    "format",
)


def metadata_values(path: str, metadata: PhotoMetadata | None) -> dict:
    """The columns of one file's row; a file whose metadata was not read keeps NULLs."""
    values = {"folder": os.path.dirname(path)}
    if metadata is not None:
        values.update((field, getattr(metadata, field)) for field in _FIELDS)
    return values


def metadata_from_row(row) -> PhotoMetadata | None:
    """The metadata of a files row; None while it has not been read."""
    if row.taken_at_source is None:
        return None
    return PhotoMetadata(**{field: getattr(row, field) for field in _FIELDS})


def metadata_summary(connection) -> tuple[int, int, int, int]:
    """(files whose metadata was read, dated by EXIF, with a GPS position, distinct cameras)."""
    return connection.exec_driver_sql(
        "SELECT count(taken_at_source), count(CASE WHEN taken_at_source = 'exif' THEN 1 END), "
        "count(latitude), count(DISTINCT camera_make || '|' || camera_model) FROM files"
    ).one()


def matching_ids(connection, where: PhotoFilter) -> np.ndarray:
    """The ids of the files whose metadata meets every condition of ``where``, sorted."""
    files = schema.files
    conditions = []
    start, end = where.taken_from_seconds, where.taken_until_seconds
    if start is not None:
        conditions.append(files.c.taken_at >= start)
    if end is not None:
        conditions.append(files.c.taken_at < end)
    if where.camera is not None:  # "Apple", "iPhone 13" and "apple iphone" all match
        make, model = (
            func.coalesce(column, "") for column in (files.c.camera_make, files.c.camera_model)
        )
        camera = make + " " + model
        conditions.append(camera.ilike(_contains(where.camera), escape="\\"))
    if where.lens is not None:
        conditions.append(files.c.lens.ilike(_contains(where.lens), escape="\\"))
    folder = where.folder_path
    if folder is not None:
        prefix = folder.rstrip("/") + "/"
        # a range on path, not LIKE: the unique index on path serves it, and "%" or "_" in a
        # folder name mean themselves
        conditions.append((files.c.path >= prefix) & (files.c.path < prefix[:-1] + "0"))
    if where.formats:
        conditions.append(files.c.format.in_(where.formats))
    if where.has_location is not None:
        has = files.c.latitude.is_not(None)
        conditions.append(has if where.has_location else ~has)
    if where.min_width is not None:
        conditions.append(files.c.width >= where.min_width)
    if where.min_height is not None:
        conditions.append(files.c.height >= where.min_height)
    query = select(files.c.id).where(*conditions).order_by(files.c.id)
    ids = connection.scalars(query).all()
    return np.fromiter(ids, dtype=np.int64, count=len(ids))


def _contains(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
