"""A :class:`~searchclip._query.Query` as vectors, and the scores its negative terms take off.

The rules are described in :mod:`searchclip._query`; the measurements behind the default are
in docs/query-scoring.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchclip import _images as images
from searchclip._errors import InvalidArgumentError

if TYPE_CHECKING:
    from searchclip._encoders import Encoder
    from searchclip._query import Query, Term

PENALTY_SCALE = 2.0  # standard deviations of the positive score per unit of negative z-score


@dataclass(frozen=True)
class EncodedQuery:
    """``positive``: the unit query vector the index is searched with; ``negatives``: (unit
    vector, weight > 0) pairs that the penalty rule scores candidates against; ``far``: the
    query lies apart from the image vectors (it has a text term)."""

    positive: np.ndarray
    negatives: tuple[tuple[np.ndarray, float], ...] = ()
    far: bool = False


def encode_query(
    query: Query,
    text_encoder: Callable[[], Encoder],
    image_encoder: Callable[[], Encoder],
    stored: Callable[[list[int]], np.ndarray],
) -> EncodedQuery:
    """The vectors of ``query``'s terms, combined by its negative rule; each encoder is loaded
    only if a term needs it, and ``stored`` gives indexed images' vectors by id."""
    vectors = _term_vectors(query.terms, text_encoder, image_encoder, stored)
    weighted = list(zip(vectors, (term.weight for term in query.terms), strict=True))
    if query.negative_rule == "subtract":
        return EncodedQuery(_unit(sum(w * v for v, w in weighted)), far=query.has_text)
    positive = _unit(sum(w * v for v, w in weighted if w > 0))
    negatives = tuple((_unit(v), -w) for v, w in weighted if w < 0)
    return EncodedQuery(positive, negatives, far=query.has_text)


def checked_vector(vector: np.ndarray, dim: int) -> np.ndarray:
    """A caller's query vector as float32 values, if it has the model's ``dim`` of them."""
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if len(query) != dim:
        raise InvalidArgumentError(
            f"a query vector has {len(query)} values; this index's model has {dim}",
            value=len(query),
        )
    return query


def penalised_scores(
    scores: np.ndarray, candidates: np.ndarray, query: EncodedQuery, sample: np.ndarray
) -> np.ndarray:
    """``scores`` (the positive similarities of the ``candidates``' vectors, one row each)
    less each negative term's penalty; ``sample`` is a sample of the index's vectors, which
    gives each term's mean and spread over the collection."""
    spread = float(np.std(sample @ query.positive)) if len(sample) else 0.0
    final = scores.astype(np.float32, copy=True)
    for vector, weight in query.negatives:
        over_index = sample @ vector
        mean, deviation = float(np.mean(over_index)), max(float(np.std(over_index)), 1e-6)
        z = (candidates @ vector - mean) / deviation
        final -= PENALTY_SCALE * weight * spread * np.maximum(z, 0.0)
    return final


def _term_vectors(
    terms: tuple[Term, ...],
    text_encoder: Callable[[], Encoder],
    image_encoder: Callable[[], Encoder],
    stored: Callable[[list[int]], np.ndarray],
) -> list[np.ndarray]:
    vectors: dict[int, np.ndarray] = {}
    texts = [(i, term.text) for i, term in enumerate(terms) if term.text is not None]
    if texts:
        encoded = text_encoder().encode_texts([text for _, text in texts])
        vectors.update((i, row) for (i, _), row in zip(texts, encoded, strict=True))
    by_id = [(i, term.image_id) for i, term in enumerate(terms) if term.image_id is not None]
    if by_id:
        found = stored([image_id for _, image_id in by_id])
        vectors.update((i, row) for (i, _), row in zip(by_id, found, strict=True))
    pictures = [(i, _picture(term.image)) for i, term in enumerate(terms) if term.image is not None]
    if pictures:
        encoded = image_encoder().encode_images([picture for _, picture in pictures])
        vectors.update((i, row) for (i, _), row in zip(pictures, encoded, strict=True))
    return [np.asarray(vectors[i], dtype=np.float32) for i in range(len(terms))]


def _picture(image):
    if isinstance(image, str | os.PathLike):
        return images.load_image(Path(image).expanduser()).image
    return image if image.mode == "RGB" else image.convert("RGB")


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:  # e.g. "x" minus "x": no direction is left to search in
        raise InvalidArgumentError("the query's terms cancel each other out")
    return (vector / norm).astype(np.float32)
