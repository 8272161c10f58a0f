"""Opening the archive: URL from settings or DNM_DATABASE_URL, SQLite tuned for crawling, schema at head.

`open_engine` opens it for the crawler (creating or upgrading the schema); `open_reader` opens it for
the query tools, read-only at the database's own level, the schema left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DATABASE_URL = "sqlite:///var/archive.sqlite"


def database_url(explicit: str | None = None) -> str:
    """The archive URL: an explicit one, else DNM_DATABASE_URL, else the embedded SQLite file."""
    return explicit or os.environ.get("DNM_DATABASE_URL") or DEFAULT_DATABASE_URL


# WAL lets researchers query while a crawl writes; foreign keys are off by default in SQLite.
# 64 MiB of page cache (the default is 2 MiB), taken only as pages are read. A crawl's batch touches index
# pages all over the archive (payload hashes and WARC record ids are random keys): with the default cache a
# batch evicts the pages the next one needs again and spills dirty pages to the WAL before its commit.
# Costs memory, per connection; durability is unchanged (commits and checkpoints go to disk as before).
_WRITER_PRAGMAS = (
    "journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000", "cache_size=-65536",
)  # fmt: skip


def _pragmas(statements: tuple[str, ...]) -> Any:
    """A connect listener setting these PRAGMAs on every new SQLite connection."""

    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for statement in statements:
            cursor.execute(f"PRAGMA {statement}")
        cursor.close()

    return apply


_sqlite_pragmas = _pragmas(_WRITER_PRAGMAS)


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


class ArchiveNotReadable(Exception):
    """The archive cannot be opened read-only as it is: missing, or its schema not at this version's head."""


# No journal_mode here: setting it writes the file. query_only refuses writes even where the file's mode
# would allow them (belt and braces with mode=ro).
_sqlite_reader_pragmas = _pragmas(
    ("query_only=ON", "foreign_keys=ON", "busy_timeout=30000", "cache_size=-65536")
)


def _sqlite_read_only_url(url: URL) -> URL:
    """The same SQLite file opened through a URI with mode=ro: SQLite itself refuses every write."""
    path = Path(str(url.database)).resolve()
    if not path.is_file():
        raise ArchiveNotReadable(f"no archive at {path}: crawl into it first, or give --database")
    # In a URI filename, ? and # would start the query and fragment: they are percent-encoded.
    quoted = str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return url.set(database=f"file:{quoted}", query={**url.query, "mode": "ro", "uri": "true"})


def open_reader(url: str | None = None) -> Engine:
    """A read-only engine on an existing archive, for the query tools (export, report, summary, status, API).

    SQLite: the file is opened with `mode=ro` (and `PRAGMA query_only`), so neither the file nor its
    schema is changed; it must exist. PostgreSQL: every transaction is read-only
    (`default_transaction_read_only`), which a read-only role (`dnm db readonly-role`) enforces anyway.
    No migration runs: an archive whose schema is not at this version's newest revision is refused
    with the command that upgrades it.
    """
    shown = database_url(url)
    parsed = make_url(shown)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ArchiveNotReadable("an in-memory SQLite archive has nothing to read")
        engine = create_engine(_sqlite_read_only_url(parsed))
        event.listen(engine, "connect", _sqlite_reader_pragmas)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed, connect_args={"options": "-c default_transaction_read_only=on"})
    else:
        engine = create_engine(parsed)
    from models.migrate import current_revision, head_revision

    with engine.connect() as connection:
        current, head = current_revision(connection), head_revision()
    if current != head:
        engine.dispose()
        where = parsed.render_as_string(hide_password=True)
        raise ArchiveNotReadable(
            f"the archive at {where} is at schema revision {current or 'none (not an archive)'}, this "
            f"dnm reads {head}: run `dnm db upgrade --database {where}` first (as its owner)"
        )
    return engine
