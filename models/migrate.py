"""Schema migrations of the archive: Alembic configured in code; bringing any archive to the head revision.

The migration scripts live in models/migrations/versions; there is no alembic.ini. Archives are
brought up to date by `upgrade` (called by `models.db.open_engine`), by `dnm db upgrade`, or by hand.
A developer who changed a model writes the next migration with

    python -m models.migrate revision -m "what changed"

which autogenerates it against a scratch SQLite archive at head; read and tidy it before committing.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.types import TypeDecorator

from models.base import Base
from models.views import create_views, drop_views

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Archives made by create_all before migrations existed hold this revision's schema.
FIRST_REVISION = "0001"
# Any fixed number: two processes opening one new PostgreSQL archive at once take turns creating it.
_PG_LOCK = 0x646E6D  # "dnm"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """Alembic's configuration for the archive, on an open connection or a URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Revisions are numbered 0001, 0002, ...: their order reads off the file names.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def script_directory() -> ScriptDirectory:
    """The migration scripts, read once per process (open_engine runs for every archive opened)."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision: the schema of today's models."""
    head = script_directory().get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS}"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision an archive is at; None for one that Alembic has never stamped."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the archive to the head revision; returns (revision before, revision after).

    A brand-new database gets today's tables in one create_all and is stamped at head: the same
    schema the migrations build (tests/core/test_migrations.py checks it), and much faster, which
    matters for the hundreds of scratch archives the tests make. An archive holding tables but no
    revision predates migrations and is taken to be at the first one.
    """
    head = head_revision()
    with engine.connect() as connection, _sqlite_foreign_keys_off(connection):
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            before = current_revision(connection)
            if before == head:
                return before, head
            context = MigrationContext.configure(connection)
            if before is None:
                tables = set(inspect(connection).get_table_names())
                if not tables & set(Base.metadata.tables):
                    Base.metadata.create_all(connection)
                    create_views(connection)
                    context.stamp(script_directory(), head)
                    return None, head
                context.stamp(script_directory(), FIRST_REVISION)
            # The views read the tables a migration may copy or rename (SQLite batch mode): they are
            # dropped first and made anew from models/views.py once the tables are at head.
            drop_views(connection)
            command.upgrade(alembic_config(connection=connection), "head")
            create_views(connection)
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
        return before, head


def downgrade(engine: Engine, revision: str) -> None:
    """Take the archive back to `revision`, with the views dropped first (made anew by the next open)."""
    with engine.connect() as connection, _sqlite_foreign_keys_off(connection), connection.begin():
        drop_views(connection)
        command.downgrade(alembic_config(connection=connection), revision)


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """On SQLite, no foreign key checks while migrating (restored after); elsewhere, nothing.

    Batch migrations copy a table, drop the original and rename the copy: with checks on, dropping
    a table other rows point at fails. The pragma is ignored inside a transaction, so it comes first.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render the archive's own column types (models.types) as themselves, with their import.

    Alembic's default would print the type's impl arguments (ExactDecimal(length=64)) and no import.
    """
    if kind == "type" and isinstance(obj, TypeDecorator) and type(obj).__module__ == "models.types":
        autogen_context.imports.add("import models.types")
        return f"models.types.{type(obj).__name__}()"
    return False


def include_object(dialect: str) -> Any:
    """Alembic's `include_object` for comparing the models with an archive on `dialect`: an index or
    constraint the models create on another backend only (`ddl_if(dialect=...)`) is left out."""

    def include(obj: Any, _name: str | None, _type: str, reflected: bool, _compare_to: Any) -> bool:
        condition = None if reflected else getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect is None or condition.dialect == dialect

    return include


def revision(message: str) -> Path:
    """Autogenerate the next migration from the models' difference with a scratch archive at head."""
    from models.db import open_engine

    number = max((int(script.revision) for script in script_directory().walk_revisions()), default=0) + 1
    with tempfile.TemporaryDirectory(prefix="dnm-revision-") as folder:
        url = f"sqlite:///{Path(folder) / 'scratch.sqlite'}"
        engine = open_engine(url, create=False)
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection=connection), "head")
                config = alembic_config(connection=connection)
                _format_with_ruff(config)
                script = command.revision(
                    config,
                    message=message,
                    autogenerate=True,
                    rev_id=f"{number:04d}",
                )
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def _format_with_ruff(config: Config) -> None:
    """Have Alembic run ruff on the script it writes, so a new migration starts in the project's style."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        return
    config.set_section_option("post_write_hooks", "hooks", "fix, format")
    steps = {
        "fix": "check --fix --quiet REVISION_SCRIPT_FILENAME",
        "format": "format --quiet REVISION_SCRIPT_FILENAME",
    }
    for name, arguments in steps.items():
        config.set_section_option("post_write_hooks", f"{name}.type", "exec")
        config.set_section_option("post_write_hooks", f"{name}.executable", ruff)
        config.set_section_option("post_write_hooks", f"{name}.options", arguments)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.migrate", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("revision", help="autogenerate the next migration from the models")
    new.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    path = revision(args.message)
    print(f"wrote {path}: read it, tidy it, and test it (tests/core/test_migrations.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
