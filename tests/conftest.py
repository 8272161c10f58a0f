"""Shared test fixtures: running the `dnm` command, and archives crawled from the demo market."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from demo.server import DemoServer
from demo.truth import MARKETS
from dnm.export import KINDS, ExportFilter, export_rows
from models import Crawl, Market
from models.db import open_engine


@dataclass
class DnmResult:
    """What a `dnm` run printed and how it ended."""

    returncode: int
    stdout: str
    stderr: str


def run_dnm(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> DnmResult:
    """Run the `dnm` command in a fresh process (Scrapy's reactor cannot restart in this one).

    Session cookies go to a fresh directory unless `env` names one: test crawls never share them.
    """
    sessions = {"DNM_SESSION_DIR": tempfile.mkdtemp(prefix="dnm-sessions-")}
    completed = subprocess.run(
        [sys.executable, "-m", "dnm.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **sessions, **(env or {})},
        cwd=Path(__file__).resolve().parent.parent,
    )
    return DnmResult(completed.returncode, completed.stdout, completed.stderr)


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
    """Crawl hollowmere and copperline on day 1, then day 2, into one fresh SQLite archive."""
    url = f"sqlite:///{tmp_path_factory.mktemp('archive') / 'archive.sqlite'}"
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
