"""Zero-shot multi-label tagging of indexed images against a label vocabulary.

As in the CLIP paper's zero-shot evaluation, each label's embedding is a prompt ensemble:
every template (or the label's own prompts) is encoded, L2-normalised, averaged and
renormalised. An image's score for a label is the cosine similarity of the two unit vectors.
Which labels an image gets is a rule: an explicit ``threshold``, else per-label thresholds
fitted by calibration when there are any, else the ``top_k`` best labels.

Label embeddings are cached in the catalog per (model, vocabulary fingerprint); a re-run scores
only images this vocabulary has not scored yet, and a changed rule (or new calibration)
re-tags everything, since scoring stored vectors is one matrix product.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence

import numpy as np

from searchclip._catalog import Catalog, ModelRecord
from searchclip._catalog.tags import VocabularyRecord
from searchclip._encoders import Encoder, normalize
from searchclip._errors import InvalidArgumentError
from searchclip._results import Tag, TagReport
from searchclip._vector_index import top_k_inner_product
from searchclip._vocabulary import DEFAULT_TEMPLATES, Vocabulary, load_vocabulary

CHUNK = 8192  # images scored per matrix product


def label_embeddings(
    encoder: Encoder, vocabulary: Vocabulary, templates: Sequence[str] = DEFAULT_TEMPLATES
) -> np.ndarray:
    """One unit vector per label: the renormalised mean of its prompts' unit vectors."""
    texts = [label.texts(templates) for label in vocabulary.labels]
    flat = encoder.encode_texts([text for group in texts for text in group])
    ends = np.cumsum([len(group) for group in texts])
    means = np.stack([part.mean(axis=0) for part in np.split(flat, ends[:-1])])
    return normalize(means, encoder.dim)


