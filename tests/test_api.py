"""The public API stays short and explicit (STYLE.md row 4)."""

from __future__ import annotations

import searchclip

EXPECTED = {
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
}


def test_exported_members_are_exactly_the_documented_ones():
    assert set(searchclip.__all__) == EXPECTED
    for name in searchclip.__all__:
        assert hasattr(searchclip, name), name


def test_every_error_derives_from_the_one_base():
    errors = [getattr(searchclip, n) for n in EXPECTED if n.endswith("Error")]
    assert errors and all(issubclass(e, searchclip.SearchclipError) for e in errors)
