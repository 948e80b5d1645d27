"""The relevance cut-off (``relevant=True``): a score threshold the index finds per query.

A query's scores over the collection fall into groups: images unrelated to it, images sharing
part of it, images that match. Over a sample of the index's vectors the scores are split in
two by Otsu's method (the split that maximises the variance between the classes), then the
upper class again, and so on; the threshold is the split whose classes lie furthest apart (in
their pooled standard deviation), so "matches" are the group above the clearest gap. It is
found on the positive terms' scores, which negative terms' penalty leaves as they are for the
images it spares.

Any score distribution can be split, also that of a query nothing in the index matches. So the
split is trusted only if it separates better than every split of captions that describe no
photo (``BACKGROUND_CAPTIONS``, scored by the same model on the same sample: the index's
background model); otherwise nothing stands out, which the result says instead of returning an
arbitrary tail. With a random-weight model every query looks like the background.
docs/query-scoring.md has the measured precision and recall.

A sigmoid-trained model (SigLIP) needs none of this: it was trained to read
``sigmoid(scale * cosine + bias)`` as the probability that a text describes an image, so for a
query whose positive terms are all texts the cut-off is the cosine where that probability is
``MATCH_PROBABILITY`` (one half: the model's own "more likely a match than not"), found
without a sample or background captions (:func:`probability_cutoff`). The scale and bias are
the encoder's ``match_probability`` (the torch encoder reads them from the model, the
torch-free one from its export's sidecar).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from searchclip._encoders.base import MatchProbability
    from searchclip._query import Query

# Captions of no photo at all (nonsense and abstract phrases), so that in any collection
# they describe nothing: whatever split their scores show is what chance gives.
BACKGROUND_CAPTIONS = (
    "qwerty zxcvb",
    "lorem ipsum dolor sit amet",
    "the number seventeen",
    "a sound of distant thunder",
    "the smell of rain",
    "an idea without form",
    "yesterday's tomorrow",
    "blorp fizzwick",
    "the letter q",
    "a feeling of déjà vu",
    "nothing in particular",
    "xyzzy plugh",
    "a forgotten password",
    "the square root of two",
    "an unfinished sentence",
    "grammar rules",
)
_BINS = 64
_MIN_CLASS = 16  # a smaller class splits off by chance as often as a real one (measured)
MATCH_PROBABILITY = 0.5  # a sigmoid model's hits: more likely a match than not


@dataclass(frozen=True)
class RelevanceCutoff:
    """How ``relevant=True`` chose: ``min_score`` (None when nothing stands out, and no image
    is returned), the separation of the query's highest score class from the rest (in standard
    deviations of the rest), and the largest separation a background caption reached. For a
    sigmoid model, ``probability`` is the match probability ``min_score`` stands for (and the
    separations are 0: no split was made); else None."""

    min_score: float | None
    separation: float
    background_separation: float
    probability: float | None = None

    @property
    def stands_out(self) -> bool:
        return self.min_score is not None


def two_class_split(scores: np.ndarray) -> tuple[float, float]:
    """(threshold, separation): Otsu's split of ``scores`` into two classes, and how far apart
    their means lie, in their pooled standard deviation."""
    counts, edges = np.histogram(scores, _BINS)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)[:-1] / counts.sum()  # of the class below each inner edge
    moment = np.cumsum(counts * centres)[:-1] / counts.sum()
    total = moment[-1] + counts[-1] * centres[-1] / counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total * weight - moment) ** 2 / (weight * (1 - weight))
    between[~np.isfinite(between)] = -1.0
    threshold = float(edges[1 + int(np.argmax(between))])
    above, below = scores[scores >= threshold], scores[scores < threshold]
    if not len(above) or len(below) < 2:
        return threshold, 0.0
    spread = np.sqrt((above.var() + below.var()) / 2)
    return threshold, float((above.mean() - below.mean()) / max(spread, 1e-6))


def nested_splits(scores: np.ndarray) -> list[tuple[float, float]]:
    """(threshold, separation) of the split of ``scores``, then of its upper class, and so on
    while the class kept above holds at least ``_MIN_CLASS`` scores."""
    splits = []
    while len(scores) >= 2 * _MIN_CLASS:
        threshold, separation = two_class_split(scores)
        upper = scores[scores >= threshold]
        if len(upper) < _MIN_CLASS or len(upper) == len(scores):
            break
        splits.append((threshold, separation))
        scores = upper
    return splits


def fit_background(sample: np.ndarray, background: np.ndarray) -> float:
    """The largest separation any nested split of the background captions' scores over
    ``sample`` reaches: what splitting scores that mean nothing gives."""
    found = [sep for vector in background for _, sep in nested_splits(sample @ vector)]
    return max(found, default=0.0)


def cutoff(sample_scores: np.ndarray, background_separation: float) -> RelevanceCutoff:
    """The cut-off for a query whose scores over the index's sample are ``sample_scores``: of
    its nested splits (unrelated / partly / fully matching...), the one that separates best,
    if it separates better than any split of the background captions' scores."""
    splits = nested_splits(sample_scores)
    if not splits:
        return RelevanceCutoff(None, 0.0, background_separation)
    threshold, separation = max(splits, key=lambda split: split[1])
    stands_out = separation > background_separation
    return RelevanceCutoff(threshold if stands_out else None, separation, background_separation)


def probability_cutoff(
    match: MatchProbability, probability: float = MATCH_PROBABILITY
) -> RelevanceCutoff:
    """The cut-off of a sigmoid model: the score at which its match probability is
    ``probability``."""
    return RelevanceCutoff(match.cosine_at(probability), 0.0, 0.0, probability)


def query_match_probability(
    query: Query, text_encoder: Callable[[], object]
) -> MatchProbability | None:
    """The text encoder's match probability, if its model is sigmoid-trained and the query's
    positive terms are all texts (the probability is that of a text describing an image; an
    image term's similarity has no such reading). None otherwise: the split above decides."""
    if not all(term.text is not None for term in query.positives):
        return None
    return getattr(text_encoder(), "match_probability", None)
