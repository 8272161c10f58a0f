"""Crawl completeness: what a crawl expected to find, per page type, against what it fetched and parsed.

Expected pages of a type are the larger of two counts: the distinct pages of that type the crawl
discovered (links it meant to follow) and the pages the market itself claims exist (the profile's
`completeness.expect` rules, e.g. "412 offers are online" on the home page, or "page 1 of 7" on a
category index). A page counts as parsed when it was archived as content with no extraction error.
A crawl is `complete` only when every page type reaches the profile's `completeness.threshold`.

`CoverageExtension` (a Scrapy extension) keeps the counts in the crawl's stats as
`dnm/coverage/<type>/{discovered,claimed,fetched,parsed}`; `coverage_of(stats)` reads them back.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.crawler import Crawler

from dnm.extraction import read_field
from dnm.items import PageItem

PREFIX = "dnm/coverage/"
COUNTS = ("discovered", "claimed", "fetched", "parsed")


def page_key(url: str) -> str:
    """A page's identity whatever mirror served it: path and query."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def to_count(value: Any) -> int | None:
    """The number in a shown count ("1,234 offers" -> 1234), or None."""
    text = " ".join(value) if isinstance(value, list) else str(value or "")
    found = re.search(r"\d[\d,.\s]*", text)
    if not found:
        return None
    digits = re.sub(r"\D", "", found.group(0))
    return int(digits) if digits else None


@dataclass(frozen=True)
class Coverage:
    """One page type's coverage in a crawl."""

    page_type: str
    discovered: int
    claimed: int
    fetched: int
    parsed: int

    @property
    def expected(self) -> int:
        return max(self.discovered, self.claimed)

    @property
    def share(self) -> float:
        return 1.0 if self.expected == 0 else min(1.0, self.parsed / self.expected)


def coverage_of(stats: dict[str, Any]) -> dict[str, Coverage]:
    """Coverage per page type from a crawl's stats."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for key, value in stats.items():
        if key.startswith(PREFIX):
            page_type, _, count = key[len(PREFIX) :].rpartition("/")
            if count in COUNTS:
                counts[page_type][count] = int(value)
    return {
        page_type: Coverage(page_type, *(values.get(c, 0) for c in COUNTS))
        for page_type, values in sorted(counts.items())
    }


def shortfalls(stats: dict[str, Any], threshold: float) -> list[str]:
    """Why coverage is below the threshold, one reason per page type (empty when it is not)."""
    return [
        f"{c.page_type} coverage {c.share:.1%} ({c.parsed} of {c.expected} expected)"
        for c in coverage_of(stats).values()
        if c.share < threshold
    ]


class CoverageExtension:
    """Counts discovered, claimed, fetched and parsed pages per page type into the crawl's stats."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.claims: dict[str, dict[str, int]] = defaultdict(dict)
        crawler.signals.connect(self.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CoverageExtension:
        return cls(crawler)

    def note(self, page_type: str, count: str, key: str) -> None:
        keys = self.seen[page_type][count]
        if key not in keys:
            keys.add(key)
            assert self.crawler.stats is not None
            self.crawler.stats.set_value(f"{PREFIX}{page_type}/{count}", len(keys))

    def request_scheduled(self, request: Request, spider: Any) -> None:
        page_type = request.meta.get("dnm_expected_type")
        # A redirect (to a login form, say) is the same page asked for again, not a new one.
        if page_type and not request.meta.get("redirect_urls"):
            self.note(page_type, "discovered", page_key(request.url))

    def item_scraped(self, item: Any, response: Any, spider: Any) -> None:
        if not isinstance(item, PageItem) or not item.is_content:
            return
        key = page_key(item.url)
        self.note(item.page_type, "fetched", key)
        if not item.errors:
            self.note(item.page_type, "parsed", key)
        for rule in spider.profile.completeness.expect:
            if rule.page == item.page_type:
                self.claim(rule, item, key)

    def claim(self, rule: Any, item: PageItem, key: str) -> None:
        count = to_count(read_field(rule.value, item.parsed(), item.url))
        if count is None:
            return
        if rule.per_page:
            # The page showing the count is an index page itself, even when it shows "0 items".
            count = max(1, math.ceil(count / rule.per_page))
        per = read_field(rule.per, item.parsed(), item.url) if rule.per is not None else key
        claims = self.claims[rule.count]
        claims[str(per)] = count
        assert self.crawler.stats is not None
        self.crawler.stats.set_value(f"{PREFIX}{rule.count}/claimed", sum(claims.values()))
