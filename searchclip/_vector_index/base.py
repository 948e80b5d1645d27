"""What every vector index shares: the interface, argument checks, atomic files, FAISS setup."""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

# Batched exact search (many queries at once) goes through BLAS from this many queries on; below
# it FAISS uses its own SIMD loop. This faiss-cpu build defaults to 128,000 (BLAS practically
# never), upstream FAISS to 20. Measured on the 2-core project machine, 100k x 512 database
# (docs/benchmarks.md): with both cores busy with other work, each OpenMP-threaded BLAS call
# waits for a descheduled thread (~1.6 s per 100k-vector search, whatever the batch), so the
# SIMD loop wins up to ~150 queries (BLAS is 4.6x slower at 32); with a core free BLAS wins
# from ~32 queries on (5x faster at 128). 128 bounds the loss to ~1.4x under load and keeps
# BLAS for the big batches (tagging: 100k images x 1,000 labels is 2.2x faster through BLAS).
BLAS_MIN_QUERIES = 128
_NO_BLAS = 1 << 30

_faiss_configured = False


def import_faiss() -> Any:
    """faiss, configured once (imported here, inside functions, to keep the package light)."""
    global _faiss_configured
    import faiss

    if not _faiss_configured:
        faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES
        _faiss_configured = True
    return faiss


@contextlib.contextmanager
def _single_query() -> Iterator[None]:
    """FAISS set up for one query: one thread, and the BLAS threshold back at this build's own
    default. Measured here, one query over 100k vectors: 7.6 ms so; 17 ms on two threads; 31 ms
    on one thread with the small threshold batched search wants (2 was as slow as 128)."""
    faiss = import_faiss()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    faiss.cvar.distance_compute_blas_threshold = _NO_BLAS
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES
        faiss.omp_set_num_threads(threads)


class VectorIndexFileError(Exception):
    """The index file is missing, unreadable, corrupt or holds vectors of another dimension."""


class VectorIndex(ABC):
    """An id → vector store searched by inner product (cosine for unit vectors).

    Argument checks live here so that every implementation validates the same way; ids are
    unique: adding an id that is already held replaces its vector.
    """

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    @property
    @abstractmethod
    def ntotal(self) -> int:
        """How many vectors the index holds."""

    @property
    def outgrown(self) -> bool:
        """True once the index should be rebuilt from scratch (IVF: its centroids were trained
        on a much smaller collection)."""
        return False

    @abstractmethod
    def ids(self) -> np.ndarray:
        """All ids held (int64), in no particular order."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, dim) under ``ids`` (n,), replacing vectors of known ids."""
        ids = as_ids(ids)
        vectors = self._as_vectors(vectors, "vectors")
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
        if len(unique_ids(ids)) != len(ids):
            raise ValueError("ids must be unique within one add")
        if len(ids):
            self._remove(ids)
            self._add(ids, vectors)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ``ids`` (unknown ids are ignored); returns how many vectors went."""
        ids = unique_ids(as_ids(ids))
        return self._remove(ids) if len(ids) and self.ntotal else 0

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, *, far: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``min(k, ntotal)`` best ids per query, best first: (scores f32, ids i64).

        ``allowed`` restricts the search to those ids (a filter, e.g. by tag); rows are then
        padded with id -1 where fewer than k allowed ids are held. ``far`` says the queries lie
        away from every stored vector, as CLIP's text vectors do from its image vectors (the
        "modality gap"): an approximate index then searches wider to find the same neighbours.
        """
        queries = self._as_vectors(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), self.ntotal)
        if allowed is not None:
            allowed = unique_ids(as_ids(allowed))
            k = min(k, len(allowed))
        if k == 0:
            m = len(queries)
            return np.empty((m, 0), np.float32), np.empty((m, 0), np.int64)
        with _single_query() if len(queries) == 1 else contextlib.nullcontext():
            scores, ids = self._search(queries, k, allowed, far=far)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index so that ``path`` holds either the old or the new content, whole."""
        atomic_write(os.fspath(path), self._write)

    @abstractmethod
    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _remove(self, ids: np.ndarray) -> int:
        """Remove ``ids`` (unique, possibly unknown); returns how many were held."""

    @abstractmethod
    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, *, far: bool
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @abstractmethod
    def _write(self, file: BinaryIO) -> None:
        """Write the whole index to ``file`` (what ``load`` reads back)."""

    def _as_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(vectors)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape (n, {self.dim}), got {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():  # a NaN would make the ranking meaningless
            raise ValueError(f"{what} contain NaN or infinite values")
        return arr


@dataclass(frozen=True)
class FileHeader:
    """How searchclip's own index files begin: a magic line, then the format version, the
    vector dimension and one count whose meaning is the index type's."""

    magic: bytes
    version: int
    kind: str  # for messages, e.g. "IVF"

    _FIELDS = struct.Struct("<IIQ")

    def matches(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` starts with this header's magic."""
        try:
            with open(path, "rb") as f:
                return f.read(len(self.magic)) == self.magic
        except OSError as err:
            raise VectorIndexFileError(f"cannot read {os.fspath(path)}: {err.strerror}") from None

    def write(self, file: BinaryIO, dim: int, count: int) -> None:
        file.write(self.magic + self._FIELDS.pack(self.version, dim, count))

    def read(self, file: BinaryIO, dim: int, name: str) -> int:
        """Check the header at the start of ``file`` against this one and ``dim``; return its
        count. Any mismatch raises VectorIndexFileError."""
        header = file.read(len(self.magic) + self._FIELDS.size)
        if len(header) != len(self.magic) + self._FIELDS.size or not header.startswith(self.magic):
            raise VectorIndexFileError(f"{name} is not an {self.kind} index file")
        version, file_dim, count = self._FIELDS.unpack_from(header, len(self.magic))
        if version != self.version:
            raise VectorIndexFileError(f"{name} has format version {version}")
        if file_dim != dim:
            raise VectorIndexFileError(f"{name} holds {file_dim}-d vectors, not {dim}")
        return count


def as_ids(ids: np.ndarray) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr.size and arr.min() < 0:  # FAISS uses -1 for "no result"
        raise ValueError("ids must be non-negative")
    return arr


def unique_ids(ids: np.ndarray) -> np.ndarray:
    """``ids`` sorted, without repeats. Not ``np.unique``: ~10x slower on numpy 2.4 (0.4 s for
    a 500k-id filter), while ids from the catalog arrive sorted and need only a check."""
    if len(ids) < 2 or (ids[1:] > ids[:-1]).all():
        return ids
    ordered = np.sort(ids)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def read_file(path: str | os.PathLike[str], *, check_only: bool = False) -> bytes:
    """The file's bytes; with ``check_only``, only whether it can be opened (b"")."""
    try:
        with open(path, "rb") as f:
            return b"" if check_only else f.read()
    except OSError as err:
        raise VectorIndexFileError(f"cannot read {os.fspath(path)}: {err.strerror}") from None


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Temp file in the same directory, ``write`` into it, fsync, rename over ``path``, fsync
    the directory.

    A crash at any point leaves ``path`` either untouched or complete; the temp file is
    created with ``os.open`` (mode 0o666 minus the umask), unlike mkstemp's private 0o600.
    ``write`` streams into the file, so a large index is never copied whole into memory.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable; some platforms (Windows) cannot open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
