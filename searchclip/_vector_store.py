"""The index directory's vector file, kept in step with the catalog's vectors.

``vectors-<gen>.faiss`` holds the search structure for the catalog's vectors generation
``<gen>`` (bumped in the same transaction as every change to the vectors), so a file is either
exactly current or ignored. An index run that changed vectors updates the previous generation's
file with just those changes (adding a few photos to a million-image index takes seconds,
where rebuilding it from the catalog takes minutes) and writes it under the new generation;
anything unexpected (no previous file, a size that calls for the other index type, a count that
does not match the catalog) falls back to a rebuild from the catalog.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchclip._catalog import Catalog, ModelRecord

if TYPE_CHECKING:
    from searchclip._vector_index import VectorIndex

# Changes remembered for an incremental update; beyond this many files a run rebuilds instead
# (the changes' vectors are held in memory until the run ends: ~2 KB each for ViT-B/32).
MAX_PENDING_CHANGES = 100_000


class VectorChanges:
    """What an index run did to the vectors, as the run commits it: the last state per id."""

    def __init__(self, generation: int, *, useful: bool = True) -> None:
        self.generation = generation  # the catalog's vectors generation before the run
        self.latest: dict[int, np.ndarray | None] = {}  # id -> new vector, None: removed
        self.overflowed = not useful  # no file to update: the run ends in a rebuild anyway

    def record(self, ids: list[int], vectors: list[np.ndarray], removed: list[int]) -> None:
        if self.overflowed:
            return
        for file_id in removed:  # within one batch removals come first, as the catalog does
            self.latest[file_id] = None
        self.latest.update(zip(ids, vectors, strict=True))
        if len(self.latest) > MAX_PENDING_CHANGES:
            self.latest, self.overflowed = {}, True


class VectorStore:
    """The vector index of one index directory: cached, loaded, updated or rebuilt."""

    def __init__(self, index_dir: Path, catalog: Catalog) -> None:
        self._dir = index_dir
        self._catalog = catalog
        self._index: VectorIndex | None = None
        self._generation = -1

    def file(self, generation: int | None = None) -> Path:
        if generation is None:
            generation = self._catalog.vectors_generation()
        return self._dir / f"vectors-{generation}.faiss"

    def current(self, model: ModelRecord) -> VectorIndex:
        """The index for the catalog's current vectors: cached, loaded, or rebuilt.

        The index type follows the collection's size (exact, or IVF for large ones); a file
        of the other type (e.g. written before the threshold changed) is rebuilt like a stale one.
        """
        from searchclip._vector_index import VectorIndexFileError, build_index, load_index

        generation = self._catalog.vectors_generation()
        if self._index is not None and generation == self._generation:
            return self._index
        path = self.file(generation)
        try:
            index = self._checked(load_index(path, model.dim), path)
        except VectorIndexFileError:
            index = build_index(model.dim, *self._catalog.all_vectors(model))
            self._save(index, path)
        return self._keep(index, generation)

    def begin_changes(self) -> VectorChanges:
        """A recorder for an index run's changes, to update the current file with them."""
        generation = self._catalog.vectors_generation()
        return VectorChanges(generation, useful=self.file(generation).exists())

    def apply(self, changes: VectorChanges, model: ModelRecord) -> None:
        """Bring the vector file up to date after an index run that recorded ``changes``."""
        from searchclip._vector_index import VectorIndexFileError, load_index

        generation = self._catalog.vectors_generation()
        if generation == changes.generation and self.file(generation).exists():
            return  # nothing changed, and the file is there
        if changes.overflowed or not changes.latest:
            self.current(model)
            return
        try:
            if self._index is not None and self._generation == changes.generation:
                index = self._index
            else:
                index = load_index(self.file(changes.generation), model.dim)
            removed = [file_id for file_id, vector in changes.latest.items() if vector is None]
            added = {i: v for i, v in changes.latest.items() if v is not None}
            index.remove(np.asarray(removed, dtype=np.int64))
            if added:
                index.add(np.fromiter(added, np.int64, len(added)), np.stack(list(added.values())))
            index = self._checked(index, self.file(generation))
        except VectorIndexFileError:
            self._index = None  # possibly half-updated: never reuse it
            self.current(model)
            return
        self._save(index, self.file(generation))
        self._keep(index, generation)

    def _checked(self, index: VectorIndex, path: Path) -> VectorIndex:
        from searchclip._vector_index import VectorIndexFileError, index_type_for

        count = self._catalog.count_files()
        if index.ntotal != count:
            raise VectorIndexFileError(f"{path} is out of step with the catalog")
        if not isinstance(index, index_type_for(count)):
            raise VectorIndexFileError(f"{path} is not the index type {count} vectors need")
        if index.outgrown:
            raise VectorIndexFileError(f"the collection has outgrown the lists of {path}")
        return index

    def _save(self, index: VectorIndex, path: Path) -> None:
        with contextlib.suppress(OSError):  # a read-only index still answers queries
            index.save(path)

    def _keep(self, index: VectorIndex, generation: int) -> VectorIndex:
        keep = self.file(generation)
        for stale in self._dir.glob("vectors-*.faiss"):
            if stale != keep:
                with contextlib.suppress(OSError):
                    stale.unlink()
        self._index, self._generation = index, generation
        return index
