"""SearchEngine's near-duplicate reports (a mixin, see :mod:`searchclip._duplicates`).

A report reads the catalog's vectors and hashes once, fills in the perceptual hashes of files
indexed before hashes were computed (each decoded once, stored), uses the model's fitted
threshold (fitting and storing it on first use), and groups.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from searchclip import _duplicate_fit as fit
from searchclip import _images as images
from searchclip._duplicates import (
    DuplicateGroup,
    DuplicateImage,
    DuplicateReport,
    DuplicateThreshold,
    checked_grouping,
    checked_threshold,
    duplicate_components,
)
from searchclip._errors import ImageReadError
from searchclip._perceptual_hash import HASH_DISTANCE_LIMIT, hash_distance, perceptual_hash
from searchclip._results import FailedFile, IndexProgress

HASH_DECODE_SIDE = 64  # pictures are hashed from 32 x 32: a small decode is enough
REFIT_GROWTH = 2.0  # a stored fit is redone once the index has grown or shrunk this much


class DuplicateMethods:
    """Near-duplicate reports over the whole index."""

    def duplicates(
        self,
        *,
        threshold: float | None = None,
        by: str = "both",
        refit: bool = False,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> DuplicateReport:
        """Group the index's images that are copies of one another (see DuplicateReport).

        ``threshold`` (a cosine) overrides the model's fitted one; ``refit`` fits it anew.
        ``by``: ``both`` (perceptual hash or embedding), ``hash`` or ``embedding`` alone; exact
        copies (same bytes) are always grouped. ``on_progress`` follows the hashing of files
        indexed before perceptual hashes were computed.

        Raises:
            EmptyIndexError: the index holds no images yet.
            InvalidArgumentError: a bad ``threshold`` or ``by``.
            IndexBusyError: hashes or a fit need storing while another process writes.
            ModelLoadError, MissingExtraError: a fit needs the model and it cannot be loaded.
        """
        started = time.monotonic()
        rules = checked_grouping(by)
        given = None if threshold is None else checked_threshold(threshold)
        state = self._searchable_state(1)
        rows = self._catalog.duplicate_rows
        filled, failures = 0, ()
        if missing := rows.without_perceptual_hash():
            with self._directory.write_lock():
                filled, failures = _fill_hashes(rows, missing, on_progress)
        ids, content, hashes, known = rows.hashes()
        vector_ids, vectors = self._catalog.all_vectors(state.model)
        vectors = _aligned(ids, vector_ids, vectors)
        if given is not None:
            chosen = DuplicateThreshold(state.model.name, given, "given")
        elif "embedding" in rules:
            chosen = self._duplicate_threshold(state, ids, vectors, content, hashes, known, refit)
        else:
            chosen = DuplicateThreshold(state.model.name, None, "unused")
        embedding = "embedding" in rules and (by == "embedding" or chosen.separates)
        components = duplicate_components(
            vectors,
            content,
            hashes,
            known,
            threshold=chosen.value if embedding else None,
            hash_limit=HASH_DISTANCE_LIMIT if "hash" in rules else None,
        )
        records = self._catalog.files_by_id(int(ids[r]) for m in components.rows for r in m)
        found = (
            _group(members, linked, ids, content, hashes, known, vectors, records)
            for members, linked in zip(components.rows, components.linked_by, strict=True)
        )
        groups = [group for group in found if group is not None]
        groups.sort(key=lambda group: (-len(group.images), group.keep.path))
        return DuplicateReport(
            groups=tuple(groups),
            images=len(ids),
            grouping=by,
            threshold=chosen,
            hash_distance_limit=HASH_DISTANCE_LIMIT,
            hashes_filled=filled,
            hash_failures=tuple(failures),
            elapsed_s=time.monotonic() - started,
            embedding_used=embedding,
        )

    def _duplicate_threshold(self, state, ids, vectors, content, hashes, known, refit: bool):
        """The stored fit for the index's model, or a new one (stored)."""
        rows = self._catalog.duplicate_rows
        stored = None if refit else rows.threshold(state.model.name)
        if stored is not None:
            try:
                kept = DuplicateThreshold(**{**stored, "source": "stored"})
            except TypeError:  # written by another version: fit again
                kept = None
            grown = kept and max(len(ids), 1) / max(kept.files_at_fit, 1)
            if kept is not None and 1 / REFIT_GROWTH < grown < REFIT_GROWTH:
                return kept
        sample = fit.sample_rows(len(ids))
        encoder = self.encoder()
        originals = [
            image
            for row in sample
            if (image := _sample_picture(self._catalog, int(ids[row]), content[row], encoder))
            is not None
        ]
        copies = fit.copy_similarities(encoder, originals) if originals else np.empty(0)
        distinct = fit.distinct_similarities(sample, vectors, content, hashes, known)
        if len(copies):
            value, low, high = fit.threshold_between(copies, distinct)
        else:  # nothing readable: the embedding links only identical vectors
            value, low, high = 1.0, None, None
        fitted = DuplicateThreshold(
            model=state.model.name,
            value=float(value),
            source="fitted",
            sample=len(originals),
            copies=low,
            distinct=None if high is None or np.isnan(high) else high,
            fitted_at=time.time(),
            files_at_fit=len(ids),
            separates=bool(high is None or np.isnan(high) or low > high),
        )
        with self._directory.write_lock():
            rows.set_threshold(state.model.name, {**vars(fitted), "source": "fitted"})
        return fitted

    def duplicate_sheet(self, report: DuplicateReport, path: str | os.PathLike) -> str:
        """Write ``report`` as one self-contained HTML page (thumbnails inlined) at ``path``;
        returns the path. An image whose thumbnail cannot be made is shown by name."""
        from searchclip._duplicate_sheet import write_sheet

        return write_sheet(report, path, self.thumbnail)


