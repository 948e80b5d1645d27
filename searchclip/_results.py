"""Typed, frozen values that the library returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from searchclip._errors import InvalidArgumentError

if TYPE_CHECKING:
    from searchclip._relevance import RelevanceCutoff

SORT_ORDERS = ("score", "date", "-date", "path")


@dataclass(frozen=True)
class PhotoMetadata:
    """What a photo's EXIF and header say about it; ``None`` where they say nothing usable."""

    taken_at: float | None = None  # POSIX seconds (see searchclip._photo_metadata for which)
    taken_at_source: str = ""  # "exif", "mtime", or "" when neither gave a time
    utc_offset_minutes: int | None = None  # the EXIF offset applied to taken_at, if any
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    latitude: float | None = None  # decimal degrees, south negative
    longitude: float | None = None  # decimal degrees, west negative
    format: str | None = None  # Pillow's name for the file format: "JPEG", "PNG", "WEBP", ...

    @property
    def taken_at_iso(self) -> str | None:
        """The time taken in ISO 8601: with its UTC offset when the EXIF gave one, else the
        wall-clock time as the camera showed it; a file time in UTC."""
        if self.taken_at is None:
            return None
        if self.taken_at_source == "mtime":  # a real instant
            return datetime.fromtimestamp(self.taken_at, UTC).isoformat(timespec="seconds")
        offset = self.utc_offset_minutes
        zone = UTC if offset is None else timezone(timedelta(minutes=offset))
        moment = datetime.fromtimestamp(self.taken_at, zone).isoformat(timespec="seconds")
        return moment if offset is not None else moment.removesuffix("+00:00")


@dataclass(frozen=True)
class SearchHit:
    """One search result: ``rank`` starts at 1, ``score`` is the cosine similarity; ``size``
    is the file's size in bytes, ``metadata`` what its EXIF and header said (None until the
    index has read it: the next ``index`` run over its folder does, without re-encoding);
    ``id`` is the image's id in this index (what the HTTP API names it by); ``offline``: its
    drive was missing at the last index run (found only with ``include_offline``)."""

    rank: int
    score: float
    path: str
    width: int
    height: int
    size: int = 0
    metadata: PhotoMetadata | None = None
    id: int = 0
    offline: bool = False


class SearchResults(list[SearchHit]):
    """The hits of one search, best first (a list), and ``missing``: indexed files that ranked
    among them but no longer exist on disk, so were left out (the next ``index`` run over
    their folder, or ``check --repair``, removes them from the index)."""

    def __init__(
        self,
        hits: list[SearchHit] = (),
        missing: tuple[str, ...] = (),
        cutoff: RelevanceCutoff | None = None,
    ) -> None:
        super().__init__(hits)
        self.missing = tuple(missing)
        self.cutoff = cutoff  # how relevant=True chose its minimum score

    def sorted_by(self, order: str) -> SearchResults:
        """The same hits in another ``order`` (each keeps its ``rank`` by relevance):
        ``"score"`` (as they are), ``"date"`` (oldest taken first), ``"-date"`` (newest first)
        or ``"path"``. Hits whose time is not known yet come last in both date orders; a tie
        keeps rank order."""
        if order == "score":
            return self
        if order == "path":
            ordered = sorted(self, key=lambda hit: (hit.path, hit.rank))
        elif order in ("date", "-date"):
            sign = -1 if order == "-date" else 1

            def when(hit: SearchHit) -> tuple:
                taken = hit.metadata.taken_at if hit.metadata else None
                return (taken is None, sign * (taken or 0), hit.rank)

            ordered = sorted(self, key=when)
        else:
            raise InvalidArgumentError(
                f"unknown order {order!r}: use one of {', '.join(SORT_ORDERS)}", value=order
            )
        return SearchResults(ordered, self.missing, self.cutoff)


