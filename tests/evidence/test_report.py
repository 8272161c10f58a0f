"""The package's HTML report in headless chromium: it renders from its file alone, runs no script, lists
every crawl and every capture behind the rows, and shows hostile market text as text."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import async_playwright

from evidence import package as layout
from evidence.report import render_report
from tests.captcha.support import require_chromium

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


@dataclass
class Shown:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    texts: dict[str, list[str]] = field(default_factory=dict)
    scripts: int = 0
    images: int = 0
    pwned: bool = True


def open_in_chromium(path: Path) -> Shown:
    chromium = require_chromium()
    shown = Shown()

    async def main() -> None:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
            try:
                page = await browser.new_page()
                page.on("console", lambda m: shown.errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: shown.errors.append(str(e)))
                page.on("request", lambda r: shown.requests.append(r.url))
                response = await page.goto(path.as_uri())
                assert response is not None and response.ok
                await page.wait_for_load_state("load")
                shown.scripts = await page.locator("script").count()
                shown.images = await page.locator("img").count()
                shown.pwned = await page.evaluate("window.pwned !== undefined")
                for name in ("h1", "h2", "td"):
                    shown.texts[name] = await page.eval_on_selector_all(
                        name, "els => els.map(e => e.textContent)"
                    )
            finally:
                await browser.close()

    asyncio.run(main())
    return shown


def test_the_package_report_renders_every_crawl_and_capture(clean: Path) -> None:
    shown = open_in_chromium(clean / layout.REPORT)
    assert shown.errors == [] and shown.requests == [(clean / layout.REPORT).as_uri()]
    assert shown.scripts == 0 and not shown.pwned
    assert shown.texts["h1"] == ["Evidence package case-17"]
    sections = ["What this package is", "Crawls", "Captures behind the rows", "Files and their SHA-256"]
    assert shown.texts["h2"] == [*sections, "How to verify"]
    provenance = json.loads((clean / layout.PROVENANCE).read_text())
    cells = shown.texts["td"]
    for crawl in provenance["crawls"]:
        assert crawl["warc_chain_head"] in " ".join(cells)
    rows = sum(len((clean / layout.EXTRACTED / f"{k}.jsonl").read_text().splitlines()) for k in layout.KINDS)
    page_hashes = [c for c in cells if len(c) == 64 and all(ch in "0123456789abcdef" for ch in c)]
    assert len(page_hashes) >= rows  # a page hash per row, plus each file's hash


def test_hostile_market_text_stays_text(tmp_path: Path) -> None:
    work = tmp_path / "package"
    (work / "data").mkdir(parents=True)
    (work / "data" / "file.txt").write_text("x")
    crawl = {
        "crawl_id": 1, "market": HOSTILE, "started_at": "2026-01-01T00:00:00+00:00", "finished_at": None,
        "status": "complete", "transport": "tor", "tor_version": HOSTILE, "profile_version": HOSTILE,
        "warc_file": HOSTILE, "warc_chain_head": "0" * 64,
    }  # fmt: skip
    rows = {"listings": [{"url": f"http://x.onion/{HOSTILE}", "observed_at": HOSTILE, "crawl_id": 1,
                          "page_sha256": HOSTILE}]}  # fmt: skip
    path = work / "report.html"
    path.write_text(
        render_report(work, "case-1", HOSTILE, datetime(2026, 1, 2, tzinfo=UTC), HOSTILE, {1: crawl}, rows),
        encoding="utf-8",
    )
    shown = open_in_chromium(path)
    assert shown.scripts == 0 and shown.images == 0 and not shown.pwned
    assert shown.errors == []
    assert sum(HOSTILE in cell for cell in shown.texts["td"]) >= 5  # shown, as text
