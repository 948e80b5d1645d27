"""The worker side of an index run: one file read, hashed and, when its content is new,
decoded and preprocessed. It runs on the run's decoding threads, or inside a Ray actor on a
cluster node (:mod:`searchclip._cluster`), which also encodes and sends back the vector: so it
holds nothing that cannot travel (the content hashes to reuse, the options, the encoding).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from searchclip import _images as images
from searchclip._errors import ImageReadError
from searchclip._ingest_options import ImageEncoding, IngestOptions, in_order
from searchclip._perceptual_hash import perceptual_hash
from searchclip._results import PhotoMetadata


@dataclass(frozen=True)
class Prepared:
    """A file as a worker left it: hashed, and decoded when its content is new (``pixels``;
    or already encoded, ``vector``, when a cluster worker did both). ``record`` is the
    catalog's record of its path (None for a new path)."""

    stat: images.FileStat
    record: object | None  # a FileRecord; only its content_hash is read here
    content_hash: str = ""
    pixels: np.ndarray | None = None
    width: int = 0
    height: int = 0
    error: str | None = None
    metadata: PhotoMetadata | None = None
    perceptual_hash: int | None = None
    vector: np.ndarray | None = None


class FilePreparer:
    """Prepares files for one run: content the catalog holds (``reusable`` hashes, or the
    path's own record) is hashed only; new content is decoded for ``encoding``."""

    def __init__(
        self, encoding: ImageEncoding, options: IngestOptions, reusable: Container[str]
    ) -> None:
        self.encoding = encoding
        self.options = options
        self.reusable = reusable

    def prepare(self, stat: images.FileStat, record) -> Prepared:
        try:
            data = images.read_bytes(stat.path)
        except ImageReadError as exc:
            return Prepared(stat, record, error=exc.reason)
        digest = images.content_hash(data)
        metadata = images.read_metadata(data, stat.mtime_ns)
        if (record and record.content_hash == digest) or digest in self.reusable:
            return Prepared(stat, record, digest, metadata=metadata)
        return self.decode(stat, record, data, digest, metadata)

    def decode(
        self, stat, record, data: bytes, digest: str, metadata: PhotoMetadata | None
    ) -> Prepared:
        image_size = self.encoding.image_size()  # outside the try: a model that cannot load
        try:  # stops the run
            decoded = images.decode_image(data, min_side=image_size, **self.options.decode_limits())
            pixels = self.encoding.preprocess(decoded.image)
            picture_hash = perceptual_hash(decoded.image)  # for near-duplicate reports
        except ImageReadError as exc:
            return Prepared(stat, record, digest, error=exc.reason)
        except Exception as exc:  # one odd file (MemoryError included) must never end the run
            return Prepared(stat, record, digest, error=f"cannot decode: {exc!r}"[:300])
        size = (decoded.width, decoded.height)
        return Prepared(
            stat, record, digest, pixels, *size, metadata=metadata, perceptual_hash=picture_hash
        )

    def decode_again(self, item: Prepared) -> Prepared:
        """``item`` decoded after all (the stored copy it was to reuse went away meanwhile)."""
        try:
            data = images.read_bytes(item.stat.path)
        except ImageReadError as exc:
            return Prepared(item.stat, item.record, error=exc.reason)
        return self.decode(item.stat, item.record, data, item.content_hash, item.metadata)


# How a run gets its files prepared: (preparer, [(stat, record), ...]) -> Prepared items, in any
# order, each once.
PrepareFiles = Callable[[FilePreparer, list], Iterator[Prepared]]


def prepare_locally(preparer: FilePreparer, todo: list) -> Iterator[Prepared]:
    """``todo`` prepared on this process's decoding threads, in order, two batches ahead."""
    options = preparer.options
    with ThreadPoolExecutor(options.workers, thread_name_prefix="searchclip-decode") as pool:
        try:
            yield from in_order(pool, preparer.prepare, todo, options.batch_size * 2)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
