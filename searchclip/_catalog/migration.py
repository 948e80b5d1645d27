"""A pending model switch in the catalog (``SearchEngine.migrate``): its settings, the new model's
vectors written beside the current model's, and the switch, in one transaction.

While a migration is pending, the settings name its model and precision; its vectors go into
the same ``vectors`` table under its own model id and never bump the vectors generation, so
queries (which read the current model's vectors only) neither see nor wait for them. The switch
checks inside its transaction that every file has a vector of the new model, makes it the
index's model (with its precision), bumps the generation and, unless the old model is kept,
deletes the old model's row: its vectors, vocabularies, label caches and tags go with it
(foreign keys, ON DELETE CASCADE).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, Engine, and_, delete, exists, func, insert, select, text

from searchclip._catalog import schema
from searchclip._catalog.filter_columns import bump_files_generation
from searchclip._catalog.records import ModelRecord
from searchclip._errors import CatalogError

PENDING_MODEL_KEY = "migration_model"
PENDING_PRECISION_KEY = "migration_image_precision"
PENDING_CHOICE_KEY = "migration_image_precision_choice"
PENDING_STARTED_KEY = "migration_started_at"
# A kept model's image precision and why, as JSON [precision, choice]: its vectors were encoded
# so, and switching back to it records it again.
KEPT_PRECISION_PREFIX = "kept_image_precision:"
_DUPLICATE_THRESHOLD_PREFIX = "duplicate_threshold:"  # duplicate_rows.py: fitted per model
_PENDING_KEYS = (PENDING_MODEL_KEY, PENDING_PRECISION_KEY, PENDING_CHOICE_KEY, PENDING_STARTED_KEY)
_CHUNK = 500


@dataclass(frozen=True)
class PendingMigration:
    """The model an index is being re-encoded with, its image precision once decided (None:
    not yet, ``auto`` chooses on the first batch) and when the migration began."""

    model: ModelRecord
    precision: str | None
    precision_choice: str
    started_at: float


@dataclass(frozen=True)
class LackingFile:
    """A file without a vector of the migration's model: what must be read to encode it."""

    id: int
    path: str
    content_hash: str


class MigrationIncomplete(CatalogError):
    """The switch found files without a vector of the new model (``lacking`` of them); the
    engine turns it into a report that says what the switch waits for."""

    def __init__(self, lacking: int) -> None:
        super().__init__(f"{lacking} images have no vector of the new model yet")
        self.lacking = lacking


@dataclass(frozen=True)
class Switched:
    """What the switch did: the models before and after, the new vectors generation, the
    vocabularies tagged with the old model that were dropped with it, and the offline files
    forgotten because they could not be encoded."""

    previous: ModelRecord
    model: ModelRecord
    generation: int
    dropped_vocabularies: tuple[str, ...]
    forgotten: int


