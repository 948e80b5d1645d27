"""Stored vectors read by file path or by file id, in chunks that SQLite's IN lists allow."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Column, Connection, select

from searchclip._catalog import schema

_CHUNK = 500


def vectors_keyed_by(
    connection: Connection, key: Column, keys: Sequence, model_id: int
) -> dict[object, np.ndarray]:
    """key → stored vector of ``model_id``, for those of ``keys`` (values of the files
    table's column ``key``) that are indexed."""
    files, vectors = schema.files, schema.vectors
    query = (
        select(key, vectors.c.vector)
        .select_from(files.join(vectors, vectors.c.file_id == files.c.id))
        .where(vectors.c.model_id == model_id)
    )
    found: dict[object, np.ndarray] = {}
    for start in range(0, len(keys), _CHUNK):
        rows = connection.execute(query.where(key.in_(list(keys[start : start + _CHUNK]))))
        found.update((value, np.frombuffer(blob, dtype="<f4")) for value, blob in rows)
    return found
