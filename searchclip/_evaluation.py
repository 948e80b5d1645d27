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
from searchclip._errors import InvalidArgumentError
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
    """The records of a JSON-lines data set, with image paths made absolute."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"{path} does not exist")
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            examples.append(
                Example(os.path.abspath(path.parent / record["file"]), tuple(record[key]))
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidArgumentError(
                f"{path}, line {number}: expected a JSON object with 'file' and '{key}' ({exc})"
            ) from None
    if not examples:
        raise InvalidArgumentError(f"{path} holds no records")
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
        raise InvalidArgumentError(
            f"{len(missing)} evaluation images could not be indexed, e.g. {missing[0]} "
            "(see `searchclip info --failures`)"
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
        raise InvalidArgumentError(f"no label of {labels_file} is in the vocabulary {vocabulary}")
    return _TaggingSet(record, names, vectors, label_vectors, targets, thresholds, unknown)


def evaluate_tagging(
    engine: SearchEngine,
    labels_file,
    vocabulary: str = "coco",
    top_k: int = 3,
    *,
    add_to_index: bool = True,
) -> dict:
    """mAP over labels that occur, and macro/micro F1 of the tags the current rule assigns."""
    data = _tagging_set(engine, labels_file, vocabulary, add_to_index)
    mean_ap, per_label = mean_average_precision(data.scores, data.targets)
    macro, micro = data.f1(top_k, effective_thresholds(data.thresholds))
    return {
        "mAP": mean_ap,
        "macro_f1": macro,
        "micro_f1": micro,
        "images": len(data.vectors),
        "labels_evaluated": len(per_label),
        "unknown_labels": data.unknown,
        "per_label": {data.names[i]: ap for i, ap in per_label.items()},
    }


def calibrate(
    engine: SearchEngine,
    labels_file,
    vocabulary: str = "coco",
    top_k: int = 3,
    *,
    add_to_index: bool = False,
) -> dict:
    """Fit each label's threshold for its best F1 on a labelled set, and store them.

    The images are read, not added to a user's index (``add_to_index=False``).
    """
    data = _tagging_set(engine, labels_file, vocabulary, add_to_index)
    before, _ = data.f1(top_k, effective_thresholds(data.thresholds))
    scores = data.scores
    thresholds = np.full(len(data.names), np.nan, dtype=np.float32)
    for column in np.flatnonzero(data.targets.any(axis=0)):
        thresholds[column], _ = best_f1_threshold(scores[:, column], data.targets[:, column])
    after, _ = data.f1(top_k, effective_thresholds(thresholds))
    engine.tagger().set_thresholds(data.record, thresholds)
    return {
        "vocabulary": data.record.name,
        "labels_calibrated": int((~np.isnan(thresholds)).sum()),
        "macro_f1_before": before,
        "macro_f1_after": after,
    }


def evaluate_retrieval(engine: SearchEngine, captions_file, *, add_to_index: bool = True) -> dict:
    """Text→image and image→text recall@1/5/10; a caption's own image is its only match."""
    examples = read_examples(captions_file, "captions")
    images = image_vectors(engine, examples, add_to_index=add_to_index)
    owners = np.array([i for i, e in enumerate(examples) for _ in e.values])
    texts = engine.encoder().encode_texts([c for e in examples for c in e.values])
    relevant = owners[:, None] == np.arange(len(examples))[None, :]  # (captions, images)
    return {
        "text_to_image": recall_at_k(texts @ images.T, relevant),
        "image_to_text": recall_at_k(images @ texts.T, relevant.T),
        "images": len(examples),
        "captions": len(texts),
    }


def evaluate_zeroshot(
    engine: SearchEngine, labels_file, classes_file, *, add_to_index: bool = True
) -> dict:
    """Top-1 and top-5 accuracy of single-label classification among ``classes_file``."""
    examples = read_examples(labels_file, "labels")
    vectors = image_vectors(engine, examples, add_to_index=add_to_index)
    tagger = engine.tagger()
    names, label_vectors, _ = tagger.labels(tagger.vocabulary_record(str(classes_file)))
    position = {name: i for i, name in enumerate(names)}
    unknown = sorted({e.values[0] for e in examples if e.values[0] not in position})
    if unknown:
        raise InvalidArgumentError(f"labels not among the classes of {classes_file}: {unknown[:5]}")
    truth = np.array([position[e.values[0]] for e in examples])
    accuracy = topk_accuracy(vectors @ label_vectors.T, truth)
    return {**accuracy, "images": len(examples), "classes": len(names)}
