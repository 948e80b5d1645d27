"""SearchEngine's access to indexed images by id: their file, their thumbnail, tag labels.

A mixin of :class:`~searchclip.SearchEngine` (see :mod:`searchclip._engine_search`). A file is
served only while it is what was indexed: an id never leads anywhere the index did not read.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from searchclip._errors import ImageNotFoundError, ImageReadError, IndexedFileUnavailableError
from searchclip._results import IndexedImage, Thumbnail

if TYPE_CHECKING:
    from searchclip._catalog import FileRecord
    from searchclip._thumbnails import ThumbnailCache, ThumbnailReport


class ImageMethods:
    """Indexed images by id (files, thumbnails) and the labels they carry."""

    _thumbnail_cache: ThumbnailCache | None = None
    _thumbnail_lock = threading.Lock()

    def image(self, image_id: int) -> IndexedImage:
        """The indexed image ``image_id``: its path, size, photo metadata and stored tags.

        Raises:
            ImageNotFoundError: no image of the index has that id.
        """
        record = self._record(image_id)
        tags = tuple(self.tagger().tags_by_id(record.id)) if self._fresh_state().model else ()
        meta = record.metadata
        return IndexedImage(
            record.id, record.path, record.width, record.height, record.size, meta, tags
        )

    def image_file(self, image_id: int) -> str:
        """The path of the indexed image ``image_id``, after checking that the file is still
        the one that was indexed: a regular file (or a link to one, as the indexer follows
        symlinked files) of the same size and modification time. A file swapped for a link
        to something else, or changed in place, is refused until it is indexed again.

        Raises:
            ImageNotFoundError: no image of the index has that id.
            IndexedFileUnavailableError: the file is gone, or changed since it was indexed.
        """
        return self._unchanged_record(image_id).path

    def _unchanged_record(self, image_id: int) -> FileRecord:
        record = self._record(image_id)
        try:
            found = os.stat(record.path)
        except OSError:
            raise IndexedFileUnavailableError(
                f"image {image_id} is gone from {record.path}", path=record.path
            ) from None
        if not stat.S_ISREG(found.st_mode):
            raise IndexedFileUnavailableError(
                f"image {image_id} at {record.path} is no longer a regular file", path=record.path
            )
        if (found.st_size, found.st_mtime_ns) != (record.size, record.mtime_ns):
            raise IndexedFileUnavailableError(
                f"image {image_id} at {record.path} changed since it was indexed; index its "
                "folder again",
                path=record.path,
            )
        return record

    def thumbnail(self, image_id: int) -> Thumbnail:
        """A small upright copy of the indexed image ``image_id`` (long side 320 px), made on
        first use and kept in the index directory until the file changes.

        Raises:
            ImageNotFoundError, IndexedFileUnavailableError: as :meth:`image_file`.
            ImageReadError: the file cannot be decoded.
        """
        record = self._unchanged_record(image_id)
        cache = self._thumbnails()
        try:
            path = cache.get(record)
        except ImageReadError as err:
            raise ImageReadError(err.reason, record.path) from None
        return Thumbnail(str(path), cache.etag(record), cache.media_type)

    def make_thumbnails(
        self, *, workers: int = 2, on_progress: Callable[[int, int], None] | None = None
    ) -> ThumbnailReport:
        """Make the thumbnail of every indexed image that lacks one (``index --thumbnails``);
        a file that cannot be read is counted in the report, never stops the run. Thumbnails of
        images no longer indexed, or of an older version of a file, are removed."""
        records = list(self._catalog.files_under("/").values())
        cache = self._thumbnails()
        report = cache.make_all(records, workers=workers, on_progress=on_progress)
        cache.remove_stale({record.id: record.content_hash for record in records})
        return report

    def tag_labels(self) -> list[str]:
        """Every label that some image of the index carries, sorted."""
        model = self._fresh_state().model
        return sorted(self._catalog.tags.known_labels(model.id)) if model else []

    def _record(self, image_id: int) -> FileRecord:
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise ImageNotFoundError(f"an image id is a number, got {image_id!r}", value=image_id)
        record = (
            self._catalog.files_by_id([image_id]).get(image_id) if 0 < image_id < 2**63 else None
        )
        if record is None:
            raise ImageNotFoundError(f"no image with id {image_id} in this index", value=image_id)
        return record

    def _thumbnails(self) -> ThumbnailCache:
        with self._thumbnail_lock:
            if self._thumbnail_cache is None:
                from searchclip._thumbnails import ThumbnailCache

                self._thumbnail_cache = ThumbnailCache(self.index_dir)
            return self._thumbnail_cache
