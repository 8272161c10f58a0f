"""Tor transport: each request leaves through Tor's SOCKS port, names resolved by Tor, a circuit per identity.

Settings: `DNM_TRANSPORT` (active only for "tor"), the `DNM_TOR_*` settings `dnm crawl` fills from the
Tor it launched or attached to, `DNM_TOR_RENEW_AFTER_TIMEOUTS` (3), `DNM_TOR_MAX_RESTARTS` (3),
`DNM_TOR_LANES` (1; anonymous pages of a market are spread over this many identities, hence circuits).
Request meta: `dnm_account` (an account gets its own circuits and cookie jar); the middleware sets
`proxy` and `dnm_isolation`. Stats: `dnm/tor/requests`, `dnm/tor/failures/<cause>`,
`dnm/tor/circuits_renewed[/<reason>]` (reasons: timeouts, killed_path), `dnm/tor/newnym`,
`dnm/tor/restarts`, `dnm/tor/requeued`. Listens to `dnm.signals.circuit_killed`.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any
from urllib.parse import quote, urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from dnm import signals as dnm_signals
from dnm.stats import exception_cause
from transport.circuits import CircuitManager
from transport.process import TorInstance

logger = logging.getLogger(__name__)

# Failures after which Tor itself may be gone (rather than the market): worth a health check.
TRANSPORT_CAUSES = {"connection_refused", "connection_lost", "download_failed", "proxy_error"}


def socks_proxy_url(port: int, identity: str) -> str:
    """The socks5h URL whose username is the isolation identity (the password only has to exist).

    The identity must be URL-safe as it is: Scrapy's proxy middleware and the httpx handler take
    the userinfo apart and put it back unquoted, so a "/" or "#" in it would change the proxy's host.
    """
    if quote(identity, safe="") != identity:
        raise ValueError(f"isolation identity {identity!r} is not URL-safe")
    return f"socks5h://{identity}:x@127.0.0.1:{port}"


class TorTransportMiddleware:
    """Routes requests through Tor with per-identity isolation; renews circuits and restarts Tor."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if settings.get("DNM_TRANSPORT", "tor") != "tor":
            raise NotConfigured("transport is not tor")
        self.crawler = crawler
        self.tor = TorInstance.from_settings(settings)
        self.allowed_hosts = {h.lower() for h in settings.getlist("DNM_ALLOWED_HOSTS")}
        self.lanes = max(1, settings.getint("DNM_TOR_LANES", 1))
        self.closing: asyncio.Future[None] | None = None
        self.circuits = CircuitManager(
            self.tor,
            crawler.stats,
            renew_after_timeouts=settings.getint("DNM_TOR_RENEW_AFTER_TIMEOUTS", 3),
            max_restarts=settings.getint("DNM_TOR_MAX_RESTARTS", 3),
        )
        crawler.signals.connect(self.circuit_killed, signal=dnm_signals.circuit_killed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TorTransportMiddleware:
        return cls(crawler)

    def give_up(self) -> None:
        """Close the crawl (it ends as partial) once Tor cannot be brought back.

        The close is scheduled, not awaited: the engine waits for in-flight downloads to finish,
        and this very request is one of them.
        """
        if self.closing is None:
            logger.error("tor is gone and could not be restarted; closing the crawl as partial")
            engine = self.crawler.engine
            assert engine is not None
            self.closing = asyncio.ensure_future(engine.close_spider_async(reason="tor_unavailable"))

    def circuit_killed(self, identity: str | None, url: str) -> None:
        """The market killed the circuit of `identity`: renew it, unless a request that met the same
        kill has renewed it already (the identity is then no longer current)."""
        if identity and identity.rsplit(".", 1)[1] == str(
            self.circuits.generations[identity.rsplit(".", 1)[0]]
        ):
            self.circuits.renew(identity, "killed_path")

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if (urlsplit(request.url).hostname or "").lower() in self.allowed_hosts:
            return  # named in settings to be fetched directly (loopback test servers)
        market = getattr(self.crawler.spider, "market", "default")
        account = request.meta.get("dnm_account")
        # Lanes are for anonymous pages only: a logged-in session stays on one circuit, as a person's would.
        lane = zlib.crc32(request.url.encode()) % self.lanes if account is None and self.lanes > 1 else 0
        identity = self.circuits.identity(market, account, lane)
        request.meta["dnm_isolation"] = identity
        request.meta["proxy"] = socks_proxy_url(self.tor.socks_port, identity)
        # Cookies follow the account, not the circuit: a new circuit must not log the account out.
        request.meta.setdefault("cookiejar", CircuitManager.base(market, account))
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("dnm/tor/requests")

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        identity = request.meta.get("dnm_isolation")
        if identity:
            self.circuits.note_success(identity)
        return response

    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> Any:
        stats = self.crawler.stats
        assert stats is not None
        cause = exception_cause(exception)
        stats.inc_value(f"dnm/tor/failures/{cause}")
        identity = request.meta.get("dnm_isolation")
        if cause in TRANSPORT_CAUSES:
            if not await self.circuits.ensure_tor():
                self.give_up()
                return None
            if self.circuits.restarts and request.meta.get("dnm_requeued", 0) < 3:
                # The request failed because Tor was down, not because of the market: try it again
                # without spending one of its retries.
                stats.inc_value("dnm/tor/requeued")
                meta = {**request.meta, "dnm_requeued": request.meta.get("dnm_requeued", 0) + 1}
                meta.pop("proxy", None)
                return request.replace(dont_filter=True, meta=meta)
        if cause == "timeout" and identity and self.circuits.note_timeout(identity):
            self.circuits.renew(identity, "timeouts")
        return None
