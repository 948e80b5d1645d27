"""Thumbnails for the web page (issue 15): one small upright picture per indexed image, made
once and cached inside the index directory.

A thumbnail is named by the file's id and a key derived from its content hash and the
thumbnail settings, ``thumbnails/<id % 256:02x>/<id>-<key>.webp``, so the name (and the
strong ETag, the same key) changes whenever the file's content or the settings do; a file
the index saw change gets a new thumbnail and its old one is deleted.

A thumbnail shows the file *as indexed*: it is made only from bytes whose hash is the
record's, so one key never names two different pictures. The source is read with the
indexer's guards (file size limit, decompression-bomb limit, a decode budget, at most
``decoders`` decodes at once however many threads ask), so a hostile file costs a server
no more memory than it costs an index run. Every write is atomic (temp file in the same
folder, fsync, rename): two threads or processes making the same thumbnail each write a
complete file and the last rename wins.

Records come from the catalog only (a server looks them up by id): the path read is the
catalog's, and the cache's file names are built from the integer id and a hex key, never
from anything a request sends.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, features

from searchclip._atomic_files import atomic_write
from searchclip._catalog import FileRecord
from searchclip._errors import FileError, ImageReadError, InvalidArgumentError
from searchclip._images import (
    DEFAULT_MAX_PIXELS,
    content_hash,
    decode_budget,
    decode_image,
    read_bytes,
)
from searchclip._index_dir import THUMBNAILS_DIR

THUMBNAIL_SIDE = 320  # the long side, in pixels; smaller images keep their size
WEBP_QUALITY = 80
# libwebp's effort, 0-6: 2 encodes a 320 px photo in ~7 ms against ~16 ms for the default 4,
# for files ~2% larger (COCO photos).
WEBP_METHOD = 2
JPEG_QUALITY = 85  # JPEG needs a little more than WebP for the same look
# Part of every key: change it whenever the thumbnails made would differ (resampling, colour
# handling), so that every cached thumbnail and browser copy is replaced.
SETTINGS_VERSION = "v1"
STALE_TEMP_SECONDS = 3600  # a temp file this old was left by a killed process, not a live one

_NAME = re.compile(r"(\d+)-([0-9a-f]{16})\.(webp|jpg)")
_TEMP = re.compile(r"\.\d+-[0-9a-f]{16}\.(webp|jpg)\.[0-9a-f]+\.tmp")
_LOCK_STRIPES = 64


@dataclass(frozen=True)
class ThumbnailReport:
    """What :meth:`ThumbnailCache.make_all` did: thumbnails ``made``, ones already there
    (``existing``), and files that ``failed``, with ``failures`` as (path, reason)."""

    made: int
    existing: int
    failed: int
    failures: tuple[tuple[str, str], ...]


class ThumbnailCache:
    """The thumbnails of the index at ``index_dir``, in ``<index_dir>/thumbnails/``.

    Safe to share between threads: at most ``decoders`` thumbnails are decoded at once, each
    under ``decode_budget(decoders)`` pixels, and two threads asking for the same missing
    thumbnail make it once. Nothing is created until a thumbnail is written.
    """

    def __init__(self, index_dir: str | os.PathLike, *, decoders: int = 2) -> None:
        if decoders < 1:
            raise InvalidArgumentError(f"decoders must be >= 1, not {decoders}", value=decoders)
        self.directory = Path(index_dir).expanduser().absolute() / THUMBNAILS_DIR
        self.decoders = decoders
        # Decided once: a Pillow built without libwebp still serves JPEG thumbnails.
        self.format = "WEBP" if features.check("webp") else "JPEG"
        self.media_type = "image/webp" if self.format == "WEBP" else "image/jpeg"
        self._suffix = ".webp" if self.format == "WEBP" else ".jpg"
        self._options = (
            {"quality": WEBP_QUALITY, "method": WEBP_METHOD}
            if self.format == "WEBP"
            else {"quality": JPEG_QUALITY}
        )
        options = ",".join(f"{name}={value}" for name, value in sorted(self._options.items()))
        self._settings = f"{THUMBNAIL_SIDE}:{self.format}:{options}:{SETTINGS_VERSION}"
        self._decoding = threading.BoundedSemaphore(decoders)
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def key(self, file_content_hash: str) -> str:
        """The 16 hex digits that name the thumbnail of content ``file_content_hash``."""
        text = f"{file_content_hash}:{self._settings}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def path_for(self, record: FileRecord) -> Path:
        """Where the thumbnail of ``record`` is, or would be once made."""
        _check_record(record)
        return self._path(record.id, self.key(record.content_hash))

    def etag(self, record: FileRecord) -> str:
        """A strong ETag (quoted) for the thumbnail of ``record``; nothing is read."""
        _check_record(record)
        return f'"{self.key(record.content_hash)}"'

    def get(self, record: FileRecord) -> Path:
        """The thumbnail of ``record``, made first if it is missing.

        Raises:
            ImageReadError: the file cannot be read or decoded (gone, truncated, too large,
                not an image), or it changed since it was indexed; ``reason`` says which.
            FileError: the thumbnail cannot be written into the index directory.
            InvalidArgumentError: ``record`` is not a catalog record.
        """
        path = self.path_for(record)
        if path.is_file():
            return path
        with self._locks[record.id % _LOCK_STRIPES]:
            if path.is_file():  # made by the thread that held the lock before us
                return path
            with self._decoding:
                data = self._thumbnail_bytes(record)
            _write_atomically(path, data)
            self._remove_other_versions(record.id, path.name)
        return path

    def make_all(
        self,
        records: Iterable[FileRecord],
        workers: int = 2,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ThumbnailReport:
        """Make the missing thumbnails of ``records`` on ``workers`` threads (of which at most
        ``decoders`` decode at once); a file that fails is counted, never stops the run.
        ``on_progress(done, total)`` is called in the calling thread after each file."""
        if workers < 1:
            raise InvalidArgumentError(f"workers must be >= 1, not {workers}", value=workers)
        todo = list(records)
        made = existing = 0
        failures: list[tuple[str, str]] = []

        def make(record: FileRecord) -> bool:
            if self.path_for(record).is_file():
                return False
            self.get(record)
            return True

        with concurrent.futures.ThreadPoolExecutor(workers, "thumbnails") as pool:
            pending: dict[concurrent.futures.Future, FileRecord] = {}
            queue = iter(todo)
            done = 0
            while True:
                # A bounded number in flight: a million records never become a million futures.
                for record in queue:
                    pending[pool.submit(make, record)] = record
                    if len(pending) >= 4 * workers:
                        break
                if not pending:
                    break
                finished, _ = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in finished:
                    record = pending.pop(future)
                    try:
                        if future.result():
                            made += 1
                        else:
                            existing += 1
                    except ImageReadError as err:
                        failures.append((record.path, err.reason))
                    except FileError as err:
                        failures.append((record.path, str(err)))
                    done += 1
                    if on_progress is not None:
                        on_progress(done, len(todo))
        failures.sort()
        return ThumbnailReport(made, existing, len(failures), tuple(failures))

    def remove_stale(self, known: Mapping[int, str]) -> int:
        """Delete the thumbnails that are no longer current, and temp files killed processes
        left; ``known`` maps each indexed file's id to its content hash (the catalog's).
        Returns how many files were deleted. Files the cache did not name are left alone."""
        if not self.directory.is_dir():
            return 0
        current = {file_id: self.key(hash_) for file_id, hash_ in known.items()}
        suffix = self._suffix[1:]
        old_temp = time.time() - STALE_TEMP_SECONDS
        removed = 0
        for folder in _subfolders(self.directory):
            for entry in _entries(folder):
                name = _NAME.fullmatch(entry.name)
                if name is not None:
                    stale = (
                        current.get(int(name.group(1))) != name.group(2) or name.group(3) != suffix
                    )
                elif _TEMP.fullmatch(entry.name):
                    stale = _mtime(entry) < old_temp  # a younger one may still be written
                else:
                    continue
                if stale and _unlink(Path(entry.path)):
                    removed += 1
        return removed

    def _path(self, file_id: int, key: str) -> Path:
        return self.directory / f"{file_id % 256:02x}" / f"{file_id}-{key}{self._suffix}"

    def _thumbnail_bytes(self, record: FileRecord) -> bytes:
        """The encoded thumbnail of ``record``'s file, read and decoded as the indexer would."""
        try:
            data = read_bytes(record.path)
            if content_hash(data) != record.content_hash:
                raise ImageReadError("the file changed since it was indexed: index it again")
            decoded = decode_image(
                data,
                min_side=_decode_side(record.width, record.height),
                max_pixels=DEFAULT_MAX_PIXELS,
                decode_pixels=decode_budget(self.decoders),
                reduce=True,
            )
        except ImageReadError as err:
            raise ImageReadError(err.reason, record.path) from None
        image = decoded.image
        scale = THUMBNAIL_SIDE / max(image.size)
        if scale < 1:  # never enlarge: a browser scales a small picture up just as well
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        # No EXIF: the pixels are already upright, and an orientation tag would turn them again.
        # The colour profile is kept, so that a wide-gamut photo keeps its colours.
        options: dict[str, object] = dict(self._options)
        if icc := decoded.image.info.get("icc_profile"):
            options["icc_profile"] = icc
        image.save(out, self.format, **options)
        return out.getvalue()

    def _remove_other_versions(self, file_id: int, keep: str) -> None:
        """Delete the thumbnails of earlier contents (or settings) of the file ``file_id``."""
        prefix = f"{file_id}-"
        for entry in _entries(self.directory / f"{file_id % 256:02x}"):
            if entry.name != keep and entry.name.startswith(prefix) and _NAME.fullmatch(entry.name):
                _unlink(Path(entry.path))


