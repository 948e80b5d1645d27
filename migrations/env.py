"""Alembic environment for the searchclip catalog.

searchclip runs migrations itself when it opens an index, passing its open connection in
``config.attributes["connection"]``. Developers can also run ``alembic`` from the repository root
(configured in pyproject.toml), against ``$SEARCHCLIP_DB_URL`` or ./indexes/default.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from searchclip._catalog.schema import metadata

config = context.config
DEFAULT_URL = "sqlite:///indexes/default/catalog.sqlite"


def _url() -> str:
    # There is no alembic.ini (config lives in pyproject.toml): read the url only where a caller
    # set one with Config.set_main_option.
    if config.file_config.has_option(config.config_ini_section, "sqlalchemy.url"):
        return config.get_main_option("sqlalchemy.url")
    return os.environ.get("SEARCHCLIP_DB_URL") or DEFAULT_URL


def run_offline() -> None:
    context.configure(
        url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with create_engine(_url()).begin() as connection:
        _run(connection)


def _run(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
