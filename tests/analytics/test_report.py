"""The HTML market report in headless chromium: it renders, charts hold the data, market text stays text."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from demo.truth import truth
from dnm.analytics import Period, estimate_sales, shipping_origins
from dnm.analytics.report import PRICE_SERIES, TOP_ORIGINS, build_report, render_report, write_report
from models.db import open_engine
from tests.analytics.conftest import (
    DAYS,
    HOSTILE_ALIAS,
    HOSTILE_CATEGORY,
    HOSTILE_ORIGIN,
    HOSTILE_VENDOR,
    Archive,
)
from tests.captcha.support import require_chromium
from tests.conftest import POSTGRES, archive_url, run_dnm


@dataclass
class Rendered:
    """What the browser made of a report file."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    points: dict[str, int] = field(default_factory=dict)
    bars: int = 0
    scripts: int = 0
    pwned: bool = False
    texts: dict[str, list[str]] = field(default_factory=dict)


# selector -> what to read: the textContent of every match
TEXTS = {
    "vendor": "td.vendor, li .vendor",
    "legend": "#prices svg g.legend text",
    "price_point": "#prices svg circle.point title",
    "price_category": "#prices table td:first-child",
    "origin_label": "#origins svg text.label",
    "empty": "p.empty",
    "sections": "section[id]",
}


def open_in_chromium(path: Path) -> Rendered:
    """Load the report from its file in headless chromium and read back what it shows."""
    chromium = require_chromium()
    rendered = Rendered()

    async def main() -> None:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
            try:
                page = await browser.new_page()
                page.on(
                    "console", lambda m: rendered.console_errors.append(m.text) if m.type == "error" else None
                )
                page.on("pageerror", lambda e: rendered.console_errors.append(str(e)))
                page.on("request", lambda r: rendered.requests.append(r.url))
                response = await page.goto(path.as_uri())
                assert response is not None and response.ok
                await page.wait_for_load_state("load")
                for section in ("crawls", "prices", "sales"):
                    rendered.points[section] = await page.locator(f"#{section} svg circle.point").count()
                rendered.bars = await page.locator("#origins svg rect.bar").count()
                rendered.scripts = await page.locator("script").count()
                rendered.pwned = await page.evaluate("window.pwned !== undefined")
                for name, selector in TEXTS.items():
                    rendered.texts[name] = await page.eval_on_selector_all(
                        selector, "els => els.map(e => e.id || e.textContent)"
                    )
            finally:
                await browser.close()

    asyncio.run(main())
    # A file that loads anything besides itself is not self-contained.
    assert rendered.requests == [path.as_uri()], rendered.requests
    return rendered


def test_demo_report_renders_with_its_charts(three_days: Archive, tmp_path: Path) -> None:
    market = "copperline"
    report = build_report(three_days.engine, market)
    path = write_report(report, tmp_path / "report.html")
    shown = open_in_chromium(path)
    assert shown.console_errors == []
    assert shown.scripts == 0 and not shown.pwned
    assert shown.texts["sections"] == ["crawls", "prices", "origins", "sales", "identities", "methods"]
    # Listings and vendors: one point per crawl each.
    assert shown.points["crawls"] == 2 * len(DAYS)
    # Medians: the largest groups, one point per crawl that priced the group.
    latest = [row for row in report.prices if row.crawl_id == three_days.crawls[market, DAYS[-1]]]
    chosen = sorted(latest, key=lambda r: -r.listings)[:PRICE_SERIES]
    keys = {(r.category, r.currency, r.unit) for r in chosen}
    assert shown.points["prices"] == sum(1 for r in report.prices if (r.category, r.currency, r.unit) in keys)
    assert len(shown.texts["legend"]) == len(chosen)
    # Sales: one point per interval between the days.
    assert shown.points["sales"] == len(DAYS) - 1 == len(estimate_sales(three_days.engine, market))
    assert shown.bars == min(TOP_ORIGINS, len(shipping_origins(three_days.engine, market)))
    expected_origins = {code for day in DAYS for row in truth(market, day) for code in row["ships_from"]}
    assert set(shown.texts["origin_label"]) <= expected_origins
    assert len(report.identities) == 4


def test_hostile_market_text_is_shown_as_text(hostile_archive: Archive, tmp_path: Path) -> None:
    report = build_report(hostile_archive.engine, "evilmarket")
    assert not report.empty and len(report.identities) == 1
    path = write_report(report, tmp_path / "evil.html")
    html = path.read_text(encoding="utf-8")
    # Escaped: the markup's characters are there, never as tags.
    assert not re.search(r"<(script|img|svg onload)", html, re.IGNORECASE)
    shown = open_in_chromium(path)
    assert shown.console_errors == []
    assert shown.scripts == 0 and not shown.pwned
    # The markup arrives as the very characters the market sent.
    assert HOSTILE_VENDOR in shown.texts["vendor"] and HOSTILE_ALIAS in shown.texts["vendor"]
    assert any(HOSTILE_CATEGORY in text for text in shown.texts["price_category"])
    assert all(HOSTILE_CATEGORY in text for text in shown.texts["price_point"])  # tooltips: full names
    assert shown.texts["origin_label"] == [HOSTILE_ORIGIN]
    assert shown.points == {"crawls": 4, "prices": 2, "sales": 1}


@pytest.mark.parametrize("market", ["evilmarket", "nosuchmarket"])
def test_empty_market_report_says_so(hostile_archive: Archive, tmp_path: Path, market: str) -> None:
    # evilmarket exists but has no crawl in the period; nosuchmarket is not in the archive at all.
    period = Period(until=datetime(2000, 1, 1, tzinfo=UTC)) if market == "evilmarket" else Period()
    report = build_report(hostile_archive.engine, market, period)
    assert report.empty
    shown = open_in_chromium(write_report(report, tmp_path / "empty.html"))
    assert shown.console_errors == []
    [message] = shown.texts["empty"]
    assert ("no usable crawl" in message) if market == "evilmarket" else ("no market named" in message)
    assert shown.texts["sections"] == ["empty", "methods"]


def test_cli_writes_the_report(hostile_archive: Archive, tmp_path: Path) -> None:
    output = tmp_path / "out" / "evil.html"
    result = run_dnm("report", "evilmarket", "--database", hostile_archive.url, "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "2 crawls of evilmarket" in result.stderr
    assert "Cross-market identities" in output.read_text(encoding="utf-8")
    later = run_dnm(
        "report", "evilmarket", "--database", hostile_archive.url, "-o", str(output), "--since", "2030-01-01"
    )
    assert later.returncode == 0 and "no usable crawl in the period" in later.stderr
    assert "no usable crawl" in output.read_text(encoding="utf-8")
    bad = run_dnm("report", "evilmarket", "--database", hostile_archive.url, "--feedback-rate", "1.5")
    assert bad.returncode == 2 and "--feedback-rate" in bad.stderr


def test_report_of_an_empty_archive(tmp_path: Path) -> None:
    url = archive_url(tmp_path)
    engine = open_engine(url)
    try:
        html = render_report(build_report(engine, "hollowmere"))
    finally:
        engine.dispose()
        POSTGRES.drop(url)
    assert "no market named" in html
