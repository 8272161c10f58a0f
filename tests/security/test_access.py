"""Access: researchers read the archive and change nothing.

PostgreSQL: `dnm db readonly-role NAME` makes a login role that reads every table and view (also
tables created later) and can neither write, create nor drop, whatever it sets for its session.
SQLite: the query tools (export, summary, status, report, the pandas API) open the file read-only
(models.db.open_reader): a write through their engine fails, the file's bytes and mtime are the same
after each of them, and an archive at an older schema is refused rather than migrated.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from demo.server import DemoServer
from dnm.api import Archive
from models.db import ArchiveNotReadable, open_engine, open_reader
from models.views import VIEWS
from tests.conftest import POSTGRES, archive_url, crawl_demo, require_postgresql, run_dnm

MARKET = "copperline"


@pytest.fixture(scope="module")
def sqlite_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite archive holding one crawl of a demo market."""
    directory = tmp_path_factory.mktemp("readonly")
    url = archive_url(directory, backend="sqlite")
    with DemoServer(MARKET, 1) as server:
        result = crawl_demo(url, MARKET, server.url, "--set", "CLOSESPIDER_PAGECOUNT=60")
    assert result.returncode in (0, 3), result.stderr[-3000:]
    path = Path(str(make_url(url).database))
    # Fold the WAL into the file, so that what the tools must not change is the file itself.
    with open_engine(url).connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return path


def refused(connection: Connection, statements: Sequence[str], error: type[Exception], says: str) -> None:
    """Each statement fails (by the time it would commit) with `error` saying `says`, and is rolled back."""
    for statement in statements:
        with pytest.raises(error, match=says):
            connection.execute(text(statement))
            connection.commit()
        connection.rollback()


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.mark.sqlite_only("the SQLite file opened read-only")
def test_a_write_through_the_readers_engine_fails(sqlite_archive: Path) -> None:
    before = fingerprint(sqlite_archive)
    engine = open_reader(f"sqlite:///{sqlite_archive}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM listing_snapshots")).scalar()
        statements = (
            "DELETE FROM listing_sightings",
            "UPDATE markets SET name = 'x'",
            "CREATE TABLE notes (x TEXT)",
            "DROP VIEW listing_history",
            "PRAGMA journal_mode=DELETE",
        )
        refused(connection, statements, OperationalError, r"readonly|read-only|query_only|disk I/O error")
    engine.dispose()
    assert fingerprint(sqlite_archive) == before


