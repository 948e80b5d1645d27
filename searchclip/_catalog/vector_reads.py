"""Stored vectors: by file path or by file id (in chunks that SQLite's IN lists allow), or all
of a model's, in id order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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


def vector_chunks(
    connection: Connection, model_id: int, rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, float32 vectors, flat) of ``model_id``, ``rows`` at a time, ids ascending."""
    table = schema.vectors
    query = select(table.c.file_id, table.c.vector).where(table.c.model_id == model_id)
    query = query.order_by(table.c.file_id).limit(rows)
    after = -1
    while fetched := connection.execute(query.where(table.c.file_id > after)).all():
        ids = np.fromiter((row[0] for row in fetched), dtype=np.int64, count=len(fetched))
        vectors = np.frombuffer(b"".join(row[1] for row in fetched), dtype="<f4")
        yield ids, vectors.astype(np.float32, copy=False)  # read-only, as the blobs are
        after = int(ids[-1])
