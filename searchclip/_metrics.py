"""Retrieval and classification metrics, in plain numpy, as CLIP_benchmark reports them.

The package must not need scikit-learn or torch to score a model, yet the figures have to be
comparable with published ones, so each function states which scikit-learn function it agrees
with (the tests check that agreement on random and heavily tied data) or how it departs.

- :func:`average_precision`, :func:`mean_average_precision`: multi-label retrieval (mAP).
- :func:`f1_scores`, :func:`best_f1_threshold`: multi-label classification.
- :func:`recall_at_k`: image↔text retrieval, where a query may have several relevant items.
- :func:`topk_accuracy`: zero-shot classification.

Conventions shared by every function:

- Ties in a ranking are broken by index: of two items with the same score, the one with the
  lower index ranks first (a stable sort). The result is then a function of the data alone,
  not of the sort algorithm.
- Bad input (wrong shape, NaN scores, targets other than 0/1) raises ``ValueError`` with the
  shapes or values involved, like numpy and scikit-learn do for arrays: these are mistakes in
  the calling code, not in what a user typed.
- Everything is vectorised over images and queries, so a 100,000 × 1,000 score matrix is
  scored in seconds; only :func:`mean_average_precision` loops, over the labels.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = [
    "average_precision",
    "best_f1_threshold",
    "f1_scores",
    "mean_average_precision",
    "recall_at_k",
    "topk_accuracy",
]

# Labels whose scores are sorted together in mean_average_precision: wide enough that each row
# of the (images, labels) matrix is read in whole cache lines, small enough to bound the copy.
_LABEL_BLOCK = 64
# How far (relative to the score, at least this much absolutely) best_f1_threshold puts its
# threshold past the highest or lowest score when it predicts nothing or everything.
_MARGIN = 1e-6


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Average precision of one label: mean, over the positives, of the precision at each.

    A positive's precision is taken at the end of its tie group, i.e. (positives scoring at
    least as high) / (items scoring at least as high), which is exactly the step-wise
    ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds of
    ``sklearn.metrics.average_precision_score``. Raises ``ValueError`` when ``targets`` holds
    no positive, since recall, and so AP, is then undefined.
    """
    scores = _scores(scores, "scores", ndim=1)
    targets = _binary(targets, "targets", scores.shape)
    if not targets.any():
        raise ValueError("targets holds no positive: average precision is undefined")
    return _average_precision_sorted(np.sort(scores), np.sort(scores[targets]))


def mean_average_precision(
    scores: np.ndarray, targets: np.ndarray
) -> tuple[float, dict[int, float]]:
    """Mean AP over the labels (columns) that have a positive, and AP per such column.

    ``scores`` and ``targets`` are (n_images, n_labels). Columns without a positive are left
    out of both the mean and the dict, as CLIP_benchmark does, rather than counted as 0.
    Raises ``ValueError`` when no column has a positive.
    """
    scores = _scores(scores, "scores", ndim=2)
    targets = _binary(targets, "targets", scores.shape)
    per_label: dict[int, float] = {}
    for start in range(0, scores.shape[1], _LABEL_BLOCK):
        block = slice(start, start + _LABEL_BLOCK)
        # One transposed copy per block makes every column contiguous for its sort.
        block_scores = np.ascontiguousarray(scores[:, block].T)
        block_targets = np.ascontiguousarray(targets[:, block].T)
        for offset, (column, positives) in enumerate(zip(block_scores, block_targets, strict=True)):
            if positives.any():
                per_label[start + offset] = _average_precision_sorted(
                    np.sort(column), np.sort(column[positives])
                )
    if not per_label:
        raise ValueError("no label has a positive in targets: mean average precision is undefined")
    return float(np.mean(list(per_label.values()))), per_label


def _average_precision_sorted(ascending: np.ndarray, positives_ascending: np.ndarray) -> float:
    """AP from all scores and the positives' scores, both sorted ascending.

    Counting "scores >= s" with searchsorted needs only sorts, not an argsort with targets
    carried along, which is what makes mean_average_precision fast.
    """
    at_least = len(ascending) - np.searchsorted(ascending, positives_ascending, side="left")
    positives_at_least = len(positives_ascending) - np.searchsorted(
        positives_ascending, positives_ascending, side="left"
    )
    return float(np.mean(positives_at_least / at_least))


