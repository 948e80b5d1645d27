"""SearchEngine's search methods: text, image and combined queries, by vector, by id, by tag.

A mixin of :class:`~searchclip.SearchEngine`, kept apart so that each part stays small; it
uses the engine's catalog, encoders, searcher and state.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from searchclip._errors import EmptyIndexError, ImageNotFoundError
from searchclip._query import Query, QueryInput, Term, check_cap
from searchclip._query_scoring import EncodedQuery, checked_vector, encode_query
from searchclip._relevance import BACKGROUND_CAPTIONS, query_match_probability
from searchclip._results import SearchResults

if TYPE_CHECKING:
    from PIL import Image

    from searchclip._catalog import IndexState
    from searchclip._filters import PhotoFilter


class SearchMethods:
    """The search half of SearchEngine (see there for threads)."""

    def search(
        self,
        query: QueryInput,
        k: int | None = 10,
        *,
        tags: Sequence[str] = (),
        not_tags: Sequence[str] = (),
        where: PhotoFilter | None = None,
        min_score: float | None = None,
        relevant: bool = False,
    ) -> SearchResults:
        """The ``k`` images that best match ``query``, best first: a text, or a
        :class:`~searchclip.Query` of weighted text and image terms (or a list of
        ``(text or image, weight)`` pairs; a negative weight: images unlike it).

        ``tags`` keeps only images carrying every one of those stored tags; ``not_tags`` drops
        images carrying any of them (see :meth:`tag`); ``where`` keeps only images whose photo
        metadata meets it; ``min_score`` keeps only images scoring at least that, and then
        ``k=None`` returns every one; ``relevant=True`` finds that score itself (the results'
        ``cutoff`` says how, and whether anything stood out). Every search returns only files
        that exist: indexed files found gone are left out and named in the results' ``missing``.

        Raises:
            InvalidArgumentError: an empty text, a query without a positive term, ``k`` < 1.
            EmptyIndexError: the index holds no images yet.
            ImageReadError: an image term cannot be read.
            ImageNotFoundError: an ``image_id`` term names no image of the index.
        """
        query = Query.of(query)
        options = {"where": where, "min_score": min_score, "relevant": relevant}
        return self._on_one_model(lambda: self._search_once(query, k, tags, not_tags, **options))

    def _search_once(self, query, k, tags, not_tags, *, where, min_score, relevant):
        """One search on one state, with that state's model's encoders (never another's)."""
        state = self._searchable_state(k, min_score, relevant)
        encoders = self._encoders  # they refuse any model but theirs: ModelSwitched, run again
        texts = lambda: encoders.text_encoder(state.model)  # noqa: E731 (loaded if needed)
        images = lambda: encoders.image_encoder(state.model)  # noqa: E731
        encoded = encode_query(query, texts, images, lambda ids: self._vectors_of(ids, state))
        background = (lambda: texts().encode_texts(BACKGROUND_CAPTIONS)) if relevant else None
        probability = query_match_probability(query, texts) if relevant else None
        filters = {"where": where, "min_score": min_score, "background": background}
        filters["probability"] = probability  # a sigmoid model's cut-off (see _relevance)
        return self._searcher.nearest(state, encoded, k, tags, not_tags, **filters)

    def search_image(
        self,
        image: str | os.PathLike | Image.Image,
        k: int | None = 10,
        *,
        tags: Sequence[str] = (),
        not_tags: Sequence[str] = (),
        where: PhotoFilter | None = None,
        min_score: float | None = None,
        relevant: bool = False,
    ) -> SearchResults:
        """The ``k`` images most similar to ``image`` (a path or a PIL image), best first; the
        keyword arguments are :meth:`search`'s."""
        query = Query((Term(image=image),))
        filters = {"tags": tags, "not_tags": not_tags, "where": where}
        return self.search(query, k, min_score=min_score, relevant=relevant, **filters)

    def search_similar(
        self,
        image_id: int,
        k: int | None = 10,
        *,
        tags: Sequence[str] = (),
        not_tags: Sequence[str] = (),
        where: PhotoFilter | None = None,
        min_score: float | None = None,
    ) -> SearchResults:
        """ "More like this": the ``k`` images nearest to the indexed image ``image_id`` (by its
        stored vector, nothing decoded), the image itself left out; :meth:`search`'s keywords.

        Raises:
            ImageNotFoundError: no image of the index has that id.
        """
        query = Query((Term(image_id=image_id),))
        filters = {"tags": tags, "not_tags": not_tags, "where": where, "min_score": min_score}
        found = self.search(query, None if k is None else k + 1, **filters)
        hits = [hit for hit in found if hit.id != image_id][:k]
        ranked = [dataclasses.replace(hit, rank=rank) for rank, hit in enumerate(hits, start=1)]
        return SearchResults(ranked, found.missing, found.cutoff)

    def _vectors_of(self, ids: list[int], state: IndexState) -> np.ndarray:
        known = self._catalog.files_by_id([i for i in ids if 0 < i < 2**63])  # SQLite's range
        for image_id in ids:
            if image_id not in known:
                raise ImageNotFoundError(
                    f"no image with id {image_id} in this index", value=image_id
                )
        return self._catalog.vectors_by_id(ids, state.model)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int | None = 10,
        *,
        tags: Sequence[str] = (),
        not_tags: Sequence[str] = (),
        far: bool = False,
        where: PhotoFilter | None = None,
        min_score: float | None = None,
    ) -> SearchResults:
        """The ``k`` images nearest to a query vector of the index's model. ``far=True`` for a
        text vector: it lies apart from every image vector, and a large index searches wider.

        Raises:
            InvalidArgumentError: ``k`` < 1, or ``vector`` has another length than the model's.
            EmptyIndexError: the index holds no images yet.
        """

        def search() -> SearchResults:
            state = self._searchable_state(k, min_score)
            query = EncodedQuery(checked_vector(vector, state.model.dim), far=far)
            filters = {"where": where, "min_score": min_score}
            return self._searcher.nearest(state, query, k, tags, not_tags, **filters)

        return self._on_one_model(search)

    def _searchable_state(
        self, k: int | None, min_score: float | None = None, relevant: bool = False
    ) -> IndexState:
        check_cap(k, min_score, relevant)
        state = self._fresh_state()
        if state.model is None or not state.files:
            raise EmptyIndexError(
                f"the index at {self.index_dir} holds no images yet", index_dir=self.index_dir
            )
        return state

    def images_with_tag(
        self,
        label: str,
        k: int = 10,
        *,
        tags: Sequence[str] = (),
        not_tags: Sequence[str] = (),
        where: PhotoFilter | None = None,
    ) -> SearchResults:
        """The ``k`` images tagged ``label`` (and every one of ``tags``, none of ``not_tags``,
        meeting ``where``), by their score for ``label``, best first.

        Raises:
            InvalidArgumentError: ``k`` < 1.
            EmptyIndexError: the index holds no images yet.
        """
        self._searchable_state(k)
        return self._on_one_model(lambda: self._searcher.tagged(label, k, tags, not_tags, where))

    def stored_vectors(self, paths: Sequence[str]) -> dict[str, np.ndarray]:
        """path → stored vector, for those of ``paths`` that are indexed (read only: an index
        without a model holds no vectors)."""
        model = self._fresh_state().model
        if model is None:
            return {}
        return self._catalog.vectors_by_path([os.path.abspath(p) for p in paths], model)
