"""Real photo libraries (issue 16): offline volumes, perceptual hashes, people's own keywords.

Revision ID: 0004_photo_libraries
Revises: 0003_photo_metadata
Create Date: 2026-12-03

- ``files.offline_since``: when an index run found the file's volume missing (unmounted
  drive, absent root); NULL while it is online. Offline files keep their rows and vectors.
- ``files.perceptual_hash``: a 64-bit hash of the decoded picture (signed, as SQLite stores
  integers) for near-duplicate reports; NULL until computed.
- ``keywords``: keywords read from a file's XMP sidecar or its embedded XMP/IPTC, with where
  each came from, so that people's own keywords filter like tags.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_photo_libraries"
down_revision = "0003_photo_metadata"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: a change of the schema text only in SQLite, instant at any size.
    op.add_column("files", sa.Column("offline_since", sa.Float(), nullable=True))
    op.add_column("files", sa.Column("perceptual_hash", sa.Integer(), nullable=True))
    op.create_index("ix_files_offline_since", "files", ["offline_since"])
    op.create_table(
        "keywords",
        sa.Column(
            "file_id",
            sa.Integer(),
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("keyword", sa.Text(), primary_key=True),
        sa.Column("source", sa.Text(), nullable=False),  # "sidecar" or "embedded"
        sqlite_with_rowid=False,
    )
    op.create_index("ix_keywords_keyword", "keywords", ["keyword"])


def downgrade() -> None:
    op.drop_index("ix_keywords_keyword", "keywords")
    op.drop_table("keywords")
    op.drop_index("ix_files_offline_since", "files")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("perceptual_hash")
        batch.drop_column("offline_since")
