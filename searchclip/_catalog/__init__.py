"""The catalog: the only place in searchclip that issues SQL."""

from searchclip._catalog.catalog import (
    Catalog,
    CatalogChanges,
    FileEntry,
    FileRecord,
    IndexState,
    ModelRecord,
)

__all__ = ["Catalog", "CatalogChanges", "FileEntry", "FileRecord", "IndexState", "ModelRecord"]
