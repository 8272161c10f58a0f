"""Hostile text end to end: crawled from a market's pages, stored verbatim, exported verbatim and well-formed,
shown escaped and bidi-isolated in the market report and the evidence report.

Script tags, SQL-looking strings, spreadsheet formulas, control characters and right-to-left overrides are
put in listing titles, vendor names and categories of a small local market, crawled for real.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from html import escape
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import lxml.html
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dnm.export import guard_formula
from dnm.normalize import clean_text
from evidence.report import render_report
from fuzz.corpus import HOSTILE
from models.db import open_engine
from models.listing import ListingState
from tests.conftest import archive_url, run_dnm
from tests.fuzz.loopback import crawl_directly, listing_profile, serving

RLO = "\u202e"
# Elements whose text cannot be reordered by an override inside another element's text.
ISOLATING = {"bdi", "td", "th", "pre", "title", "li", "h1", "p", "code", "text", "textarea"}

PROFILE = listing_profile(
    "hostiletext",
    "Hostile text (test)",
    r"\d+",
    """\
          vendor: {css: 'span.vendor'}
          category: {css: 'div.crumbs a::text', all: true}
          prices: {css: 'span.price'}
""",
)

# Printable in a title: lxml drops NUL and cleaning collapses whitespace, so those are tested as stored.
TITLES = [f"{i} {s}" if not s.startswith(("=", "+", "-", "@")) else s for i, s in enumerate(HOSTILE)]


def page(index: int) -> bytes:
    title = TITLES[index]
    vendor = f"vendor{RLO}evil{index}"
    return (
        f"<html><body><div class='crumbs'><a>Drugs</a><a>{escape(HOSTILE[index])}</a></div>"
        f"<h1>{escape(title)}</h1><span class='vendor'>{escape(vendor)}</span>"
        f"<span class='price'>12.50 USD</span></body></html>"
    ).encode()


class HostileMarket(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            body = "".join(f"<a href='/listing/{i}'>{i}</a>" for i in range(len(TITLES))).encode()
        else:
            body = page(int(self.path.rsplit("/", 1)[-1]))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An archive holding one crawl of the hostile market."""
    tmp = tmp_path_factory.mktemp("hostile")
    database = archive_url(tmp)
    with serving(HostileMarket) as url:
        result = crawl_directly(tmp, PROFILE, "hostiletext", url, database)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    yield database, tmp


def shown(text: str) -> str:
    """What extraction keeps of a string written into a page: NUL dropped, whitespace collapsed."""
    return clean_text(text.replace("\x00", ""))


def test_stored_verbatim(archive: tuple[str, Path]) -> None:
    database, _ = archive
    with Session(open_engine(database)) as session:
        titles = set(session.scalars(select(ListingState.title)))
    assert titles == {shown(t) for t in TITLES}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_exports_carry_it_verbatim_and_well_formed(archive: tuple[str, Path], fmt: str) -> None:
    database, tmp = archive
    out = tmp / f"listings.{fmt}"
    result = run_dnm("export", "listings", "--format", fmt, "--output", str(out), "--database", database)
    assert result.returncode == 0, result.stderr
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    elif fmt == "csv":
        with out.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    else:
        rows = pq.read_table(out).to_pylist()
    assert len(rows) == len(TITLES)
    titles = {row["title"] for row in rows}
    vendors = {row["vendor"] for row in rows}
    if fmt == "csv":
        # Spreadsheet formulas are shown, not run: a leading apostrophe, and nothing else changed.
        assert titles == {guard_formula(shown(t)) for t in TITLES}
        assert "'=cmd|' /C calc'!A0" in titles and "-2+3" not in titles and "'-2+3" in titles
    else:  # read by programs: never altered
        assert titles == {shown(t) for t in TITLES}
        assert "=cmd|' /C calc'!A0" in titles
    assert all(RLO in v for v in vendors)


