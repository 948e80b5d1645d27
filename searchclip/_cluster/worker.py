"""What runs on a cluster node: one Ray Data actor of the encoding stage.

Each actor loads the model once (by name: a Hugging Face id, or a directory at the same path
on every node) at the run's precision, and for each batch of planned files reads, hashes and
decodes them on its own decoding threads (:class:`FilePreparer`, the code a local run uses)
and encodes the new content. What it sends back is one pickled :class:`Prepared` a file, with
the vector in place of the pixels. The driver's catalog is the only writer.
"""

from __future__ import annotations

import os
import pickle
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from searchclip import _images as images
from searchclip._ingest_options import IngestOptions
from searchclip._ingest_prepare import FilePreparer, Prepared

# Column names of the rows the driver sends and the rows an actor returns.
PATH, SIZE, MTIME, KNOWN_HASH = "path", "size", "mtime_ns", "known_hash"
PREPARED, UNREADABLE_ON = "prepared", "unreadable_on"


@dataclass(frozen=True)
class KnownContent:
    """What a worker needs of the catalog's record of a path: its content hash."""

    content_hash: str


class HashPrefixes:
    """Content hashes as their first 64 bits, sorted: 8 bytes a hash where a set of the hex
    strings takes ~120 (a GB at 10M images, copied to every actor). Two contents sharing a
    prefix (odds ~n / 2**64) only make the worker skip a decode that the driver then does
    itself, finding no vector to copy (ingest's ``decode_again``)."""

    def __init__(self, hashes: Iterable[str]) -> None:
        prefixes = np.fromiter((int(h[:16], 16) for h in hashes if h), dtype=np.uint64)
        self._prefixes = np.unique(prefixes)

    def __len__(self) -> int:
        return len(self._prefixes)

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, str) or len(digest) < 16:
            return False
        prefix = np.uint64(int(digest[:16], 16))
        at = int(np.searchsorted(self._prefixes, prefix))
        return at < len(self._prefixes) and self._prefixes[at] == prefix


class _EncoderEncoding:
    """An encoder as ingest's ImageEncoding (its size, preprocessing and batch encoding)."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder

    def image_size(self) -> int:
        return self.encoder.image_size

    def preprocess(self, image):
        return self.encoder.preprocess(image)

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        return self.encoder.encode_pixels(pixels)


class FileEncoder:
    """The callable class ``map_batches`` runs: built once per actor, called per batch."""

    def __init__(
        self,
        *,
        model_name: str,
        precision: str,
        device: str,
        batch_size: int,
        options: IngestOptions,
        reusable: HashPrefixes,  # content hashes with a vector
        root: str,
    ) -> None:
        from searchclip._encoders import load_encoder

        self.root = root
        self.encoder = load_encoder(model_name, device=device, batch_size=batch_size)
        self.encoder.set_image_precision(precision)
        self.preparer = FilePreparer(_EncoderEncoding(self.encoder), options, reusable)
        self.pool = ThreadPoolExecutor(options.workers, thread_name_prefix="searchclip-decode")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        paths = [str(path) for path in batch[PATH]]
        if not os.path.exists(self.root):  # not this node's file system: the whole run stops
            node = socket.gethostname()
            return {PREPARED: [b""] * len(paths), UNREADABLE_ON: [node] * len(paths)}
        stats = [
            images.FileStat(path, int(size), int(mtime))
            for path, size, mtime in zip(paths, batch[SIZE], batch[MTIME], strict=True)
        ]
        known = [KnownContent(str(digest)) if digest else None for digest in batch[KNOWN_HASH]]
        items = list(self.pool.map(self.preparer.prepare, stats, known))
        items = self._encoded(items)
        return {PREPARED: [pickle.dumps(item) for item in items], UNREADABLE_ON: [""] * len(items)}

    def _encoded(self, items: list[Prepared]) -> list[Prepared]:
        new = [i for i, item in enumerate(items) if item.pixels is not None]
        if not new:
            return items
        vectors = self.encoder.encode_pixels(np.stack([items[i].pixels for i in new]))
        for i, vector in zip(new, vectors, strict=True):
            items[i] = replace(items[i], pixels=None, vector=np.asarray(vector, dtype=np.float32))
        return items
