"""The generic market spider: walks any market as its profile describes and yields captured pages.

It knows nothing about any particular market. It first checks the market's mirrors against the
signed mirror list (when the profile has one), then starts at the profile's start paths, recognises
each response's page type, yields the page for the pipelines, and follows the links the profile
names for that page type, staying on the market's mirrors. Every page is addressed on the canonical
mirror; `dnm.middlewares.mirrors` sends it to the live one. Barrier pages met on the way
(`dnm.middlewares.barriers`) are yielded too, as `gate:<kind>` pages, but never parsed.
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

from dnm.accounts import AccountPool, env_name, load_accounts
from dnm.extraction import classify, extract_links
from dnm.items import PageItem, exchange_of
from dnm.mirrors import MirrorPool, MirrorRefused, check_signed_list
from dnm.profile import Profile, ProfileError, load_profile
from dnm.stats import exception_cause, failure_cause, is_known_cause


class MarketSpider(scrapy.Spider):
    """Crawl one market from its profile: `scrapy crawl market -a market=NAME [-a mirror=URL]`."""

    name = "market"
    profile: Profile
    base_url: str

    accounts: AccountPool | None = None
    mirrors: MirrorPool
    # Page types that link to themselves (an index's next page), and those linking to one: link_priority.
    paginated: set[str]
    chain_starts: set[str]

    def __init__(self, market: str | None = None, mirror: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not market:
            raise ProfileError("the market spider needs a market: -a market=NAME")
        self.market = market
        self.mirror = mirror
        self.pending_pages: list[PageItem] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> MarketSpider:
        spider: MarketSpider = super().from_crawler(crawler, *args, **kwargs)
        directory = crawler.settings.get("DNM_PROFILE_DIR")
        spider.profile = load_profile(spider.market, Path(directory) if directory else None)
        profile = spider.profile
        # `mirror` may name several, comma-separated (`dnm crawl --mirror A --mirror B`), tried in order.
        candidates = [(url, "command line") for url in (spider.mirror or "").split(",") if url.strip()]
        candidates += [(url, "profile") for url in profile.mirrors]
        if not candidates:
            raise ProfileError(f"profile {profile.market!r} lists no mirror; pass one with --mirror")
        spider.mirrors = MirrorPool(
            candidates,
            failures_to_down=crawler.settings.getint("DNM_MIRROR_FAILURES", 5),
            require_trust=profile.mirror_list is not None,
        )
        spider.base_url = spider.mirrors.canonical
        spider.paginated = {
            page.name for page in profile.pages if any(ln.to == page.name for ln in page.links)
        }
        spider.chain_starts = {
            page.name for page in profile.pages if any(link.to in spider.paginated for link in page.links)
        } - spider.paginated
        if profile.login is not None:
            spider.accounts = AccountPool(
                load_accounts(profile.market, crawler.settings.get("DNM_ACCOUNTS_FILE"))
            )
            if not spider.accounts.accounts:
                spider.logger.info(
                    "%s may ask for a login and no account is configured (set %s/%s or DNM_ACCOUNTS_FILE)",
                    profile.market,
                    env_name(profile.market, "USERNAME"),
                    env_name(profile.market, "PASSWORD"),
                )
        return spider

    async def start(self) -> AsyncIterator[Any]:
        # Pages stay addressed on the canonical mirror even when it was refused: the mirror
        # middleware sends them to a trusted one.
        if not await self.mirrors_ready():
            return
        for request in self.start_pages():
            yield request

    async def mirrors_ready(self) -> bool:
        """Check the mirrors against the signed list when the profile has one; closes the spider and returns
        False when no mirror can be trusted."""
        if self.profile.mirror_list is not None and not await self.check_mirrors():
            await self.crawler.engine.close_spider_async(reason="no_trusted_mirror")  # type: ignore[union-attr]
            return False
        return True

    def start_pages(self) -> list[scrapy.Request]:
        """The requests for the profile's start paths, where every crawl of the market begins."""
        return [
            scrapy.Request(
                urljoin(self.base_url + "/", path.lstrip("/")),
                callback=self.parse_page,
                errback=self.on_error,
                meta={"dnm_expected_type": self.profile.pages[0].name},
            )
            for path in self.profile.start
        ]

    async def check_mirrors(self) -> bool:
        """Check mirrors against the signed list until one holds; False when none did.

        The first mirror whose key matches the profile's pin and whose list verifies makes every mirror
        it lists trusted; mirrors that fail are refused for this crawl and reported.
        """
        rule = self.profile.mirror_list
        assert rule is not None and self.crawler.engine is not None and self.crawler.stats is not None
        for mirror in list(self.mirrors.mirrors):
            if mirror.refused or mirror.trusted:
                continue
            try:
                key_page = await self.fetch_fixed(mirror.url + rule.key_url, "mirrors:key")
                list_page = await self.fetch_fixed(mirror.url + rule.url, "mirrors:list")
                listed = check_signed_list(
                    mirror,
                    "".join(key_page.css(rule.key).getall()),
                    "".join(list_page.css(rule.signed).getall()),
                    rule.fingerprint,
                )
            except MirrorRefused as exc:
                self.mirrors.refuse(mirror.host, str(exc))
                self.crawler.stats.inc_value("dnm/mirrors/refused")
                continue
            except Exception as exc:  # unreachable, or its gate could not be passed: try the next one
                self.crawler.stats.inc_value(f"dnm/errors/{exception_cause(exc)}")
                self.logger.warning("mirror %s could not be checked: %s", mirror.url, exc)
                self.mirrors.note_failure(mirror.host)
                mirror.down = True
                continue
            for url in listed:
                self.mirrors.add(url, "signed list").trusted = True
            self.logger.info("mirror list of %s verified: %d mirrors", self.profile.market, len(listed))
            return True
        return False

    async def fetch_fixed(self, url: str, page_type: str) -> TextResponse:
        """One page of one particular mirror, through the barriers, archived as `page_type`; raises
        when it does not come."""
        assert self.crawler.engine is not None
        response = await self.crawler.engine.download_async(
            scrapy.Request(url, meta={"dnm_mirror_fixed": True}, dont_filter=True)
        )
        self.pending_pages += self.barrier_items(response.meta)
        self.pending_pages.append(self.page_item(response, page_type))
        if not isinstance(response, TextResponse) or response.status != 200:
            raise MirrorRefused(f"{url} answered {response.status}")
        return response

    def page_item(self, response: Response, page_type: str, expected: str | None = None) -> PageItem:
        """A fetched response as a page to archive."""
        return PageItem(
            url=response.url,
            page_type=page_type,
            status=response.status,
            body=response.body,
            sha256=hashlib.sha256(response.body).hexdigest(),
            fetched_at=datetime.now(UTC),
            encoding=getattr(response, "encoding", "utf-8"),
            expected_type=expected,
            http=exchange_of(response),
            selector=response.selector if isinstance(response, TextResponse) else None,
        )

    def drain_pending(self) -> list[PageItem]:
        """The mirror-check pages fetched before the crawl began, once."""
        pending, self.pending_pages = self.pending_pages, []
        return pending

    def barrier_items(self, meta: dict[str, Any]) -> list[PageItem]:
        """The barrier pages met on the way to a response (or failure), as pages to archive."""
        return [
            PageItem(
                url=c.url,
                page_type=f"gate:{c.kind}",
                status=c.status,
                body=c.body,
                sha256=c.sha256,
                fetched_at=c.fetched_at,
                encoding=c.encoding,
                http=c.http,
            )
            for c in meta.pop("dnm_barriers", ())
        ]

    def parse_page(self, response: Response) -> Any:
        """Yield the captured page, then the requests for the links its page type follows."""
        stats = self.crawler.stats
        assert stats is not None
        yield from self.drain_pending()
        yield from self.barrier_items(response.meta)
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
        yield self.page_item(response, page_type, expected)
        if rule is None:
            return
        for url, to in extract_links(rule, response.selector, response.url):
            yield scrapy.Request(
                self.mirrors.canonicalize(url),
                callback=self.parse_page,
                errback=self.on_error,
                meta={"dnm_expected_type": to},
                priority=self.link_priority(to),
            )

    def link_priority(self, to: str) -> int:
        """Paginated chains first: pages of an index (a category's pages, a vendor's feedback pages), then a
        page that leads to one (the vendor page). Their pages are found one after another, so a chain found
        late is the crawl's tail, however many requests run at once."""
        if to in self.paginated:
            return 2
        return 1 if to in self.chain_starts else 0

    def on_error(self, failure: Failure) -> Any:
        """Count and log a request that produced no page, by cause."""
        cause = failure_cause(failure)
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"dnm/errors/{cause}")
        request = getattr(failure, "request", None)
        yield from self.drain_pending()
        if request is not None:
            yield from self.barrier_items(request.meta)
        url = request.url if request else failure.getErrorMessage()
        if is_known_cause(cause):
            self.logger.warning("fetch failed (%s): %s", cause, url)
        else:  # not a network condition: a bug somewhere in the chain, so keep the traceback
            self.logger.error("fetch failed (%s): %s\n%s", cause, url, failure.getTraceback())
