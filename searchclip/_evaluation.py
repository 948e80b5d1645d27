"""Calibration and evaluation on labelled image sets, with the metrics CLIP_benchmark uses.

Data sets are JSON-lines files in ../shared/data's format, with ``file`` relative to the
file's folder: labels (``{"file": …, "labels": […]}``) or captions (``{"file": …,
"captions": […]}``). The images are indexed with the engine (incrementally, so a second run
encodes nothing) and scored from their stored vectors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchclip._catalog.tags import VocabularyRecord
from searchclip._engine import SearchEngine
from searchclip._errors import FileError, InvalidArgumentError
from searchclip._evaluation_results import (
    Calibration,
    RecallAtK,
    RetrievalEvaluation,
    TaggingEvaluation,
    ZeroShotEvaluation,
)
from searchclip._images import load_image
from searchclip._metrics import (
    best_f1_threshold,
    f1_scores,
    mean_average_precision,
    recall_at_k,
    topk_accuracy,
)
from searchclip._tagging import choose_tags, effective_thresholds


@dataclass(frozen=True)
class Example:
    path: str  # absolute
    values: tuple[str, ...]  # its labels or its captions


def read_examples(path: str | os.PathLike, key: str) -> list[Example]:
    """The records of a JSON-lines data set, with image paths made absolute.

    Raises :class:`FileError` (with ``path``) when the file does not exist, holds no record,
    or has a line that is not a JSON object with ``file`` and a list of strings under ``key``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileError(f"{path} does not exist", path=path)
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            file, values = record["file"], record[key]
            # A string here would otherwise be read as one value per character.
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise TypeError(f"'{key}' is not a list of strings")
            examples.append(Example(os.path.abspath(path.parent / file), tuple(values)))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise FileError(
                f"{path}, line {number}: expected a JSON object with 'file' and '{key}' ({exc})",
                path=path,
            ) from None
    if not examples:
        raise FileError(f"{path} holds no records", path=path)
    return examples


def image_vectors(
    engine: SearchEngine, examples: list[Example], *, add_to_index: bool
) -> np.ndarray:
    """The examples' image vectors, in order.

    With ``add_to_index`` (a temporary evaluation index) the images are indexed first,
    incrementally. Otherwise the index is a user's own: stored vectors are used where it holds
    the image, and the rest are encoded on the fly without being added to it.
    """
    if add_to_index:
        for folder in sorted({os.path.dirname(e.path) for e in examples}):
            engine.index(folder)
    stored = engine.stored_vectors([e.path for e in examples])
    missing = [e.path for e in examples if e.path not in stored]
    if missing and add_to_index:
        first = missing[0]
        reasons = {failure.path: failure.reason for failure in engine.failures()}
        reason = reasons.get(first, "not indexed" if os.path.exists(first) else "no such file")
        raise FileError(
            f"{len(missing)} evaluation images could not be indexed, e.g. {first}: {reason}",
            path=first,
        )
    encoder = engine.encoder() if missing else None
    for start in range(0, len(missing), 64):
        chunk = missing[start : start + 64]
        pictures = [load_image(path).image for path in chunk]
        stored.update(zip(chunk, encoder.encode_images(pictures), strict=True))
    return np.stack([stored[e.path] for e in examples])


def _label_matrix(examples: list[Example], names: list[str]) -> tuple[np.ndarray, int]:
    """Targets (n, L) for the vocabulary's names, and how many given labels it lacks."""
    position = {name: i for i, name in enumerate(names)}
    targets = np.zeros((len(examples), len(names)), dtype=bool)
    unknown = 0
    for row, example in enumerate(examples):
        for label in example.values:
            if label in position:
                targets[row, position[label]] = True
            else:
                unknown += 1
    return targets, unknown


@dataclass(frozen=True)
class _TaggingSet:
    """A labelled set scored against a vocabulary."""

    record: VocabularyRecord
    names: list[str]
    vectors: np.ndarray  # images (n, dim)
    label_vectors: np.ndarray  # (L, dim)
    targets: np.ndarray  # (n, L) bool
    thresholds: np.ndarray  # stored calibrated thresholds (L,), NaN where none
    unknown: int  # given labels the vocabulary lacks

    @property
    def scores(self) -> np.ndarray:
        return self.vectors @ self.label_vectors.T

    def f1(self, top_k: int, thresholds: np.ndarray | None) -> tuple[float, float]:
        """Macro and micro F1 of the tags the rule would assign (the same rule as ``tag``)."""
        rows, labels, _ = choose_tags(
            self.vectors, self.label_vectors, top_k=top_k, thresholds=thresholds
        )
        predicted = np.zeros(self.targets.shape, dtype=bool)
        predicted[rows, labels] = True
        macro, micro, _ = f1_scores(predicted, self.targets)
        return macro, micro


def _tagging_set(engine: SearchEngine, labels_file, vocabulary: str, add_to_index: bool):
    examples = read_examples(labels_file, "labels")
    vectors = image_vectors(engine, examples, add_to_index=add_to_index)
    tagger = engine.tagger()
    record = tagger.vocabulary_record(vocabulary)
    names, label_vectors, thresholds = tagger.labels(record)
    targets, unknown = _label_matrix(examples, names)
    if unknown == sum(len(e.values) for e in examples):
        raise InvalidArgumentError(
            f"no label of {labels_file} is in the vocabulary {vocabulary}", value=vocabulary
        )
    return _TaggingSet(record, names, vectors, label_vectors, targets, thresholds, unknown)