def f1_scores(predictions: np.ndarray, targets: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Macro F1, micro F1 and per-label F1 of (n, n_labels) boolean predictions.

    Per label, F1 = 2 TP / (2 TP + FP + FN), and 0 where that is 0 / 0 (the label neither
    occurs in ``targets`` nor is predicted). Macro F1 averages over the labels that occur in
    ``targets`` or in ``predictions`` only, so labels absent from an evaluation split do not
    drag the mean down with undefined zeros; this equals ``sklearn.metrics.f1_score(...,
    average="macro", zero_division=0, labels=<those columns>)``, and is 0.0 when no label
    occurs at all. Micro F1 pools the counts of all labels (absent ones add nothing), equal to
    ``f1_score(..., average="micro", zero_division=0)``.
    """
    predictions = _binary(predictions, "predictions", ndim=2)
    targets = _binary(targets, "targets", predictions.shape)
    true_positives = np.count_nonzero(predictions & targets, axis=0)
    # 2 TP + FP + FN == (TP + FP) + (TP + FN): predicted plus actual positives.
    denominators = np.count_nonzero(predictions, axis=0) + np.count_nonzero(targets, axis=0)
    occurring = denominators > 0
    per_label = np.zeros(predictions.shape[1], dtype=np.float64)
    per_label[occurring] = 2 * true_positives[occurring] / denominators[occurring]
    macro = float(per_label[occurring].mean()) if occurring.any() else 0.0
    total = int(denominators.sum())
    micro = 2 * int(true_positives.sum()) / total if total else 0.0
    return macro, float(micro), per_label


def best_f1_threshold(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """The threshold t for which ``scores >= t`` has the best F1 against ``targets``, and F1.

    Every distinct score is a candidate cut, scored in one pass over the sorted scores. The
    threshold returned lies halfway between the lowest score predicted positive and the next
    lower distinct score, so it generalises to unseen scores instead of sitting on a training
    score; when predicting everything is best it lies just below the lowest score. Of cuts
    with equal F1 the highest threshold (fewest positives predicted) wins. With no positive in
    ``targets`` no cut beats predicting nothing, so the result is (just above the highest
    score, 0.0). Scores must be finite, for a threshold beyond them to exist.
    """
    scores = _scores(scores, "scores", ndim=1)
    targets = _binary(targets, "targets", scores.shape)
    if scores.size == 0:
        raise ValueError("scores is empty: there is no threshold to choose")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite to place a threshold beyond them")
    n_positive = int(np.count_nonzero(targets))
    if n_positive == 0:
        return _step_past(scores.max(), scores.dtype, up=True), 0.0
    order = np.argsort(scores, kind="stable")[::-1]
    descending = scores[order]
    true_positives = np.cumsum(targets[order])
    # Cutting at the end of each run of equal scores gives every distinct threshold.
    cut_ends = np.append(np.flatnonzero(descending[1:] != descending[:-1]), len(descending) - 1)
    f1 = 2 * true_positives[cut_ends] / (cut_ends + 1 + n_positive)
    best = int(np.argmax(f1))
    lowest_kept = descending[cut_ends[best]]
    if best == len(cut_ends) - 1:
        threshold = _step_past(lowest_kept, scores.dtype, up=False)
    else:
        threshold = _midpoint(lowest_kept, descending[cut_ends[best] + 1], scores.dtype)
    return threshold, float(f1[best])


def _step_past(value: float, dtype: np.dtype, *, up: bool) -> float:
    """A threshold a little above (or below) ``value`` that stays so in the scores' dtype."""
    margin = _MARGIN * max(1.0, abs(float(value)))
    threshold = float(value) + margin if up else float(value) - margin
    rounded = dtype.type(threshold)
    if (rounded > value) if up else (rounded < value):
        return threshold
    return float(np.nextafter(dtype.type(value), dtype.type(np.inf if up else -np.inf)))


def _midpoint(upper: float, lower: float, dtype: np.dtype) -> float:
    """Halfway between two scores, unless the dtype cannot hold a value strictly between.

    Comparing float32 scores with a Python float rounds the float to float32; if the midpoint
    rounds onto ``lower`` the cut would move, so ``upper`` itself (also a correct ``>=`` cut)
    is returned instead.
    """
    threshold = (float(upper) + float(lower)) / 2
    return threshold if dtype.type(threshold) > lower else float(upper)


def recall_at_k(
    similarity: np.ndarray, relevant: np.ndarray, ks: Iterable[int] = (1, 5, 10)
) -> dict[str, float]:
    """Share of queries with at least one relevant item among their k most similar items.

    ``similarity`` and ``relevant`` are (n_queries, n_items); a query may have several
    relevant items (an image and its five captions), and a hit on any of them counts. Ties are
    broken by item index (lower index ranks first), so the rank of a query's best relevant
    item is computed directly, without sorting: items more similar than it, plus items as
    similar with a lower index. Keys are ``"R@{k}"``; a k beyond n_items is kept and gives
    1.0. Raises ``ValueError`` when a query has no relevant item, as its recall is undefined.
    """
    similarity = _scores(similarity, "similarity", ndim=2)
    relevant = _binary(relevant, "relevant", similarity.shape)
    ks = _ks(ks)
    if similarity.shape[0] == 0:
        raise ValueError("similarity has no query to score")
    without = np.flatnonzero(~relevant.any(axis=1))
    if without.size:
        raise ValueError(
            f"{without.size} queries have no relevant item (first: row {without[0]}); "
            "recall@k is undefined for them, drop them before scoring"
        )
    best = np.where(relevant, similarity, -np.inf).max(axis=1)
    # The lowest-index relevant item among those reaching the best similarity ranks first.
    best_index = np.argmax(relevant & (similarity == best[:, None]), axis=1)
    ranks = _ranks(similarity, best, best_index)
    return {f"R@{k}": float(np.mean(ranks < k)) for k in ks}


def topk_accuracy(
    logits: np.ndarray, true_class: np.ndarray, ks: Iterable[int] = (1, 5)
) -> dict[str, float]:
    """Share of samples whose true class is among the k highest logits, keys ``"top{k}"``.

    ``logits`` is (n, n_classes) and ``true_class`` (n,) integer class indices. A k above
    n_classes is skipped, since every sample would trivially count. Ties are broken by class
    index (lower ranks first), like :func:`recall_at_k`; this differs only on tied logits from
    ``sklearn.metrics.top_k_accuracy_score``, which ranks the higher index first there.
    """
    logits = _scores(logits, "logits", ndim=2)
    n_samples, n_classes = logits.shape
    true_class = np.asarray(true_class)
    if true_class.shape != (n_samples,):
        raise ValueError(
            f"true_class must have shape ({n_samples},) to match logits {logits.shape}, "
            f"got {true_class.shape}"
        )
    if true_class.dtype == bool or not np.issubdtype(true_class.dtype, np.integer):
        raise ValueError(f"true_class must hold integer class indices, got {true_class.dtype}")
    if n_samples == 0:
        raise ValueError("logits has no sample to score")
    if true_class.min() < 0 or true_class.max() >= n_classes:
        raise ValueError(
            f"true_class must lie in [0, {n_classes}), got values from "
            f"{true_class.min()} to {true_class.max()}"
        )
    ks = _ks(ks)
    true_logit = logits[np.arange(n_samples), true_class]
    ranks = _ranks(logits, true_logit, true_class)
    return {f"top{k}": float(np.mean(ranks < k)) for k in ks if k <= n_classes}


def _ranks(values: np.ndarray, chosen: np.ndarray, chosen_index: np.ndarray) -> np.ndarray:
    """0-based rank, per row, of the entry ``chosen_index`` whose value is ``chosen``.

    Ranking is descending with ties broken by column index, as a stable sort would do.
    """
    chosen = chosen[:, None]
    higher = np.count_nonzero(values > chosen, axis=1)
    columns = np.arange(values.shape[1])
    tied_before = np.count_nonzero(
        (values == chosen) & (columns < chosen_index[:, None]),
        axis=1,
    )
    return higher + tied_before


def _scores(values: np.ndarray, name: str, *, ndim: int) -> np.ndarray:
    """``values`` as a float array of ``ndim`` dimensions without NaN; float32 is kept."""
    values = np.asarray(values)
    if values.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {values.shape}")
    if values.dtype == bool or not (
        np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {values.dtype}")
    if np.issubdtype(values.dtype, np.integer):
        values = values.astype(np.float64)
    if np.isnan(values).any():
        raise ValueError(f"{name} contains NaN: a ranking of NaN scores is undefined")
    return values


def _binary(
    values: np.ndarray,
    name: str,
    shape: tuple[int, ...] | None = None,
    *,
    ndim: int | None = None,
) -> np.ndarray:
    """``values`` as a bool array, accepting bools or numbers that are all 0 or 1."""
    values = np.asarray(values)
    if shape is not None and values.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {values.shape}")
    if ndim is not None and values.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {values.shape}")
    if values.dtype == bool:
        return values
    if not np.issubdtype(values.dtype, np.number) or not ((values == 0) | (values == 1)).all():
        raise ValueError(f"{name} must hold booleans or 0/1 values only")
    return values.astype(bool)


def _ks(ks: Iterable[int]) -> list[int]:
    """The cut-offs as positive ints, in the order given, without repeats."""
    ks = list(ks)
    if not ks or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0 for k in ks
    ):
        raise ValueError(f"ks must be positive integers, got {ks!r}")
    return list(dict.fromkeys(int(k) for k in ks))
