"""The catalog's tables, as SQLAlchemy Core metadata.

This describes the schema at Alembic head; the schema itself is created only by the revisions in
``migrations/`` (a test checks that the two agree).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Key/value facts about the index: which model built it, the vectors' generation counter.
settings = Table(
    "settings",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("dim", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

# One row per indexed image; ``id`` is also the image's id in the FAISS index.
files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("path", Text, nullable=False, unique=True),
    Column("size", Integer, nullable=False),
    Column("mtime_ns", Integer, nullable=False),
    Column("content_hash", String(32), nullable=False, index=True),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("indexed_at", Float, nullable=False),
    # What the file's EXIF and header say (revision 0003); taken_at_source is NULL until read,
    # "exif" or "mtime" after. folder is the path's directory, for folder filters.
    Column("taken_at", Float, nullable=True),
    Column("taken_at_source", Text, nullable=True),
    Column("utc_offset_minutes", Integer, nullable=True),
    Column("camera_make", Text, nullable=True),
    Column("camera_model", Text, nullable=True),
    Column("lens", Text, nullable=True),
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("format", Text, nullable=True),
    Column("folder", Text, nullable=True),
    # Revision 0004: when the file's volume went missing (NULL: online), and a 64-bit hash of
    # its decoded picture for near-duplicate reports (NULL: not computed yet).
    Column("offline_since", Float, nullable=True),
    Column("perceptual_hash", Integer, nullable=True),
    Index("ix_files_taken_at", "taken_at"),
    Index("ix_files_camera", "camera_make", "camera_model"),
    Index("ix_files_folder", "folder"),
    Index("ix_files_location", "latitude", "longitude"),
    Index("ix_files_offline_since", "offline_since"),
    sqlite_autoincrement=True,  # ids are never reused, so a stale FAISS id can never alias
)

vectors = Table(
    "vectors",
    metadata,
    Column("file_id", Integer, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("vector", LargeBinary, nullable=False),  # float32 little-endian, L2-normalised
)

# Files found but not indexable, with the reason of their latest attempt.
failures = Table(
    "failures",
    metadata,
    Column("path", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("failed_at", Float, nullable=False),
)

# A label vocabulary as seen by one model: its fingerprint covers the labels, their prompts and
# the prompt templates, so changed content is a new row (and a re-tag), never a stale cache.
vocabularies = Table(
    "vocabularies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("rule", Text, nullable=True),  # JSON: how the last tagging run chose tags
    Column("created_at", Float, nullable=False),
    UniqueConstraint("model_id", "fingerprint", name="uq_vocabularies_model_fingerprint"),
)

# Each label's prompt-ensemble embedding (the cache) and its calibrated threshold, if any.
labels = Table(
    "labels",
    metadata,
    Column(
        "vocabulary_id",
        Integer,
        ForeignKey("vocabularies.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("threshold", Float, nullable=True),
)

# Which files a vocabulary has scored (also those that got no tag), so re-runs skip them.
tagged = Table(
    "tagged",
    metadata,
    Column("file_id", Integer, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "vocabulary_id",
        Integer,
        ForeignKey("vocabularies.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sqlite_with_rowid=False,
)

# Clustered by file (WITHOUT ROWID: one B-tree less to write), plus the per-label index that
# serves tag filters and "best images for a tag".
tags = Table(
    "tags",
    metadata,
    Column("file_id", Integer, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "vocabulary_id",
        Integer,
        ForeignKey("vocabularies.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("score", Float, nullable=False),  # cosine similarity of image and label
    Index("ix_tags_label_score", "vocabulary_id", "position", "score"),
    sqlite_with_rowid=False,
)

# People's own keywords (revision 0004), read from XMP sidecars and embedded XMP/IPTC at
# indexing; ``source`` says which ("sidecar" or "embedded").
keywords = Table(
    "keywords",
    metadata,
    Column("file_id", Integer, ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    Column("keyword", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Index("ix_keywords_keyword", "keyword"),
    sqlite_with_rowid=False,
)