def evaluate_tagging(
    engine: SearchEngine,
    labels_file,
    vocabulary: str = "coco",
    top_k: int = 3,
    *,
    add_to_index: bool = True,
) -> TaggingEvaluation:
    """mAP over labels that occur, and macro/micro F1 of the tags the current rule assigns.

    Raises :class:`FileError` for an unusable labels file and :class:`InvalidArgumentError`
    when none of its labels is in the vocabulary.
    """
    data = _tagging_set(engine, labels_file, vocabulary, add_to_index)
    mean_ap, per_label = mean_average_precision(data.scores, data.targets)
    macro, micro = data.f1(top_k, effective_thresholds(data.thresholds))
    return TaggingEvaluation(
        mean_average_precision=mean_ap,
        macro_f1=macro,
        micro_f1=micro,
        images=len(data.vectors),
        labels_evaluated=len(per_label),
        unknown_labels=data.unknown,
        per_label_average_precision={data.names[i]: ap for i, ap in per_label.items()},
    )


def calibrate(
    engine: SearchEngine,
    labels_file,
    vocabulary: str = "coco",
    top_k: int = 3,
    *,
    add_to_index: bool = False,
) -> Calibration:
    """Fit each label's threshold for its best F1 on a labelled set, and store them.

    The images are read, not added to a user's index (``add_to_index=False``). Raises as
    :func:`evaluate_tagging` does.
    """
    data = _tagging_set(engine, labels_file, vocabulary, add_to_index)
    before, _ = data.f1(top_k, effective_thresholds(data.thresholds))
    scores = data.scores
    thresholds = np.full(len(data.names), np.nan, dtype=np.float32)
    for column in np.flatnonzero(data.targets.any(axis=0)):
        thresholds[column], _ = best_f1_threshold(scores[:, column], data.targets[:, column])
    after, _ = data.f1(top_k, effective_thresholds(thresholds))
    engine.tagger().set_thresholds(data.record, thresholds)
    return Calibration(
        vocabulary=data.record.name,
        labels_calibrated=int((~np.isnan(thresholds)).sum()),
        macro_f1_before=before,
        macro_f1_after=after,
    )


def evaluate_retrieval(
    engine: SearchEngine, captions_file, *, add_to_index: bool = True
) -> RetrievalEvaluation:
    """Text→image and image→text recall@1/5/10; a caption's own image is its only match.

    Raises :class:`FileError` for an unusable captions file, or one with an image without
    captions (its recall would be undefined).
    """
    examples = read_examples(captions_file, "captions")
    uncaptioned = [e.path for e in examples if not e.values]
    if uncaptioned:
        raise FileError(
            f"{len(uncaptioned)} images of {captions_file} have no caption, e.g. {uncaptioned[0]}",
            path=captions_file,
        )
    images = image_vectors(engine, examples, add_to_index=add_to_index)
    owners = np.array([i for i, e in enumerate(examples) for _ in e.values])
    texts = engine.encoder().encode_texts([c for e in examples for c in e.values])
    relevant = owners[:, None] == np.arange(len(examples))[None, :]  # (captions, images)
    return RetrievalEvaluation(
        text_to_image=_recall(recall_at_k(texts @ images.T, relevant)),
        image_to_text=_recall(recall_at_k(images @ texts.T, relevant.T)),
        images=len(examples),
        captions=len(texts),
    )


def _recall(by_key: dict[str, float]) -> RecallAtK:
    return RecallAtK(by_key["R@1"], by_key["R@5"], by_key["R@10"])


def evaluate_zeroshot(
    engine: SearchEngine, labels_file, classes_file, *, add_to_index: bool = True
) -> ZeroShotEvaluation:
    """Top-1 and top-5 accuracy of single-label classification among ``classes_file``.

    An image's class is its first label. Raises :class:`FileError` for an unusable labels
    file, or one with an image without a label, and :class:`InvalidArgumentError` when a
    class is not among ``classes_file``'s.
    """
    examples = read_examples(labels_file, "labels")
    unlabelled = [e.path for e in examples if not e.values]
    if unlabelled:
        raise FileError(
            f"{len(unlabelled)} images of {labels_file} have no label, e.g. {unlabelled[0]}",
            path=labels_file,
        )
    vectors = image_vectors(engine, examples, add_to_index=add_to_index)
    tagger = engine.tagger()
    names, label_vectors, _ = tagger.labels(tagger.vocabulary_record(str(classes_file)))
    position = {name: i for i, name in enumerate(names)}
    unknown = sorted({e.values[0] for e in examples if e.values[0] not in position})
    if unknown:
        raise InvalidArgumentError(
            f"labels not among the classes of {classes_file}: {unknown[:5]}", value=unknown
        )
    truth = np.array([position[e.values[0]] for e in examples])
    accuracy = topk_accuracy(vectors @ label_vectors.T, truth)
    return ZeroShotEvaluation(
        top1_accuracy=accuracy["top1"],
        top5_accuracy=accuracy.get("top5"),
        images=len(examples),
        classes=len(names),
    )
