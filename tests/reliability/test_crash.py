"""Crashes: `dnm crawl` SIGKILLed at a precise point or a random page, then the next crawl of the market.

Each kill point (pipelines.killpoints.KillPoint, set with DNM_TEST_KILL_AT) is a moment a crash can leave
the archive in: right after the crawl row is made, between a page's WARC records and its transaction,
halfway through a WARC record, after a page's commit, after the WARC file is closed, during the final
update of the crawl row. Random kills come from outside, at a random count of stored pages of a slowed
market. After each: the killed crawl is still `running` and `dnm archive verify` says it is interrupted;
the next crawl closes it (`partial` or `failed`, never `complete`) and seals its WARC file; then no crawl
has a listing or vendor twice, the database passes its integrity checks, every crawl's raw capture
verifies, every payload the archive points at is readable from the raw store, and the next crawl
equals the demo market's ground truth. On both archive backends (DNM_TEST_DATABASE).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from demo.server import DemoServer
from demo.truth import truth
from dnm.archive_check import verify_archive
from dnm.export import ExportFilter, export_rows
from dnm.rawstore import RecordReader
from dnm.recovery import INTERRUPTED
from models import Crawl, ListingSighting, Page, Payload, VendorSighting
from models.db import open_engine
from tests.conftest import POSTGRES, DnmResult, archive_url, crawl_demo, spawn_dnm
from tests.groundtruth import compare_feedback, compare_listings, compare_vendors

MARKET = "hollowmere"
# The demo market's day-1 crawl stores 280 pages (small scale): points early, in the middle, and late.
KILL_POINTS = [
    "begin:1",  # the crawl row was just made; nothing fetched
    "member:1",  # halfway through the first page's response record: a cut gzip member
    "warc:1",  # the first page's records written, its transaction not begun
    "commit:1",  # the first page committed
    "warc:97",  # mid-crawl, between a page's WARC records and its commit
    "member:143",  # mid-crawl, a cut gzip member after 142 chained pages
    "commit:211",  # mid-crawl, right after a commit
    "close:1",  # every page stored, the WARC file closed, the crawl row not yet
    "finish:1",  # the crawl row's final update sent, not committed
]


@dataclass
class Archive:
    url: str
    engine: Engine
    raw: Path


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    url = archive_url(tmp_path)
    engine = open_engine(url)
    yield Archive(url, engine, tmp_path / "warc")
    engine.dispose()
    POSTGRES.drop(url)


def crawl(archive: Archive, mirror: str, *extra: str) -> DnmResult:
    return crawl_demo(archive.url, MARKET, mirror, "--set", f"DNM_RAW_DIR={archive.raw}", *extra)


def crawls(archive: Archive) -> list[Crawl]:
    with Session(archive.engine) as session:
        return list(session.scalars(select(Crawl).order_by(Crawl.id)))


def stored_pages(archive: Archive, crawl_id: int) -> int:
    with archive.engine.connect() as connection:
        return connection.scalar(select(func.count(Page.id)).where(Page.crawl_id == crawl_id)) or 0


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_crawl_killed_at_a_point_resumes_cleanly(archive: Archive, point: str) -> None:
    with DemoServer(MARKET, 1) as server:
        killed = crawl(archive, server.url, "--set", f"DNM_TEST_KILL_AT={point}")
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        (dead,) = crawls(archive)
        assert dead.status == "running"
        before = stored_pages(archive, dead.id)
        (check,) = verify_archive(archive.engine, archive.raw)
        assert not check.ok and "interrupted" in check.problems[0], check.problems

        resumed = crawl(archive, server.url)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    dead, after = crawls(archive)
    expect_closed(dead, point)
    assert stored_pages(archive, dead.id) == before, "closing a dead crawl must not change its pages"
    assert after.status == "complete", after.status_reason
    expect_consistent(archive)
    expect_ground_truth(archive, after.id)


def expect_closed(dead: Crawl, point: str) -> None:
    """The dead crawl is closed as interrupted, with what it stored and its sealed raw capture."""
    assert dead.status in ("partial", "failed") and dead.finished_at is not None
    assert dead.status_reason is not None and dead.status_reason.startswith(INTERRUPTED), dead.status_reason
    stats = dead.stats or {}
    pages = stats["dnm/stored/pages"]
    assert dead.status == ("failed" if stats["dnm/stored/content_pages"] == 0 else "partial")
    stage, _, count = point.partition(":")
    if stage == "commit":
        assert pages == int(count)
    elif stage in ("warc", "member"):
        assert pages == int(count) - 1  # the page in flight is not archived
    elif stage == "begin":
        assert pages == 0 and "dnm/warc/file" not in stats
    else:
        assert pages == 280
    if stage != "begin":
        assert stats["dnm/warc/sealed_after_interruption"] is True
        assert (stats["dnm/warc/cut_bytes"] > 0) == (stage == "member"), stats["dnm/warc/cut_bytes"]


def expect_consistent(archive: Archive) -> None:
    """No crawl sights an entity twice; the database and every raw capture check out; every payload the
    archive links to a record is readable there, with its digest."""
    with archive.engine.connect() as connection:
        for table, entity in (
            (ListingSighting, ListingSighting.listing_id),
            (VendorSighting, VendorSighting.vendor_id),
        ):
            doubled = connection.execute(
                select(table.crawl_id, entity).group_by(table.crawl_id, entity).having(func.count() > 1)
            ).all()
            assert doubled == [], f"duplicate {table.__tablename__}: {doubled[:5]}"
        if archive.engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA integrity_check")).scalars().all() == ["ok"]
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
        else:
            unvalidated = connection.scalar(
                text("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated")
            )
            assert unvalidated == 0
        linked = connection.execute(
            select(Payload.sha256, Payload.warc_file, Payload.warc_record_id).where(
                Payload.warc_record_id.is_not(None)
            )
        ).all()
        assert connection.scalar(select(func.count()).where(Crawl.status == "running")) == 0
    for check in verify_archive(archive.engine, archive.raw):
        assert check.ok, (check.crawl_id, check.problems)
    reader = RecordReader(archive.raw)
    for sha256, warc_file, record_id in linked:
        assert reader.read(warc_file, record_id).payload_sha256 == sha256


def expect_ground_truth(archive: Archive, crawl_id: int) -> None:
    filters = ExportFilter(market=MARKET, crawl_id=crawl_id)
    for kind, compare in (
        ("listings", compare_listings),
        ("vendors", compare_vendors),
        ("feedback", compare_feedback),
    ):
        assert compare(list(export_rows(archive.engine, kind, filters)), truth(MARKET, 1, kind=kind)) == []


def test_two_crawls_killed_in_a_row_are_both_closed(archive: Archive) -> None:
    with DemoServer(MARKET, 1) as server:
        for point in ("commit:50", "member:120"):
            killed = crawl(archive, server.url, "--set", f"DNM_TEST_KILL_AT={point}")
            assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        assert crawl(archive, server.url).returncode == 0
    first, second, last = crawls(archive)
    expect_closed(first, "commit:50")
    expect_closed(second, "member:120")
    assert last.status == "complete"
    expect_consistent(archive)
    expect_ground_truth(archive, last.id)


# Random kills from outside, at a random number of stored pages: the seed is printed when a case fails.
SEED = int(os.environ.get("DNM_TEST_CRASH_SEED", time.time_ns() % 100_000))


@pytest.mark.parametrize("case", range(3))
def test_a_crawl_killed_at_a_random_page_resumes_cleanly(archive: Archive, tmp_path: Path, case: int) -> None:
    target = random.Random(SEED * 10 + case).randint(1, 270)
    # A slowed market, so the archive's page count is seen near the target before the crawl ends.
    with DemoServer(MARKET, 1, latency=0.02) as server:
        process = spawn_dnm(
            "crawl", MARKET, "--mirror", server.url, "--transport", "direct", "--allow-host", "127.0.0.1",
            "--database", archive.url, "--no-progress", "--set", f"DNM_RAW_DIR={archive.raw}",
            log=tmp_path / "killed.log",
        )  # fmt: skip
        try:
            seen = wait_for_pages(archive, process, target)
        finally:
            process.kill()
            process.wait()
        assert seen is not None, f"seed {SEED}: the crawl ended before {target} pages"
        assert crawl(archive, server.url).returncode == 0
    dead, after = crawls(archive)
    assert dead.status in ("partial", "failed"), (SEED, dead.status)
    assert dead.status_reason and dead.status_reason.startswith(INTERRUPTED)
    assert after.status == "complete"
    expect_consistent(archive)
    expect_ground_truth(archive, after.id)


def wait_for_pages(archive: Archive, process: subprocess.Popen[bytes], target: int) -> int | None:
    """Poll the archive until the crawl has stored `target` pages; None if it ended first."""
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        with archive.engine.connect() as connection:
            count = connection.scalar(select(func.count(Page.id))) or 0
        if count >= target:
            return count
        time.sleep(0.005)
    return None
