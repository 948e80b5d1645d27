"""The index files' format: a header, and reads that fail cleanly (writes: _atomic_files)."""

from __future__ import annotations

import os
import struct
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
