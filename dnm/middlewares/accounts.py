"""Account middleware: decides which market account (and so which cookie jar and circuit) fetches a page.

When the spider has accounts (`spider.accounts`, a `dnm.accounts.AccountPool`, filled for markets
whose profile has a `login` section), every request gets one, stable per URL, in
`meta["dnm_account"]` (its label, never the name) and `meta["cookiejar"]`; the Tor transport gives
each account its own circuits. Without accounts requests stay anonymous.
"""

from __future__ import annotations

from scrapy import Request, Spider
from scrapy.crawler import Crawler

from transport.circuits import CircuitManager


class AccountMiddleware:
    """Assigns an account from the spider's pool to each request that has none."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AccountMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        pool = getattr(self.crawler.spider, "accounts", None)
        market = getattr(self.crawler.spider, "market", "default")
        if pool is not None and "dnm_account" not in request.meta:
            account = pool.for_url(request.url)
            if account is not None:
                request.meta["dnm_account"] = account.label
        request.meta.setdefault("cookiejar", CircuitManager.base(market, request.meta.get("dnm_account")))
