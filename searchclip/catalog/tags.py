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

from searchclip.catalog import schema


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

    def set_rule(self, vocabulary_id: int, rule: str) -> bool:
        """Record how tags are chosen; a different rule than before drops the old tags."""
        v = schema.vocabularies
        with self._engine.begin() as connection:
            old = connection.scalar(select(v.c.rule).where(v.c.id == vocabulary_id))
            if old == rule:
                return False
            connection.execute(update(v).where(v.c.id == vocabulary_id).values(rule=rule))
            for table in (schema.tags, schema.tagged):
                connection.execute(delete(table).where(table.c.vocabulary_id == vocabulary_id))
        return True

    # --- tagging -----------------------------------------------------------------------------

    def untagged_vectors(
        self, vocabulary_id: int, model_id: int, dim: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the files this vocabulary has not scored yet."""
        vec, tagged = schema.vectors, schema.tagged
        done = select(tagged.c.file_id).where(tagged.c.vocabulary_id == vocabulary_id)
        query = (
            select(vec.c.file_id, vec.c.vector)
            .where((vec.c.model_id == model_id) & vec.c.file_id.not_in(done))
            .order_by(vec.c.file_id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        blob = b"".join(row[1] for row in rows)
        return ids, np.frombuffer(blob, dtype="<f4").reshape(len(rows), dim).astype(np.float32)

    def write_tags(
        self,
        vocabulary_id: int,
        scored: np.ndarray,
        file_ids: np.ndarray,
        positions: np.ndarray,
        scores: np.ndarray,
    ) -> None:
        """Record that the files ``scored`` were scored, and their tags as parallel arrays.

        Plain driver-level executemany on tuples: a tagging run writes hundreds of thousands
        of rows, and per-row statement building would cost more than scoring them.
        """
        with self._engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO tagged (file_id, vocabulary_id) VALUES (?, ?)",
                [(file_id, vocabulary_id) for file_id in scored.tolist()],
            )
            connection.exec_driver_sql(
                "INSERT INTO tags (file_id, vocabulary_id, position, score) VALUES (?, ?, ?, ?)",
                list(
                    zip(
                        file_ids.tolist(),
                        [vocabulary_id] * len(file_ids),
                        positions.tolist(),
                        scores.tolist(),
                        strict=True,
                    )
                ),
            )

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
