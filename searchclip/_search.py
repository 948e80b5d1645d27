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

from searchclip import _relevance as relevance
from searchclip._errors import InvalidArgumentError
from searchclip._query_scoring import EncodedQuery, penalised_scores
from searchclip._results import SearchHit, SearchResults

SAMPLE_SIZE = 4096  # enough for a mean and a spread to two digits

if TYPE_CHECKING:
    from searchclip._catalog import Catalog, FileRecord, IndexState
    from searchclip._encoders.base import MatchProbability
    from searchclip._filters import PhotoFilter
    from searchclip._id_subset import IdSubset
    from searchclip._relevance import RelevanceCutoff
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
        self._cached_sample: tuple[int, np.ndarray] | None = None  # (generation, vectors)
        self._background_separation: tuple[tuple[int, int], float] | None = None

    def nearest(
        self,
        state: IndexState,
        query: EncodedQuery,
        k: int | None,
        tags: Sequence[str],
        not_tags: Sequence[str],
        *,
        where: PhotoFilter | None = None,
        min_score: float | None = None,
        background: Callable[[], np.ndarray] | None = None,
        probability: MatchProbability | None = None,
    ) -> SearchResults:
        """The ``k`` images (``None``: every one) scoring highest for ``query`` (at least
        ``min_score`` if given) that pass the filters and still exist on disk. With
        ``background`` (the vectors of the background captions, made on demand) the minimum
        score is the relevance cut-off of :mod:`searchclip._relevance`; with ``probability`` too
        (a sigmoid model's, for a text query) it is that model's match probability cut-off.

        Candidates come from the index by their positive score, in growing batches. A negative
        term's penalty only lowers a score, so once the k-th result scores at least the lowest
        candidate fetched (or every candidate left scores below ``min_score``), no image not yet
        fetched can enter the results: the penalised ranking is exact, not re-ranked top-N."""
        offline_too, where = _split_offline(where)
        index = self._vectors.current(state)
        allowed = self._allowed_ids(index, tags, not_tags, where)
        available = index.ntotal if allowed is None else len(allowed)
        if not available:
            return SearchResults()
        wanted = available if k is None else k
        cut = None
        if background is not None:
            if probability is not None:
                cut = relevance.probability_cutoff(probability)
            else:
                cut = self._relevance(state, index, query, background)
            if not cut.stands_out:
                return SearchResults(cutoff=cut)
            min_score = cut.min_score
        sample = self._sample(state, index) if query.negatives else None
        fetch = min(available, 256 if k is None else (4 * k + 64 if query.negatives else k))
        while True:  # ask for more while the results are not yet certain (see above)
            scores, ids = index.search(query.positive[None], fetch, allowed=allowed, far=query.far)
            scores, ids = scores[0], ids[0]
            exhausted = len(ids) < fetch or bool((ids < 0).any()) or fetch >= available
            scores, ids = scores[ids >= 0], ids[ids >= 0]
            lowest = float(scores[-1]) if len(scores) else -np.inf
            if sample is not None:
                candidates = self._catalog.vectors_by_id(ids, state.model)
                scores = penalised_scores(scores, candidates, query, sample)
                order = np.lexsort((ids, -scores))  # ties: the smaller id first
                scores, ids = scores[order], ids[order]
            if min_score is not None:
                scores, ids = scores[scores >= min_score], ids[scores >= min_score]
            results = self.hits(ids, scores, wanted, cutoff=cut, offline_too=offline_too)
            certain = len(results) == wanted and (sample is None or results[-1].score >= lowest)
            if exhausted or certain or (min_score is not None and lowest < min_score):
                return results
            fetch = min(available, fetch * 4)

    def _relevance(
        self,
        state: IndexState,
        index: VectorIndex,
        query: EncodedQuery,
        background: Callable[[], np.ndarray],
    ) -> RelevanceCutoff:
        sample = self._sample(state, index)
        fitted = self._background_separation
        if fitted is None or fitted[0] != (state.model.id, state.generation):
            separation = relevance.fit_background(sample, background())
            fitted = self._background_separation = ((state.model.id, state.generation), separation)
        return relevance.cutoff(sample @ query.positive, fitted[1])

    def _sample(self, state: IndexState, index: VectorIndex) -> np.ndarray:
        """Up to ``SAMPLE_SIZE`` of the index's vectors, the same ones until its vectors change:
        what a term's mean and spread over the collection are measured on."""
        cached = self._cached_sample
        if cached is None or cached[0] != state.generation:
            ids = index.ids()
            if len(ids) > SAMPLE_SIZE:
                ids = np.random.default_rng(0).choice(ids, SAMPLE_SIZE, replace=False)
            vectors = self._catalog.vectors_by_id(np.sort(ids), state.model)
            cached = self._cached_sample = (state.generation, vectors)
        return cached[1]

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
        offline_too, where = _split_offline(where)
        scored = self._scored_with(label)
        for other in tags:
            keep = self._scored_with(other)
            scored = {file_id: s for file_id, s in scored.items() if file_id in keep}
        for other in not_tags:
            for file_id in self._scored_with(other):
                scored.pop(file_id, None)
        if where is not None:
            keep = set(self._catalog.ids_matching(where).tolist())
            scored = {file_id: s for file_id, s in scored.items() if file_id in keep}
        best = sorted(scored.items(), key=lambda item: (-item[1], item[0]))
        ids, scores = [file_id for file_id, _ in best], [score for _, score in best]
        return self.hits(ids, scores, k, offline_too=offline_too)

    def _allowed_ids(
        self,
        index: VectorIndex,
        tags: Sequence[str],
        not_tags: Sequence[str],
        where: PhotoFilter | None,
    ) -> np.ndarray | IdSubset | None:
        """The ids the tag and metadata filters keep, sorted, by numpy set operations (a
        metadata filter alone: as the catalog's set, whose array the index may never need)."""
        if not tags and not not_tags and where is None:
            return None
        if where is not None and not tags and not not_tags:
            return self._catalog.matching(where)
        # Start from the metadata filter's ids when there is one (sorted by the catalog): an
        # id the vector file lacks is simply never found, and intersecting with the index's
        # own ids would sort a million of them on every query (docs/benchmarks.md).
        keep = list(tags)
        if where is not None:
            allowed = self._catalog.ids_matching(where)
        elif keep:
            allowed = np.sort(self._ids_tagged(keep.pop(0)))
        else:
            allowed = np.sort(index.ids())
        for label in keep:
            allowed = allowed[np.isin(allowed, self._ids_tagged(label), kind="table")]
        for label in not_tags:
            allowed = allowed[~np.isin(allowed, self._ids_tagged(label), kind="table")]
        return allowed

    def _ids_tagged(self, label: str) -> np.ndarray:
        found = self._scored_with(label)
        return np.fromiter(found, dtype=np.int64, count=len(found))

    def _scored_with(self, label: str) -> dict[int, float]:
        """file id → score of the files tagged ``label``, or with it as a keyword of their own
        (any case), which scores 1.0: someone said so. A label that is neither a known tag nor
        anyone's keyword is an error."""
        keyworded = self._catalog.keywords.ids_with(label)
        try:
            found = self._tagger().files_with(label)
        except InvalidArgumentError:  # no vocabulary tagged here has this label
            if not len(keyworded):
                raise
            found = {}
        return {**found, **dict.fromkeys(keyworded.tolist(), 1.0)}

    def hits(
        self,
        ids: Sequence[int],
        scores: Sequence[float],
        k: int,
        cutoff=None,
        *,
        offline_too: bool = False,
    ) -> SearchResults:
        """The first ``k`` hits of ``ids`` (best first) whose file is still on disk; the files
        that are gone are named in ``missing``. Ids whose file left the catalog since the
        vector file was read are skipped, and so are offline files (their drive was missing
        at the last index run) unless ``offline_too``: those are kept unchecked. Candidates
        are looked up in slices of what is still wanted, so a long candidate list (every
        tagged image) costs no more than it must."""
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
                if record.offline_since is not None:
                    if offline_too:
                        kept.append((float(score), record))
                elif os.path.exists(record.path):
                    kept.append((float(score), record))
                else:
                    missing.append(record.path)
            start = end
        hits = [
            SearchHit(
                rank,
                score,
                record.path,
                record.width,
                record.height,
                record.size,
                record.metadata,
                record.id,
                record.offline_since is not None,
            )
            for rank, (score, record) in enumerate(kept, start=1)
        ]
        return SearchResults(hits, tuple(missing), cutoff)


def _split_offline(where: PhotoFilter | None) -> tuple[bool, PhotoFilter | None]:
    """Whether offline images are wanted, and the metadata conditions left to evaluate."""
    if where is None:
        return False, None
    return where.include_offline, where.metadata_conditions
