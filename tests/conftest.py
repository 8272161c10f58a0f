"""Shared test fixtures: the archive database under test, running `dnm`, demo-market archives.

One switch picks the archive backend of the whole suite: DNM_TEST_DATABASE=sqlite (the default: a
file per archive) or DNM_TEST_DATABASE=postgresql (a fresh database per archive on the server at
DNM_TEST_POSTGRES_URL, by default the local one; dropped when the test or the session ends).
Tests get an archive from `archive_url(directory)` or the `database_url` fixture, never by
spelling a URL. Without a reachable PostgreSQL those tests skip with the reason; under CI=true
they fail, since CI is where the PostgreSQL pass must really run.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from demo.server import DemoServer
from demo.truth import MARKETS
from dnm.export import KINDS, ExportFilter, export_rows
from models import Crawl, Market
from models.db import open_engine

BACKENDS = ("sqlite", "postgresql")
TEST_DATABASE = os.environ.get("DNM_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
# The maintenance database of the server the test archives are created on (trust auth locally).
POSTGRES_ADMIN_URL = os.environ.get(
    "DNM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    if TEST_DATABASE not in BACKENDS:
        raise pytest.UsageError(f"DNM_TEST_DATABASE={TEST_DATABASE!r}: use one of {', '.join(BACKENDS)}")
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): the test is about the SQLite archive file itself (a file path, WAL, a tool "
        "that opens SQLite files); skipped in the PostgreSQL pass, having run in the SQLite one",
    )


# Tests that never open an archive (parsers, normalizers, the demo app, the Tor network, CAPTCHA pages):
# what they test does not change with the archive's backend, so they run in the SQLite pass only.
BACKEND_INDEPENDENT = (
    "tests/bench/test_static_server.py", "tests/captcha/", "tests/core/test_accounts.py",
    "tests/core/test_barriers.py", "tests/core/test_circuits.py", "tests/core/test_coverage.py",
    "tests/core/test_guards.py", "tests/core/test_mirrors.py", "tests/core/test_pgpsig.py",
    "tests/core/test_profile.py", "tests/demo/", "tests/fuzz/test_properties.py",
    "tests/fuzz/test_regressions.py", "tests/monitor/test_drift_rules.py", "tests/normalize/",
    "tests/tor/test_onion_keys.py", "tests/tor/test_tornet.py",
)  # fmt: skip
ARCHIVE_FIXTURES = {"database_url", "demo_archive", "archive", "clean"}


# Tests of the Tor path (private Tor networks, onion services, tors launched and killed, sockets audited):
# what they test is the transport, and their crawls' archive side is what the loopback crawl tests check in
# both passes; a second set of private Tor networks in the PostgreSQL pass would add CPU load, not coverage.
TOR_PATH = (
    "tests/tor/test_crawl_over_tor.py", "tests/tor/test_hostile_over_tor.py",
    "tests/tor/test_cluster_over_tor.py", "tests/security/test_leaks.py",
    "tests/test_cli.py::test_the_main_job_crawls_every_demo_market_over_tor",
)  # fmt: skip


# `make test` runs the SQLite pass as two processes (tests/passes.py): the Tor tests (everything under
# tests/tor/ and the Tor path above), which mostly wait on tors bootstrapping and circuits, and the rest.
# DNM_TEST_PART picks one ("tor" or "no-tor"); unset, a session runs both.
TOR_TESTS = ("tests/tor/", *TOR_PATH)
TEST_PARTS = ("tor", "no-tor")
TEST_PART = os.environ.get("DNM_TEST_PART", "").strip().lower() or None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_PART is None:
        return
    if TEST_PART not in TEST_PARTS:
        raise pytest.UsageError(f"DNM_TEST_PART={TEST_PART!r}: use one of {', '.join(TEST_PARTS)}")
    wanted = TEST_PART == "tor"
    kept, deselected = [], []
    for item in items:
        (kept if item.nodeid.startswith(TOR_TESTS) == wanted else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def _backend_independent(item: pytest.Item) -> bool:
    if not item.nodeid.startswith(BACKEND_INDEPENDENT):
        return False
    used = ARCHIVE_FIXTURES & set(getattr(item, "fixturenames", ()))
    if used:  # the list above would skip a test that does depend on the backend
        raise pytest.UsageError(f"{item.nodeid} uses {sorted(used)}: remove it from BACKEND_INDEPENDENT")
    return True


def pytest_runtest_setup(item: pytest.Item) -> None:
    if TEST_DATABASE != "sqlite" and _backend_independent(item):
        pytest.skip("opens no archive: runs in the SQLite pass")
    if TEST_DATABASE != "sqlite" and item.nodeid.startswith(TOR_PATH):
        pytest.skip(
            "the Tor path: runs in the SQLite pass (its crawls' archive side runs in both, on loopback)"
        )
    marker = item.get_closest_marker("sqlite_only")
    if marker is not None and TEST_DATABASE != "sqlite":
        reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "SQLite-specific")
        pytest.skip(f"SQLite only ({reason}); runs in the SQLite pass")


def pytest_report_header(config: pytest.Config) -> str:
    where = (
        f" ({make_url(POSTGRES_ADMIN_URL).set(database='dnm_test_*')})" if TEST_DATABASE != "sqlite" else ""
    )
    return f"archive database: {TEST_DATABASE}{where} (DNM_TEST_DATABASE)"


class PostgresDatabases:
    """Throwaway PostgreSQL databases, one per test archive, made and dropped through the maintenance DB."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []
        self._admin: Engine | None = None
        self._checked: tuple[str | None] | None = None

    def admin(self) -> Engine:
        # CREATE and DROP DATABASE cannot run inside a transaction.
        if self._admin is None:
            self._admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", pool_size=1)
        return self._admin

    def unavailable(self) -> str | None:
        """Why no test database can be made here, or None when the server answers (asked once a session)."""
        if self._checked is None:
            self._checked = (self._probe(),)
        return self._checked[0]

    def _probe(self) -> str | None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "psycopg is not installed: pip install -e '.[dev]'"
        try:
            with self.admin().connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            where = make_url(self.admin_url).render_as_string(hide_password=True)
            return f"PostgreSQL not reachable at {where}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        return None

    def create(self) -> str:
        """A new empty database; returns its URL."""
        name = f"dnm_test_{os.getpid()}_{secrets.token_hex(4)}"
        with self.admin().connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        """Drop a test database made here (any other URL is left alone)."""
        name = make_url(url).database
        if name in self.created:
            self._drop(name)

    def _drop(self, name: str) -> None:
        # FORCE closes what the test left open (engines never disposed, a killed crawl's connection).
        with self.admin().connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self._drop(name)
        if self._admin is not None:
            self._admin.dispose()