def _check_record(record: FileRecord) -> None:
    """Only catalog rows name files: a path or a hand-made value is refused, so no request
    can make the cache read a file the index does not hold."""
    if not isinstance(record, FileRecord):
        raise InvalidArgumentError(
            f"a thumbnail is made from a catalog FileRecord, not {type(record).__name__}",
            value=record,
        )
    if type(record.id) is not int or record.id < 1 or not os.path.isabs(record.path):
        raise InvalidArgumentError("not a catalog record (no id or a relative path)", value=record)
    if not isinstance(record.content_hash, str) or not record.content_hash:
        raise InvalidArgumentError("the record has no content hash", value=record)


def _decode_side(width: int, height: int) -> int:
    """The short side that still gives a long side of :data:`THUMBNAIL_SIDE`: what JPEG
    draft decoding and the reduction after decoding may shrink the picture down to."""
    long_side, short_side = max(width, height, 1), max(min(width, height), 1)
    return max(1, math.ceil(THUMBNAIL_SIDE * short_side / long_side))


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, rename it over ``path``.

    The folder is not fsynced: a rename lost in a crash loses one cache entry, made again
    on the next request, while a renamed file is always complete."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(data), sync_folder=False)
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        raise FileError(f"cannot write the thumbnail {path}: {reason}", path=path) from None


def _subfolders(directory: Path) -> list[Path]:
    return [Path(entry.path) for entry in _entries(directory) if entry.is_dir()]


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as found:
            return list(found)
    except OSError:  # gone or unreadable: nothing of ours to look at there
        return []


def _mtime(entry: os.DirEntry) -> float:
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return time.time()


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:  # gone already (another process cleaned up) or not ours to delete
        return False
    return True
