"""Capturing the benchmark's site: the URLs one real crawl archived, each rendered once by the demo app.

The URL set comes from the `pages` table of an unmeasured pipeline crawl of a `DemoServer`, so the
static copy holds exactly what the spider walks. Each body is rendered through Flask's test client
and checked against the SHA-256 the crawl stored: a mismatch means the copy would not be the site
that was crawled, and the benchmark stops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.runs import BenchError
from bench.static_server import StaticPage
from models import Page
from models.db import open_engine


@dataclass(frozen=True)
class CrawledPage:
    """A page as the discovery crawl archived it; `target` is its path and query."""

    target: str
    status: int
    sha256: str


def request_target(url: str) -> str:
    """Path plus query of a URL: what a client sends on the request line."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def crawled_pages(database: str, crawl_id: int) -> list[CrawledPage]:
    """The pages of one crawl in the order they were stored, each URL once."""
    engine = open_engine(database, create=False)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Page.url, Page.status, Page.sha256).where(Page.crawl_id == crawl_id).order_by(Page.id)
            ).all()
    finally:
        engine.dispose()
    pages: dict[str, CrawledPage] = {}
    for url, status, sha256 in rows:
        target = request_target(url)
        pages.setdefault(target, CrawledPage(target, status, sha256))
    return list(pages.values())


def render_pages(market: str, day: int, scale: str, crawled: list[CrawledPage]) -> list[StaticPage]:
    """Render each crawled page with the demo app; fails if a body differs from what was archived."""
    from demo.app import create_app

    client = create_app(market, day, scale=scale).test_client()
    pages = []
    for page in crawled:
        response = client.get(page.target)
        body = response.get_data()
        if response.status_code != page.status or hashlib.sha256(body).hexdigest() != page.sha256:
            raise BenchError(
                f"the demo app rendered {page.target} differently from the crawled page "
                f"(status {response.status_code} vs {page.status}, or another body): "
                f"the demo is not deterministic for ({market}, day {day}, {scale})"
            )
        pages.append(StaticPage(page.target, page.status, response.content_type or "text/html", body))
    return pages