def choose_tags(
    image_vectors: np.ndarray,
    label_vectors: np.ndarray,
    *,
    top_k: int,
    threshold: float | None = None,
    thresholds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tags of each image as flat arrays (image row, label position, cosine score).

    ``threshold`` (one for all labels) or ``thresholds`` (one per label) keep every label that
    reaches it; otherwise each image gets its ``top_k`` best labels.
    """
    if threshold is None and thresholds is None:
        scores, labels = top_k_inner_product(image_vectors, label_vectors, top_k)
        rows = np.repeat(np.arange(len(image_vectors)), scores.shape[1])
        return rows, labels.ravel(), scores.ravel()
    scores = image_vectors @ label_vectors.T
    limit = threshold if threshold is not None else thresholds[None, :]
    rows, labels = np.nonzero(scores >= limit)
    return rows, labels, scores[rows, labels]


def effective_thresholds(thresholds: np.ndarray) -> np.ndarray | None:
    """Calibrated thresholds with gaps (labels calibration never saw) filled by their median."""
    known = thresholds[~np.isnan(thresholds)]
    if not len(known):
        return None
    return np.where(np.isnan(thresholds), np.median(known), thresholds).astype(np.float32)


class Tagger:
    """Tagging operations on one catalog and model (``SearchEngine`` delegates here)."""

    def __init__(
        self, catalog: Catalog, model: ModelRecord, encoder: Callable[[], Encoder]
    ) -> None:
        self._catalog = catalog
        self._model = model
        self._encoder = encoder

    def vocabulary_record(
        self, vocabulary: str, templates: Sequence[str] = DEFAULT_TEMPLATES
    ) -> VocabularyRecord:
        """The stored vocabulary for this content and model, embedding its labels if new."""
        loaded = load_vocabulary(vocabulary)
        fingerprint = loaded.fingerprint(templates)
        stored = self._catalog.tags.vocabulary(self._model.id, fingerprint)
        if stored is None:
            vectors = label_embeddings(self._encoder(), loaded, templates)
            stored = self._catalog.tags.add_vocabulary(
                self._model.id, loaded.name, fingerprint, loaded.names, vectors
            )
        return stored

    def labels(self, record: VocabularyRecord) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Label names, embeddings (L, dim) and calibrated thresholds (L,), NaN where none."""
        return self._catalog.tags.labels(record.id)

    def set_thresholds(self, record: VocabularyRecord, thresholds: np.ndarray) -> None:
        """Store calibrated thresholds; the next ``tag`` run re-tags with them."""
        self._catalog.tags.set_thresholds(record.id, thresholds)

    def tag(
        self,
        vocabulary: str = "coco",
        *,
        top_k: int = 3,
        threshold: float | None = None,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
    ) -> TagReport:
        if top_k < 1:
            raise InvalidArgumentError(f"top_k must be at least 1, got {top_k}", value=top_k)
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise InvalidArgumentError(
                f"a threshold is a cosine similarity, between -1 and 1; got {threshold}",
                value=threshold,
            )
        started = time.monotonic()
        record = self.vocabulary_record(vocabulary, templates)
        names, label_vectors, thresholds = self._catalog.tags.labels(record.id)
        calibrated = None if threshold is not None else effective_thresholds(thresholds)
        rule = _rule(top_k, threshold, calibrated)
        retag = self._catalog.tags.rule(record.id) != rule  # first run, or another rule
        ids, vectors = self._catalog.tags.untagged_vectors(
            record.id, self._model.id, self._model.dim, everything=retag
        )
        file_ids: list[np.ndarray] = [np.empty(0, np.int64)]
        labels: list[np.ndarray] = [np.empty(0, np.int64)]
        scores: list[np.ndarray] = [np.empty(0, np.float32)]
        for start in range(0, len(ids), CHUNK):  # bounded score matrices for the threshold rules
            rows, chosen, values = choose_tags(
                vectors[start : start + CHUNK],
                label_vectors,
                top_k=top_k,
                threshold=threshold,
                thresholds=calibrated,
            )
            file_ids.append(ids[start : start + CHUNK][rows])
            labels.append(chosen)
            scores.append(values)
        self._catalog.tags.write_tags(
            record.id,
            rule,
            ids,
            np.concatenate(file_ids),
            np.concatenate(labels),
            np.concatenate(scores),
            replace=retag,
        )
        return TagReport(
            vocabulary=record.name,
            labels=len(names),
            scored=len(ids),
            already=self._catalog.count_files() - len(ids),
            tags=sum(len(part) for part in file_ids),
            rule=json.loads(rule)["rule"],
            elapsed_s=time.monotonic() - started,
        )

    def tags_of(self, path: str) -> list[Tag]:
        record = self._catalog.file_by_path(path)
        if record is None:
            raise InvalidArgumentError(f"{path} is not in this index", value=path)
        return self.tags_by_id(record.id)

    def tags_by_id(self, file_id: int) -> list[Tag]:
        """The stored tags of the file ``file_id``, best score first."""
        return [Tag(t.label, t.score, t.vocabulary) for t in self._catalog.tags.tags_of(file_id)]

    def files_with(self, label: str) -> dict[int, float]:
        """file id → score for files tagged ``label``; an unknown label is an error."""
        found = self._catalog.tags.files_tagged(label, self._model.id)
        if not found and label not in self._catalog.tags.known_labels(self._model.id):
            raise InvalidArgumentError(
                f"no vocabulary tagged in this index has the label {label!r}; "
                "tag the index with a vocabulary that has it first",
                value=label,
            )
        return found


def _rule(top_k: int, threshold: float | None, calibrated: np.ndarray | None) -> str:
    if threshold is not None:
        rule = {"rule": f"score >= {threshold:g}"}
    elif calibrated is not None:
        digest = hashlib.sha256(calibrated.tobytes()).hexdigest()[:16]
        rule = {"rule": "calibrated per-label thresholds", "thresholds": digest}
    else:
        rule = {"rule": f"top {top_k}"}
    return json.dumps(rule, sort_keys=True)
