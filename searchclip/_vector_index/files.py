"""The index files' format and their safe writing: a header, reads that fail cleanly, and
atomic replacement (temp file, fsync, rename, fsync of the directory)."""

from __future__ import annotations

import contextlib
import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO


class VectorIndexFileError(Exception):
    """The index file is missing, unreadable, corrupt or holds vectors of another dimension."""


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
