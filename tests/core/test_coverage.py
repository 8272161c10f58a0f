"""Crawl completeness: counts per page type in the stats, the market's own claims, and the shortfalls."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from demo.app import create_app
from demo.skins import get_skin
from demo.world import world_for
from dnm.coverage import Coverage, CoverageExtension, coverage_of, page_key, shortfalls, to_count
from dnm.items import PageItem
from dnm.profile import load_profile

SEED, DAY = 1, 0
BASE = "http://market.test"
MIRROR = "http://other-mirror.test"
MARKETS = ("hollowmere", "copperline")


# -- reading the stats back ----------------------------------------------------------------------


def test_coverage_of_stats() -> None:
    stats = {
        "dnm/coverage/listing/discovered": 10,
        "dnm/coverage/listing/claimed": 12,
        "dnm/coverage/listing/fetched": 9,
        "dnm/coverage/listing/parsed": 8,
        "dnm/coverage/vendor/discovered": 4,
        "dnm/coverage/vendor/parsed": 4,
        "dnm/coverage/vendor/bogus": 99,  # not one of the counts
        "dnm/other/listing/parsed": 1,
        "downloader/request_count": 50,
    }
    coverage = coverage_of(stats)
    assert list(coverage) == ["listing", "vendor"]
    listing = coverage["listing"]
    assert listing == Coverage("listing", discovered=10, claimed=12, fetched=9, parsed=8)
    assert listing.expected == 12 and listing.share == pytest.approx(8 / 12)
    vendor = coverage["vendor"]
    assert (vendor.claimed, vendor.fetched, vendor.expected, vendor.share) == (0, 0, 4, 1.0)
    assert coverage_of({}) == {}


def test_coverage_share_bounds() -> None:
    assert Coverage("home", 0, 0, 0, 0).share == 1.0  # nothing expected: nothing missing
    assert Coverage("home", 1, 0, 3, 3).share == 1.0  # more parsed than expected never exceeds 1
    assert Coverage("listing", 5, 20, 5, 5).share == 0.25  # the market's claim beats what was found


def test_shortfalls() -> None:
    stats = {
        "dnm/coverage/listing/discovered": 10,
        "dnm/coverage/listing/claimed": 12,
        "dnm/coverage/listing/parsed": 8,
        "dnm/coverage/vendor/discovered": 4,
        "dnm/coverage/vendor/parsed": 4,
    }
    assert shortfalls(stats, 1.0) == ["listing coverage 66.7% (8 of 12 expected)"]
    assert shortfalls(stats, 0.6) == []
    assert shortfalls(stats, 2 / 3 + 0.001) == ["listing coverage 66.7% (8 of 12 expected)"]
    assert shortfalls({}, 1.0) == []


@pytest.mark.parametrize(
    ("value", "count"),
    [
        ("412", 412),
        ("1,234 offers", 1234),
        ("(1 234 items)", 1234),
        ("page 3 of 7", 3),
        (["57"], 57),
        (12, 12),
        ("no offers", None),
        ("", None),
        (None, None),
        ([], None),
    ],
)
def test_to_count(value: Any, count: int | None) -> None:
    assert to_count(value) == count


def test_page_key_ignores_the_mirror() -> None:
    assert page_key(BASE + "/c/1/2") == page_key(MIRROR + "/c/1/2") == "/c/1/2"
    assert page_key(BASE + "/item?id=5") == "/item?id=5"
    assert page_key(BASE) == "/"


# -- the extension -------------------------------------------------------------------------------


def extension() -> tuple[CoverageExtension, Crawler]:
    crawler = get_crawler(settings_dict={})
    assert crawler.stats is not None
    crawler.stats.open_spider()
    return CoverageExtension.from_crawler(crawler), crawler


def stats_of(crawler: Crawler) -> dict[str, Any]:
    assert crawler.stats is not None
    return crawler.stats.get_stats()


def page_item(
    url: str, page_type: str, body: bytes = b"<html></html>", errors: list[str] | None = None
) -> PageItem:
    return PageItem(
        url=url,
        page_type=page_type,
        status=200,
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        errors=list(errors or []),
    )


def spider_for(market: str) -> SimpleNamespace:
    return SimpleNamespace(profile=load_profile(market))


def demo_item(client: FlaskClient, path: str, page_type: str) -> PageItem:
    answer = client.get(path)
    assert answer.status_code == 200, path
    return page_item(BASE + path, page_type, answer.data)


def test_discovered_pages_are_counted_once_per_page() -> None:
    ext, crawler = extension()
    spider = spider_for("hollowmere")
    for url in (BASE + "/listing/1", BASE + "/listing/2", MIRROR + "/listing/1", BASE + "/listing/1"):
        ext.request_scheduled(Request(url, meta={"dnm_expected_type": "listing"}), spider)
    ext.request_scheduled(Request(BASE + "/vendor/a", meta={"dnm_expected_type": "vendor"}), spider)
    ext.request_scheduled(Request(BASE + "/mirrors"), spider)  # the crawler's own checks: no page type
    # A redirect to a login page is the page asked for again, not a new page.
    redirected = Request(
        BASE + "/login?next=/listing/3",
        meta={"dnm_expected_type": "listing", "redirect_urls": [BASE + "/listing/3"]},
    )
    ext.request_scheduled(redirected, spider)
    stats = stats_of(crawler)
    assert stats["dnm/coverage/listing/discovered"] == 2
    assert stats["dnm/coverage/vendor/discovered"] == 1
    assert not any("login" in key for key in stats)


def test_fetched_and_parsed_pages() -> None:
    ext, crawler = extension()
    spider = SimpleNamespace(profile=load_profile("hollowmere"))
    ext.item_scraped(page_item(BASE + "/listing/1", "listing"), None, spider)
    ext.item_scraped(page_item(MIRROR + "/listing/1", "listing"), None, spider)  # the same page again
    ext.item_scraped(
        page_item(BASE + "/listing/2", "listing", errors=["listing.title: required"]), None, spider
    )
    # Barrier pages, mirror checks, unknown pages and other items are not content.
    for page_type in ("gate:login", "gate:captcha", "mirrors:list", "mirrors:key", "unknown"):
        ext.item_scraped(page_item(BASE + "/listing/3", page_type), None, spider)
    ext.item_scraped({"url": BASE + "/listing/4"}, None, spider)
    stats = stats_of(crawler)
    assert stats["dnm/coverage/listing/fetched"] == 2
    assert stats["dnm/coverage/listing/parsed"] == 1
    assert set(coverage_of(stats)) == {"listing"}


@pytest.mark.parametrize("market", MARKETS)
def test_home_page_claims_every_listing(market: str) -> None:
    ext, crawler = extension()
    client = create_app(market, DAY, seed=SEED).test_client()
    item = demo_item(client, "/", "home")
    ext.item_scraped(item, None, spider_for(market))
    ext.item_scraped(page_item(MIRROR + "/", "home", item.body), None, spider_for(market))  # not added twice
    stats = stats_of(crawler)
    truth = len(world_for(SEED, "small").day(market, DAY).listings)
    assert stats["dnm/coverage/listing/claimed"] == truth
    assert stats["dnm/coverage/home/parsed"] == 1
    coverage = coverage_of(stats)["listing"]
    assert coverage.expected == truth and coverage.share == 0.0


@pytest.mark.parametrize("market", MARKETS)
def test_category_pages_claim_their_index_pages(market: str) -> None:
    """Every category claims its number of index pages once, however many of its pages are read."""
    ext, crawler = extension()
    spider = spider_for(market)
    client = create_app(market, DAY, seed=SEED).test_client()
    md = world_for(SEED, "small").day(market, DAY)
    urls = get_skin(market).urls
    expected = 0
    for category in md.categories:
        pages = max(1, math.ceil(len(md.listings_in(category.id)) / 20))
        expected += pages
        ext.item_scraped(demo_item(client, urls.category(category.id), "category"), None, spider)
        if pages > 1:
            ext.item_scraped(demo_item(client, urls.category(category.id, pages), "category"), None, spider)
    assert any(len(md.listings_in(c.id)) > 20 for c in md.categories)  # some categories have several pages
    stats = stats_of(crawler)
    assert stats["dnm/coverage/category/claimed"] == expected
    assert stats["dnm/coverage/category/parsed"] == len(md.categories) + sum(
        1 for c in md.categories if len(md.listings_in(c.id)) > 20
    )
    assert shortfalls(stats, 1.0) == [
        f"category coverage {stats['dnm/coverage/category/parsed'] / expected:.1%} "
        f"({stats['dnm/coverage/category/parsed']} of {expected} expected)"
    ]


def test_claims_without_a_number_are_ignored() -> None:
    ext, crawler = extension()
    body = b"<html><body><p>The offers are online.</p></body></html>"
    ext.item_scraped(page_item(BASE + "/", "home", body), None, spider_for("hollowmere"))
    assert "dnm/coverage/listing/claimed" not in stats_of(crawler)
    assert stats_of(crawler)["dnm/coverage/home/parsed"] == 1


def test_claims_per_page_round_up() -> None:
    ext, crawler = extension()
    spider = spider_for("copperline")

    def category_page(category: str, page: int, items: int) -> PageItem:
        body = f'<html><h2 class="cat-title">Things <small>({items:,} items)</small></h2></html>'
        return page_item(f"{BASE}/c/{category}/{page}", "category", body.encode())

    ext.item_scraped(category_page("100", 1, 41), None, spider)  # 3 pages of 20
    ext.item_scraped(category_page("100", 3, 41), None, spider)
    ext.item_scraped(category_page("200", 1, 20), None, spider)  # exactly 1 page
    ext.item_scraped(category_page("300", 1, 1_234), None, spider)  # 62 pages
    # An empty category still has its one index page: claiming none would let that page, once parsed,
    # make up for a page missing elsewhere.
    ext.item_scraped(category_page("400", 1, 0), None, spider)
    assert stats_of(crawler)["dnm/coverage/category/claimed"] == 3 + 1 + 62 + 1
    # A later page showing a new count replaces the category's claim rather than adding to it.
    ext.item_scraped(category_page("100", 2, 61), None, spider)
    assert stats_of(crawler)["dnm/coverage/category/claimed"] == 4 + 1 + 62 + 1
