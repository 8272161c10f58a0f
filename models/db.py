"""Opening the archive: URL from settings or DNM_DATABASE_URL, SQLite tuned for crawling, schema at head."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DATABASE_URL = "sqlite:///var/archive.sqlite"


def database_url(explicit: str | None = None) -> str:
    """The archive URL: an explicit one, else DNM_DATABASE_URL, else the embedded SQLite file."""
    return explicit or os.environ.get("DNM_DATABASE_URL") or DEFAULT_DATABASE_URL


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets researchers query while a crawl writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 64 MiB of page cache (the default is 2 MiB), taken only as pages are read. A crawl's batch touches
    # index pages all over the archive (payload hashes and WARC record ids are random keys): with the
    # default cache a batch evicts the pages the next one needs again and spills dirty pages to the WAL
    # before its commit. Costs memory, per connection; durability is unchanged (commits and checkpoints
    # go to disk as before).
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def open_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """An engine for the archive; with `create`, SQLite folders are made and the schema brought to head.

    The schema comes from the Alembic migrations (models/migrate.py): a new archive is created at the
    newest revision, an older one is upgraded. Works on SQLite and PostgreSQL (postgresql+psycopg://).
    """
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if create:
        from models.migrate import upgrade  # Alembic loads only where a schema may need creating

        upgrade(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (the pipelines reuse them)."""
    return sessionmaker(engine, expire_on_commit=False)
