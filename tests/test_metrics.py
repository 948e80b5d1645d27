"""Metrics: hand-computed cases, agreement with scikit-learn or a brute force, input checks.

scikit-learn is only a reference here (``pytest.importorskip``); the package never imports it.
Random data is drawn twice per seed: continuous scores, and scores rounded to one decimal so
that most of them tie, which is where ranking metrics usually go wrong.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from searchclip._metrics import (
    average_precision,
    best_f1_threshold,
    f1_scores,
    mean_average_precision,
    recall_at_k,
    topk_accuracy,
)

SEEDS = range(5)


def random_scores(rng: np.random.Generator, shape, tied: bool, dtype=np.float64) -> np.ndarray:
    scores = rng.random(shape)
    return (np.round(scores, 1) if tied else scores).astype(dtype)


def random_targets(rng: np.random.Generator, shape, rate: float = 0.3) -> np.ndarray:
    targets = rng.random(shape) < rate
    targets.flat[0] = True  # at least one positive
    return targets


def f1_of(predictions: np.ndarray, targets: np.ndarray) -> float:
    true_positives = np.count_nonzero(predictions & targets)
    denominator = np.count_nonzero(predictions) + np.count_nonzero(targets)
    return 2 * true_positives / denominator if denominator else 0.0


# --- hand-computed cases -------------------------------------------------------------------


def test_average_precision_by_hand():
    # Positives at ranks 1 and 3: AP = (1/1 + 2/3) / 2 = 0.8333...
    ap = average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0]))
    assert ap == pytest.approx((1 + 2 / 3) / 2, abs=1e-12)


def test_average_precision_counts_a_tie_group_as_one_step():
    # Groups by score: {0.9: neg} {0.5: pos, neg, pos} {0.1: pos}, 3 positives in all.
    # Step at 0.5: recall 0 → 2/3, precision at the group's end = 2/4;
    # step at 0.1: recall 2/3 → 1, precision 3/5.
    # AP = (2/3)(2/4) + (1/3)(3/5) = 1/3 + 1/5 = 0.5333..., whatever the order inside the tie.
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    targets = np.array([0, 1, 0, 1, 1], dtype=bool)
    assert average_precision(scores, targets) == pytest.approx(1 / 3 + 1 / 5, abs=1e-12)
    swapped = np.array([0, 0, 1, 1, 1], dtype=bool)  # same group counts, other order inside
    assert average_precision(scores, swapped) == pytest.approx(1 / 3 + 1 / 5, abs=1e-12)


def test_mean_average_precision_skips_labels_without_a_positive():
    # Column 0: the 0.8333 case above. Column 1: no positive, left out.
    # Column 2: the only positive ranks 2nd of 4 → AP = 1/2. mAP = (0.8333 + 0.5) / 2.
    scores = np.array([[0.9, 0.1, 0.4], [0.8, 0.2, 0.3], [0.7, 0.3, 0.2], [0.6, 0.4, 0.1]])
    targets = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 0]])
    mean, per_label = mean_average_precision(scores, targets)
    assert set(per_label) == {0, 2}
    assert per_label[0] == pytest.approx(5 / 6, abs=1e-12)
    assert per_label[2] == pytest.approx(1 / 2, abs=1e-12)
    assert mean == pytest.approx((5 / 6 + 1 / 2) / 2, abs=1e-12)


def test_f1_scores_by_hand():
    targets = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    predictions = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 1]], dtype=bool)
    # label 0: TP 1 (row 0), FP 1 (row 3), FN 1 (row 1) → 2·1 / (2 + 1 + 1) = 0.5
    # label 1: TP 2 (rows 1, 2), FP 1 (row 0), FN 0   → 2·2 / (4 + 1 + 0) = 0.8
    # label 2: never in targets nor predicted         → undefined: 0, left out of macro
    # label 3: predicted once (row 3), never true     → 2·0 / (0 + 1 + 0) = 0, in macro
    # macro = (0.5 + 0.8 + 0) / 3 = 0.4333...; micro: TP 3, FP 3, FN 1 → 6 / (6 + 3 + 1) = 0.6
    macro, micro, per_label = f1_scores(predictions, targets)
    assert per_label == pytest.approx([0.5, 0.8, 0.0, 0.0], abs=1e-12)
    assert macro == pytest.approx(1.3 / 3, abs=1e-12)
    assert micro == pytest.approx(0.6, abs=1e-12)


def test_f1_scores_when_no_label_occurs():
    nothing = np.zeros((3, 2), dtype=bool)
    macro, micro, per_label = f1_scores(nothing, nothing)
    assert (macro, micro) == (0.0, 0.0)
    assert per_label.tolist() == [0.0, 0.0]


def test_best_f1_threshold_by_hand():
    # Cuts: >=0.9 → F1 2·1/(1+2) = 0.667; >=0.8 → 2·2/(2+2) = 1; >=0.4 → 4/5; >=0.3 → 4/6.
    # Best is >=0.8; the threshold sits halfway to the next score: (0.8 + 0.4) / 2 = 0.6.
    threshold, f1 = best_f1_threshold(np.array([0.9, 0.8, 0.4, 0.3]), np.array([1, 1, 0, 0]))
    assert threshold == pytest.approx(0.6, abs=1e-12)
    assert f1 == pytest.approx(1.0, abs=1e-12)


def test_best_f1_threshold_predicting_everything_goes_below_the_lowest_score():
    # All positive: predicting both gives F1 = 2·2/(2+2) = 1; the cut lies just below 0.2.
    threshold, f1 = best_f1_threshold(np.array([0.9, 0.2]), np.array([1, 1]))
    assert 0.2 - 1e-3 < threshold < 0.2
    assert f1 == 1.0


def test_best_f1_threshold_without_positive_predicts_nothing():
    scores = np.array([0.3, 0.7, 0.5])
    threshold, f1 = best_f1_threshold(scores, np.zeros(3, dtype=bool))
    assert 0.7 < threshold < 0.7 + 1e-3
    assert f1 == 0.0
    assert not (scores >= threshold).any()


def test_best_f1_threshold_between_adjacent_float32_scores():
    # No float32 lies strictly between these two: the threshold must still separate them.
    high = np.float32(1.0)
    low = np.nextafter(high, np.float32(0))
    scores = np.array([high, low, low], dtype=np.float32)
    threshold, f1 = best_f1_threshold(scores, np.array([1, 0, 0]))
    assert f1 == 1.0
    assert (scores >= threshold).tolist() == [True, False, False]


def test_recall_at_k_by_hand():
    similarity = np.array(
        [
            [0.9, 0.1, 0.5, 0.3],  # relevant {0}: ranked 1st                  → hit at k >= 1
            [0.2, 0.8, 0.6, 0.7],  # relevant {0, 2}: best is 0.6, behind 0.8, 0.7 → k >= 3
            [0.5, 0.5, 0.5, 0.1],  # relevant {2}: tied with 0 and 1, lower indices first → k >= 3
        ]
    )
    relevant = np.zeros((3, 4), dtype=bool)
    relevant[0, 0] = relevant[1, 0] = relevant[1, 2] = relevant[2, 2] = True
    # R@1 = 1/3, R@2 = 1/3, R@3 = 3/3; k = 10 > 4 items keeps every item → 1.
    assert recall_at_k(similarity, relevant, ks=(1, 2, 3, 10)) == pytest.approx(
        {"R@1": 1 / 3, "R@2": 1 / 3, "R@3": 1.0, "R@10": 1.0}, abs=1e-12
    )
    assert set(recall_at_k(similarity, relevant)) == {"R@1", "R@5", "R@10"}


def test_topk_accuracy_by_hand():
    logits = np.array(
        [
            [0.1, 0.6, 0.2, 0.1],  # true 1: highest                                  → rank 0
            [0.5, 0.1, 0.3, 0.4],  # true 2: behind 0.5 and 0.4                       → rank 2
            [0.2, 0.2, 0.2, 0.9],  # true 2: behind 0.9, then tied 0 and 1 go first → rank 3
        ]
    )
    # top1 = 1/3, top2 = 1/3, top3 = 2/3, top4 = 3/3; k = 5 > 4 classes is skipped.
    result = topk_accuracy(logits, np.array([1, 2, 2]), ks=(1, 2, 3, 4, 5))
    assert result == pytest.approx(
        {"top1": 1 / 3, "top2": 1 / 3, "top3": 2 / 3, "top4": 1.0}, abs=1e-12
    )
    assert set(topk_accuracy(np.tile(logits, (1, 2)), np.array([1, 2, 2]))) == {"top1", "top5"}


# --- agreement with scikit-learn and brute force ------------------------------------------


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_average_precision_matches_sklearn(seed: int, tied: bool):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    for dtype in (np.float32, np.float64):
        scores = random_scores(rng, 300, tied, dtype)
        targets = random_targets(rng, 300, rate=rng.uniform(0.01, 0.6))
        expected = metrics.average_precision_score(targets, scores)
        assert average_precision(scores, targets) == pytest.approx(expected, abs=1e-9)
        assert average_precision(scores, targets.astype(int)) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_mean_average_precision_matches_sklearn_per_column(seed: int, tied: bool):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    # 70 labels: more than one block of columns; some columns get no positive at all.
    scores = random_scores(rng, (200, 70), tied, np.float32)
    targets = rng.random((200, 70)) < rng.uniform(0, 0.05, size=70)
    targets[:, :3] = False
    targets[0, 3] = True
    mean, per_label = mean_average_precision(scores, targets)
    with_positive = [j for j in range(70) if targets[:, j].any()]
    assert sorted(per_label) == with_positive
    expected = {j: metrics.average_precision_score(targets[:, j], scores[:, j]) for j in per_label}
    assert per_label == pytest.approx(expected, abs=1e-9)
    assert mean == pytest.approx(np.mean(list(expected.values())), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_f1_scores_match_sklearn(seed: int):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0, 0.2, size=15)
    targets = rng.random((80, 15)) < rates
    predictions = rng.random((80, 15)) < rates[::-1]
    targets[:, :2] = predictions[:, :2] = False  # two labels that never occur
    targets[:, 2] = False  # one label only ever predicted
    predictions[0, 2] = True
    macro, micro, per_label = f1_scores(predictions, targets)
    # Macro averages over the labels that occur in targets or in predictions.
    occurring = np.flatnonzero(targets.any(axis=0) | predictions.any(axis=0))
    assert 2 in occurring and 0 not in occurring
    sklearn_macro = metrics.f1_score(
        targets, predictions, average="macro", labels=occurring, zero_division=0
    )
    sklearn_micro = metrics.f1_score(targets, predictions, average="micro", zero_division=0)
    sklearn_per_label = metrics.f1_score(targets, predictions, average=None, zero_division=0)
    assert macro == pytest.approx(sklearn_macro, abs=1e-9)
    assert micro == pytest.approx(sklearn_micro, abs=1e-9)
    assert per_label == pytest.approx(sklearn_per_label, abs=1e-9)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_topk_accuracy_matches_sklearn(seed: int, tied: bool):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n_classes = 12
    logits = random_scores(rng, (150, n_classes), tied, np.float32)
    true_class = rng.integers(0, n_classes, size=150)
    # sklearn ranks the higher class index first among tied logits, topk_accuracy the lower
    # one: mirroring the class order makes the two rules the same.
    mirrored = logits[:, ::-1]
    mirrored_true = n_classes - 1 - true_class
    result = topk_accuracy(logits, true_class, ks=(1, 3, 5))
    for k in (1, 3, 5):
        expected = metrics.top_k_accuracy_score(
            mirrored_true, mirrored, k=k, labels=np.arange(n_classes)
        )
        assert result[f"top{k}"] == pytest.approx(expected, abs=1e-9)
        if not tied:
            direct = metrics.top_k_accuracy_score(
                true_class, logits, k=k, labels=np.arange(n_classes)
            )
            assert result[f"top{k}"] == pytest.approx(direct, abs=1e-9)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_recall_at_k_matches_a_stable_sort(seed: int, tied: bool):
    rng = np.random.default_rng(seed)
    similarity = random_scores(rng, (60, 40), tied, np.float32)
    relevant = rng.random((60, 40)) < 0.05
    relevant[np.arange(60), rng.integers(0, 40, size=60)] = True  # every query has one
    order = np.argsort(-similarity, axis=1, kind="stable")
    ranked_relevant = np.take_along_axis(relevant, order, axis=1)
    ks = (1, 2, 5, 10, 50)
    expected = {f"R@{k}": float(ranked_relevant[:, :k].any(axis=1).mean()) for k in ks}
    assert recall_at_k(similarity, relevant, ks=ks) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_best_f1_threshold_is_reached_and_unbeaten(seed: int, tied: bool):
    rng = np.random.default_rng(seed)
    for dtype in (np.float32, np.float64):
        scores = random_scores(rng, 200, tied, dtype)
        # Positives lean towards high scores, so the best cut is neither end.
        targets = rng.random(200) < scores**2
        threshold, f1 = best_f1_threshold(scores, targets)
        assert f1_of(scores >= threshold, targets) == pytest.approx(f1, abs=1e-12)
        best_possible = max(f1_of(scores >= t, targets) for t in np.unique(scores))
        assert f1 == pytest.approx(best_possible, abs=1e-12)
        # The cut falls strictly between two distinct scores (or below all of them).
        assert threshold not in set(scores.tolist())


# --- input checks and package hygiene ------------------------------------------------------


SCORES = np.array([0.9, 0.1, 0.5])
TARGETS = np.array([1, 0, 1])
MATRIX = np.array([[0.9, 0.1], [0.2, 0.8]])
EYE = np.eye(2, dtype=bool)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: average_precision(SCORES, TARGETS[:2]), "shape"),
        (lambda: average_precision(MATRIX, EYE), "1-D"),
        (lambda: average_precision(SCORES, np.zeros(3)), "no positive"),
        (lambda: average_precision(SCORES, np.array([2, 0, 1])), "0/1"),
        (lambda: average_precision(np.array([0.9, np.nan, 0.5]), TARGETS), "NaN"),
        (lambda: average_precision(np.array(["a", "b", "c"]), TARGETS), "real numbers"),
        (lambda: mean_average_precision(SCORES, TARGETS), "2-D"),
        (lambda: mean_average_precision(MATRIX, EYE[:1]), "shape"),
        (lambda: mean_average_precision(MATRIX, np.zeros((2, 2))), "no label"),
        (lambda: f1_scores(EYE, EYE[:, :1]), "shape"),
        (lambda: f1_scores(EYE[0], EYE[0]), "2-D"),
        (lambda: f1_scores(EYE, np.full((2, 2), 0.5)), "0/1"),
        (lambda: best_f1_threshold(SCORES, TARGETS[:2]), "shape"),
        (lambda: best_f1_threshold(np.array([]), np.array([], dtype=bool)), "empty"),
        (lambda: best_f1_threshold(np.array([np.inf, 0.0]), np.array([1, 0])), "finite"),
        (lambda: recall_at_k(MATRIX, EYE[:, :1]), "shape"),
        (lambda: recall_at_k(SCORES, TARGETS), "2-D"),
        (lambda: recall_at_k(MATRIX, np.array([[1, 0], [0, 0]])), "no relevant"),
        (lambda: recall_at_k(MATRIX, EYE, ks=(0, 1)), "positive integers"),
        (lambda: recall_at_k(MATRIX, EYE, ks=()), "positive integers"),
        (lambda: recall_at_k(np.zeros((0, 2)), np.zeros((0, 2), dtype=bool)), "no query"),
        (lambda: topk_accuracy(MATRIX, np.array([0])), "shape"),
        (lambda: topk_accuracy(MATRIX, np.array([0, 2])), r"\[0, 2\)"),
        (lambda: topk_accuracy(MATRIX, np.array([0.0, 1.0])), "integer"),
        (lambda: topk_accuracy(MATRIX, np.array([0, 1]), ks=(1.5,)), "positive integers"),
    ],
)
def test_bad_input_raises_value_error(call, message: str):
    with pytest.raises(ValueError, match=message):
        call()


def test_metrics_import_neither_sklearn_nor_torch():
    code = (
        "import sys, searchclip._metrics; "
        "print(sorted(m for m in ('sklearn', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
