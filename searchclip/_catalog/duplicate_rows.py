"""What near-duplicate reports read from and keep in the catalog: every file's content and
perceptual hashes, the hashes filled in for files indexed before they were computed, and the
embedding threshold fitted per model (a JSON setting)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
from sqlalchemy import Engine, and_, select, update

from searchclip._catalog import schema

_THRESHOLD_KEY = "duplicate_threshold:"  # + the model's name


class DuplicateRows:
    """The catalog's rows as near-duplicate reports need them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def hashes(self) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
        """Every file's (ids int64, content hashes, perceptual hashes int64, whether each
        perceptual hash is known), sorted by id."""
        files = schema.files.c
        query = select(files.id, files.content_hash, files.perceptual_hash).order_by(files.id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        ids = np.fromiter((row[0] for row in rows), np.int64, len(rows))
        known = np.fromiter((row[2] is not None for row in rows), bool, len(rows))
        hashes = np.fromiter((row[2] or 0 for row in rows), np.int64, len(rows))
        return ids, [row[1] for row in rows], hashes, known

    def without_perceptual_hash(self) -> list[tuple[int, str, str]]:
        """(id, path, content hash) of the files whose perceptual hash is not computed yet."""
        files = schema.files.c
        query = (
            select(files.id, files.path, files.content_hash)
            .where(files.perceptual_hash.is_(None))
            .order_by(files.id)
        )
        with self._engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def set_perceptual_hashes(self, found: Iterable[tuple[int, str, int]]) -> int:
        """Store (id, content hash, perceptual hash) rows, each only while the file still holds
        that content (an index run may have replaced it meanwhile); returns how many were."""
        files = schema.files.c
        stored = 0
        with self._engine.begin() as connection:
            for file_id, content_hash, value in found:
                result = connection.execute(
                    update(schema.files)
                    .where(and_(files.id == file_id, files.content_hash == content_hash))
                    .values(perceptual_hash=int(value))
                )
                stored += result.rowcount
        return stored

    def threshold(self, model: str) -> dict | None:
        """The threshold fit stored for ``model`` (see :meth:`set_threshold`), or None."""
        key = _THRESHOLD_KEY + model
        with self._engine.connect() as connection:
            value = connection.scalar(
                select(schema.settings.c.value).where(schema.settings.c.key == key)
            )
        try:
            fit = json.loads(value) if value else None
        except ValueError:  # a damaged setting is refitted, never an error
            return None
        return fit if isinstance(fit, dict) else None

    def set_threshold(self, model: str, fit: dict) -> None:
        """Keep ``model``'s threshold fit (plain JSON values) for the next report."""
        with self._engine.begin() as connection:
            connection.execute(
                schema.settings.insert()
                .prefix_with("OR REPLACE")
                .values(key=_THRESHOLD_KEY + model, value=json.dumps(fit, sort_keys=True))
            )
