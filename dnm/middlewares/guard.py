"""Transport guard: refuses any request that would leave by a path the settings do not allow.

It runs after the Tor transport middleware has set the request's proxy, as the last word before a
request leaves. With "tor" transport a request goes out only to a valid v3 onion host, only through
the crawl's own Tor SOCKS port with remote name resolution (socks5h). A host named in
`DNM_ALLOWED_HOSTS` (meant for loopback test servers) is fetched directly, with either transport.
Settings: `DNM_TRANSPORT` ("tor" or "direct"), `DNM_ALLOWED_HOSTS`, `DNM_TOR_SOCKS_PORT`.
Stats: `dnm/guard/refused`, `dnm/guard/refused/<host>`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured

from transport.onion_keys import is_valid_v3_onion

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
        self.socks_port = settings.getint("DNM_TOR_SOCKS_PORT")
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TransportGuardMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> Any:
        host = (urlsplit(request.url).hostname or "").lower()
        reason = self.refusal(host, request.meta.get("proxy"))
        if reason is None:
            return None
        assert self.stats is not None
        self.stats.inc_value("dnm/guard/refused")
        self.stats.inc_value(f"dnm/guard/refused/{host or 'none'}")
        logger.error("refused %s: %s", request.url, reason)
        raise TransportRefused(reason)

    def refusal(self, host: str, proxy: str | None) -> str | None:
        """Why a request to `host` through `proxy` may not leave, or None if it may."""
        if host in self.allowed_hosts:
            return (
                None if proxy is None else f"allowed host {host!r} must be fetched directly, not via {proxy}"
            )
        if self.transport != "tor":
            return f"host {host!r} is not in DNM_ALLOWED_HOSTS (direct transport fetches only those)"
        if not is_valid_v3_onion(host):
            return f"host {host!r} is not a v3 onion address; only onions are fetched through Tor"
        if not self.is_our_tor(proxy):
            return f"not routed through the crawl's Tor SOCKS port with remote DNS (proxy {proxy!r})"
        return None

    def is_our_tor(self, proxy: str | None) -> bool:
        """True for socks5h://user:pass@127.0.0.1:<our SOCKS port>, parsed as the handler will parse it."""
        if not proxy:
            return False
        parts = urlsplit(proxy)
        try:
            port = parts.port
        except ValueError:
            return False
        return (
            parts.scheme == "socks5h"
            and parts.hostname == "127.0.0.1"
            and port == self.socks_port
            and not parts.path
            and not parts.query
            and not parts.fragment
        )
