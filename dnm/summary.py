"""The end-of-crawl summary: what was archived, what changed since the last crawl, and what went wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dnm.coverage import Coverage, coverage_of
from models import Crawl, Feedback, Listing, ListingSnapshot, Market, Page, Vendor, VendorSnapshot


@dataclass
class Changes:
    """Entities new, changed and gone between two crawls of a market."""

    new: int = 0
    changed: int = 0
    gone: int = 0


@dataclass
class CrawlSummary:
    """Everything the summary shows about one crawl."""

    crawl_id: int
    market: str
    status: str
    status_reason: str | None
    started_at: datetime
    finished_at: datetime | None
    transport: str
    mirror: str | None
    tor_version: str | None
    previous_crawl_id: int | None
    pages: int
    pages_by_type: dict[str, int]
    listings: int
    vendors: int
    feedback_new: int
    listing_changes: Changes
    vendor_changes: Changes
    errors: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, Coverage] = field(default_factory=dict)
    barriers: dict[str, int] = field(default_factory=dict)
    mirrors: list[dict[str, Any]] = field(default_factory=list)
    # Drops against the market's last good crawl (dnm.drift), and which crawl that was.
    drift_alarms: list[str] = field(default_factory=list)
    drift_baseline: int | None = None

    @property
    def duration_seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


def summarize(engine: Engine, crawl_id: int) -> CrawlSummary:
    """Build the summary of a crawl from the archive (and the stats stored on its row)."""
    with Session(engine) as session:
        crawl = session.get(Crawl, crawl_id)
        if crawl is None:
            raise LookupError(f"no crawl {crawl_id} in the archive")
        market = session.get(Market, crawl.market_id)
        assert market is not None
        previous = session.scalar(
            select(Crawl.id)
            .where(
                Crawl.market_id == crawl.market_id,
                Crawl.id < crawl_id,
                Crawl.status.in_(("complete", "partial")),
                Crawl.reparse_of.is_(None),  # a re-parse of old captures is not a night of the market
            )
            .order_by(Crawl.id.desc())
            .limit(1)
        )
        pages_by_type = dict(
            session.execute(
                select(Page.page_type, func.count()).where(Page.crawl_id == crawl_id).group_by(Page.page_type)
            ).all()
        )
        listings_now, listings_then = (
            _states(session, "listing", crawl_id),
            _states(session, "listing", previous),
        )
        vendors_now, vendors_then = _states(session, "vendor", crawl_id), _states(session, "vendor", previous)
        feedback_new = session.scalar(select(func.count()).where(Feedback.first_crawl_id == crawl_id)) or 0
        return CrawlSummary(
            crawl_id=crawl.id,
            market=market.slug,
            status=crawl.status,
            status_reason=crawl.status_reason,
            started_at=crawl.started_at,
            finished_at=crawl.finished_at,
            transport=crawl.transport,
            mirror=crawl.mirror,
            tor_version=crawl.tor_version,
            previous_crawl_id=previous,
            pages=sum(pages_by_type.values()),
            pages_by_type=pages_by_type,
            listings=len(listings_now),
            vendors=len(vendors_now),
            feedback_new=feedback_new,
            listing_changes=_compare(listings_then, listings_now),
            vendor_changes=_compare(vendors_then, vendors_now),
            errors=errors_from_stats(crawl.stats or {}),
            coverage=coverage_of(crawl.stats or {}),
            barriers={
                key.removeprefix("dnm/barriers/"): value
                for key, value in (crawl.stats or {}).items()
                if key.startswith("dnm/barriers/") and isinstance(value, int)
            },
            mirrors=list((crawl.stats or {}).get("dnm/mirrors") or []),
            drift_alarms=list((crawl.stats or {}).get("dnm/drift/alarms") or []),
            drift_baseline=(crawl.stats or {}).get("dnm/drift/baseline"),
        )


# kind -> (snapshot table, entity table, the snapshot's link to it, the market's own key column)
_STATE_SOURCES: dict[str, tuple[Any, Any, Any, Any]] = {
    "listing": (ListingSnapshot, Listing, ListingSnapshot.listing_id, Listing.listing_key),
    "vendor": (VendorSnapshot, Vendor, VendorSnapshot.vendor_id, Vendor.vendor_key),
}


def _states(session: Session, kind: str, crawl_id: int | None) -> dict[str, str]:
    """Entity key -> content hash of its snapshot in a crawl (empty without a crawl)."""
    if crawl_id is None:
        return {}
    snapshot, entity, link, key = _STATE_SOURCES[kind]
    rows = session.execute(
        select(key, snapshot.content_sha256)
        .join(entity, link == entity.id)
        .where(snapshot.crawl_id == crawl_id)
    ).all()
    return {row[0]: row[1] for row in rows}


def _compare(before: dict[str, str], after: dict[str, str]) -> Changes:
    return Changes(
        new=len(after.keys() - before.keys()),
        changed=sum(1 for key in after.keys() & before.keys() if after[key] != before[key]),
        gone=len(before.keys() - after.keys()),
    )


ERROR_PREFIXES = {
    "dnm/errors/": "fetch",
    "dnm/extract/errors": "extraction",
    "dnm/normalize/errors/": "normalization",
    "dnm/storage/errors": "storage",
    "dnm/guard/refused": "refused by transport guard",
    "dnm/records/dropped/": "records dropped",
    "dnm/barriers/unpassed/": "barrier not passed",
}


def errors_from_stats(stats: dict[str, Any]) -> dict[str, int]:
    """Error counts by class from a crawl's stats (fetch causes, extraction, normalization, storage...)."""
    errors: dict[str, int] = {}
    for key, value in stats.items():
        if not isinstance(value, int) or key.startswith("dnm/guard/refused/"):
            continue
        for prefix, label in ERROR_PREFIXES.items():
            if key == prefix or (prefix.endswith("/") and key.startswith(prefix)):
                detail = key[len(prefix) :] if prefix.endswith("/") else ""
                name = f"{label}: {detail}" if detail else label
                errors[name] = errors.get(name, 0) + value
    return errors


