"""From a query vector or a tag to ranked hits: the vector index, tag filters, catalog rows.

A hit is only returned while its file exists: one stat per hit, so a folder moved or deleted
since the last index run never shows up as a result (the results say which files were gone).
Arguments are checked once, by the engine, before anything here runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from searchclip._results import SearchHit, SearchResults

if TYPE_CHECKING:
    from searchclip._catalog import Catalog, FileRecord, IndexState
    from searchclip._filters import PhotoFilter
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
        where: PhotoFilter | None = None,
    ) -> SearchResults:
        """The ``k`` images nearest to ``query`` (a (1, dim) float32 row) that pass the tag
        filter and still exist on disk. ``far``: the query lies apart from every image vector
        (a text vector)."""
        index = self._vectors.current(state)
        allowed = self._allowed_ids(index, tags, not_tags, where)
        if allowed is not None and not len(allowed):
            return SearchResults()
        fetch = k
        while True:  # ask for more while files that are gone take places in the top k
            scores, ids = index.search(query, fetch, allowed=allowed, far=far)
            results = self.hits(ids[0], scores[0], k)
            exhausted = ids.shape[1] < fetch or bool((ids[0] < 0).any())
            if len(results) == k or exhausted:
                return results
            fetch *= 4

    def tagged(
        self,
        label: str,
        k: int,
        tags: Sequence[str],
        not_tags: Sequence[str],
        where: PhotoFilter | None = None,
    ) -> SearchResults:
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
        if where is not None:
            keep = set(self._catalog.ids_matching(where).tolist())
            scored = {file_id: s for file_id, s in scored.items() if file_id in keep}
        best = sorted(scored.items(), key=lambda item: (-item[1], item[0]))
        return self.hits([file_id for file_id, _ in best], [score for _, score in best], k)

    def _allowed_ids(
        self,
        index: VectorIndex,
        tags: Sequence[str],
        not_tags: Sequence[str],
        where: PhotoFilter | None,
    ) -> np.ndarray | None:
        """The ids the tag and metadata filters keep, by numpy set operations on the ids."""
        if not tags and not not_tags and where is None:
            return None
        tagger = self._tagger()

        def ids_with(label: str) -> np.ndarray:
            found = tagger.files_with(label)
            return np.fromiter(found, dtype=np.int64, count=len(found))

        allowed = index.ids() if not tags else ids_with(tags[0])
        if where is not None:
            allowed = np.intersect1d(allowed, self._catalog.ids_matching(where), assume_unique=True)
        for label in tags[1:]:
            allowed = np.intersect1d(allowed, ids_with(label), assume_unique=True)
        for label in not_tags:
            allowed = np.setdiff1d(allowed, ids_with(label), assume_unique=True)
        return allowed

    def hits(self, ids: Sequence[int], scores: Sequence[float], k: int) -> SearchResults:
        """The first ``k`` hits of ``ids`` (best first) whose file is still on disk; the files
        that are gone are named in ``missing``. Ids whose file left the catalog since the
        vector file was read are skipped. Candidates are looked up in slices of what is still
        wanted, so a long candidate list (every tagged image) costs no more than it must."""
        kept: list[tuple[float, FileRecord]] = []
        missing: list[str] = []
        start = 0
        while len(kept) < k and start < len(ids):
            end = start + k - len(kept)
            chunk = [int(i) for i in ids[start:end]]
            records = self._catalog.files_by_id(i for i in chunk if i >= 0)
            for score, file_id in zip(scores[start:end], chunk, strict=True):
                record = records.get(file_id)
                if record is None:
                    continue
                if os.path.exists(record.path):
                    kept.append((float(score), record))
                else:
                    missing.append(record.path)
            start = end
        hits = [
            SearchHit(
                rank, score, record.path, record.width, record.height, record.size, record.metadata
            )
            for rank, (score, record) in enumerate(kept, start=1)
        ]
        return SearchResults(hits, tuple(missing))
