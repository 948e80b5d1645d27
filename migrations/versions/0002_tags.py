"""Tags: vocabularies per model, cached label embeddings and thresholds, tags per file.

Revision ID: 0002_tags
Revises: 0001_initial
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_tags"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def _fk(column: str, target: str) -> sa.Column:
    return sa.Column(column, sa.Integer(), sa.ForeignKey(target, ondelete="CASCADE"))


def upgrade() -> None:
    op.create_table(
        "vocabularies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "model_id",
            sa.Integer(),
            sa.ForeignKey("models.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("model_id", "fingerprint", name="uq_vocabularies_model_fingerprint"),
    )
    op.create_table(
        "labels",
        _fk("vocabulary_id", "vocabularies.id"),
        sa.Column("position", sa.Integer()),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("vocabulary_id", "position"),
    )
    op.create_table(
        "tagged",
        _fk("file_id", "files.id"),
        _fk("vocabulary_id", "vocabularies.id"),
        sa.PrimaryKeyConstraint("file_id", "vocabulary_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "tags",
        _fk("file_id", "files.id"),
        _fk("vocabulary_id", "vocabularies.id"),
        sa.Column("position", sa.Integer()),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("file_id", "vocabulary_id", "position"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_tags_label_score", "tags", ["vocabulary_id", "position", "score"])


def downgrade() -> None:
    op.drop_index("ix_tags_label_score", table_name="tags")
    for table in ("tags", "tagged", "labels", "vocabularies"):
        op.drop_table(table)
