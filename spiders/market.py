"""The generic market spider: walks any market as its profile describes and yields captured pages.

It knows nothing about any particular market. It starts at the profile's start paths on the
chosen mirror, recognises each response's page type, yields the page for the pipelines, and
follows the links the profile names for that page type, staying on the mirror's host.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from dnm.extraction import classify, extract_links
from dnm.items import PageItem
from dnm.profile import Profile, ProfileError, load_profile
from dnm.stats import failure_cause, is_known_cause


class MarketSpider(scrapy.Spider):
    """Crawl one market from its profile: `scrapy crawl market -a market=NAME [-a mirror=URL]`."""

    name = "market"
    profile: Profile
    base_url: str

    def __init__(self, market: str | None = None, mirror: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not market:
            raise ProfileError("the market spider needs a market: -a market=NAME")
        self.market = market
        self.mirror = mirror

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> MarketSpider:
        spider: MarketSpider = super().from_crawler(crawler, *args, **kwargs)
        directory = crawler.settings.get("DNM_PROFILE_DIR")
        spider.profile = load_profile(spider.market, Path(directory) if directory else None)
        mirror = spider.mirror or (spider.profile.mirrors[0] if spider.profile.mirrors else None)
        if not mirror:
            raise ProfileError(f"profile {spider.profile.market!r} lists no mirror; pass one with --mirror")
        spider.base_url = mirror.rstrip("/")
        return spider

    async def start(self) -> AsyncIterator[Any]:
        for path in self.profile.start:
            yield scrapy.Request(
                urljoin(self.base_url + "/", path.lstrip("/")),
                callback=self.parse_page,
                errback=self.on_error,
                meta={"dnm_expected_type": self.profile.pages[0].name},
            )

    def parse_page(self, response: Response) -> Any:
        """Yield the captured page, then the requests for the links its page type follows."""
        fetched_at = datetime.now(UTC)
        stats = self.crawler.stats
        assert stats is not None
        expected = response.meta.get("dnm_expected_type")
        if not isinstance(response, TextResponse):
            stats.inc_value("dnm/pages/not_text")
            self.logger.warning("not a text page, skipped: %s", response.url)
            return
        rule = classify(self.profile, response.url, response.selector)
        page_type = rule.name if rule else "unknown"
        stats.inc_value(f"dnm/pages/{page_type}")
        if rule is None:
            self.logger.warning(
                "page matches no page type of profile %s: %s", self.profile.market, response.url
            )
        elif expected and expected != page_type:
            stats.inc_value("dnm/pages/unexpected_type")
        yield PageItem(
            url=response.url,
            page_type=page_type,
            status=response.status,
            body=response.body,
            sha256=hashlib.sha256(response.body).hexdigest(),
            fetched_at=fetched_at,
            encoding=response.encoding,
            expected_type=expected,
            selector=response.selector,
        )
        if rule is None:
            return
        for url, to in extract_links(rule, response.selector, response.url):
            yield scrapy.Request(
                url, callback=self.parse_page, errback=self.on_error, meta={"dnm_expected_type": to}
            )

    def on_error(self, failure: Failure) -> None:
        """Count and log a request that produced no page, by cause."""
        cause = failure_cause(failure)
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"dnm/errors/{cause}")
        request = getattr(failure, "request", None)
        url = request.url if request else failure.getErrorMessage()
        if is_known_cause(cause):
            self.logger.warning("fetch failed (%s): %s", cause, url)
        else:  # not a network condition: a bug somewhere in the chain, so keep the traceback
            self.logger.error("fetch failed (%s): %s\n%s", cause, url, failure.getTraceback())