def _aligned(ids: np.ndarray, vector_ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``vectors`` in the order of ``ids`` (a file without a vector gets zeros: never close)."""
    rows = np.zeros((len(ids), vectors.shape[1]), np.float32)
    at = np.searchsorted(vector_ids, ids)
    found = (at < len(vector_ids)) & (vector_ids[np.minimum(at, len(vector_ids) - 1)] == ids)
    rows[found] = vectors[at[found]]
    return rows


def _read(path: str, content_hash: str, min_side: int):
    """The file's picture decoded small as the indexer decodes, or the reason it cannot be."""
    try:
        data = images.read_bytes(path)
        if images.content_hash(data) != content_hash:
            return "changed since it was indexed: index its folder again"
        return images.decode_image(
            data,
            min_side=min_side,
            decode_pixels=images.decode_budget(2),
            max_aspect=images.MAX_ASPECT_RATIO,
            reduce=True,
        ).image
    except ImageReadError as err:
        return err.reason


def _fill_hashes(rows, missing, on_progress) -> tuple[int, list[FailedFile]]:
    def hashed(item):
        _, path, content_hash = item
        picture = _read(path, content_hash, HASH_DECODE_SIDE)
        return item, (picture if isinstance(picture, str) else perceptual_hash(picture))

    found, failures = [], []
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        for done, ((file_id, path, digest), result) in enumerate(
            pool.map(hashed, missing), start=1
        ):
            if isinstance(result, str):
                failures.append(FailedFile(path, result))
            else:
                found.append((file_id, digest, result))
            if on_progress:
                on_progress(IndexProgress(done, len(missing), path))
    return rows.set_perceptual_hashes(found), failures


def _sample_picture(catalog, file_id: int, content_hash: str, encoder):
    record = catalog.files_by_id([file_id]).get(file_id)
    if record is None:
        return None
    picture = _read(record.path, content_hash, 2 * encoder.image_size)  # halving stays sharp
    return None if isinstance(picture, str) else picture


def _group(members, linked, ids, content, hashes, known, vectors, records):
    present = [row for row in members if int(ids[row]) in records]  # one may have just left
    if len(present) < 2:
        return None

    def keep_order(row):
        record = records[int(ids[row])]
        taken = record.metadata.taken_at if record.metadata else None
        oldest = taken if taken is not None else record.mtime_ns / 1e9
        return (-record.width * record.height, oldest, record.id)

    present.sort(key=keep_order)
    keeper = present[0]
    counts = Counter(content[row] for row in present)
    found = []
    for row in present:
        record = records[int(ids[row])]
        distance = hash_distance(int(hashes[row]), int(hashes[keeper]))
        found.append(
            DuplicateImage(
                id=record.id,
                path=record.path,
                size=record.size,
                width=record.width,
                height=record.height,
                taken_at=record.metadata.taken_at if record.metadata else None,
                exact_copy=counts[content[row]] > 1,
                similarity=round(float(vectors[row] @ vectors[keeper]), 4),
                hash_distance=distance if known[row] and known[keeper] else None,
            )
        )
    rest = sorted(found[1:], key=lambda image: -image.similarity)
    return DuplicateGroup(images=(found[0], *rest), linked_by=linked)