# Control characters (an ANSI escape can rewrite a terminal) and bidirectional overrides (which reorder what
# follows them), as a market may put them in a mirror URL or a refusal reason: shown as escapes instead.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Text as a terminal may show it: control and bidi-override characters as `\\xNN` / `\\uNNNN` escapes."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _row(table: Table, label: str, value: str) -> None:
    """A summary row: plain text, never read as Rich markup ("[bold]" in a market's text stays literal)."""
    table.add_row(Text(terminal_safe(label)), Text(terminal_safe(value)))


def render(summary: CrawlSummary, console: Console | None = None) -> None:
    """Print the summary as a table."""
    console = console or Console()
    table = Table(title=f"Crawl {summary.crawl_id} of {summary.market}: {summary.status}", show_header=False)
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    _row(table, "mirror", summary.mirror or "")
    transport = f"tor {summary.tor_version}" if summary.tor_version else summary.transport
    _row(table, "transport", transport if summary.transport == "tor" else f"{transport} (no Tor)")
    if summary.duration_seconds is not None:
        _row(table, "duration", f"{summary.duration_seconds:.1f} s")
    if summary.status_reason:
        _row(table, "status reason", summary.status_reason)
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(summary.pages_by_type.items()))
    _row(table, "pages", f"{summary.pages} ({by_type})")
    _row(table, "listings", str(summary.listings))
    _row(table, "vendors", str(summary.vendors))
    _row(table, "new feedback", str(summary.feedback_new))
    since = f"since crawl {summary.previous_crawl_id}" if summary.previous_crawl_id else "first crawl"
    for label, changes in (("listings", summary.listing_changes), ("vendors", summary.vendor_changes)):
        _row(table, f"{label} {since}", f"{changes.new} new, {changes.changed} changed, {changes.gone} gone")
    for page_type, c in summary.coverage.items():
        _row(
            table,
            f"coverage {page_type}",
            f"{c.share:.1%}: {c.parsed} parsed of {c.expected} expected"
            f" (discovered {c.discovered}, claimed {c.claimed}, fetched {c.fetched})",
        )
    if summary.drift_alarms:
        _row(table, "DRIFT ALARMS", "; ".join(summary.drift_alarms))
    elif summary.drift_baseline is not None:
        _row(table, "drift", f"none (compared with crawl {summary.drift_baseline})")
    if summary.barriers:
        _row(table, "barriers", ", ".join(f"{k} {v}" for k, v in sorted(summary.barriers.items())))
    for mirror in summary.mirrors:
        state = f"{mirror['state']} ({mirror['source']}; {mirror['ok']} ok, {mirror['failed']} failed)"
        _row(
            table,
            "mirror " + mirror["url"],
            state + (f": {mirror['refused']}" if mirror.get("refused") else ""),
        )
    if summary.errors:
        _row(table, "errors", ", ".join(f"{k} {v}" for k, v in sorted(summary.errors.items())))
    else:
        _row(table, "errors", "none")
    console.print(table)
