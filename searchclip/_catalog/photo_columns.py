"""Photo metadata to and from the files table's columns (revision 0003)."""

from __future__ import annotations

import os

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