def test_csv_raw_writes_cells_exactly_as_archived(archive: tuple[str, Path]) -> None:
    database, tmp = archive
    out = tmp / "raw.csv"
    args = ("--format", "csv", "--csv-raw", "-o", str(out), "--database", database)
    result = run_dnm("export", "listings", *args)
    assert result.returncode == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as stream:
        titles = {row["title"] for row in csv.DictReader(stream)}
    assert titles == {shown(t) for t in TITLES} and "=cmd|' /C calc'!A0" in titles


def isolation_faults(html: str) -> list[str]:
    """Live script elements and event handlers, and RLOs whose element holds other text as well."""
    tree = lxml.html.document_fromstring(html)
    faults = [f"<script> {lxml.html.tostring(s)!r}" for s in tree.iter("script")]
    faults += [
        f"handler {k}" for e in tree.iter() if isinstance(e.tag, str) for k in e.attrib if k.startswith("on")
    ]
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        for text, holder in ((element.text, element), (element.tail, element.getparent())):
            if not text or RLO not in text or holder is None:
                continue
            isolated = holder.tag in ISOLATING and (holder.tag == "bdi" or len(holder) == 0)
            if not isolated:
                faults.append(f"RLO in <{holder.tag}>: {text!r}")
    return faults


def test_market_report_shows_it_escaped_and_isolated(archive: tuple[str, Path]) -> None:
    database, tmp = archive
    out = tmp / "report.html"
    result = run_dnm("report", "hostiletext", "--database", database, "--output", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html
    assert RLO in html  # shown, not stripped
    assert isolation_faults(html) == []


def test_evidence_report_shows_it_escaped_and_isolated(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / f"x{RLO}gnp.exe").write_bytes(b"x")
    rows = {
        "listings": [
            {
                "url": f"http://m.onion/l/{s}",
                "observed_at": "2026-01-01",
                "crawl_id": 1,
                "page_sha256": "0" * 64,
            }
            for s in HOSTILE
        ]
    }
    crawls = {
        1: {
            "crawl_id": 1, "market": "<script>alert(1)</script>" + RLO, "started_at": "s", "finished_at": "f",
            "status": "complete", "transport": "tor", "tor_version": None, "profile_version": "p",
            "warc_file": "w", "warc_chain_head": "h",
        }
    }  # fmt: skip
    now = datetime(2026, 1, 2, tzinfo=UTC)
    for compact in (False, True):
        html = render_report(
            tmp_path, f"case{RLO}1", "selection <b>", now, "<i>op</i>", crawls, rows, compact=compact
        )
        assert "<script>alert" not in html
        assert isolation_faults(html) == []


def test_the_terminal_summary_shows_market_text_inert() -> None:
    """A mirror list or a refusal is the market's text: no ANSI escape, bidi override or Rich markup in it
    acts on the operator's terminal."""
    from io import StringIO

    from rich.console import Console

    from dnm.summary import Changes, CrawlSummary, render

    hostile = "http://evil.onion\x1b[2J\x1b]0;pwned\x07[bold red]x[/]" + RLO + "txt.exe"
    summary = CrawlSummary(
        crawl_id=1, market="demo", status="partial", status_reason="mirror refused: " + hostile,
        started_at=None, finished_at=None, transport="tor", mirror=hostile, tor_version=None,
        previous_crawl_id=None, pages=0, pages_by_type={}, listings=0, vendors=0, feedback_new=0,
        listing_changes=Changes(), vendor_changes=Changes(),
        mirrors=[{"url": hostile, "source": "signed list", "state": "refused", "ok": 0, "failed": 0,
                  "refused": hostile}],
    )  # fmt: skip
    out = StringIO()
    render(summary, Console(file=out, color_system=None, width=400))
    shown = out.getvalue()
    assert "\x1b" not in shown and "\x07" not in shown and RLO not in shown
    assert "\\x1b[2J" in shown and "[bold red]x[/]" in shown and "\\u202e" in shown
