"""Which crawls an analysis reads (a market's original, finished crawls in a period) and what each saw.

Every analysis in this package is over a market's crawls in order of `started_at`. A crawl counts when
it archived content (`complete` or `partial`): a `failed` crawl saw nothing, and a `running` one is not
finished. Re-parses (`dnm reparse`, `crawls.reparse_of` set) hold the same pages as the crawl they
re-read, so they are left out: counting them would see every listing twice on the same night.
A `partial` crawl is kept, but what it did not see was not seen, which is not the same as gone; the
report marks such crawls and intervals as lower bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models import Crawl, Feedback, ListingSnapshot, Market, Page, VendorSnapshot

USABLE_STATUSES = ("complete", "partial")


@dataclass(frozen=True)
class Period:
    """A half-open window [since, until) on crawl start times; either end may be open."""

    since: datetime | None = None
    until: datetime | None = None

    def holds(self, instant: datetime) -> bool:
        """Whether an instant falls in the window."""
        return (self.since is None or instant >= self.since) and (self.until is None or instant < self.until)


@dataclass(frozen=True)
class CrawlInfo:
    """One usable crawl of a market."""

    crawl_id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    status_reason: str | None
    # The market's own clock at the crawl's first page that printed one (pages.server_time): posting
    # windows of feedback are resolved against that clock, so they are compared with it, not ours.
    market_clock_at: datetime | None = None


@dataclass(frozen=True)
class CrawlActivity:
    """How much one crawl saw: listings and vendors observed, feedback seen for the first time."""

    crawl_id: int
    started_at: datetime
    status: str
    listings: int
    vendors: int
    new_feedback: int


def market_crawls(engine: Engine, market: str, period: Period | None = None) -> list[CrawlInfo]:
    """The market's usable crawls (complete or partial, not re-parses) started in the period, oldest first."""
    period = period or Period()
    query = (
        select(Crawl)
        .join(Market, Crawl.market_id == Market.id)
        .where(Market.slug == market, Crawl.status.in_(USABLE_STATUSES))
        .order_by(Crawl.started_at, Crawl.id)
    )
    # reparse_of arrived with the raw-capture store; looked up by name so archives read either way.
    reparse_of = Crawl.__table__.c.get("reparse_of")
    if reparse_of is not None:
        query = query.where(reparse_of.is_(None))
    if period.since is not None:
        query = query.where(Crawl.started_at >= period.since)
    if period.until is not None:
        query = query.where(Crawl.started_at < period.until)
    with Session(engine) as session:
        crawls = list(session.scalars(query))
        rows = session.execute(
            select(Page.crawl_id, func.min(Page.server_time))
            .where(Page.crawl_id.in_([c.id for c in crawls]), Page.server_time.is_not(None))
            .group_by(Page.crawl_id)
        )
        clocks = {crawl_id: clock for crawl_id, clock in rows}
        return [
            CrawlInfo(c.id, c.started_at, c.finished_at, c.status, c.status_reason, clocks.get(c.id))
            for c in crawls
        ]


def market_exists(engine: Engine, market: str) -> bool:
    """Whether the archive knows the market at all (it may still have no usable crawl)."""
    with Session(engine) as session:
        return session.scalar(select(Market.id).where(Market.slug == market)) is not None


def crawl_activity(engine: Engine, market: str, period: Period | None = None) -> list[CrawlActivity]:
    """Listings, vendors and new feedback per usable crawl, oldest first."""
    crawls = market_crawls(engine, market, period)
    ids = [c.crawl_id for c in crawls]
    if not ids:
        return []
    with Session(engine) as session:
        listings = _count_by_crawl(session, ListingSnapshot.crawl_id, ids)
        vendors = _count_by_crawl(session, VendorSnapshot.crawl_id, ids)
        feedback = _count_by_crawl(session, Feedback.first_crawl_id, ids)
    return [
        CrawlActivity(
            c.crawl_id,
            c.started_at,
            c.status,
            listings.get(c.crawl_id, 0),
            vendors.get(c.crawl_id, 0),
            feedback.get(c.crawl_id, 0),
        )
        for c in crawls
    ]


def _count_by_crawl(session: Session, column: Any, ids: list[int]) -> dict[int, int]:
    rows = session.execute(select(column, func.count()).where(column.in_(ids)).group_by(column))
    return {crawl_id: count for crawl_id, count in rows}
