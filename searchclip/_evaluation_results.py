"""Typed, frozen results of calibration and evaluation on labelled image sets.

Each result's :meth:`as_dict` is the JSON object that ``searchclip calibrate`` and ``searchclip
eval ... --json`` print, key for key, so scripts reading that output see the same object
whichever way it was produced. Figures are shares in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecallAtK:
    """Share of queries whose match is among their 1, 5 and 10 most similar items."""

    recall_at_1: float
    recall_at_5: float
    recall_at_10: float

    def as_dict(self) -> dict[str, float]:
        return {"R@1": self.recall_at_1, "R@5": self.recall_at_5, "R@10": self.recall_at_10}


@dataclass(frozen=True)
class TaggingEvaluation:
    """How well a vocabulary's labels rank and tag a labelled set.

    ``mean_average_precision`` averages, over the labels that occur in the set, each label's
    average precision when the images are ranked by their score for it;
    ``per_label_average_precision`` holds those averages by label name. ``macro_f1`` (mean
    over labels) and ``micro_f1`` (pooled over all tags) score the tags the current rule
    assigns, as ``SearchEngine.tag`` would. ``unknown_labels`` counts labels given in the set
    that the vocabulary lacks; they are left out.
    """

    mean_average_precision: float
    macro_f1: float
    micro_f1: float
    images: int
    labels_evaluated: int
    unknown_labels: int
    per_label_average_precision: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "mAP": self.mean_average_precision,
            "macro_f1": self.macro_f1,
            "micro_f1": self.micro_f1,
            "images": self.images,
            "labels_evaluated": self.labels_evaluated,
            "unknown_labels": self.unknown_labels,
            "per_label": dict(self.per_label_average_precision),
        }


@dataclass(frozen=True)
class Calibration:
    """Per-label thresholds fitted and stored for ``vocabulary``.

    ``labels_calibrated`` counts the labels that occur in the calibration set (the others keep
    the default rule); ``macro_f1_before`` and ``macro_f1_after`` are the macro F1 of the
    tags assigned on that same set with the previous rule and with the fitted thresholds.
    """

    vocabulary: str
    labels_calibrated: int
    macro_f1_before: float
    macro_f1_after: float

    def as_dict(self) -> dict:
        return {
            "vocabulary": self.vocabulary,
            "labels_calibrated": self.labels_calibrated,
            "macro_f1_before": self.macro_f1_before,
            "macro_f1_after": self.macro_f1_after,
        }


@dataclass(frozen=True)
class RetrievalEvaluation:
    """Recall of a captioned set in both directions, where a caption's own image is its only
    match: ``text_to_image`` queries with each caption, ``image_to_text`` with each image."""

    text_to_image: RecallAtK
    image_to_text: RecallAtK
    images: int
    captions: int

    def as_dict(self) -> dict:
        return {
            "text_to_image": self.text_to_image.as_dict(),
            "image_to_text": self.image_to_text.as_dict(),
            "images": self.images,
            "captions": self.captions,
        }


@dataclass(frozen=True)
class ZeroShotEvaluation:
    """Share of images whose class is the most similar (``top1_accuracy``) or among the five
    most similar (``top5_accuracy``) of ``classes`` class names; ``top5_accuracy`` is
    ``None`` with fewer than 5 classes, where it is meaningless."""

    top1_accuracy: float
    top5_accuracy: float | None
    images: int
    classes: int

    def as_dict(self) -> dict:
        top5 = {} if self.top5_accuracy is None else {"top5": self.top5_accuracy}
        return {"top1": self.top1_accuracy, **top5, "images": self.images, "classes": self.classes}
