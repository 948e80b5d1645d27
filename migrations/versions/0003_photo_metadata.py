"""Photo metadata on files: when taken (and from what), camera, lens, GPS, format, folder.

Revision ID: 0003_photo_metadata
Revises: 0002_tags
Create Date: 2026-12-03

Existing rows get NULLs: ``taken_at_source IS NULL`` marks a file whose metadata has not been
read yet, which the next index run over it reads from the file without re-encoding it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_photo_metadata"
down_revision = "0002_tags"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("taken_at", sa.Float()),
    ("taken_at_source", sa.Text()),
    ("utc_offset_minutes", sa.Integer()),
    ("camera_make", sa.Text()),
    ("camera_model", sa.Text()),
    ("lens", sa.Text()),
    ("latitude", sa.Float()),
    ("longitude", sa.Float()),
    ("format", sa.Text()),
    ("folder", sa.Text()),
)
_INDEXES = (
    ("ix_files_taken_at", ["taken_at"]),
    ("ix_files_camera", ["camera_make", "camera_model"]),
    ("ix_files_folder", ["folder"]),
    ("ix_files_location", ["latitude", "longitude"]),
)


def upgrade() -> None:
    # ADD COLUMN of a nullable column is a change to the schema text only in SQLite: instant,
    # whatever the number of rows.
    for name, type_ in _COLUMNS:
        op.add_column("files", sa.Column(name, type_, nullable=True))
    for name, columns in _INDEXES:
        op.create_index(name, "files", columns)


def downgrade() -> None:
    for name, _ in _INDEXES:
        op.drop_index(name, "files")
    with op.batch_alter_table("files") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
