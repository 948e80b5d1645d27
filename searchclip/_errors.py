"""The one exception tree of searchclip.

Every error a user can cause or meet derives from :class:`SearchclipError`; its message is a
complete sentence that says what happened and, where there is one, what to do. The CLI turns
these into a one-line message and a non-zero exit code in exactly one place (``cli.py``).

    SearchclipError
    ├── IndexNotFoundError      no index at the given directory
    ├── EmptyIndexError         the index holds no images yet
    ├── IndexBusyError          another process is writing to the index
    ├── ModelMismatchError      the index was built with another model
    ├── PrecisionMismatchError  the index was built at another image precision
    ├── SchemaTooNewError       the index was written by a newer searchclip
    ├── CatalogError            the catalog file is unreadable or not a searchclip catalog
    ├── ModelLoadError          the CLIP model could not be loaded
    ├── ImageReadError          an image cannot be read (also recorded per file while indexing)
    └── InvalidArgumentError    an argument is out of range (k <= 0, both text and image, ...)
"""

from __future__ import annotations


class SearchclipError(Exception):
    """Base class of every error searchclip raises on purpose."""


class IndexNotFoundError(SearchclipError):
    """No index exists at the directory given."""


class EmptyIndexError(SearchclipError):
    """The index exists but holds no images."""


class IndexBusyError(SearchclipError):
    """Another process holds the index's write lock."""


class ModelMismatchError(SearchclipError):
    """The index was built with a different model than the one asked for."""


class PrecisionMismatchError(SearchclipError):
    """The index's images were encoded at a different precision than the one asked for."""


class SchemaTooNewError(SearchclipError):
    """The catalog was written by a newer schema than this searchclip knows."""


class CatalogError(SearchclipError):
    """The catalog database cannot be opened or is not a searchclip catalog."""


class ModelLoadError(SearchclipError):
    """The CLIP model (weights, tokenizer or processor) could not be loaded."""


class ImageReadError(SearchclipError):
    """An image file cannot be read or decoded.

    ``reason`` is the short, user-facing cause ("not an image", "truncated image data", ...)
    that the indexer records in the catalog; ``path`` is the file, when known.
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"cannot read image {path}: {reason}" if path else reason)


class InvalidArgumentError(SearchclipError):
    """An argument is out of its allowed range."""