POSTGRES = PostgresDatabases(POSTGRES_ADMIN_URL)


def require_postgresql() -> None:
    """Skip the calling test when PostgreSQL cannot be reached; fail instead under CI=true."""
    reason = POSTGRES.unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL pass needs its service, a missing one is a failure)")
    pytest.skip(reason)


# A Redis database of its own per pass and part (they may run at the same time, and the scale-out tests
# name the demo markets' crawls in Redis), never a user's database 0.
REDIS_URL = os.environ.get(
    "DNM_TEST_REDIS_URL",
    f"redis://127.0.0.1:6379/{15 if TEST_DATABASE != 'sqlite' else 13 if TEST_PART == 'tor' else 14}",
)


def require_redis() -> str:
    """The Redis URL for tests of distributed crawls; skips when it does not answer (fails under CI=true)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        reason = f"Redis not reachable at {REDIS_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
        pytest.skip(reason)
    return REDIS_URL


def archive_url(directory: Path, name: str = "archive", backend: str | None = None) -> str:
    """A fresh, empty archive for a test: a SQLite file in `directory`, or a new PostgreSQL database.

    Which one is DNM_TEST_DATABASE's choice unless `backend` names one (for tests of both at once).
    PostgreSQL databases made here are dropped when the session ends (the `database_url` fixture
    drops its own as soon as its test ends).
    """
    if (backend or TEST_DATABASE) == "sqlite":
        return f"sqlite:///{directory / f'{name}.sqlite'}"
    require_postgresql()
    return POSTGRES.create()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty archive for this test (see `archive_url`)."""
    url = archive_url(tmp_path)
    yield url
    POSTGRES.drop(url)


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """Drop every PostgreSQL test database still there when the session ends."""
    yield
    POSTGRES.drop_all()


