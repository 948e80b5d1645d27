"""Re-encoding an index's collection with another model while queries use the current one.

A migration run (``SearchEngine.migrate``, under the index's write lock) gives every file a
vector of the new model: first by content (a copy or a moved file whose content already has
one: nothing decoded), then by reading and encoding the rest, batch by batch, each batch one
transaction, so an interrupted run resumes where it stopped. The new vectors live beside the
current model's in the catalog and never change what queries see (see
:mod:`searchclip._catalog.migration`); the switch makes them the index's, at once.

A file can only be encoded as the catalog knows it: one whose bytes changed since the last
index run, or that is gone, is left for that index run (the report names it), and files on an
offline volume wait for it to come back (or ``forget_offline``). The new model's ONNX exports
are written in ``migration/`` inside the index directory and moved into place at the switch,
each sidecar removed first and written last, so the current model's exports are never
overwritten while its queries may load them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchclip import _images as images
from searchclip._catalog import Catalog, ModelRecord
from searchclip._catalog.migration import LackingFile
from searchclip._errors import ImageReadError
from searchclip._ingest_options import ImageEncoding, IngestListeners, IngestOptions, in_order
from searchclip._results import FailedFile, IndexProgress

MIGRATION_DIR = "migration"  # the new model's exports until the switch


@dataclass(frozen=True)
class _Read:
    """A lacking file as a worker thread left it: preprocessed pixels, or why not."""

    file: LackingFile
    pixels: np.ndarray | None = None
    error: str | None = None


@dataclass
class EncodedCounts:
    encoded: int = 0
    unreadable: tuple[FailedFile, ...] = ()


def encode_lacking(
    catalog: Catalog,
    model: ModelRecord,
    files: list[LackingFile],
    encoding: ImageEncoding,
    options: IngestOptions,
    listeners: IngestListeners,
) -> EncodedCounts:
    """Encode ``files`` with ``model`` and store their vectors, one transaction a batch."""
    counts = EncodedCounts()
    unreadable: list[FailedFile] = []
    batch: list[_Read] = []

    def flush() -> None:
        if batch:
            vectors = encoding.encode(np.stack([item.pixels for item in batch]))
            rows = list(zip((item.file for item in batch), vectors, strict=True))
            counts.encoded += catalog.migration.add_vectors(model, rows)
            batch.clear()

    def read(file: LackingFile) -> _Read:
        return _read(file, encoding, options)

    with ThreadPoolExecutor(options.workers, thread_name_prefix="searchclip-migrate") as pool:
        try:
            window = options.batch_size * 2
            for done, item in enumerate(in_order(pool, read, ((f,) for f in files), window), 1):
                if item.error is not None:
                    unreadable.append(FailedFile(item.file.path, item.error))
                else:
                    batch.append(item)
                    if len(batch) >= options.batch_size:
                        flush()
                if listeners.progress:
                    listeners.progress(IndexProgress(done, len(files), item.file.path))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    flush()
    counts.unreadable = tuple(unreadable)
    return counts


def _read(file: LackingFile, encoding: ImageEncoding, options: IngestOptions) -> _Read:
    """Read, check and preprocess one file on a worker thread."""
    image_size = encoding.image_size()  # outside the try: a model that cannot load stops the run
    try:
        data = images.read_bytes(file.path)
    except ImageReadError as exc:
        if not os.path.lexists(file.path):
            return _Read(file, error="gone since the last index run: index its folder again")
        return _Read(file, error=exc.reason)
    if images.content_hash(data) != file.content_hash:
        return _Read(file, error="changed since the last index run: index its folder again")
    try:
        decoded = images.decode_image(data, min_side=image_size, **options.decode_limits())
        return _Read(file, encoding.preprocess(decoded.image))
    except ImageReadError as exc:
        return _Read(file, error=exc.reason)
    except Exception as exc:  # one odd file must never end the run (as in ingest)
        return _Read(file, error=f"cannot decode: {exc!r}"[:300])


def move_exports_in(staging: Path, index_dir: Path) -> None:
    """Replace the index directory's ONNX exports with the new model's from ``staging`` (the
    old model's go: a kept model exports again when it comes back). Per export, the sidecar
    that makes it current goes first and comes last."""
    from searchclip._encoders.onnx_image import INT8_ONNX_FILE, INT8_SIDECAR_FILE
    from searchclip._encoders.onnx_text import (
        ONNX_FILE,
        SIDECAR_FILE,
        TEXT_INT8_FILE,
        TOKENIZER_FILE,
        WEIGHTS_FILE,
    )

    exports = (
        (SIDECAR_FILE, (WEIGHTS_FILE, ONNX_FILE, TOKENIZER_FILE, TEXT_INT8_FILE)),
        (INT8_SIDECAR_FILE, (INT8_ONNX_FILE,)),
    )
    for sidecar, names in exports:
        with contextlib.suppress(OSError):  # a read-only index: the stale sidecar is ignored
            (index_dir / sidecar).unlink(missing_ok=True)
            for name in names:
                if (staging / name).is_file():
                    os.replace(staging / name, index_dir / name)
                else:
                    (index_dir / name).unlink(missing_ok=True)
            if (staging / sidecar).is_file():
                os.replace(staging / sidecar, index_dir / sidecar)
    remove_staging(staging)


def remove_staging(staging: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(staging)