class MigrationRows:
    """Migration SQL, on the catalog's engine (reached as ``Catalog.migration``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- the pending migration -----------------------------------------------------------------

    def pending(self) -> PendingMigration | None:
        with self._engine.connect() as connection:
            return _pending(connection)

    def model_named(self, name: str) -> ModelRecord | None:
        """The model row of ``name`` (kept, or pending), if the index has one."""
        models = schema.models
        with self._engine.connect() as connection:
            row = connection.execute(select(models).where(models.c.name == name)).first()
        return None if row is None else ModelRecord(row.id, row.name, row.dim)

    def begin(self, name: str, dim: int) -> PendingMigration:
        """Record a migration to ``name`` (its model row made if new), or return the pending
        one to the same model. A kept model's recorded precision comes back with it."""
        with self._engine.begin() as connection:
            found = _pending(connection)
            if found is not None:
                return found
            model = _model_row(connection, name, dim)
            kept = _get(connection, KEPT_PRECISION_PREFIX + name)
            precision, choice = json.loads(kept) if kept else (None, "")
            values = {PENDING_MODEL_KEY: name, PENDING_STARTED_KEY: repr(time.time())}
            if precision:
                values |= {PENDING_PRECISION_KEY: precision, PENDING_CHOICE_KEY: choice}
            for key, value in values.items():
                _put(connection, key, value)
            return _pending(connection) or PendingMigration(model, precision, choice, 0.0)

    def set_precision(self, precision: str, choice: str) -> None:
        """Record the new model's image precision (``auto``'s choice, or the one asked for)."""
        with self._engine.begin() as connection:
            _put(connection, PENDING_PRECISION_KEY, precision)
            _put(connection, PENDING_CHOICE_KEY, choice)

    def abandon(self, *, keep_vectors: bool) -> ModelRecord | None:
        """Forget the pending migration; its model's vectors too unless ``keep_vectors`` (a
        later migration to that model then resumes from them). Returns its model, if any."""
        with self._engine.begin() as connection:
            found = _pending(connection)
            if found is None:
                return None
            for key in _PENDING_KEYS:
                _delete_setting(connection, key)
            if keep_vectors and found.precision:
                kept = json.dumps([found.precision, found.precision_choice])
                _put(connection, KEPT_PRECISION_PREFIX + found.model.name, kept)
            elif not keep_vectors:
                _drop_model(connection, found.model)
            return found.model

    # --- the new model's vectors ---------------------------------------------------------------

    def copy_same_content(self, model: ModelRecord) -> int:
        """Give each file without a vector of ``model`` the vector of another file with the
        same content that has one (a copy, or a file moved since it was encoded): nothing to
        decode. Returns how many were copied."""
        statement = text(
            "INSERT INTO vectors (file_id, model_id, vector) "
            "SELECT f.id, :model, (SELECT v.vector FROM vectors v JOIN files g ON g.id = v.file_id"
            "  WHERE v.model_id = :model AND g.content_hash = f.content_hash LIMIT 1) "
            "FROM files f WHERE NOT EXISTS (SELECT 1 FROM vectors v"
            "  WHERE v.file_id = f.id AND v.model_id = :model) "
            "AND EXISTS (SELECT 1 FROM vectors v JOIN files g ON g.id = v.file_id"
            "  WHERE v.model_id = :model AND g.content_hash = f.content_hash)"
        )
        with self._engine.begin() as connection:
            return connection.execute(statement, {"model": model.id}).rowcount or 0

    def lacking(self, model: ModelRecord) -> list[LackingFile]:
        """The online files without a vector of ``model``, by id (offline ones cannot be read)."""
        files = schema.files
        query = (
            select(files.c.id, files.c.path, files.c.content_hash)
            .where(~_has_vector(model))
            .where(files.c.offline_since.is_(None))
            .order_by(files.c.id)
        )
        with self._engine.connect() as connection:
            return [LackingFile(*row) for row in connection.execute(query)]

    def counts(self, model: ModelRecord) -> tuple[int, int]:
        """(files with a vector of ``model``, files in the index), from one transaction."""
        files = schema.files
        with self._engine.connect() as connection:
            total = connection.scalar(select(func.count()).select_from(files))
            done = connection.scalar(
                select(func.count()).select_from(files).where(_has_vector(model))
            )
        return done, total

    def offline_lacking(self, model: ModelRecord) -> list[tuple[str, int, float]]:
        """(folder, files, offline since) of the offline files without a vector of ``model``:
        the folders that must come online before the switch."""
        files = schema.files
        folder = func.coalesce(files.c.folder, files.c.path)
        query = (
            select(folder, func.count(), func.min(files.c.offline_since))
            .where(files.c.offline_since.is_not(None))
            .where(~_has_vector(model))
            .group_by(folder)
            .order_by(folder)
        )
        with self._engine.connect() as connection:
            return [(path, count, since) for path, count, since in connection.execute(query)]

    def add_vectors(self, model: ModelRecord, rows: list[tuple[LackingFile, np.ndarray]]) -> int:
        """Store one batch of the new model's vectors in one transaction, each only where its
        file is still indexed with the content it was read as. Returns how many were stored."""
        stored = 0
        with self._engine.begin() as connection:
            for file, vector in rows:
                blob = np.ascontiguousarray(vector, dtype="<f4").tobytes()
                if len(blob) != model.dim * 4:
                    raise ValueError(f"vector of length {len(blob) // 4}, expected {model.dim}")
                same = connection.scalar(
                    select(schema.files.c.id).where(
                        (schema.files.c.id == file.id)
                        & (schema.files.c.content_hash == file.content_hash)
                    )
                )
                if same is None:
                    continue
                connection.execute(
                    schema.vectors.insert()
                    .prefix_with("OR REPLACE")
                    .values(file_id=file.id, model_id=model.id, vector=blob)
                )
                stored += 1
        return stored

    def kept_models(self, current: ModelRecord | None) -> list[tuple[ModelRecord, int]]:
        """Models other than ``current`` and the pending one that still hold vectors (kept by
        ``keep_old``), with their vector counts."""
        models, vectors = schema.models, schema.vectors
        query = (
            select(models.c.id, models.c.name, models.c.dim, func.count(vectors.c.file_id))
            .join(vectors, vectors.c.model_id == models.c.id)
            .group_by(models.c.id)
            .order_by(models.c.id)
        )
        with self._engine.connect() as connection:
            pending = _pending(connection)
            skip = {m.id for m in (current, pending and pending.model) if m}
            rows = connection.execute(query).all()
        return [(ModelRecord(i, name, dim), n) for i, name, dim, n in rows if i not in skip]

    # --- the switch ----------------------------------------------------------------------------

    def switch(self, *, keep_old: bool, forget_offline: bool) -> Switched:
        """Make the pending migration's model the index's, in one transaction (see the module's
        docstring). ``forget_offline`` first removes the offline files that lack a vector of the
        new model (indexed afresh when their volume is back).

        Raises MigrationIncomplete when a file still lacks a vector of the new model, and
        CatalogError when no migration is pending."""
        from searchclip._catalog.catalog import (
            _MODEL_KEY,
            GENERATION_KEY,
            PRECISION_CHOICE_KEY,
            PRECISION_KEY,
        )

        with self._engine.begin() as connection:
            found = _pending(connection)
            previous_name = _get(connection, _MODEL_KEY)
            if found is None or previous_name is None:
                raise CatalogError("no model migration is pending")
            new = found.model
            previous = _named(connection, previous_name)
            files = schema.files
            forgotten = []
            if forget_offline:
                forgotten = list(
                    connection.scalars(
                        select(files.c.id)
                        .where(files.c.offline_since.is_not(None))
                        .where(~_has_vector(new))
                    )
                )
                for start in range(0, len(forgotten), _CHUNK):
                    chunk = forgotten[start : start + _CHUNK]
                    connection.execute(delete(files).where(files.c.id.in_(chunk)))
            lacking = connection.scalar(
                select(func.count()).select_from(files).where(~_has_vector(new))
            )
            if lacking:
                raise MigrationIncomplete(lacking)  # the transaction rolls back: nothing forgotten
            old_precision = [
                _get(connection, PRECISION_KEY),
                _get(connection, PRECISION_CHOICE_KEY),
            ]
            precision = found.precision or old_precision[0] or "fp32"
            choice = found.precision_choice if found.precision else (old_precision[1] or "")
            _put(connection, _MODEL_KEY, new.name)
            _put(connection, PRECISION_KEY, precision)
            _put(connection, PRECISION_CHOICE_KEY, choice)
            generation = int(_get(connection, GENERATION_KEY) or 0) + 1
            _put(connection, GENERATION_KEY, str(generation))
            bump_files_generation(connection)  # cached filter answers, and forgotten files
            for key in _PENDING_KEYS:
                _delete_setting(connection, key)
            _delete_setting(connection, KEPT_PRECISION_PREFIX + new.name)
            dropped: tuple[str, ...] = ()
            if keep_old:
                kept = json.dumps([old_precision[0] or "fp32", old_precision[1] or ""])
                _put(connection, KEPT_PRECISION_PREFIX + previous.name, kept)
            else:
                dropped = _drop_model(connection, previous)
        return Switched(previous, new, generation, dropped, len(forgotten))


