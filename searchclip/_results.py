"""Typed, frozen values that the library returns."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SearchHit:
    """One search result: ``rank`` starts at 1, ``score`` is the cosine similarity."""

    rank: int
    score: float
    path: str
    width: int
    height: int


@dataclass(frozen=True)
class FailedFile:
    """A file the indexer could not read, with the reason it recorded."""

    path: str
    reason: str


@dataclass(frozen=True)
class IndexReport:
    """What one ``index`` run did.

    ``encoded`` counts images that went through the model; every other file was either skipped
    as unchanged or reused a vector already in the catalog (moved, touched or duplicate files).
    """

    new: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    encoded: int = 0
    elapsed_s: float = 0.0
    failures: tuple[FailedFile, ...] = field(default=())
    precision_choice: str = ""  # set by the run where `auto` chose the image precision

    @property
    def changed_anything(self) -> bool:
        return bool(self.new or self.updated or self.moved or self.removed)


@dataclass(frozen=True)
class VocabularyInfo:
    """A vocabulary tagged in an index: its labels, images scored, labels calibrated."""

    name: str
    labels: int
    tagged_images: int
    calibrated_labels: int


@dataclass(frozen=True)
class IndexInfo:
    """A summary of one index: where it is, which model built it, what it holds."""

    index_dir: str
    model: str
    dim: int
    files: int
    failures: int
    vocabularies: tuple[VocabularyInfo, ...] = ()
    precision: str = ""  # image precision and why, e.g. "bf16 (min cosine 0.9995 on ...)"
