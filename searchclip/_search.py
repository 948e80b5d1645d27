"""From a query vector or a tag to ranked hits: the vector index, tag filters, catalog rows.

Arguments are checked once, by the engine, before anything here runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from searchclip._results import SearchHit

if TYPE_CHECKING:
    from searchclip._catalog import Catalog, IndexState
    from searchclip._tagging import Tagger
    from searchclip._vector_index import VectorIndex
    from searchclip._vector_store import VectorStore


class Searcher:
    """Nearest-neighbour and tag queries over one index; safe to share between threads (it
    holds no per-query state)."""

    def __init__(
        self, catalog: Catalog, vectors: VectorStore, tagger: Callable[[], Tagger]
    ) -> None:
        self._catalog = catalog
        self._vectors = vectors
        self._tagger = tagger

    def nearest(
        self,
        state: IndexState,
        query: np.ndarray,
        k: int,
        tags: Sequence[str],
        not_tags: Sequence[str],
        *,
        far: bool,
    ) -> list[SearchHit]:
        """The ``k`` images nearest to ``query`` (a (1, dim) float32 row) that pass the tag
        filter. ``far``: the query lies apart from every image vector (a text vector)."""
        index = self._vectors.current(state)
        allowed = self._allowed_ids(index, tags, not_tags)
        if allowed is not None and not len(allowed):
            return []
        scores, ids = index.search(query, k, allowed=allowed, far=far)
        return self.hits(ids[0], scores[0])

    def tagged(
        self, label: str, k: int, tags: Sequence[str], not_tags: Sequence[str]
    ) -> list[SearchHit]:
        """The ``k`` images tagged ``label`` (and every one of ``tags``, and none of
        ``not_tags``), by their score for ``label``, best first."""
        tagger = self._tagger()
        scored = tagger.files_with(label)
        for other in tags:
            keep = tagger.files_with(other)
            scored = {file_id: s for file_id, s in scored.items() if file_id in keep}
        for other in not_tags:
            for file_id in tagger.files_with(other):
                scored.pop(file_id, None)
        best = sorted(scored.items(), key=lambda item: (-item[1], item[0]))[:k]
        return self.hits([file_id for file_id, _ in best], [score for _, score in best])

    def _allowed_ids(
        self, index: VectorIndex, tags: Sequence[str], not_tags: Sequence[str]
    ) -> np.ndarray | None:
        """The ids a tag filter keeps, by numpy set operations on the tagged ids."""
        if not tags and not not_tags:
            return None
        tagger = self._tagger()

        def ids_with(label: str) -> np.ndarray:
            found = tagger.files_with(label)
            return np.fromiter(found, dtype=np.int64, count=len(found))

        allowed = index.ids() if not tags else ids_with(tags[0])
        for label in tags[1:]:
            allowed = np.intersect1d(allowed, ids_with(label), assume_unique=True)
        for label in not_tags:
            allowed = np.setdiff1d(allowed, ids_with(label), assume_unique=True)
        return allowed

    def hits(self, ids: Sequence[int], scores: Sequence[float]) -> list[SearchHit]:
        """Hits for ``ids`` (best first), skipping ids whose file left the catalog since the
        vector file was read."""
        records = self._catalog.files_by_id(int(i) for i in ids)
        found = [
            (float(score), records[int(file_id)])
            for score, file_id in zip(scores, ids, strict=True)
            if int(file_id) in records
        ]
        return [
            SearchHit(rank, score, record.path, record.width, record.height)
            for rank, (score, record) in enumerate(found, start=1)
        ]
