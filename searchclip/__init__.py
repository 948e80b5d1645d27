"""searchclip: semantic image search with CLIP, FAISS and SQLite.

``import searchclip`` is light: torch and transformers load only when a model is needed, FAISS
only when an index is searched.
"""

from searchclip._encoders import DEFAULT_MODEL, Encoder
from searchclip._engine import SearchEngine, default_index_dir
from searchclip._errors import (
    CatalogError,
    EmptyIndexError,
    ImageReadError,
    IndexBusyError,
    IndexNotFoundError,
    InvalidArgumentError,
    ModelLoadError,
    ModelMismatchError,
    PrecisionMismatchError,
    SchemaTooNewError,
    SearchclipError,
)
from searchclip._results import FailedFile, IndexInfo, IndexReport, SearchHit

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "CatalogError",
    "EmptyIndexError",
    "Encoder",
    "FailedFile",
    "ImageReadError",
    "IndexBusyError",
    "IndexInfo",
    "IndexNotFoundError",
    "IndexReport",
    "InvalidArgumentError",
    "ModelLoadError",
    "ModelMismatchError",
    "PrecisionMismatchError",
    "SchemaTooNewError",
    "SearchEngine",
    "SearchHit",
    "SearchclipError",
    "__version__",
    "default_index_dir",
]
