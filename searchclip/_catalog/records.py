"""What the catalog hands out and takes in: models, files, index state and one batch of changes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from searchclip._results import PhotoMetadata


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    dim: int


@dataclass(frozen=True)
class IndexState:
    """What an open index is, read in one transaction: its model (None until the first run
    records one), its vectors generation, how many files it holds, and its image precision
    as recorded (None for an index from before precisions were recorded, or a new one)."""

    model: ModelRecord | None
    generation: int
    files: int
    precision: str | None
    precision_choice: str


@dataclass(frozen=True)
class FileEntry:
    """What the indexer learned about one file on disk."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int
    metadata: PhotoMetadata | None = None  # None: not read yet (kept as stored on update)
    perceptual_hash: int | None = None  # of the decoded picture; None: not computed yet


@dataclass(frozen=True)
class FileRecord(FileEntry):
    """A file as the catalog holds it; ``offline_since`` is when an index run found its volume
    missing (None while it is online)."""

    id: int = 0
    offline_since: float | None = None


@dataclass
class CatalogChanges:
    """One batch of indexing work, applied atomically by :meth:`Catalog.apply`.

    - ``upserts``: files whose content is new at their path, with their vector (insert, or
      replace the row and vector of the same path, keeping its id);
    - ``restats``: files whose content is unchanged but whose path or stat changed (moved or
      touched): the row is updated and its vector kept;
    - ``removed``: ids of files that left the index;
    - ``failures``: (path, reason) of files that could not be read;
    - ``cleared_failures``: paths whose earlier failure no longer applies;
    - ``offline``: ids of files whose folder is gone or empty (an unmounted drive): kept, with
      their vectors, and marked offline; ``online``: ids of offline files seen again.
    """

    upserts: list[tuple[FileEntry, np.ndarray]] = field(default_factory=list)
    restats: list[tuple[int, FileEntry]] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    cleared_failures: list[str] = field(default_factory=list)
    offline: list[int] = field(default_factory=list)
    online: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(vars(self).values())
