"""searchclip: semantic image search with CLIP, FAISS and SQLite.

The public API is what this module exports (``__all__``); every other module is private.
``import searchclip`` is light: torch and transformers load only when a model is needed, FAISS
only when an index is searched.
"""

from searchclip._duplicates import (
    DuplicateGroup,
    DuplicateImage,
    DuplicateReport,
    DuplicateThreshold,
)
from searchclip._encoders import DEFAULT_MODEL, Encoder, load_encoder
from searchclip._engine import SearchEngine
from searchclip._errors import (
    CatalogDamagedError,
    CatalogError,
    ClusterError,
    EmptyIndexError,
    FileError,
    ImageNotFoundError,
    ImageReadError,
    IndexBusyError,
    IndexNotFoundError,
    IndexStateError,
    InputError,
    InvalidArgumentError,
    MigrationPendingError,
    MissingExtraError,
    ModelError,
    ModelLoadError,
    ModelMismatchError,
    PrecisionMismatchError,
    SchemaTooNewError,
    SearchclipError,
    WholeFileSystemError,
)
from searchclip._evaluation_results import (
    Calibration,
    RecallAtK,
    RetrievalEvaluation,
    TaggingEvaluation,
    ZeroShotEvaluation,
)
from searchclip._filters import PhotoFilter
from searchclip._index_dir import default_index_dir
from searchclip._query import Query, Term
from searchclip._results import (
    FailedFile,
    IndexedImage,
    IndexInfo,
    IndexProgress,
    IndexReport,
    KeptModel,
    MigrationInfo,
    MigrationReport,
    OfflineFolder,
    PhotoMetadata,
    SearchHit,
    SearchResults,
    Tag,
    TagReport,
    VocabularyInfo,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Calibration",
    "CatalogDamagedError",
    "CatalogError",
    "CheckProblem",
    "CheckReport",
    "ClusterError",
    "DuplicateGroup",
    "DuplicateImage",
    "DuplicateReport",
    "DuplicateThreshold",
    "EmptyIndexError",
    "Encoder",
    "FailedFile",
    "FakeEncoder",
    "FileError",
    "ImageNotFoundError",
    "ImageReadError",
    "IndexBusyError",
    "IndexInfo",
    "IndexNotFoundError",
    "IndexProgress",
    "IndexReport",
    "IndexStateError",
    "IndexedImage",
    "InputError",
    "InvalidArgumentError",
    "KeptModel",
    "Keyword",
    "MigrationInfo",
    "MigrationPendingError",
    "MigrationReport",
    "MissingExtraError",
    "ModelError",
    "ModelLoadError",
    "ModelMismatchError",
    "OfflineFolder",
    "PhotoFilter",
    "PhotoMetadata",
    "PrecisionMismatchError",
    "Query",
    "RecallAtK",
    "RetrievalEvaluation",
    "SchemaTooNewError",
    "SearchEngine",
    "SearchHit",
    "SearchResults",
    "SearchclipError",
    "SidecarChange",
    "Tag",
    "TagReport",
    "TaggingEvaluation",
    "Term",
    "VocabularyInfo",
    "WholeFileSystemError",
    "XmpReport",
    "ZeroShotEvaluation",
    "__version__",
    "calibrate",
    "check_index",
    "default_index_dir",
    "evaluate_retrieval",
    "evaluate_tagging",
    "evaluate_zeroshot",
    "load_encoder",
    "write_fake_model",
]

# Loaded on first use: a query never needs them, and a cold query pays for every import.
_LAZY = {
    "CheckProblem": "searchclip._check",
    "CheckReport": "searchclip._check",
    "check_index": "searchclip._check",
    "FakeEncoder": "searchclip._encoders.fake",
    "write_fake_model": "searchclip._encoders.fake",
    "calibrate": "searchclip._evaluation",
    "evaluate_retrieval": "searchclip._evaluation",
    "evaluate_tagging": "searchclip._evaluation",
    "evaluate_zeroshot": "searchclip._evaluation",
    "Keyword": "searchclip._engine_xmp",
    "SidecarChange": "searchclip._xmp_write",
    "XmpReport": "searchclip._xmp_write",
}


def _as_public(value):
    """Exported names say they are searchclip's, whatever private module defines them."""
    if getattr(value, "__module__", "").startswith("searchclip._"):
        value.__module__ = "searchclip"
    return value


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'searchclip' has no attribute {name!r}")
    import importlib

    value = _as_public(getattr(importlib.import_module(_LAZY[name]), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


for _name in __all__:
    if _name not in _LAZY:
        _as_public(globals()[_name])
del _name
