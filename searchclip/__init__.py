"""searchclip: semantic image search with CLIP, FAISS and SQLite.

The public API is what this module exports (``__all__``); every other module is private.
``import searchclip`` is light: torch and transformers load only when a model is needed, FAISS
only when an index is searched.
"""

from searchclip._encoders import DEFAULT_MODEL, Encoder, load_encoder
from searchclip._engine import SearchEngine
from searchclip._errors import (
    CatalogError,
    EmptyIndexError,
    FileError,
    ImageReadError,
    IndexBusyError,
    IndexNotFoundError,
    IndexStateError,
    InputError,
    InvalidArgumentError,
    MissingExtraError,
    ModelError,
    ModelLoadError,
    ModelMismatchError,
    PrecisionMismatchError,
    SchemaTooNewError,
    SearchclipError,
)
from searchclip._index_dir import default_index_dir
from searchclip._results import (
    FailedFile,
    IndexInfo,
    IndexProgress,
    IndexReport,
    SearchHit,
    Tag,
    TagReport,
    VocabularyInfo,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "CatalogError",
    "EmptyIndexError",
    "Encoder",
    "FailedFile",
    "FileError",
    "ImageReadError",
    "IndexBusyError",
    "IndexInfo",
    "IndexNotFoundError",
    "IndexProgress",
    "IndexReport",
    "IndexStateError",
    "InputError",
    "InvalidArgumentError",
    "MissingExtraError",
    "ModelError",
    "ModelLoadError",
    "ModelMismatchError",
    "PrecisionMismatchError",
    "SchemaTooNewError",
    "SearchEngine",
    "SearchHit",
    "SearchclipError",
    "Tag",
    "TagReport",
    "VocabularyInfo",
    "__version__",
    "default_index_dir",
    "load_encoder",
]

# Exported names say they are searchclip's, whatever private module defines them.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith("searchclip._"):
        _value.__module__ = "searchclip"
del _name, _value
