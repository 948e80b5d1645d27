"""The index directory's vector file, kept in step with the catalog's vectors.

``vectors-<gen>.faiss`` holds the search structure for the catalog's vectors generation
``<gen>`` (bumped in the same transaction as every change to the vectors), so a file is either
exactly current or ignored. An index run that changed vectors updates the previous generation's
file with just those changes (adding a few photos to a large index takes seconds, where
rebuilding it from the catalog takes minutes: docs/benchmarks.md, section "Adding to and
removing from a million-image index") and writes it under the new generation; anything
unexpected (no previous file, a size that calls for the other index type, a count that does
not match the catalog) falls back to a rebuild from the catalog.

The contract, for threads and processes:

- Reads never write. :meth:`VectorStore.current` (a search) loads the current generation's file
  or, when it is missing or stale, builds the index in memory from the catalog and keeps it for
  that generation; it never saves a file nor deletes one.
- Only the writer writes: an index run, while it holds the index's write lock, calls
  :meth:`VectorStore.begin_changes` and :meth:`VectorStore.apply`, or :meth:`VectorStore.refresh`
  to bring a missing or stale file up to date. They save the current generation's file
  (atomically, by rename) and delete the other generations' files.
- One ``VectorStore`` may serve several threads: the cached (index, generation) pair is
  replaced whole, under a lock that also keeps two threads from building at once, and an index
  once handed out is never changed (the writer changes a copy loaded from its file), so a
  search still running on it is unaffected.
- An index serves only states of its own model: after a model switch (``SearchEngine.migrate``)
  a search that still holds the old state never gets the new model's index, nor replaces it.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchclip._catalog import Catalog
from searchclip._index_dir import writer_active

if TYPE_CHECKING:
    from searchclip._catalog import IndexState
    from searchclip._vector_index import ShardRunner, VectorIndex

# Changes remembered for an incremental update; beyond this many files a run rebuilds instead
# (the changes' vectors are held in memory until the run ends: one vector a change).
MAX_PENDING_CHANGES = 100_000
_OUTGROWN = "has outgrown"


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
        self._lock = threading.Lock()  # held to replace _cached, and while building one
        self._cached: tuple[VectorIndex, int, int] | None = None  # (index, generation, model id)
        self._good_file: int | None = None  # a generation whose file this store saved or checked

    def file(self, generation: int) -> Path:
        """The vector file of ``generation``."""
        return self._dir / f"vectors-{generation}.faiss"

    # --- the read path: never writes ----------------------------------------------------------

    def current(self, state: IndexState) -> VectorIndex:
        """The index for the catalog's vectors as of ``state``: cached, loaded, or built in
        memory from the catalog (saved by the next index run, not here).

        ``state`` must have a model. The index type follows the collection's size (exact, or
        IVF for large ones); a file of the other type (e.g. written before the threshold
        changed) is treated like a stale one. An index cached for a later generation than
        ``state``'s (another thread read the catalog after this one) is returned as it is.
        """
        cached = self._cached  # one read of the triple: never half-set
        if _serves(cached, state) and cached[1] >= state.generation:
            return cached[0]
        if _serves(cached, state) and self._run_in_progress(state):
            return cached[0]
        with self._lock:
            cached = self._cached  # another thread may have loaded it meanwhile
            if _serves(cached, state) and cached[1] >= state.generation:
                return cached[0]
            index = self._loaded(state)
            if index is None:
                index = self._built(state)
            if cached is None or cached[1] <= state.generation:  # never evict a newer model's
                self._cached = (index, state.generation, state.model.id)
            return index

    def _run_in_progress(self, state: IndexState) -> bool:
        """An index run is committing batch by batch, each a new generation with no file: its
        file comes when it ends. Until then a reader keeps the index it has rather than build
        one from the catalog per batch (seconds at 100k images, while every query waits):
        the run's new images show once it ends; its removed ones are dropped from results by
        the catalog lookup as always."""
        return not self.file(state.generation).exists() and writer_active(self._dir)

    # --- the write path: the index run, under the index's write lock --------------------------

    def begin_changes(self, state: IndexState) -> VectorChanges:
        """A recorder for an index run's changes, to update the current file with them;
        ``state``: the catalog's state before the run."""
        return VectorChanges(state.generation, useful=self.file(state.generation).exists())

    def apply(
        self, changes: VectorChanges, state: IndexState, run_shards: ShardRunner | None = None
    ) -> str:
        """Bring the vector file up to date after an index run that recorded ``changes``;
        ``state``: the catalog's state after the run; ``run_shards``: where the shards of an
        on-disk index's rebuild run (None: here, one after another). Returns a line for the
        run's report when it built a new on-disk index (minutes to hours), else ""."""
        from searchclip._vector_index import VectorIndexFileError, load_index

        path = self.file(state.generation)
        if state.generation == changes.generation or changes.overflowed or not changes.latest:
            # Nothing changed (a good file stays as it is, one a search found bad is written),
            # or no changes to apply: the file comes from the catalog.
            return self.refresh(state, run_shards)
        try:
            # The previous generation's file, loaded afresh rather than the cached index:
            # searches may be running on that one, and it must not change under them (an
            # on-disk index's base files never change: its changes go to the new file).
            index = load_index(self.file(changes.generation), state.model.dim)
            removed = [file_id for file_id, vector in changes.latest.items() if vector is None]
            added = {i: v for i, v in changes.latest.items() if v is not None}
            index.remove(np.asarray(removed, dtype=np.int64))
            if added:
                index.add(np.fromiter(added, np.int64, len(added)), np.stack(list(added.values())))
            index = self._checked(index, path, state.files)
        except VectorIndexFileError as exc:  # the half-updated copy is dropped with this frame
            return self.refresh(state, run_shards, why=str(exc))
        self._save(index, path, state.generation)
        self._sweep(state.generation)
        self._keep(index, state)
        return ""

    def refresh(
        self, state: IndexState, run_shards: ShardRunner | None = None, *, why: str = ""
    ) -> str:
        """Make ``state``'s generation's file current: kept if it checks out, else written from
        the index built in memory for it (by a search) or built from the catalog; then delete
        the other generations' files. ``state`` must have a model. Returns what :meth:`apply`
        returns; ``why``: what made the previous file unusable, for that line."""
        path = self.file(state.generation)
        if self._good_file == state.generation and path.exists():
            self._sweep(state.generation)
            return ""
        note = ""
        index = self._loaded(state)
        if index is None:
            with self._lock:  # one build at a time, readers' included
                cached = self._cached
                if (
                    _serves(cached, state)
                    and cached[1] == state.generation
                    and cached[0].can_save_in(self._dir)  # not a search's, built elsewhere
                ):
                    index = self._checked_or_none(cached[0], path, state.files)
                if index is None:
                    started = time.monotonic()
                    index = self._built(state, run_shards, here=True)
                    note = _built_note(index, time.monotonic() - started, why)
            self._save(index, path, state.generation)
        self._sweep(state.generation)
        self._keep(index, state)
        return note

    # --- checking (searchclip check) -------------------------------------------------------------

    def problem(self, state: IndexState, ids: Iterable[int]) -> str | None:
        """What is wrong with ``state``'s generation's vector file, given the ids of the
        catalog's vectors (in order), or None: sound, or missing (which is no fault: a search
        builds the index in memory, the next index run saves it)."""
        from searchclip._vector_index import VectorIndexFileError, load_index

        path = self.file(state.generation)
        if not path.exists():
            return None
        try:
            index = self._checked(load_index(path, state.model.dim), path, state.files)
        except VectorIndexFileError as exc:
            return str(exc)
        if not np.array_equal(np.sort(index.ids()), np.fromiter(ids, np.int64)):
            return f"{path} holds other image ids than the catalog"
        return None

    def rebuild(self, state: IndexState) -> None:
        """Write ``state``'s generation's file afresh from the catalog (under the write lock)."""
        index = self._built(state, here=True)
        self._save(index, self.file(state.generation), state.generation)
        self._sweep(state.generation)
        self._keep(index, state)

    # --- helpers -------------------------------------------------------------------------------

    def _loaded(self, state: IndexState) -> VectorIndex | None:
        """The generation's file, if it exists and matches the catalog; else None."""
        from searchclip._vector_index import VectorIndexFileError, load_index

        path = self.file(state.generation)
        try:
            index = self._checked(load_index(path, state.model.dim), path, state.files)
        except VectorIndexFileError:
            return None
        self._good_file = state.generation
        return index

    def _built(
        self, state: IndexState, run_shards: ShardRunner | None = None, *, here: bool = False
    ) -> VectorIndex:
        """The index built from the catalog. An on-disk one is built into the index directory
        by the write path (``here``), else into a temporary one whose files are deleted once
        mapped: reads never write to the index directory."""
        from searchclip._vector_index import (
            OnDiskIVFIndex,
            build_index,
            build_on_disk,
            index_type_for,
        )

        model = state.model
        if index_type_for(state.files) is not OnDiskIVFIndex:
            return build_index(model.dim, *self._catalog.all_vectors(model))
        chunks = self._catalog.vector_chunks(model)
        if here:
            return build_on_disk(model.dim, chunks, self._dir, run_shards=run_shards)
        with tempfile.TemporaryDirectory(prefix="searchclip-", ignore_cleanup_errors=True) as temp:
            return build_on_disk(model.dim, chunks, Path(temp), run_shards=run_shards)

    def _checked(self, index: VectorIndex, path: Path, count: int) -> VectorIndex:
        from searchclip._vector_index import VectorIndexFileError, index_type_for

        if index.ntotal != count:
            raise VectorIndexFileError(f"{path} is out of step with the catalog")
        if not isinstance(index, index_type_for(count)):
            raise VectorIndexFileError(f"{path} is not the index type {count} vectors need")
        if index.outgrown:
            raise VectorIndexFileError(f"the collection {_OUTGROWN} {path}")
        return index

    def _checked_or_none(self, index: VectorIndex, path: Path, count: int) -> VectorIndex | None:
        from searchclip._vector_index import VectorIndexFileError

        try:
            return self._checked(index, path, count)
        except VectorIndexFileError:
            return None

    def _save(self, index: VectorIndex, path: Path, generation: int) -> None:
        with contextlib.suppress(OSError):  # a read-only index still answers queries
            index.save(path)
            self._good_file = generation

    def _sweep(self, generation: int) -> None:
        """Delete every other generation's file, and on-disk bases no longer in use (and only
        on the write path, where no base is being built meanwhile)."""
        from searchclip._vector_index import files_in_use

        keep = files_in_use(self.file(generation))
        for stale in [*self._dir.glob("vectors-*.faiss"), *self._dir.glob("ondisk-*")]:
            if stale not in keep:
                with contextlib.suppress(OSError):
                    stale.unlink()

    def _keep(self, index: VectorIndex, state: IndexState) -> None:
        with self._lock:
            self._cached = (index, state.generation, state.model.id)


def _built_note(index: VectorIndex, seconds: float, why: str) -> str:
    """The report's line for a new on-disk index ("" for the in-memory kinds: seconds)."""
    from searchclip._vector_index import OnDiskIVFIndex

    if not isinstance(index, OnDiskIVFIndex):
        return ""
    reason = " (the changes had outgrown the last one)" if _OUTGROWN in why else ""
    built = f"{index.ntotal:,} vectors, built in {seconds:.0f} s"
    return f"a new on-disk vector index: {built}{reason}"


def _serves(cached: tuple[VectorIndex, int, int] | None, state: IndexState) -> bool:
    """Whether the cached index holds vectors of ``state``'s model (of some generation)."""
    return cached is not None and cached[2] == state.model.id
