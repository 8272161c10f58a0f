"""Mirror middleware: sends each request to the market's current mirror and fails over when one dies.

The spider addresses every page on the canonical mirror; this middleware moves the request onto the
mirror in use now (`spider.mirrors`, a `dnm.mirrors.MirrorPool`), counts network failures per mirror,
and when a mirror is marked down, or a page has failed twice on it, re-sends the request to another
mirror without spending one of its retries. Requests with `meta["dnm_mirror_fixed"]` (checking one
particular mirror) are left alone.
Settings: `DNM_MIRROR_FAILURES` (failures in a row before a mirror is down, read by the pool).
Stats: `dnm/mirrors/down`, `dnm/mirrors/requeued`, `dnm/mirrors/refused`.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response

from dnm import signals as dnm_signals
from dnm.mirrors import MirrorPool
from dnm.stats import exception_cause

logger = logging.getLogger(__name__)

# Failures that say something about the mirror (not about one page of it).
MIRROR_CAUSES = {
    "connection_refused",
    "connection_lost",
    "timeout",
    "proxy_error",
    "download_failed",
    "data_loss",
}
MAX_REQUEUES = 4


class MirrorMiddleware:
    """Rewrites requests onto the live mirror and moves them on when their mirror goes down."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        crawler.signals.connect(self.mirror_refused, signal=dnm_signals.mirror_refused)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MirrorMiddleware:
        return cls(crawler)

    @property
    def pool(self) -> MirrorPool | None:
        return getattr(self.crawler.spider, "mirrors", None)

    def inc(self, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key)

    def process_request(self, request: Request, spider: Spider | None = None) -> Request | None:
        pool = self.pool
        request.meta["dnm_mirror_sent"] = time.monotonic()
        if pool is None or request.meta.get("dnm_mirror_fixed"):
            return None
        moved = pool.rewrite(request.url, frozenset(request.meta.get("dnm_mirror_avoid", ())))
        if moved == request.url:
            return None
        return request.replace(url=moved, dont_filter=True)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if self.pool is not None:
            self.pool.note_ok(urlsplit(request.url).netloc, request.meta.get("dnm_mirror_sent", 0.0))
        return response

    def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> Any:
        pool = self.pool
        if pool is None or exception_cause(exception) not in MIRROR_CAUSES:
            return None
        host = urlsplit(request.url).netloc
        if pool.note_failure(host):
            self.inc("dnm/mirrors/down")
        mirror = pool.find(host)
        moved = pool.rewrite(request.url)
        requeued = request.meta.get("dnm_mirror_requeued", 0)
        if mirror is None or not mirror.down or moved == request.url or request.meta.get("dnm_mirror_fixed"):
            return None  # an ordinary failure: RetryMiddleware decides
        if requeued >= MAX_REQUEUES:
            return None
        self.inc("dnm/mirrors/requeued")
        return request.replace(
            url=moved, dont_filter=True, meta={**request.meta, "dnm_mirror_requeued": requeued + 1}
        )

    def mirror_refused(self, url: str, reason: str) -> None:
        if self.pool is not None:
            self.pool.refuse(urlsplit(url).netloc, reason)
            self.inc("dnm/mirrors/refused")
