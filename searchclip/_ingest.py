"""The ingest pipeline: scan → plan → read and decode (threads) → encode (batches) → commit.

Planning compares the scan with the catalog by (size, mtime): unchanged files are never read.
Every other file is read once on a worker thread, which hashes its bytes; content the catalog
already holds (a moved, renamed, copied or merely touched file) reuses its stored vector, and
only new content is decoded and goes through the model. Each batch is committed in one
transaction, so an interrupted run loses at most the batch in flight. Files that vanished and
were not found again under another name are removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from searchclip import _images as images
from searchclip._catalog import Catalog, CatalogChanges, FileEntry, FileRecord, ModelRecord
from searchclip._errors import FileError, WholeFileSystemError
from searchclip._ingest_options import (
    BatchCommitted,
    ImageEncoding,
    IngestListeners,
    IngestOptions,
)
from searchclip._ingest_prepare import FilePreparer, Prepared, PrepareFiles, prepare_locally
from searchclip._results import FailedFile, IndexProgress, IndexReport, PhotoMetadata
from searchclip._volumes import VolumeCheck, is_under, offline_roots
from searchclip._xmp import refresh_keywords

__all__ = [
    "BatchCommitted",
    "ImageEncoding",
    "IngestListeners",
    "IngestOptions",
    "index_path",
    "index_root",
]


class _Run:
    """The state of one index run over one root."""

    def __init__(
        self,
        catalog: Catalog,
        model: ModelRecord,
        encoding: ImageEncoding,
        options: IngestOptions,
        listeners: IngestListeners,
    ) -> None:
        self.catalog = catalog
        self.model = model
        self.encoding = encoding
        self.options = options
        self.listeners = listeners
        self.counts = dict.fromkeys(("new", "updated", "moved", "unchanged", "removed"), 0)
        self.metadata_read = 0  # indexed files whose metadata this run read (nothing encoded)
        self.encoded = 0
        self.failures: list[FailedFile] = []
        self.changes = CatalogChanges()
        self.pending_items = 0
        self.to_encode: list[tuple[FileEntry, np.ndarray, str]] = []  # entry, pixels, kind
        self.reusable: set[str] = set()  # content hashes with a committed vector
        self.vanished: dict[str, list[FileRecord]] = {}
        self.claimed: set[int] = set()  # ids of records that moved to a new path in this run
        self.ignored: list[tuple[str, str]] = []
        self.root = ""
        self.back_online = 0  # offline files seen again, where they were or moved
        self.offline: list[FileRecord] = []  # files under the root whose volume is missing

    # --- planning ----------------------------------------------------------------------------

    def plan(self, root: str) -> list[tuple[images.FileStat, FileRecord | None]]:
        """What needs reading. A root that does not exist (the engine allows it only when
        the index holds files under it) scans as empty: its files are offline."""
        self.root = root
        scan = images.scan(root) if os.path.exists(root) else images.ScanResult([], [])
        self.ignored = scan.ignored
        known = self.catalog.files_under(root)
        seen = {stat.path for stat in scan.files}
        todo = []
        for stat in scan.files:
            if not _storable(stat.path):
                self._fail(stat.path, "file name is not valid UTF-8: rename the file to index it")
                continue
            record = known.get(stat.path)
            unchanged = record and (record.size, record.mtime_ns) == (stat.size, stat.mtime_ns)
            if unchanged and record.metadata is not None:
                self.counts["unchanged"] += 1
                if record.offline_since is not None:  # its drive is back
                    self.changes.online.append(record.id)
                    self.back_online += 1
            else:
                todo.append((stat, record))
        for path, record in known.items():
            if path not in seen:
                self.vanished.setdefault(record.content_hash, []).append(record)
        for path, reason in scan.failures:
            self._fail(path, reason)
        self.reusable = self.catalog.content_hashes(self.model) if todo else set()
        self.preparer = FilePreparer(self.encoding, self.options, self.reusable)
        return todo

    # --- main thread ---------------------------------------------------------------------------

    def handle(self, item: Prepared) -> None:
        stat, record = item.stat, item.record
        if item.error is not None:
            self._fail(stat.path, item.error, record)
        elif record and record.content_hash == item.content_hash:
            self.back_online += record.offline_since is not None  # the restat brings it back
            entry = _entry(stat, item.content_hash, record, item.metadata)
            self.changes.restats.append((record.id, entry))
            self.counts["unchanged"] += 1  # touched (same content, new mtime), or metadata read
            self.metadata_read += record.metadata is None
        elif record is None and self._claim_move(item):
            self.counts["moved"] += 1
        else:
            self._add_content(item, "updated" if record else "new")
        self.pending_items += 1
        if self.pending_items >= self.options.batch_size:
            self.flush()

    def _claim_move(self, item: Prepared) -> bool:
        candidates = self.vanished.get(item.content_hash)
        source = candidates.pop() if candidates else self._moved_from_elsewhere(item.content_hash)
        if source is None:
            return False
        self.claimed.add(source.id)
        self.back_online += source.offline_since is not None  # e.g. a drive mounted elsewhere
        entry = _entry(item.stat, item.content_hash, source, item.metadata)
        self.changes.restats.append((source.id, entry))
        return True

    def _moved_from_elsewhere(self, content_hash: str) -> FileRecord | None:
        """An indexed file of this content outside the root whose file is gone: it was moved
        here (``mv photos/a photos/b``, then ``index photos/b``), so it keeps its id, vector
        and tags instead of leaving a stale path behind."""
        if content_hash not in self.reusable:  # new content: no record can hold it
            return None
        for record in self.catalog.files_with_hash(content_hash):
            if (
                record.id not in self.claimed
                and not is_under(record.path, self.root)
                and not os.path.lexists(record.path)
            ):
                return record
        return None

    def _add_content(self, item: Prepared, kind: str) -> None:
        if item.vector is not None:  # a cluster worker encoded it
            entry = _new_entry(item)
            self.changes.upserts.append((entry, item.vector))
            self.counts[kind] += 1
            self.encoded += 1
            return
        reused = None
        if item.pixels is None:  # the worker saw this content in the catalog: copy its vector
            reused = self.catalog.find_by_hash(item.content_hash, self.model)
        if reused is not None:
            source, vector = reused
            entry = _entry(item.stat, item.content_hash, source, item.metadata)
            self.changes.upserts.append((entry, vector))
            self.counts[kind] += 1
            return
        if item.pixels is None:  # the stored copy went away since the worker looked: decode now
            item = self.preparer.decode_again(item)
            if item.error is not None:
                self._fail(item.stat.path, item.error, item.record)
                return
        self.to_encode.append((_new_entry(item), item.pixels, kind))

    def _fail(self, path: str, reason: str, record: FileRecord | None = None) -> None:
        path = _printable(path)
        self.failures.append(FailedFile(path, reason))
        self.changes.failures.append((path, reason))
        if record is not None:  # its stored vector describes content that is no longer there
            self.changes.removed.append(record.id)

    def flush(self) -> None:
        if self.to_encode:
            pixels = np.stack([pixels for _, pixels, _ in self.to_encode])
            vectors = self.encoding.encode(pixels)
            for (entry, _, kind), vector in zip(self.to_encode, vectors, strict=True):
                self.changes.upserts.append((entry, vector))
                self.counts[kind] += 1
            self.encoded += len(self.to_encode)
        upserted = self.catalog.apply(self.changes, self.model)
        if self.listeners.committed and (upserted or self.changes.removed):
            vectors = [vector for _, vector in self.changes.upserts]
            self.listeners.committed(BatchCommitted(upserted, vectors, list(self.changes.removed)))
        self.reusable.update(entry.content_hash for entry, _ in self.changes.upserts)
        self.changes, self.to_encode, self.pending_items = CatalogChanges(), [], 0

    def sweep(self, root: str) -> None:
        """Remove what vanished and was not found elsewhere, unless its folder is missing or
        empty (an unmounted drive): that is kept and marked offline. Forget failures that are
        gone."""
        removed = []
        volumes = VolumeCheck()
        for record in (record for records in self.vanished.values() for record in records):
            if self.options.forget_offline or not volumes.missing(os.path.dirname(record.path)):
                removed.append(record.id)
            else:
                self.offline.append(record)
        self.changes.offline.extend(r.id for r in self.offline if r.offline_since is None)
        failed_now = {failure.path for failure in self.failures}
        stale = [f.path for f in self.catalog.failures(root) if f.path not in failed_now]
        self.changes.removed.extend(removed)
        self.changes.cleared_failures.extend(stale)
        self.counts["removed"] += len(removed)
        self.flush()


def index_path(
    root: str | os.PathLike,
    catalog: Catalog,
    model: ModelRecord,
    encoding: ImageEncoding,
    options: IngestOptions | None = None,
    listeners: IngestListeners | None = None,
    prepare: PrepareFiles | None = None,
) -> IndexReport:
    """Bring the catalog up to date with the images under ``root``. ``prepare`` reads the
    files that need it (default: this process's decoding threads; a cluster run passes Ray's)."""
    options = options or IngestOptions()
    listeners = listeners or IngestListeners()
    started = time.monotonic()
    root = os.path.abspath(os.fspath(root))
    run = _Run(catalog, model, encoding, options, listeners)
    todo = run.plan(root)
    with contextlib.closing((prepare or prepare_locally)(run.preparer, todo)) as items:
        for done, item in enumerate(items, start=1):
            run.handle(item)
            if listeners.progress:
                listeners.progress(IndexProgress(done, len(todo), item.stat.path))
    run.flush()
    run.sweep(root)
    refresh_keywords(catalog, root, [stat.path for stat, _ in todo])  # people's own keywords
    return IndexReport(
        **run.counts,
        failed=len(run.failures),
        encoded=run.encoded,
        metadata_read=run.metadata_read,
        elapsed_s=time.monotonic() - started,
        failures=tuple(run.failures),
        ignored=tuple(Counter(reason for _, reason in run.ignored).most_common()),
        root_gone=not os.path.exists(root),
        offline=len(run.offline),
        offline_roots=offline_roots((os.path.dirname(r.path) for r in run.offline), root),
        back_online=run.back_online,
    )


def index_root(
    path: str | os.PathLike, *, force: bool, indexed_under: Callable[[str], object]
) -> Path:
    """The absolute root an index run may take: one that exists, or one that is gone while
    the index holds images under it (``indexed_under(root)`` is truthy: an unmounted drive,
    whose images the run marks offline); and not the whole file system unless ``force``."""
    root = Path(path).expanduser().absolute()
    if not root.exists() and not indexed_under(str(root)):
        raise FileError(f"{root} does not exist", path=root)
    if root.resolve() == Path(root.anchor) and not force:
        raise WholeFileSystemError(
            f"refusing to index {root}: it is the whole file system ({root.anchor})",
            value=os.fspath(path),
        )
    return root


def _storable(path: str) -> bool:
    """False for names with bytes that are not UTF-8 (Python keeps them as lone surrogates),
    which the catalog's TEXT columns cannot hold."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(path: str) -> str:
    """``path`` with any undecodable bytes shown as U+FFFD, for reports and the failure list."""
    return os.fsencode(path).decode("utf-8", errors="replace")


def _new_entry(item: Prepared) -> FileEntry:
    """The entry of a file whose content was decoded in this run."""
    stat = item.stat
    return FileEntry(
        stat.path,
        stat.size,
        stat.mtime_ns,
        item.content_hash,
        item.width,
        item.height,
        item.metadata,
        item.perceptual_hash,
    )


def _entry(
    stat: images.FileStat, content_hash: str, like: FileEntry, metadata: PhotoMetadata | None
) -> FileEntry:
    """An entry for ``stat`` whose content (and so dimensions) equals that of ``like``."""
    return FileEntry(
        stat.path,
        stat.size,
        stat.mtime_ns,
        content_hash,
        like.width,
        like.height,
        metadata,
        like.perceptual_hash,
    )