@dataclass(frozen=True)
class IndexedImage:
    """One image of the index by its ``id``: where it is, its size, photo metadata and tags."""

    id: int
    path: str
    width: int
    height: int
    size: int
    metadata: PhotoMetadata | None
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail file of an indexed image: where it is, its ETag and its media type."""

    path: str
    etag: str
    media_type: str


@dataclass(frozen=True)
class FailedFile:
    """A file the indexer could not read, with the reason it recorded."""

    path: str
    reason: str


@dataclass(frozen=True)
class IndexProgress:
    """Where an index run stands: ``done`` of the ``total`` files that needed reading (files
    unchanged since the last run are not counted), ``path`` the file just handled."""

    done: int
    total: int
    path: str


@dataclass(frozen=True)
class IndexReport:
    """What one ``index`` run did.

    ``encoded`` counts images that went through the model; every other file was either skipped
    as unchanged or reused a vector already in the catalog (moved, touched or duplicate files).
    """

    new: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    encoded: int = 0
    elapsed_s: float = 0.0
    failures: tuple[FailedFile, ...] = field(default=())
    precision_choice: str = ""  # set by the run where `auto` chose the image precision
    ignored: tuple[tuple[str, int], ...] = ()  # (why, how many) for files left alone on purpose
    root_gone: bool = False  # the indexed path does not exist (its images: offline)
    metadata_read: int = 0  # indexed images whose metadata was read now, none of them encoded
    # Files under the root whose folder is missing or empty (an unmounted drive): kept with
    # their vectors, left out of results; offline_roots: the outermost such folders.
    offline: int = 0
    offline_roots: tuple[str, ...] = ()
    back_online: int = 0  # offline files seen again (where they were, or moved)
    vector_index: str = ""  # set when the run built a new on-disk vector index (said once)

    @property
    def changed_anything(self) -> bool:
        return bool(self.new or self.updated or self.moved or self.removed)


@dataclass(frozen=True)
class VocabularyInfo:
    """A vocabulary tagged in an index: its labels, images scored, labels calibrated."""

    name: str
    labels: int
    tagged_images: int
    calibrated_labels: int


@dataclass(frozen=True)
class IndexInfo:
    """A summary of one index: where it is, which model built it, what it holds."""

    index_dir: str
    model: str
    dim: int
    files: int
    failures: int
    vocabularies: tuple[VocabularyInfo, ...] = ()
    precision: str = ""  # image precision and why, e.g. "bf16 (min cosine 0.9995 on ...)"
    # photo metadata: images whose metadata was read, dated by EXIF, with GPS, distinct cameras
    metadata: tuple[int, int, int, int] = (0, 0, 0, 0)
    offline: tuple[OfflineFolder, ...] = ()  # folders whose images are offline
    migration: MigrationInfo | None = None  # a pending switch to another model
    kept_models: tuple[KeptModel, ...] = ()  # models whose vectors were kept (keep_old)


@dataclass(frozen=True)
class MigrationInfo:
    """A pending switch of an index to another model (``SearchEngine.migrate``): the new model,
    how many images have a vector of it (``encoded``) of ``total``, its image precision (""
    until decided), and the offline folders whose images it waits for."""

    model: str
    dim: int
    encoded: int
    total: int
    precision: str = ""
    started_at: float = 0.0
    waiting_for: tuple[OfflineFolder, ...] = ()


@dataclass(frozen=True)
class KeptModel:
    """A model the index used before, whose vectors it kept: switching back needs no
    encoding for the ``vectors`` images it holds."""

    model: str
    dim: int
    vectors: int


@dataclass(frozen=True)
class MigrationReport:
    """What one ``migrate`` run did.

    ``encoded`` images went through the new model now, ``copied`` took the new model's vector
    of a file with the same content, ``already`` had one from an earlier run (resumed) or a
    kept model. ``switched``: the new model is the index's now (``previous`` was); else the
    switch waits for ``unreadable`` files (changed or gone since the last index run: index
    their folders, then migrate again) or for offline folders (``waiting_for``; bring them
    online, or pass ``forget_offline``). ``dropped_vocabularies``: tagged with the old model
    and dropped with it (tag again); ``forgotten``: offline images removed by
    ``forget_offline``."""

    model: str
    previous: str
    switched: bool
    encoded: int = 0
    copied: int = 0
    already: int = 0
    total: int = 0
    kept_old: bool = False
    precision: str = ""
    precision_choice: str = ""  # set by the run where `auto` chose the new model's precision
    unreadable: tuple[FailedFile, ...] = ()
    waiting_for: tuple[OfflineFolder, ...] = ()
    dropped_vocabularies: tuple[str, ...] = ()
    forgotten: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class OfflineFolder:
    """A missing or empty folder (an unmounted drive) holding offline images, and since when
    (POSIX seconds: the first index run that found it missing)."""

    path: str
    images: int
    since: float


@dataclass(frozen=True)
class TagReport:
    """What one ``tag`` run did: the vocabulary and its size, images scored now and before,
    tags written, the rule that chose them (top-k, threshold or calibrated), and the time."""

    vocabulary: str
    labels: int
    scored: int  # images scored in this run
    already: int  # images this vocabulary had scored before, left as they were
    tags: int  # tags written in this run
    rule: str
    elapsed_s: float


@dataclass(frozen=True)
class Tag:
    """A stored tag of one image: the label, its cosine score, the vocabulary it came from."""

    label: str
    score: float
    vocabulary: str
