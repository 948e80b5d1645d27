"""The catalog's tables through SQLAlchemy 2.0: files, vectors, models, failures, settings.

The catalog is the index's source of truth; the FAISS file is derived from the vectors stored
here. Every change the indexer makes to one batch is applied in one transaction (``apply``), so
an interrupted run loses at most the batch in flight.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy import update as sql_update

from searchclip._catalog import schema
from searchclip._catalog.connection import open_database
from searchclip._catalog.duplicate_rows import DuplicateRows
from searchclip._catalog.filter_columns import FilterColumns, bump_files_generation
from searchclip._catalog.keywords import KeywordStore
from searchclip._catalog.migration import MigrationRows
from searchclip._catalog.offline import mark_offline, mark_online, offline_folders
from searchclip._catalog.photo_columns import metadata_from_row, metadata_summary, metadata_values
from searchclip._catalog.records import (
    CatalogChanges,
    FileEntry,
    FileRecord,
    IndexState,
    ModelRecord,
)
from searchclip._catalog.tags import TagStore
from searchclip._catalog.vector_reads import vector_chunks, vectors_keyed_by
from searchclip._errors import CatalogError
from searchclip._filters import PhotoFilter
from searchclip._id_subset import IdSubset
from searchclip._results import FailedFile

GENERATION_KEY = "vectors_generation"
_MODEL_KEY = "model"
PRECISION_KEY = "image_precision"
PRECISION_CHOICE_KEY = "image_precision_choice"


class Catalog:
    """An open catalog database (one per index directory)."""

    def __init__(self, engine: Engine, path: Path) -> None:
        self._engine = engine
        self.path = path
        self.tags = TagStore(engine)
        self.keywords = KeywordStore(engine)
        self.duplicate_rows = DuplicateRows(engine)  # near-duplicate reports' reads and writes
        self.migration = MigrationRows(engine)  # a pending switch to another model
        self._filter_columns = FilterColumns(engine)

    @classmethod
    def open(cls, path: str | Path) -> Catalog:
        """Open (creating if missing) the catalog at ``path`` and upgrade it to Alembic head."""
        path = Path(path)
        return cls(open_database(path), path)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- settings and model ------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self._engine.connect() as connection:
            return connection.scalar(
                select(schema.settings.c.value).where(schema.settings.c.key == key)
            )

    def set_setting(self, key: str, value: str) -> None:
        with self._engine.begin() as connection:
            _put_setting(connection, key, value)

    def model(self) -> ModelRecord | None:
        """The model this index was built with, or None for a new, empty index."""
        name = self.get_setting(_MODEL_KEY)
        if name is None:
            return None
        with self._engine.connect() as connection:
            row = connection.execute(
                select(schema.models).where(schema.models.c.name == name)
            ).one()
        return ModelRecord(row.id, row.name, row.dim)

    def set_model(self, name: str, dim: int) -> ModelRecord:
        """Record the model of a new index."""
        with self._engine.begin() as connection:
            row = connection.execute(
                select(schema.models.c.id, schema.models.c.dim).where(schema.models.c.name == name)
            ).first()
            if row is None:
                model_id = connection.execute(
                    insert(schema.models).values(name=name, dim=dim, created_at=time.time())
                ).inserted_primary_key[0]
            elif row.dim != dim:
                raise CatalogError(
                    f"model {name} is recorded with {row.dim} dimensions but now has {dim}"
                )
            else:
                model_id = row.id
            _put_setting(connection, _MODEL_KEY, name)
        return ModelRecord(model_id, name, dim)

    def state(self) -> IndexState:
        """The index's state, from one read transaction (a consistent snapshot under WAL)."""
        with self._engine.connect() as connection:
            settings = dict(
                connection.execute(select(schema.settings.c.key, schema.settings.c.value)).all()
            )
            model = None
            if _MODEL_KEY in settings:
                row = connection.execute(
                    select(schema.models).where(schema.models.c.name == settings[_MODEL_KEY])
                ).one()
                model = ModelRecord(row.id, row.name, row.dim)
            files = connection.scalar(select(func.count()).select_from(schema.files))
        return IndexState(
            model=model,
            generation=int(settings.get(GENERATION_KEY) or 0),
            files=files,
            precision=settings.get(PRECISION_KEY),
            precision_choice=settings.get(PRECISION_CHOICE_KEY) or "",
        )

    def set_precision(self, precision: str, choice: str) -> None:
        """Record the image precision of the index and why it was chosen, in one transaction."""
        with self._engine.begin() as connection:
            _put_setting(connection, PRECISION_KEY, precision)
            _put_setting(connection, PRECISION_CHOICE_KEY, choice)

    def vectors_generation(self) -> int:
        """A counter bumped by every change to the set of vectors (never by moves)."""
        return int(self.get_setting(GENERATION_KEY) or 0)

    # --- reads -------------------------------------------------------------------------------

    def count_files(self) -> int:
        with self._engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(schema.files))

    def has_files(self) -> bool:
        """Whether any file is indexed: one row read, where count_files scans them all."""
        with self._engine.connect() as connection:
            return connection.scalar(select(schema.files.c.id).limit(1)) is not None

    def metadata_summary(self) -> tuple[int, int, int, int]:
        """(files with metadata read, dated by EXIF, with a GPS position, distinct cameras)."""
        with self._engine.connect() as connection:
            return tuple(metadata_summary(connection))

    def ids_matching(self, where: PhotoFilter) -> np.ndarray:
        """The ids of the files that meet the metadata filter ``where``, sorted."""
        return self._filter_columns.ids_matching(where)

    def matching(self, where: PhotoFilter) -> IdSubset:
        """The files that meet ``where``, as a set whose id array is made only if needed."""
        return self._filter_columns.matching(where)

    def files_under(self, root: str) -> dict[str, FileRecord]:
        """Files whose path is ``root`` itself or lies inside the directory ``root``."""
        column = schema.files.c.path
        # A range on the unique path index: every path starting with "root/" sorts between
        # "root/" and "root0" ('0' is the character after '/').
        inside = (column >= root.rstrip("/") + "/") & (column < root.rstrip("/") + "0")
        query = select(schema.files).where((column == root) | inside)
        with self._engine.connect() as connection:
            return {row.path: _file_record(row) for row in connection.execute(query)}

    def offline_folders(self) -> list[tuple[str, int, float]]:
        """(folder, offline files in it, since when), for every folder holding offline files."""
        with self._engine.connect() as connection:
            return offline_folders(connection)

    def files_with_hash(self, content_hash: str) -> list[FileRecord]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(schema.files).where(schema.files.c.content_hash == content_hash)
            )
            return [_file_record(row) for row in rows]

    def content_hashes(self, model: ModelRecord) -> set[str]:
        """Hashes of every content that already has a vector for ``model``."""
        query = (
            select(schema.files.c.content_hash)
            .join(schema.vectors, schema.vectors.c.file_id == schema.files.c.id)
            .where(schema.vectors.c.model_id == model.id)
        )
        with self._engine.connect() as connection:
            return set(connection.scalars(query))

    def find_by_hash(
        self, content_hash: str, model: ModelRecord
    ) -> tuple[FileRecord, np.ndarray] | None:
        """A file with this content and its vector, so a copy or move need not be re-encoded."""
        query = (
            select(schema.files, schema.vectors.c.vector)
            .join(schema.vectors, schema.vectors.c.file_id == schema.files.c.id)
            .where(schema.files.c.content_hash == content_hash)
            .where(schema.vectors.c.model_id == model.id)
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return _file_record(row), np.frombuffer(row.vector, dtype="<f4").astype(np.float32)

    def all_vectors(self, model: ModelRecord) -> tuple[np.ndarray, np.ndarray]:
        """Every (id, vector) of ``model``, as int64 (n,) and float32 (n, dim) arrays, ids
        ascending. Read in chunks into arrays sized once: joining every row's blob first held
        the vectors four times over at the peak (docs/scale.md, the catalog at 10M rows)."""
        vectors_table = schema.vectors
        counting = select(func.count()).where(vectors_table.c.model_id == model.id)
        with self._engine.connect() as connection:  # one transaction: the count holds
            count = connection.scalar(counting.select_from(vectors_table))
            ids = np.empty(count, np.int64)
            vectors = np.empty((count, model.dim), np.float32)
            done = 0
            for chunk_ids, chunk in self._vector_chunks(connection, model, 16_384):
                ids[done : done + len(chunk_ids)] = chunk_ids
                vectors[done : done + len(chunk_ids)] = chunk
                done += len(chunk_ids)
        return ids, vectors

    def vector_chunks(
        self, model: ModelRecord, rows: int = 65_536
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every (ids, vectors) of ``model`` as :meth:`all_vectors` gives them, ``rows`` at a
        time, ids ascending, all from one read transaction: one snapshot, however long the
        caller takes between chunks (a large index's build)."""
        with self._engine.connect() as connection:
            yield from self._vector_chunks(connection, model, rows)

    def _vector_chunks(
        self, connection: Connection, model: ModelRecord, rows: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for ids, vectors in vector_chunks(connection, model.id, rows):
            if vectors.size != len(ids) * model.dim:
                wrong = f"{self.path} holds vectors of the wrong length for {model.name}"
                raise CatalogError(wrong)
            yield ids, vectors.reshape(len(ids), model.dim)

    def file_by_path(self, path: str) -> FileRecord | None:
        query = select(schema.files).where(schema.files.c.path == path)
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _file_record(row)

    def vectors_by_path(self, paths: Sequence[str], model: ModelRecord) -> dict[str, np.ndarray]:
        """path → stored vector, for those of ``paths`` that are indexed."""
        with self._engine.connect() as connection:
            return vectors_keyed_by(connection, schema.files.c.path, paths, model.id)

    def vectors_by_id(self, ids: Sequence[int], model: ModelRecord) -> np.ndarray:
        """The stored vectors of the files ``ids``, one row each in that order (float32, n x
        dim); zeros for an id no longer indexed."""
        with self._engine.connect() as connection:
            found = vectors_keyed_by(connection, schema.files.c.id, [int(i) for i in ids], model.id)
        rows = np.zeros((len(ids), model.dim), np.float32)
        for row, file_id in enumerate(ids):
            if (vector := found.get(int(file_id))) is not None:
                rows[row] = vector
        return rows

    def files_by_id(self, ids: Iterable[int]) -> dict[int, FileRecord]:
        ids = list(ids)
        found: dict[int, FileRecord] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                query = select(schema.files).where(schema.files.c.id.in_(chunk))
                found.update((row.id, _file_record(row)) for row in connection.execute(query))
        return found

    def failures(self, root: str | None = None) -> list[FailedFile]:
        query = select(schema.failures.c.path, schema.failures.c.reason).order_by(
            schema.failures.c.path
        )
        if root is not None:
            column = schema.failures.c.path
            prefix = root.rstrip("/")
            query = query.where(
                (column == root) | ((column >= prefix + "/") & (column < prefix + "0"))
            )
        with self._engine.connect() as connection:
            return [FailedFile(path, reason) for path, reason in connection.execute(query)]

    # --- writes ------------------------------------------------------------------------------

    def apply(self, changes: CatalogChanges, model: ModelRecord) -> list[int]:
        """Apply one batch of changes in a single transaction; returns the ids of the upserted
        files, in the order of ``changes.upserts``."""
        if not changes:
            return []
        now = time.time()
        with self._engine.begin() as connection:
            _delete_files(connection, changes.removed)
            for file_id, entry in changes.restats:
                connection.execute(
                    sql_update(schema.files)
                    .where(schema.files.c.id == file_id)
                    .values(**_entry_values(entry), indexed_at=now)
                )
            upserted = [
                _upsert_file(connection, entry, vector, model, now)
                for entry, vector in changes.upserts
            ]
            paths_done = [entry.path for entry, _ in changes.upserts]
            paths_done += [entry.path for _, entry in changes.restats]
            _delete_failures(connection, paths_done + changes.cleared_failures)
            for path, reason in changes.failures:
                connection.execute(
                    schema.failures.insert()
                    .prefix_with("OR REPLACE")
                    .values(path=path, reason=reason, failed_at=now)
                )
            if changes.upserts or changes.removed:
                generation = int(_get_setting(connection, GENERATION_KEY) or 0) + 1
                _put_setting(connection, GENERATION_KEY, str(generation))
            mark_offline(connection, changes.offline, now)
            mark_online(connection, changes.online)
            if changes.upserts or changes.restats or changes.removed or changes.offline:
                bump_files_generation(connection)
        return upserted


def _get_setting(connection: Connection, key: str) -> str | None:
    return connection.scalar(select(schema.settings.c.value).where(schema.settings.c.key == key))


def _put_setting(connection: Connection, key: str, value: str) -> None:
    connection.execute(
        schema.settings.insert().prefix_with("OR REPLACE").values(key=key, value=value)
    )


def _entry_values(entry: FileEntry) -> dict:
    return {
        "path": entry.path,
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "content_hash": entry.content_hash,
        "width": entry.width,
        "height": entry.height,
        **metadata_values(entry.path, entry.metadata),
        "perceptual_hash": entry.perceptual_hash,
        "offline_since": None,  # a file the indexer has just seen is online
    }


def _upsert_file(
    connection: Connection, entry: FileEntry, vector: np.ndarray, model: ModelRecord, now: float
) -> int:
    values = _entry_values(entry)
    file_id = connection.scalar(select(schema.files.c.id).where(schema.files.c.path == entry.path))
    if file_id is None:
        file_id = connection.execute(
            insert(schema.files).values(**values, indexed_at=now)
        ).inserted_primary_key[0]
    else:
        connection.execute(
            sql_update(schema.files)
            .where(schema.files.c.id == file_id)
            .values(**values, indexed_at=now)
        )
        for table in (schema.tags, schema.tagged):  # new content: its tags must be re-scored
            connection.execute(delete(table).where(table.c.file_id == file_id))
        # and its vectors of other models (a pending migration's, a kept model's) re-encoded
        others = schema.vectors.c.model_id != model.id
        connection.execute(
            delete(schema.vectors).where(schema.vectors.c.file_id == file_id, others)
        )
    blob = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    if len(blob) != model.dim * 4:
        raise ValueError(f"vector of length {len(blob) // 4}, expected {model.dim}")
    connection.execute(
        schema.vectors.insert()
        .prefix_with("OR REPLACE")
        .values(file_id=file_id, model_id=model.id, vector=blob)
    )
    return int(file_id)


def _delete_files(connection: Connection, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        connection.execute(delete(schema.vectors).where(schema.vectors.c.file_id.in_(chunk)))
        connection.execute(delete(schema.files).where(schema.files.c.id.in_(chunk)))


def _delete_failures(connection: Connection, paths: Sequence[str]) -> None:
    for start in range(0, len(paths), 500):
        chunk = list(paths[start : start + 500])
        connection.execute(delete(schema.failures).where(schema.failures.c.path.in_(chunk)))


def _file_record(row) -> FileRecord:
    return FileRecord(
        path=row.path,
        size=row.size,
        mtime_ns=row.mtime_ns,
        content_hash=row.content_hash,
        width=row.width,
        height=row.height,
        metadata=metadata_from_row(row),
        perceptual_hash=row.perceptual_hash,
        id=row.id,
        offline_since=row.offline_since,
    )


__all__ = [
    "Catalog",
    "CatalogChanges",
    "FileEntry",
    "FileRecord",
    "IndexState",
    "ModelRecord",
]