@pytest.mark.sqlite_only("the SQLite file opened read-only")
def test_the_query_tools_leave_the_file_untouched(sqlite_archive: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{sqlite_archive}"
    before = fingerprint(sqlite_archive)
    commands = [
        ("summary", "--database", url),
        ("status", "--database", url),
        ("report", MARKET, "--database", url, "-o", str(tmp_path / "report.html")),
    ]
    for kind in ("listings", "vendors", "feedback"):
        for fmt in ("jsonl", "csv", "parquet"):
            output = str(tmp_path / f"{kind}.{fmt}")
            commands.append(("export", kind, "--database", url, "--format", fmt, "-o", output))
    for command in commands:
        result = run_dnm(*command)
        assert result.returncode in (0, 4), (command, result.stderr[-2000:])
        assert fingerprint(sqlite_archive) == before, command
    assert (tmp_path / "listings.jsonl").stat().st_size > 0
    archive = Archive(url)
    assert len(archive.listings(market=MARKET)) > 0
    assert all(len(archive.view(name).columns) for name in VIEWS)
    with pytest.raises(DBAPIError):
        archive.sql("DELETE FROM markets")
    archive.engine.dispose()
    assert fingerprint(sqlite_archive) == before


@pytest.mark.sqlite_only("the SQLite file opened read-only")
def test_an_archive_at_an_older_schema_is_refused_not_migrated(sqlite_archive: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    shutil.copyfile(sqlite_archive, old)
    with create_engine(f"sqlite:///{old}").begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    before = fingerprint(old)
    with pytest.raises(ArchiveNotReadable, match="dnm db upgrade"):
        open_reader(f"sqlite:///{old}")
    result = run_dnm("export", "listings", "--database", f"sqlite:///{old}")
    assert result.returncode == 1
    assert "schema revision 0001" in result.stderr and "dnm db upgrade" in result.stderr
    assert fingerprint(old) == before
    missing = run_dnm("summary", "--database", f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert missing.returncode == 1 and "no archive at" in missing.stderr
    assert not (tmp_path / "none.sqlite").exists()  # not created empty, as the crawler would


# -- PostgreSQL --------------------------------------------------------------------------------------


@pytest.fixture
def pg_archive(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL archive holding a crawl; the read-only roles made on it are dropped afterwards."""
    require_postgresql()
    url = archive_url(tmp_path, backend="postgresql")
    with DemoServer(MARKET, 1) as server:
        result = crawl_demo(url, MARKET, server.url, "--set", "CLOSESPIDER_PAGECOUNT=30")
    assert result.returncode in (0, 3), result.stderr[-3000:]
    yield url
    owner = create_engine(url, isolation_level="AUTOCOMMIT")
    # Roles are cluster-wide and the SQLite and PostgreSQL passes run side by side: drop only this
    # process's roles, never another pass's that still holds privileges in its own database.
    mine = text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :prefix)")
    with owner.connect() as connection:
        for (role,) in connection.execute(mine, {"prefix": own_role_prefix()}).all():
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))
    owner.dispose()
    POSTGRES.drop(url)


def own_role_prefix() -> str:
    return f"dnm_ro_{os.getpid()}"


def role_url(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def test_a_read_only_role_reads_everything_and_writes_nothing(pg_archive: str, tmp_path: Path) -> None:
    role = own_role_prefix()
    secret = tmp_path / "password"
    secret.write_text("correct horse battery staple\n")
    os.chmod(secret, 0o600)
    result = run_dnm("db", "readonly-role", role, "--database", pg_archive, "--password-file", str(secret))
    assert result.returncode == 0, result.stderr
    assert f"psql 'postgresql://{role}@" in result.stdout and "correct horse" not in result.stdout
    # Running it again (after a migration added tables, say) is harmless.
    assert run_dnm("db", "readonly-role", role, "--database", pg_archive).returncode == 0
    # A table the owner creates later is readable too (default privileges).
    with create_engine(pg_archive).begin() as connection:
        connection.execute(text("CREATE TABLE later_table (x integer)"))
    reader = create_engine(role_url(pg_archive, role))
    with reader.connect() as connection:
        tables = (
            connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
            .scalars()
            .all()
        )
        for name in [*tables, *VIEWS]:
            connection.execute(text(f'SELECT * FROM "{name}" LIMIT 1')).all()
        assert connection.execute(text("SELECT count(*) FROM listing_snapshots")).scalar()
        connection.commit()
        # Privileges, not only the session default: the role turns read-only transactions off first.
        connection.execute(text("SET default_transaction_read_only = off"))
        connection.commit()
        statements = (
            "INSERT INTO later_table VALUES (1)",
            "UPDATE markets SET name = 'x'",
            "DELETE FROM listing_sightings",
            "TRUNCATE later_table",
            "CREATE TABLE notes (x integer)",
            "DROP TABLE later_table",
            "DROP VIEW listing_history",
            "ALTER TABLE markets ADD COLUMN note text",
            "CREATE VIEW mine AS SELECT 1",
        )
        refused(connection, statements, DBAPIError, r"permission denied|must be owner")
    reader.dispose()
    # The query tools work as the role.
    as_role = make_url(role_url(pg_archive, role)).set(drivername="postgresql+psycopg")
    exported = run_dnm("export", "listings", "--database", as_role.render_as_string(hide_password=False))
    assert exported.returncode == 0 and exported.stdout.strip(), exported.stderr


def test_the_role_command_refuses_what_it_must(pg_archive: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    os.chmod(secret, 0o644)
    role = f"{own_role_prefix()}_x"
    result = run_dnm("db", "readonly-role", role, "--database", pg_archive, "--password-file", str(secret))
    assert result.returncode == 1 and f"chmod 600 {secret}" in result.stderr
    bad = run_dnm("db", "readonly-role", "Robert'); DROP", "--database", pg_archive)
    assert bad.returncode == 1 and "role name" in bad.stderr
    owner = make_url(pg_archive).username or "postgres"
    assert run_dnm("db", "readonly-role", owner, "--database", pg_archive).returncode == 1
