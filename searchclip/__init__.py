"""searchclip: semantic image search with CLIP, FAISS and SQLite.

The public API is what this module exports (``__all__``); every other module is private.
``import searchclip`` is light: torch and transformers load only when a model is needed, FAISS
only when an index is searched.
"""

from searchclip._encoders import DEFAULT_MODEL, Encoder, load_encoder
from searchclip._encoders.fake import FakeEncoder, write_fake_model
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
from searchclip._evaluation import (
    calibrate,
    evaluate_retrieval,
    evaluate_tagging,
    evaluate_zeroshot,
)
from searchclip._evaluation_results import (
    Calibration,
    RecallAtK,
    RetrievalEvaluation,
    TaggingEvaluation,
    ZeroShotEvaluation,
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
    "Calibration",
    "CatalogError",
    "EmptyIndexError",
    "Encoder",
    "FailedFile",
    "FakeEncoder",
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
    "RecallAtK",
    "RetrievalEvaluation",
    "SchemaTooNewError",
    "SearchEngine",
    "SearchHit",
    "SearchclipError",
    "Tag",
    "TagReport",
    "TaggingEvaluation",
    "VocabularyInfo",
    "ZeroShotEvaluation",
    "__version__",
    "calibrate",
    "default_index_dir",
    "evaluate_retrieval",
    "evaluate_tagging",
    "evaluate_zeroshot",
    "load_encoder",
    "write_fake_model",
]

# Exported names say they are searchclip's, whatever private module defines them.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith("searchclip._"):
        _value.__module__ = "searchclip"
del _name, _value