def _has_vector(model: ModelRecord):
    vectors = schema.vectors
    return exists().where(
        and_(vectors.c.file_id == schema.files.c.id, vectors.c.model_id == model.id)
    )


def _pending(connection: Connection) -> PendingMigration | None:
    name = _get(connection, PENDING_MODEL_KEY)
    if name is None:
        return None
    return PendingMigration(
        _named(connection, name),
        _get(connection, PENDING_PRECISION_KEY),
        _get(connection, PENDING_CHOICE_KEY) or "",
        float(_get(connection, PENDING_STARTED_KEY) or 0.0),
    )


def _named(connection: Connection, name: str) -> ModelRecord:
    row = connection.execute(select(schema.models).where(schema.models.c.name == name)).one()
    return ModelRecord(row.id, row.name, row.dim)


def _model_row(connection: Connection, name: str, dim: int) -> ModelRecord:
    models = schema.models
    row = connection.execute(select(models).where(models.c.name == name)).first()
    if row is None:
        values = {"name": name, "dim": dim, "created_at": time.time()}
        model_id = connection.execute(insert(models).values(**values)).inserted_primary_key[0]
        return ModelRecord(model_id, name, dim)
    if row.dim != dim:
        raise CatalogError(f"model {name} is recorded with {row.dim} dimensions but now has {dim}")
    return ModelRecord(row.id, row.name, row.dim)


def _drop_model(connection: Connection, model: ModelRecord) -> tuple[str, ...]:
    """Delete ``model``'s row, and with it (cascade) its vectors, vocabularies, label caches
    and tags, and its settings; returns the names of the vocabularies that went."""
    vocabularies = schema.vocabularies
    names = connection.scalars(
        select(vocabularies.c.name).where(vocabularies.c.model_id == model.id).distinct()
    )
    dropped = tuple(sorted(names))
    connection.execute(delete(schema.models).where(schema.models.c.id == model.id))
    for prefix in (KEPT_PRECISION_PREFIX, _DUPLICATE_THRESHOLD_PREFIX):
        _delete_setting(connection, prefix + model.name)
    return dropped


def _get(connection: Connection, key: str) -> str | None:
    return connection.scalar(select(schema.settings.c.value).where(schema.settings.c.key == key))


def _put(connection: Connection, key: str, value: str) -> None:
    connection.execute(
        schema.settings.insert().prefix_with("OR REPLACE").values(key=key, value=value)
    )


def _delete_setting(connection: Connection, key: str) -> None:
    connection.execute(delete(schema.settings).where(schema.settings.c.key == key))
