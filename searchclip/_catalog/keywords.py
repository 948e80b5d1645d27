"""People's own keywords (the ``keywords`` table), and the stored tags an XMP export writes.

Keywords come from a file's XMP sidecar or its embedded XMP/IPTC (``source``: "sidecar" or
"embedded"), read at indexing; a keyword filters like a tag. Matching is case-insensitive in
the Unicode sense, done in Python over the distinct keywords (SQLite's NOCASE and lower() fold
ASCII only), which the keyword index makes one short scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from sqlalchemy import Engine, and_, delete, distinct, func, select

from searchclip._catalog import schema

_CHUNK = 500  # ids per statement: well under SQLite's limit on bound parameters


class KeywordStore:
    """Keyword SQL, on the catalog's engine (reached as ``Catalog.keywords``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def replace(self, found: Mapping[int, Iterable[tuple[str, str]]]) -> None:
        """Make each file's keywords exactly ``found[file_id]`` ((keyword, source) pairs), in
        one transaction; a keyword from both sources is stored once, as from the sidecar."""
        ids = list(found)
        rows: dict[tuple[int, str], str] = {}
        for file_id, pairs in found.items():
            for keyword, source in pairs:
                if rows.get((file_id, keyword)) != "sidecar":
                    rows[(file_id, keyword)] = source
        with self._engine.begin() as connection:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                connection.execute(
                    delete(schema.keywords).where(schema.keywords.c.file_id.in_(chunk))
                )
            if rows:
                connection.exec_driver_sql(
                    "INSERT INTO keywords (file_id, keyword, source) VALUES (?, ?, ?)",
                    [(file_id, keyword, source) for (file_id, keyword), source in rows.items()],
                )

    def of(self, file_id: int) -> list[tuple[str, str]]:
        """(keyword, source) of one file, by keyword."""
        k = schema.keywords
        query = select(k.c.keyword, k.c.source).where(k.c.file_id == file_id).order_by(k.c.keyword)
        with self._engine.connect() as connection:
            return [(keyword, source) for keyword, source in connection.execute(query)]

    def ids_with(self, keyword: str) -> np.ndarray:
        """Ids of the files with ``keyword`` (any case), sorted."""
        k = schema.keywords
        wanted = keyword.casefold()
        with self._engine.connect() as connection:
            spellings = [
                stored
                for stored in connection.scalars(select(k.c.keyword).distinct())
                if stored.casefold() == wanted
            ]
            if not spellings:
                return np.empty(0, np.int64)
            query = select(k.c.file_id).where(k.c.keyword.in_(spellings)).distinct()
            ids = list(connection.scalars(query))
        return np.sort(np.array(ids, dtype=np.int64))

    def count(self) -> tuple[int, int]:
        """(files with keywords, distinct keywords)."""
        k = schema.keywords
        with self._engine.connect() as connection:
            files = connection.scalar(select(func.count(distinct(k.c.file_id))))
            words = connection.scalar(select(func.count(distinct(k.c.keyword))))
        return int(files or 0), int(words or 0)

    def files_under(self, root: str) -> list[tuple[int, str, float | None, bool]]:
        """(id, path, offline_since, has sidecar keywords) of each file at or inside ``root``."""
        f, k = schema.files, schema.keywords
        prefix = root.rstrip("/")
        inside = (f.c.path >= prefix + "/") & (f.c.path < prefix + "0")  # see Catalog.files_under
        from_sidecar = (
            select(k.c.file_id).where((k.c.file_id == f.c.id) & (k.c.source == "sidecar")).exists()
        )
        query = select(f.c.id, f.c.path, f.c.offline_since, from_sidecar).where(
            (f.c.path == root) | inside
        )
        with self._engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def tag_labels(self, vocabulary_id: int) -> list[tuple[int, str, float | None, list[str]]]:
        """(id, path, offline_since, labels best first) of every file the vocabulary scored,
        including those that got no tag (their stale sidecar keywords must go too)."""
        f, tagged, t, lab = schema.files, schema.tagged, schema.tags, schema.labels
        scored = (
            select(f.c.id, f.c.path, f.c.offline_since)
            .join(tagged, tagged.c.file_id == f.c.id)
            .where(tagged.c.vocabulary_id == vocabulary_id)
            .order_by(f.c.path)
        )
        labels = (
            select(t.c.file_id, lab.c.name)
            .join(
                lab, and_(lab.c.vocabulary_id == t.c.vocabulary_id, lab.c.position == t.c.position)
            )
            .where(t.c.vocabulary_id == vocabulary_id)
            .order_by(t.c.file_id, t.c.score.desc())
        )
        with self._engine.connect() as connection:
            by_file: dict[int, list[str]] = {}
            for file_id, name in connection.execute(labels):
                by_file.setdefault(file_id, []).append(name)
            return [
                (file_id, path, offline, by_file.get(file_id, []))
                for file_id, path, offline in connection.execute(scored)
            ]
