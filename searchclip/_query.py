"""Combined queries: any number of text and image terms, each with a weight (negative: avoid).

``"2:sunset"`` is rclip's inline weight: the term ``sunset`` counted twice. Positive terms are
added into one query vector (rclip's rule). How negative terms count is ``Query.negative_rule``:

- ``"penalty"`` (the default): an image's score is its similarity to the positive terms, less
  a penalty for each negative term it resembles more than the index's typical image does:
  ``2 |w| σp max(0, zn)``, where ``zn`` is its similarity to the negative term in standard
  deviations above that term's mean over the index, and ``σp`` the positive query's standard
  deviation, which puts the penalty on the positive query's scale. Images unlike the negative
  keep their score exactly, so a score cut-off means the same with and without negatives.
- ``"subtract"``: the negative terms' vectors are subtracted from the query vector (rclip).

docs/query-scoring.md has the measurements behind the choice.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from searchclip._errors import InvalidArgumentError

if TYPE_CHECKING:
    from PIL import Image

NEGATIVE_RULES = ("penalty", "subtract")
# "2:sunset", "-0.5:people", ".5:x": a number, a colon, the term. A run of number-like
# characters that is no number ("1.2.3:x", "2e:x") is a mistyped weight, not text.
_WEIGHT = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*:(.*)", re.DOTALL)
_BAD_WEIGHT = re.compile(r"\s*([+-]?[\d.]*\d[\d.eE+-]*)\s*:(.*)", re.DOTALL)


@dataclass(frozen=True)
class Term:
    """One part of a query: a ``text``, an ``image`` (a path or a PIL image) or an indexed
    image by its id (``image_id``: its stored vector, nothing is decoded), and its ``weight``;
    a negative weight asks for images unlike the term."""

    text: str | None = None
    image: str | os.PathLike | Image.Image | None = None
    weight: float = 1.0
    image_id: int | None = None

    def __post_init__(self) -> None:
        if sum(part is not None for part in (self.text, self.image, self.image_id)) != 1:
            raise InvalidArgumentError(
                "a query term is a text, an image or an image id, exactly one of them"
            )
        if self.image_id is not None and (
            isinstance(self.image_id, bool) or not isinstance(self.image_id, int)
        ):
            raise InvalidArgumentError(f"an image id is a number, got {self.image_id!r}")
        if self.text is not None and (not isinstance(self.text, str) or not self.text.strip()):
            raise InvalidArgumentError("the query text is empty", value=self.text)
        image = self.image
        is_path = isinstance(image, str | os.PathLike)
        if image is not None and not (is_path or hasattr(image, "mode")):
            raise InvalidArgumentError(f"an image term is a path or a PIL image, got {image!r}")
        object.__setattr__(self, "weight", checked_weight(self.weight, self.describe()))

    @property
    def negative(self) -> bool:
        return self.weight < 0

    def describe(self) -> str:
        if self.text is not None:
            return repr(self.text)
        if self.image_id is not None:
            return f"image {self.image_id}"
        image = self.image
        return repr(os.fspath(image)) if isinstance(image, str | os.PathLike) else "an image"


QueryInput = Union[str, Term, "Query", Sequence[Term | tuple[object, float]]]


@dataclass(frozen=True)
class Query:
    """What to search for: ``terms`` (at least one positive), and the rule for negative ones.

    >>> Query.parse("dog on beach", not_texts=["people"], like=["ref.jpg"])  # doctest: +SKIP
    """

    terms: tuple[Term, ...]
    negative_rule: str = "penalty"

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(self.terms))
        if not all(isinstance(term, Term) for term in self.terms):
            raise InvalidArgumentError("a query's terms must be Term objects")
        if not any(not term.negative for term in self.terms):
            raise InvalidArgumentError(
                "a query needs at least one positive term: negative terms only say what to avoid"
            )
        if self.negative_rule not in NEGATIVE_RULES:
            raise InvalidArgumentError(
                f"unknown negative rule {self.negative_rule!r}: use penalty or subtract",
                value=self.negative_rule,
            )

    @property
    def positives(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if not term.negative)

    @property
    def negatives(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if term.negative)

    @property
    def has_text(self) -> bool:
        return any(term.text is not None for term in self.terms)

    @classmethod
    def of(cls, query: QueryInput) -> Query:
        """``query`` as a Query: a text, a Term, a Query, or a sequence of Terms and
        ``(value, weight)`` pairs, where a ``str`` value is a text, a path (``os.PathLike``)
        or a PIL image is an image, and an ``int`` an indexed image's id."""
        if isinstance(query, Query):
            return query
        if isinstance(query, str):
            return cls((Term(text=query),))
        if isinstance(query, Term):
            return cls((query,))
        if not isinstance(query, Sequence) or not query:
            raise InvalidArgumentError(
                "a query is a text, a Term, a Query or a list of (text or image, weight)",
                value=query,
            )
        return cls(tuple(_term(item) for item in query))

    @classmethod
    def parse(
        cls,
        text: str | None = None,
        *,
        not_texts: Iterable[str] = (),
        like: Iterable[str | os.PathLike] = (),
        not_like: Iterable[str | os.PathLike] = (),
    ) -> Query:
        """The query the CLI's words ask for; each may carry an inline weight (``"2:sunset"``),
        which ``not_texts`` and ``not_like`` turn negative."""
        terms = text_terms(text, not_texts)
        for sign, paths in ((1, like), (-1, not_like)):
            for path in paths:
                weight, image = _image_weight(path)
                terms.append(Term(image=image, weight=sign * abs(weight)))
        return cls(tuple(terms))


