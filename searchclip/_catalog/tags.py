"""The catalog's tag tables: vocabularies, their cached label embeddings, tags per file.

A vocabulary row belongs to one model and one fingerprint (labels + prompts + templates), so a
cached embedding can never be used with another model or for edited content. Tagging the same
vocabulary name with new content replaces the old row, and its tags go with it (cascade).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, and_, delete, func, insert, select, update

from searchclip._catalog import schema

_LABEL_INDEX = next(i for i in schema.tags.indexes if i.name == "ix_tags_label_score")


@dataclass(frozen=True)
class VocabularyRecord:
    id: int
    name: str
    fingerprint: str
    rule: str | None


@dataclass(frozen=True)
class StoredTag:
    vocabulary: str
    label: str
    score: float


class TagStore:
    """Tag SQL, on the catalog's engine (reached as ``Catalog.tags``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- vocabularies and their label embeddings -------------------------------------------------

    def vocabulary(self, model_id: int, fingerprint: str) -> VocabularyRecord | None:
        v = schema.vocabularies
        query = select(v).where((v.c.model_id == model_id) & (v.c.fingerprint == fingerprint))
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return (
            None if row is None else VocabularyRecord(row.id, row.name, row.fingerprint, row.rule)
        )

    def vocabulary_named(self, model_id: int, name: str) -> VocabularyRecord | None:
        """The latest content tagged under ``name`` for this model."""
        v = schema.vocabularies
        query = (
            select(v)
            .where((v.c.model_id == model_id) & (v.c.name == name))
            .order_by(v.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return (
            None if row is None else VocabularyRecord(row.id, row.name, row.fingerprint, row.rule)
        )

    def add_vocabulary(
        self,
        model_id: int,
        name: str,
        fingerprint: str,
        label_names: Sequence[str],
        vectors: np.ndarray,
    ) -> VocabularyRecord:
        """Store a vocabulary's label embeddings, replacing older content of the same name."""
        v = schema.vocabularies
        with self._engine.begin() as connection:
            connection.execute(delete(v).where((v.c.model_id == model_id) & (v.c.name == name)))
            vocabulary_id = connection.execute(
                insert(v).values(
                    model_id=model_id, name=name, fingerprint=fingerprint, created_at=time.time()
                )
            ).inserted_primary_key[0]
            connection.execute(
                insert(schema.labels),
                [
                    {
                        "vocabulary_id": vocabulary_id,
                        "position": position,
                        "name": label,
                        "vector": np.ascontiguousarray(vector, dtype="<f4").tobytes(),
                    }
                    for position, (label, vector) in enumerate(
                        zip(label_names, vectors, strict=True)
                    )
                ],
            )
        return VocabularyRecord(vocabulary_id, name, fingerprint, None)

    def labels(self, vocabulary_id: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Label names, embeddings (L, dim) and calibrated thresholds (L,), NaN where none."""
        lab = schema.labels
        query = (
            select(lab.c.name, lab.c.vector, lab.c.threshold)
            .where(lab.c.vocabulary_id == vocabulary_id)
            .order_by(lab.c.position)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        names = [row.name for row in rows]
        vectors = np.stack([np.frombuffer(row.vector, dtype="<f4") for row in rows])
        thresholds = np.array(
            [np.nan if row.threshold is None else row.threshold for row in rows], np.float32
        )
        return names, vectors.astype(np.float32), thresholds

    def set_thresholds(self, vocabulary_id: int, thresholds: np.ndarray) -> None:
        lab = schema.labels
        with self._engine.begin() as connection:
            for position, threshold in enumerate(thresholds):
                connection.execute(
                    update(lab)
                    .where((lab.c.vocabulary_id == vocabulary_id) & (lab.c.position == position))
                    .values(threshold=None if np.isnan(threshold) else float(threshold))
                )

    def rule(self, vocabulary_id: int) -> str | None:
        """How the stored tags of this vocabulary were chosen (JSON), if it was ever run."""
        v = schema.vocabularies
        with self._engine.connect() as connection:
            return connection.scalar(select(v.c.rule).where(v.c.id == vocabulary_id))

    # --- tagging -----------------------------------------------------------------------------

    def untagged_vectors(
        self, vocabulary_id: int, model_id: int, dim: int, *, everything: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the files this vocabulary has not scored yet (or of all)."""
        vec, tagged = schema.vectors, schema.tagged
        done = select(tagged.c.file_id).where(tagged.c.vocabulary_id == vocabulary_id)
        query = select(vec.c.file_id, vec.c.vector).where(vec.c.model_id == model_id)
        if not everything:
            query = query.where(vec.c.file_id.not_in(done))
        query = query.order_by(vec.c.file_id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        blob = b"".join(row[1] for row in rows)
        return ids, np.frombuffer(blob, dtype="<f4").reshape(len(rows), dim).astype(np.float32)

    def write_tags(
        self,
        vocabulary_id: int,
        rule: str,
        scored: np.ndarray,
        file_ids: np.ndarray,
        positions: np.ndarray,
        scores: np.ndarray,
        *,
        replace: bool,
    ) -> None:
        """Record, in one transaction, the rule, that the files ``scored`` were scored, and
        their tags as parallel arrays; ``replace`` first drops every stored tag of the
        vocabulary (a new rule re-tags everything).

        A run that adds many rows (a first tagging, a re-tag) drops the per-label index and
        builds it again after the insert, which is several times faster than keeping it up to
        date row by row; inside the transaction, so a failure leaves the old index in place.
        Rows go through the driver's executemany as plain tuples, for the same reason.
        """
        tag_rows = list(
            zip(
                file_ids.tolist(),
                [vocabulary_id] * len(file_ids),
                positions.tolist(),
                scores.tolist(),
                strict=True,
            )
        )
        with self._engine.begin() as connection:
            stored = connection.scalar(select(func.count()).select_from(schema.tags))
            rebuild = len(tag_rows) > max(10_000, stored // 4)
            if rebuild:
                connection.exec_driver_sql(f"DROP INDEX IF EXISTS {_LABEL_INDEX.name}")
            if replace:
                for table in (schema.tags, schema.tagged):
                    connection.execute(delete(table).where(table.c.vocabulary_id == vocabulary_id))
            v = schema.vocabularies
            connection.execute(update(v).where(v.c.id == vocabulary_id).values(rule=rule))
            if len(scored):  # an empty list would run the statement once, unbound
                connection.exec_driver_sql(
                    "INSERT INTO tagged (file_id, vocabulary_id) VALUES (?, ?)",
                    [(file_id, vocabulary_id) for file_id in scored.tolist()],
                )
            if tag_rows:
                connection.exec_driver_sql(
                    "INSERT INTO tags (file_id, vocabulary_id, position, score) "
                    "VALUES (?, ?, ?, ?)",
                    tag_rows,
                )
            if rebuild:
                _LABEL_INDEX.create(connection)

    # --- reading tags ------------------------------------------------------------------------

    def tags_of(self, file_id: int) -> list[StoredTag]:
        t, lab, v = schema.tags, schema.labels, schema.vocabularies
        query = (
            select(v.c.name, lab.c.name, t.c.score)
            .join(
                lab, and_(lab.c.vocabulary_id == t.c.vocabulary_id, lab.c.position == t.c.position)
            )
            .join(v, v.c.id == t.c.vocabulary_id)
            .where(t.c.file_id == file_id)
            .order_by(t.c.score.desc())
        )
        with self._engine.connect() as connection:
            return [StoredTag(*row) for row in connection.execute(query)]

    def files_tagged(self, label: str, model_id: int) -> dict[int, float]:
        """file id → best score, for files carrying ``label`` in any vocabulary of the model."""
        t, lab, v = schema.tags, schema.labels, schema.vocabularies
        query = (
            select(t.c.file_id, func.max(t.c.score))
            .join(
                lab, and_(lab.c.vocabulary_id == t.c.vocabulary_id, lab.c.position == t.c.position)
            )
            .join(v, v.c.id == t.c.vocabulary_id)
            .where((lab.c.name == label) & (v.c.model_id == model_id))
            .group_by(t.c.file_id)
        )
        with self._engine.connect() as connection:
            return dict(connection.execute(query).all())

    def summary(self, model_id: int) -> list[tuple[str, int, int, int]]:
        """(name, labels, images scored, calibrated labels) of each vocabulary of the model."""
        v, lab, tagged = schema.vocabularies, schema.labels, schema.tagged
        query = select(v.c.id, v.c.name).where(v.c.model_id == model_id).order_by(v.c.name)
        rows = []
        with self._engine.connect() as connection:
            for vocabulary_id, name in connection.execute(query).all():
                count, calibrated = connection.execute(
                    select(func.count(), func.count(lab.c.threshold)).where(
                        lab.c.vocabulary_id == vocabulary_id
                    )
                ).one()
                scored = connection.scalar(
                    select(func.count()).where(tagged.c.vocabulary_id == vocabulary_id)
                )
                rows.append((name, count, scored, calibrated))
        return rows

    def known_labels(self, model_id: int) -> set[str]:
        lab, v = schema.labels, schema.vocabularies
        query = (
            select(lab.c.name)
            .join(v, v.c.id == lab.c.vocabulary_id)
            .where(v.c.model_id == model_id)
            .distinct()
        )
        with self._engine.connect() as connection:
            return set(connection.scalars(query))
