"""Drift detection: each crawl's run report, compared with the market's last good crawl; alarms on drops.

A market that changes its layout does not fail a crawl: pages still come back, but a price or a ships-to
field is no longer where the profile looks, and the archive quietly fills with empty columns. So every
crawl keeps a machine-readable run report in its stats (`dnm/run_report`: status, duration, coverage per
page type, fill rate per field per page type, errors by class, barriers met, Tor health) and is compared
with the last good crawl of the same market (complete, not a re-parse, no alarm of its own). A field's
fill rate, or a page type's coverage, that falls by more than the profile's `drift.max_drop` raises an
alarm (`dnm/drift/alarms`): a line in the summary, a non-zero exit (4) for cron, and the command in the
`DNM_DRIFT_HOOK` setting run with the alarms as JSON on its standard input (for notifications).
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dnm.coverage import coverage_of
from dnm.profile import Drift
from models import Crawl

logger = logging.getLogger(__name__)

FILL_PREFIX = "dnm/fill/"
REPORTED_PREFIXES = {
    "errors": ("dnm/errors/", "dnm/extract/errors", "dnm/normalize/errors/", "dnm/storage/errors"),
    "barriers": ("dnm/barriers/",),
    "tor": ("dnm/tor/",),
    "pages": ("dnm/pages/",),
}


@dataclass(frozen=True)
class Alarm:
    """One drop: what fell (a field's fill rate, a page type's coverage), from what, to what."""

    kind: str  # "fill" | "coverage"
    key: str  # "listing/listing.prices" or "listing"
    before: float
    now: float
    baseline_crawl: int

    def __str__(self) -> str:
        what = "fill rate" if self.kind == "fill" else "coverage"
        return (
            f"{self.key} {what} fell from {self.before:.0%} to {self.now:.0%} "
            f"(last good crawl {self.baseline_crawl})"
        )


def fill_rates(stats: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """Per `<page type>/<kind>.<field>`: the share of that page type's records of that kind with a value,
    and how many records there were."""
    records = {
        key.removeprefix(FILL_PREFIX).removesuffix("/records"): value
        for key, value in stats.items()
        if key.startswith(FILL_PREFIX) and key.endswith("/records") and isinstance(value, int)
    }
    rates: dict[str, tuple[float, int]] = {}
    for key, value in stats.items():
        if not key.startswith(FILL_PREFIX) or key.endswith("/records") or not isinstance(value, int):
            continue
        group, field = key.removeprefix(FILL_PREFIX).rsplit("/", 1)
        total = records.get(group, 0)
        if total:
            page_type, kind = group.split("/", 1)
            rates[f"{page_type}/{kind}.{field}"] = (value / total, total)
    return rates


def run_report(stats: dict[str, Any], status: str, fields: dict[str, list[str]]) -> dict[str, Any]:
    """The crawl's run report: what a monitor needs, in one JSON object (kept in the crawl's stats).

    `fields` (dnm.drift.fields_of) lists what the profile reads per page type and record kind: a field
    never filled has no counter of its own, and must show as 0, not be missing."""
    rates = fill_rates(stats)
    for group, names in fields.items():
        records = stats.get(f"{FILL_PREFIX}{group}/records", 0)
        if records:
            for name in names:
                page_type, kind = group.split("/", 1)
                rates.setdefault(f"{page_type}/{kind}.{name}", (0.0, records))
    report: dict[str, Any] = {
        "status": status,
        "duration_seconds": stats.get("elapsed_time_seconds"),
        "coverage": {page_type: round(c.share, 4) for page_type, c in coverage_of(stats).items()},
        "fill": {
            key: {"rate": round(rate, 4), "records": count} for key, (rate, count) in sorted(rates.items())
        },
    }
    for section, prefixes in REPORTED_PREFIXES.items():
        report[section] = {
            key: value
            for key, value in sorted(stats.items())
            if key.startswith(prefixes) and isinstance(value, int | float)
        }
    return report


def fields_of(profile: Any) -> dict[str, list[str]]:
    """`<page type>/<kind>` -> the fields the profile reads for it (so an unfilled field still shows)."""
    return {
        f"{page.name}/{record.kind}": [field.name for field in record.fields]
        for page in profile.pages
        for record in page.records
    }


def last_good(engine: Engine, market_id: int, before: int) -> Crawl | None:
    """The market's latest crawl before `before` that is complete, not a re-parse, and raised no alarm."""
    with Session(engine) as session:
        for crawl in session.scalars(
            select(Crawl)
            .where(
                Crawl.market_id == market_id,
                Crawl.id < before,
                Crawl.status == "complete",
                Crawl.reparse_of.is_(None),
            )
            .order_by(Crawl.id.desc())
            .limit(20)
        ):
            stats = crawl.stats or {}
            if "dnm/run_report" in stats and not stats.get("dnm/drift/alarms"):
                session.expunge(crawl)
                return crawl
    return None


