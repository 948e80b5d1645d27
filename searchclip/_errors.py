"""The one exception tree of searchclip.

Every error a caller can cause or meet derives from :class:`SearchclipError`. Its message is a
complete, library-neutral sentence that says what happened; the attributes carry the context
(which index, which model, which file, which value), so a caller can react without parsing
text. The CLI adds its own hints ("omit --model ...") and turns these into one line and exit
code 1 in exactly one place (``searchclip._cli._common``).

    SearchclipError
    ├── IndexStateError             the index cannot serve this call as it stands  (.index_dir)
    │   ├── IndexNotFoundError      no index at the given directory
    │   ├── EmptyIndexError         the index holds no images yet
    │   ├── IndexBusyError          another process is writing to the index
    │   ├── MigrationPendingError   a migration to another model is pending  (.pending)
    │   └── SchemaTooNewError       the index was written by a newer searchclip
    ├── ModelError                  about the model  (.model)
    │   ├── ModelLoadError          the model could not be loaded
    │   ├── ModelMismatchError      the index was built with another model  (.recorded)
    │   ├── PrecisionMismatchError  the index was encoded at another precision  (.recorded)
    │   └── MissingExtraError       an optional part is not installed  (.extra; an ImportError)
    ├── FileError                   a file cannot be used  (.path)
    │   ├── CatalogError            the catalog is unreadable or not a searchclip catalog
    │   │   └── CatalogDamagedError the catalog file is damaged  (.problem, .index_dir)
    │   └── ImageReadError          an image cannot be read (also recorded per file when indexing)
    ├── InputError                  a value passed in is wrong  (.value)
    │   └── InvalidArgumentError    out of range, empty, or contradictory (also a ValueError)
    └── ClusterError                the Ray cluster cannot run the work  (.address)
"""

from __future__ import annotations

import os
from typing import Any


class SearchclipError(Exception):
    """Base class of every error searchclip raises on purpose."""


class IndexStateError(SearchclipError):
    """The index, as it stands, cannot serve the call. ``index_dir`` is the index's directory."""

    def __init__(self, message: str, *, index_dir: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.index_dir = os.fspath(index_dir) if index_dir is not None else None


class IndexNotFoundError(IndexStateError):
    """No index exists at the directory given."""


class EmptyIndexError(IndexStateError):
    """The index exists but holds no images."""


class IndexBusyError(IndexStateError):
    """Another process holds the index's write lock."""


class MigrationPendingError(IndexStateError):
    """A switch to another model is pending (``pending``: its model) and a migration to a
    different one was asked for."""

    def __init__(
        self, message: str, *, pending: str, index_dir: str | os.PathLike | None = None
    ) -> None:
        super().__init__(message, index_dir=index_dir)
        self.pending = pending


class SchemaTooNewError(IndexStateError):
    """The catalog was written by a newer schema than this searchclip knows."""


class ModelError(SearchclipError):
    """Something about the model. ``model`` is the model's id or directory, when known."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class ModelLoadError(ModelError):
    """The model (weights, tokenizer or processor) could not be loaded."""


class ModelMismatchError(ModelError):
    """The index was built with another model than the one asked for: ``recorded`` is the
    index's, ``model`` the one asked for."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        recorded: str | None = None,
        index_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(message, model=model)
        self.recorded = recorded
        self.index_dir = os.fspath(index_dir) if index_dir is not None else None


class PrecisionMismatchError(ModelError):
    """The index's images were encoded at another precision than the one asked for:
    ``recorded`` is the index's, ``requested`` the one asked for."""

    def __init__(
        self,
        message: str,
        *,
        requested: str | None = None,
        recorded: str | None = None,
        index_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(message)
        self.requested = requested
        self.recorded = recorded
        self.index_dir = os.fspath(index_dir) if index_dir is not None else None


class MissingExtraError(ModelError, ImportError):
    """An optional part of searchclip is not installed; ``extra`` names what to install
    (``pip install 'searchclip[extra]'``)."""

    def __init__(self, message: str, *, extra: str, model: str | None = None) -> None:
        ModelError.__init__(self, message, model=model)
        self.extra = extra


class FileError(SearchclipError):
    """A file cannot be used. ``path`` is the file, when known."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = os.fspath(path) if path is not None else None


class CatalogError(FileError):
    """The catalog database cannot be opened or is not a searchclip catalog."""


class CatalogDamagedError(CatalogError):
    """The catalog file is damaged: SQLite finds it malformed, or it is empty while the index
    directory holds an index's files. ``problem`` is the first problem found."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"the catalog {os.fspath(path)} is damaged ({problem})", path=path)
        self.problem = problem
        self.index_dir = os.path.dirname(os.fspath(path))


class ImageReadError(FileError):
    """An image file cannot be read or decoded.

    ``reason`` is the short cause ("not an image", "truncated image data", ...) that the
    indexer records in the catalog; ``path`` is the file, when known.
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        super().__init__(f"cannot read image {path}: {reason}" if path else reason, path=path)
        self.reason = reason


class IndexedFileUnavailableError(FileError):
    """An indexed file cannot be served as it is now: gone, changed since it was indexed, or
    a symbolic link."""


class InputError(SearchclipError):
    """A value passed in is wrong. ``value`` is that value, when there is one."""

    def __init__(self, message: str, *, value: Any = None) -> None:
        super().__init__(message)
        self.value = value


class InvalidArgumentError(InputError, ValueError):
    """An argument is out of range, empty, or contradicts another one."""


class ImageNotFoundError(InputError, LookupError):
    """No image with that id is in the index (``value``: the id)."""


class WholeFileSystemError(InvalidArgumentError):
    """Indexing ``/`` (or a path that leads there) was asked for without ``force``."""


class ClusterError(SearchclipError):
    """A cluster run cannot go on: no Ray cluster at ``address``, or a worker cannot read the
    files (``node``: the worker's host name)."""

    def __init__(self, message: str, *, address: str | None = None, node: str | None = None):
        super().__init__(message)
        self.address = address
        self.node = node
