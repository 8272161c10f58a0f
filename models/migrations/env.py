"""Alembic's environment for the archive: the models' metadata, and the connection `models.migrate` hands in.

There is no alembic.ini: `models.migrate.alembic_config` builds the configuration in code, and passes
either an open connection (`config.attributes["connection"]`) or a URL (`sqlalchemy.url`).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

import models  # noqa: F401  (registers every table on the metadata)
from models.base import Base
from models.migrate import include_object, render_item

config = context.config

# SQLite cannot ALTER most things: batch mode copies the table instead, and it is a plain ALTER on
# PostgreSQL, so one generated migration serves both backends.
OPTIONS: dict[str, Any] = {
    "target_metadata": Base.metadata,
    "render_as_batch": True,
    "render_item": render_item,
    "compare_type": True,
}


def run_offline() -> None:
    """Print the SQL of the migrations (`--sql`) instead of running it."""
    url = make_url(config.get_main_option("sqlalchemy.url") or "sqlite://")
    _migrate(url.get_backend_name(), url=url, literal_binds=True)


def _run(connection: Connection) -> None:
    _migrate(connection.dialect.name, connection=connection)


def _migrate(dialect: str, **target: Any) -> None:
    """Run the migrations on `target` (a connection, or a URL to print SQL for) on this dialect."""
    context.configure(include_object=include_object(dialect), **target, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the caller's connection, or on one opened from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from models.db import open_engine  # the archive's own connection settings (SQLite pragmas)

    engine = open_engine(config.get_main_option("sqlalchemy.url"), create=False)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
