"""Bring a catalog's schema to Alembic head, refusing catalogs from a newer searchclip."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from searchclip._errors import SchemaTooNewError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]

# The newest revision in migrations/versions/. Opening a catalog already at this revision
# skips importing Alembic, a visible share of a cold query (docs/benchmarks.md, "Text
# queries: cold ..."); tests check it against Alembic's head.
HEAD_REVISION = "0004_photo_libraries"


def migrations_dir() -> Path:
    """The Alembic environment: inside an installed wheel, or the checkout's ``migrations/``."""
    packaged = _PACKAGE_DIR / "_migrations"
    return packaged if packaged.is_dir() else _PACKAGE_DIR.parent / "migrations"


def _config(connection: Connection | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def upgrade_to_head(connection: Connection, where: str) -> None:
    """Run every pending revision on ``connection``; ``where`` names the catalog in errors."""
    if _stored_revisions(connection) == [HEAD_REVISION]:
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = _config(connection)
    script = ScriptDirectory.from_config(config)
    current = set(MigrationContext.configure(connection).get_current_heads())
    for revision in current:
        try:
            script.get_revision(revision)
        except CommandError:
            raise SchemaTooNewError(
                f"the index at {where} was written by a newer searchclip (schema revision "
                f"{revision!r}); upgrade searchclip to open it"
            ) from None
    if current != set(script.get_heads()):
        command.upgrade(config, "head")


def _stored_revisions(connection: Connection) -> list[str]:
    """The revisions recorded in the catalog, read without Alembic ([] for a new file)."""
    try:
        return list(connection.scalars(text("SELECT version_num FROM alembic_version")))
    except OperationalError:  # no such table: a catalog not yet migrated
        return []
