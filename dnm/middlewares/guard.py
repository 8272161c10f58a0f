"""Transport guard: refuses any request that would leave by a path the settings do not allow.

Settings: `DNM_TRANSPORT` ("tor" or "direct"), `DNM_ALLOWED_HOSTS` (hosts that may be fetched
without Tor; meant for loopback test servers). With "direct" transport only allowed hosts are
fetched at all. Stats: `dnm/guard/refused`, `dnm/guard/refused/<host>`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured

logger = logging.getLogger(__name__)


class TransportRefused(IgnoreRequest):
    """A request the transport guard would not let out."""


class TransportGuardMiddleware:
    """Lets a request out only through the configured transport to a permitted host."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.transport = settings.get("DNM_TRANSPORT", "tor")
        if self.transport not in ("tor", "direct"):
            raise NotConfigured(f"DNM_TRANSPORT must be 'tor' or 'direct', not {self.transport!r}")
        self.allowed_hosts = {h.lower() for h in settings.getlist("DNM_ALLOWED_HOSTS")}
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TransportGuardMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> Any:
        host = (urlsplit(request.url).hostname or "").lower()
        if self.permits(host):
            return None
        assert self.stats is not None
        self.stats.inc_value("dnm/guard/refused")
        self.stats.inc_value(f"dnm/guard/refused/{host or 'none'}")
        logger.error(
            "refused %s: host %r is not allowed with %s transport", request.url, host, self.transport
        )
        raise TransportRefused(f"host {host!r} not allowed with {self.transport} transport")

    def permits(self, host: str) -> bool:
        """Allowed hosts always; onion hosts only through Tor."""
        if host in self.allowed_hosts:
            return True
        return self.transport == "tor" and host.endswith(".onion")