def compare(
    report: dict[str, Any], baseline: dict[str, Any], baseline_crawl: int, drift: Drift
) -> list[Alarm]:
    """The drops from `baseline` to `report` beyond `drift.max_drop`."""
    alarms = []
    fill_now = report.get("fill", {})
    for key, before in baseline.get("fill", {}).items():
        if before["records"] < drift.min_records or before["rate"] <= 0:
            continue
        now = fill_now.get(key, {"rate": 0.0})["rate"]
        if before["rate"] - now > drift.max_drop:
            alarms.append(Alarm("fill", key, before["rate"], now, baseline_crawl))
    coverage_now = report.get("coverage", {})
    for page_type, before in baseline.get("coverage", {}).items():
        now = coverage_now.get(page_type, 0.0)
        if before - now > drift.max_drop:
            alarms.append(Alarm("coverage", page_type, before, now, baseline_crawl))
    return alarms


def check(
    engine: Engine, market_id: int, crawl_id: int, report: dict[str, Any], drift: Drift
) -> tuple[int | None, list[Alarm]]:
    """The last good crawl's id (None for a market's first) and the alarms against it."""
    baseline = last_good(engine, market_id, crawl_id)
    if baseline is None:
        return None, []
    return baseline.id, compare(report, (baseline.stats or {})["dnm/run_report"], baseline.id, drift)


def notify(command: str, market: str, crawl_id: int, alarms: list[Alarm]) -> None:
    """Run the notification hook with the alarms as JSON on stdin; a failing hook is logged, never fatal."""
    payload = json.dumps({"market": market, "crawl_id": crawl_id, "alarms": [asdict(a) for a in alarms]})
    try:
        done = subprocess.run(
            shlex.split(command), input=payload, text=True, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.error("drift hook %r could not run: %s", command, exc)
        return
    if done.returncode != 0:
        logger.error("drift hook %r exited %s: %s", command, done.returncode, done.stderr.strip()[-500:])


@dataclass(frozen=True)
class CrawlStatus:
    """One line of `dnm status`: a crawl, how it ended, its lowest coverage and its alarms."""

    crawl_id: int
    started_at: str
    status: str
    coverage: float | None  # the lowest page type's
    alarms: list[str]
    reparse_of: int | None


def market_status(engine: Engine, last: int = 5) -> dict[str, list[CrawlStatus]]:
    """Per market (by slug), its `last` most recent crawls, newest first."""
    from models import Market

    found: dict[str, list[CrawlStatus]] = {}
    with Session(engine) as session:
        for market in session.scalars(select(Market).order_by(Market.slug)):
            rows = []
            for crawl in session.scalars(
                select(Crawl).where(Crawl.market_id == market.id).order_by(Crawl.id.desc()).limit(last)
            ):
                stats = crawl.stats or {}
                coverage = [c.share for c in coverage_of(stats).values()]
                rows.append(
                    CrawlStatus(
                        crawl.id,
                        crawl.started_at.isoformat(timespec="seconds"),
                        crawl.status,
                        min(coverage) if coverage else None,
                        list(stats.get("dnm/drift/alarms") or []),
                        crawl.reparse_of,
                    )
                )
            found[market.slug] = rows
    return found
