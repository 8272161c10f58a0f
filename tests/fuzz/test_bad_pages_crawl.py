"""A real crawl meets bad pages: one over the size cap (announced and streamed), a gzip bomb, a deeply nested
page. Each is refused or read as far as the parser goes, counted under a cause that says so, and the crawl
goes on to store every other page."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Crawl, Page, Url
from models.db import open_engine
from tests.conftest import archive_url
from tests.fuzz.loopback import crawl_directly, listing_profile, serving

MAXSIZE = 1_000_000  # the crawl's DOWNLOAD_MAXSIZE here; the default (8 MiB) behaves the same, slower
BOMB = gzip.compress(b"\0" * 200_000_000, compresslevel=9)  # ~200 KB on the wire, 200 MB inflated
NESTED = 20_000

PROFILE = listing_profile("badpages", "Bad pages (test)", r"\w+")

PAGES = ("normal", "huge", "streamed", "bomb", "deep", "after")


def listing(name: str, extra: str = "") -> bytes:
    return f"<html><body><h1>{name} listing</h1>{extra}</body></html>".encode()


class BadPages(BaseHTTPRequestHandler):
    """Serves the home page's links: normal pages and the bad ones."""

    protocol_version = "HTTP/1.0"  # a streamed body ends when the connection closes: no Content-Length

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        headers: dict[str, str] = {"Content-Type": "text/html; charset=utf-8"}
        if self.path == "/":
            body = "".join(f"<a href='/listing/{p}'>{p}</a>" for p in PAGES).encode()
        elif name in ("huge", "streamed"):
            body = listing(name, "<p>" + "x" * (MAXSIZE + 500_000) + "</p>")
        elif name == "bomb":
            body, headers["Content-Encoding"] = BOMB, "gzip"
        elif name == "deep":
            body = listing(name, "<div>" * NESTED + "deepest" + "</div>" * NESTED)
        else:
            body = listing(name)
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        if name != "streamed":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with serving(BadPages) as url:
        yield url


def test_size_cap_and_bomb_are_counted_and_the_crawl_goes_on(tmp_path: Path, server: str) -> None:
    database = archive_url(tmp_path)
    result = crawl_directly(
        tmp_path, PROFILE, "badpages", server, database, "--set", f"DOWNLOAD_MAXSIZE={MAXSIZE}", timeout=240
    )
    output = result.stdout + result.stderr
    assert result.returncode in (0, 3), output  # complete or partial; never failed
    engine = open_engine(database)
    with Session(engine) as session:
        crawl = session.scalars(select(Crawl)).one()
        urls = session.scalars(
            select(Url.url).join(Page, Page.url_id == Url.id).where(Page.crawl_id == crawl.id)
        )
        stored = {url.rsplit("/", 1)[-1] for url in urls}
    stats = crawl.stats or {}
    # The caps are recorded as such: two bodies over DOWNLOAD_MAXSIZE (one announced by Content-Length,
    # one only found while streaming) and one that inflates past it.
    assert stats.get("dnm/errors/size_cap") == 2, json.dumps(stats, indent=1)
    assert stats.get("dnm/errors/size_cap_decompressed") == 1, json.dumps(stats, indent=1)
    assert not [k for k in stats if k.startswith("dnm/errors/") and "size_cap" not in k], stats
    assert "fetch failed (size_cap)" in output and "Traceback" not in output
    # Nothing else is lost: the home page, both normal pages and the deep one (read to the parser's depth).
    assert {"", "normal", "deep", "after"} <= stored, stored
    assert not {"huge", "streamed", "bomb"} & stored
