"""End to end over HTTP on loopback: both demo skins, two days, compared with the market's ground truth."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from demo.server import DemoServer
from demo.truth import MARKETS, truth
from dnm.summary import summarize
from models import Crawl, Feedback, ListingSnapshot, Page, VendorSnapshot
from models.db import open_engine
from tests.conftest import DemoArchive, archive_url, crawl_demo, latest_crawl
from tests.groundtruth import (
    LISTING_FIELDS,
    VENDOR_FIELDS,
    compare_feedback,
    compare_listings,
    compare_vendors,
)

DAYS = (1, 2)
CASES = [(market, day) for market in MARKETS for day in DAYS]


COMPARE = {"listings": compare_listings, "vendors": compare_vendors, "feedback": compare_feedback}


@pytest.mark.parametrize("kind", COMPARE)
@pytest.mark.parametrize(("market", "day"), CASES)
def test_export_equals_ground_truth(demo_archive: DemoArchive, market: str, day: int, kind: str) -> None:
    exported = demo_archive.export(kind, market, day)
    assert COMPARE[kind](exported, truth(market, day, kind=kind)) == []


@pytest.mark.parametrize("market", MARKETS)
def test_crawls_are_complete_and_recorded(demo_archive: DemoArchive, market: str) -> None:
    with Session(demo_archive.engine) as session:
        for day in DAYS:
            crawl = session.get(Crawl, demo_archive.crawls[market, day])
            assert crawl is not None
            assert crawl.status == "complete" and crawl.finished_at is not None
            assert (
                crawl.transport == "direct" and crawl.mirror and crawl.mirror.startswith("http://127.0.0.1:")
            )
            assert len(crawl.profile_sha256) == 64 and len(crawl.settings_sha256) == 64
            assert crawl.stats and crawl.stats["dnm/stored/pages"] == crawl.stats["response_received_count"]
            # Every snapshot points at a stored page of its own crawl with the same hash.
            orphans = session.scalar(
                select(func.count())
                .select_from(ListingSnapshot)
                .join(Page, ListingSnapshot.page_id == Page.id)
                .where(
                    ListingSnapshot.crawl_id == crawl.id,
                    (Page.crawl_id != crawl.id) | (Page.sha256 != ListingSnapshot.page_sha256),
                )
            )
            assert orphans == 0


@pytest.mark.parametrize("market", MARKETS)
def test_second_crawl_never_rewrites_the_first(demo_archive: DemoArchive, market: str) -> None:
    for kind in ("listings", "vendors"):
        assert demo_archive.export(kind, market, 1) == demo_archive.day1_exports[market, kind]
    with Session(demo_archive.engine) as session:
        for day in DAYS:
            crawl_id = demo_archive.crawls[market, day]
            listings = session.scalar(select(func.count()).where(ListingSnapshot.crawl_id == crawl_id))
            vendors = session.scalar(select(func.count()).where(VendorSnapshot.crawl_id == crawl_id))
            assert listings == len(truth(market, day, kind="listings"))
            assert vendors == len(truth(market, day, kind="vendors"))


def _key(row: dict[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(repr(row.get(field)) for field in fields)


@pytest.mark.parametrize("market", MARKETS)
def test_summary_counts_what_changed(demo_archive: DemoArchive, market: str) -> None:
    summary = summarize(demo_archive.engine, demo_archive.crawls[market, 2])
    assert summary.previous_crawl_id == demo_archive.crawls[market, 1]
    for kind, key, fields, changes in (
        ("listings", "listing_id", LISTING_FIELDS, summary.listing_changes),
        ("vendors", "vendor_id", VENDOR_FIELDS, summary.vendor_changes),
    ):
        before = {row[key]: _key(row, fields) for row in truth(market, 1, kind=kind)}
        after = {row[key]: _key(row, fields) for row in truth(market, 2, kind=kind)}
        assert changes.new == len(after.keys() - before.keys())
        assert changes.gone == len(before.keys() - after.keys())
        assert changes.changed == sum(1 for k in before.keys() & after.keys() if before[k] != after[k])
    assert summary.errors == {}
    printed = demo_archive.results[market, 2].stdout
    assert f"Crawl {summary.crawl_id} of {market}: complete" in printed
    assert f"since crawl {summary.previous_crawl_id}" in printed


@pytest.mark.parametrize("market", MARKETS)
def test_feedback_is_stored_once_across_crawls(demo_archive: DemoArchive, market: str) -> None:
    day1, day2 = (truth(market, day, kind="feedback") for day in DAYS)

    def identity(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["vendor_id"], row["buyer"], row["text"], row["posted_at_earliest"])

    distinct = {identity(row) for row in day1} | {identity(row) for row in day2}
    seen_twice = {identity(row) for row in day1} & {identity(row) for row in day2}
    with Session(demo_archive.engine) as session:
        crawl_ids = [demo_archive.crawls[market, day] for day in DAYS]
        stored = session.scalar(select(func.count()).where(Feedback.first_crawl_id.in_(crawl_ids)))
        twice = session.scalar(
            select(func.count()).where(Feedback.first_crawl_id.in_(crawl_ids), Feedback.sightings == 2)
        )
    assert stored == len(distinct)
    assert twice == len(seen_twice)


def test_malformed_pages_are_counted_and_lose_nothing_else(tmp_path) -> None:
    url = archive_url(tmp_path)
    with DemoServer("hollowmere", 1, malformed_rate=0.1) as server:
        result = crawl_demo(url, "hollowmere", server.url)
    assert result.returncode == 3, result.stderr[-2000:]
    rows = truth("hollowmere", 1, kind="listings", malformed_rate=0.1)
    malformed = [row for row in rows if row["malformed"]]
    assert len(malformed) >= 5
    engine = open_engine(url)
    crawl = latest_crawl(engine, "hollowmere")
    # Every page was fetched and archived, but the malformed ones were not parsed: coverage says so.
    assert crawl.status == "partial" and crawl.status_reason is not None
    parsed, total = len(rows) - len(malformed), len(rows)
    assert f"listing coverage {parsed / total:.1%} ({parsed} of {total} expected)" in crawl.status_reason
    assert crawl.stats is not None and crawl.stats["dnm/records/dropped/listing"] == len(malformed)
    assert crawl.stats["dnm/extract/errors"] >= len(malformed)
    from dnm.export import ExportFilter, export_rows

    exported = list(export_rows(engine, "listings", ExportFilter(crawl_id=crawl.id)))
    assert compare_listings(exported, rows) == []  # every well-formed listing is still there
    with Session(engine) as session:
        pages = session.scalars(
            select(Page).where(Page.crawl_id == crawl.id, Page.page_type == "listing")
        ).all()
        broken = {f"/listing/{row['listing_id']}" for row in malformed}
        kept = [page for page in pages if any(page.url.endswith(path) for path in broken)]
        assert len(kept) == len(malformed) and all(page.extraction_errors > 0 for page in kept)
    assert "records dropped: listing" in result.stdout


def test_dead_market_fails_clearly_and_keeps_the_archive(tmp_path) -> None:
    url = archive_url(tmp_path)
    with DemoServer("copperline", 1) as server:
        assert crawl_demo(url, "copperline", server.url).returncode == 0
        dead = server.url
    # The server is gone: nothing listens on that port any more.
    result = crawl_demo(url, "copperline", dead, "--set", "RETRY_TIMES=1")
    assert result.returncode == 1
    assert "failed" in result.stdout and "fetch: connection_refused" in result.stdout
    engine = open_engine(url)
    with Session(engine) as session:
        crawls = session.scalars(select(Crawl).order_by(Crawl.id)).all()
        assert [c.status for c in crawls] == ["complete", "failed"]
        assert session.scalar(select(func.count()).where(ListingSnapshot.crawl_id == crawls[0].id)) == len(
            truth("copperline", 1, kind="listings")
        )