def text_terms(text: str | None, not_texts: Iterable[str] = ()) -> list[Term]:
    """The terms of a query text and of texts to push down, each with its inline weight."""
    terms = []
    if text is not None:
        weight, words = split_weight(text)
        terms.append(Term(text=words, weight=weight))
    for words in not_texts:
        weight, words = split_weight(words)
        terms.append(Term(text=words, weight=-abs(weight)))
    return terms


def check_cap(k: int | None, min_score: float | None, relevant: bool = False) -> None:
    """A search's ``k`` (a positive number, or None for every image above ``min_score`` or the
    relevance cut-off) and ``min_score`` (a similarity between -1 and 1)."""
    if relevant and min_score is not None:
        raise InvalidArgumentError("give a minimum score or ask for the relevant images, not both")
    if min_score is not None:
        if isinstance(min_score, bool) or not isinstance(min_score, int | float):
            raise InvalidArgumentError(f"a minimum score is a number, got {min_score!r}")
        if not -1 <= min_score <= 1:
            raise InvalidArgumentError(
                f"a minimum score is a cosine similarity, between -1 and 1; got {min_score}",
                value=min_score,
            )
    if k is None:
        if min_score is None and not relevant:
            raise InvalidArgumentError("k=None (every match) needs a min_score or relevant=True")
    elif isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidArgumentError(f"k must be a positive number of results, got {k!r}", value=k)


def split_weight(spec: str) -> tuple[float, str]:
    """``"2:sunset"`` → ``(2.0, "sunset")``; a text without a weight counts once."""
    match = _WEIGHT.fullmatch(spec)
    if match is None:
        bad = _BAD_WEIGHT.fullmatch(spec)
        if bad is not None:
            raise InvalidArgumentError(
                f"the weight {bad.group(1)!r} of {spec!r} is not a number", value=spec
            )
        return 1.0, spec
    weight, rest = float(match.group(1)), match.group(2).strip()
    if not rest:
        raise InvalidArgumentError(f"the query term {spec!r} has a weight and nothing to weigh")
    return checked_weight(weight, repr(rest)), rest


def checked_weight(weight: object, what: str) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise InvalidArgumentError(f"the weight of {what} is not a number: {weight!r}")
    if not math.isfinite(weight) or weight == 0:
        raise InvalidArgumentError(f"the weight of {what} must be a non-zero number, got {weight}")
    return float(weight)


def _image_weight(path: str | os.PathLike) -> tuple[float, str | os.PathLike]:
    """An image term's weight: a path that exists is taken whole, even if it looks weighted."""
    if not isinstance(path, str) or os.path.exists(os.path.expanduser(path)):
        return 1.0, path
    return split_weight(path)


def _term(item: object) -> Term:
    if isinstance(item, Term):
        return item
    if not isinstance(item, tuple) or len(item) != 2:
        raise InvalidArgumentError(
            f"a query term is a Term or a (text or image, weight) pair, got {item!r}"
        )
    value, weight = item
    if isinstance(value, str):
        return Term(text=value, weight=weight)
    if isinstance(value, int) and not isinstance(value, bool):
        return Term(image_id=value, weight=weight)
    return Term(image=value, weight=weight)