@dataclass
class DnmResult:
    """What a `dnm` run printed and how it ended."""

    returncode: int
    stdout: str
    stderr: str


RAW_DIR = tempfile.mkdtemp(prefix="dnm-warc-")


def run_dnm(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> DnmResult:
    """Run the `dnm` command in a fresh process (Scrapy's reactor cannot restart in this one).

    Session cookies go to a fresh directory unless `env` names one: test crawls never share them.
    Raw captures go to one scratch store for the whole test session (a later `dnm reparse` finds them),
    never into the checkout's var/.
    """
    sessions = {"DNM_SESSION_DIR": tempfile.mkdtemp(prefix="dnm-sessions-"), "DNM_RAW_DIR": RAW_DIR}
    completed = subprocess.run(
        [sys.executable, "-m", "dnm.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **sessions, **(env or {})},
        cwd=Path(__file__).resolve().parent.parent,
    )
    return DnmResult(completed.returncode, completed.stdout, completed.stderr)


def spawn_dnm(*args: str, env: dict[str, str] | None = None, log: Path) -> subprocess.Popen[bytes]:
    """Start `dnm` in a fresh process as `run_dnm` would, without waiting; its output goes to `log`."""
    sessions = {"DNM_SESSION_DIR": tempfile.mkdtemp(prefix="dnm-sessions-"), "DNM_RAW_DIR": RAW_DIR}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dnm.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **sessions, **(env or {})},
            cwd=Path(__file__).resolve().parent.parent,
        )


def crawl_demo(
    database_url: str, market: str, mirror: str, *extra: str, sessions: str | None = None
) -> DnmResult:
    """Crawl a demo market served at `mirror` over plain HTTP on loopback.

    Session cookies go to `sessions`, by default a fresh directory: crawls in tests never share them.
    """
    env = {"DNM_SESSION_DIR": sessions} if sessions else None
    return run_dnm(
        "crawl", market, "--mirror", mirror, "--transport", "direct", "--allow-host", "127.0.0.1",
        "--database", database_url, "--no-progress", *extra, env=env,
    )  # fmt: skip


def latest_crawl(engine: Engine, market: str) -> Crawl:
    """The newest crawl of a market in an archive."""
    with Session(engine) as session:
        crawl = session.scalar(
            select(Crawl).join(Market).where(Market.slug == market).order_by(Crawl.id.desc()).limit(1)
        )
        assert crawl is not None, f"no crawl of {market}"
        return crawl


@dataclass
class DemoArchive:
    """An archive holding crawls of both demo markets on days 1 and 2."""

    url: str
    engine: Engine
    crawls: dict[tuple[str, int], int]
    results: dict[tuple[str, int], DnmResult]
    # Exports of each day-1 crawl taken before day 2 was crawled: later crawls must not alter them.
    day1_exports: dict[tuple[str, str], list[dict[str, Any]]]

    def export(self, kind: str, market: str, day: int) -> list[dict[str, Any]]:
        """Export rows of one crawl."""
        filters = ExportFilter(market=market, crawl_id=self.crawls[market, day])
        return list(export_rows(self.engine, kind, filters))


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoArchive]:
    """Crawl hollowmere and copperline on day 1, then day 2, into one fresh archive."""
    url = archive_url(tmp_path_factory.mktemp("archive"))
    engine = open_engine(url)
    archive = DemoArchive(url, engine, {}, {}, {})
    for day in (1, 2):
        for market in MARKETS:
            with DemoServer(market, day) as server:
                result = archive.results[market, day] = crawl_demo(url, market, server.url)
            assert result.returncode == 0, result.stderr[-3000:]
            archive.crawls[market, day] = latest_crawl(engine, market).id
            if day == 1:
                for kind in KINDS:
                    archive.day1_exports[market, kind] = archive.export(kind, market, 1)
    yield archive
    engine.dispose()
