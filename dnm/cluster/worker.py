"""A worker of a distributed crawl: hands its pages to the writer, keeps itself known, and knows when to stop.

`HandOffMiddleware` (a spider middleware, outermost) takes what a response brought: its requests go to
the shared queue at once, its pages to the writer with the request's lease ended in the same
transaction (`SharedCrawl.deliver`). `ClusterWorker` (an extension) registers the worker, beats every
DNM_CLUSTER_HEARTBEAT seconds with its stats, stops it when `dnm cluster stop` asks, keeps it open while
other workers may still queue work, and on close puts back what it had not finished.

Stats: `dnm/cluster/handed_over` (pages), `dnm/cluster/released` (requests put back on close),
`dnm/cluster/leases_dropped` (requests that ended without a page and were not retried),
`dnm/cluster/reaped` (requests of silent workers this one put back).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, DontCloseSpider
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from dnm.cluster.handoff import to_wire
from dnm.cluster.queue import LEASE
from dnm.items import PageItem
from pipelines.capture import network_path

logger = logging.getLogger(__name__)


def deliver(crawler: Crawler, lease: str | None, pages: Iterable[PageItem]) -> None:
    """Hand a request's pages to the writer and end its lease (`lease` None: a page fetched outside the
    queue, e.g. a mirror check, with nothing to end)."""
    spider: Any = crawler.spider
    wires = [to_wire(page) for page in pages]
    spider.shared.deliver(spider.worker_id, lease, wires)
    if wires:
        assert crawler.stats is not None
        crawler.stats.inc_value("dnm/cluster/handed_over", len(wires))


class HandOffMiddleware:
    """Outermost spider middleware of a worker: schedules a response's requests, then delivers its pages.

    Its requests are scheduled here rather than by Scrapy's scraper, which takes a callback's output in
    parallel with the callback itself: only here is every request known to be in the shared queue
    before the lease of the response that found them ends.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HandOffMiddleware:
        return cls(crawler)

    async def process_spider_output(self, response: Any, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        engine = self.crawler.engine
        assert engine is not None
        pages: list[PageItem] = []
        try:
            async for output in result:
                if isinstance(output, Request):
                    engine.crawl(output)
                elif isinstance(output, PageItem):
                    pages.append(output)
                else:
                    yield output
        finally:
            # Also when the callback failed half-way: what it found is queued and what it captured is kept.
            deliver(self.crawler, response.meta.get(LEASE), pages)


class ClusterWorker:
    """Keeps a worker registered and alive in its crawl, and decides when it is done."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.interval = crawler.settings.getfloat("DNM_CLUSTER_HEARTBEAT", 2.0)
        self.poll = crawler.settings.getfloat("DNM_CLUSTER_POLL", 0.5)
        self.heart: task.LoopingCall | None = None
        self.stopping = False
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterWorker:
        return cls(crawler)

    def stats(self) -> dict[str, Any]:
        assert self.crawler.stats is not None
        return dict(self.crawler.stats.get_stats())

    def spider_opened(self, spider: Any) -> None:
        # An idle engine looks at its scheduler again only at its heartbeat, 5 s in Scrapy: a worker that ran
        # dry while another was queueing pages would sit out 5 s each time. (Read when the engine starts
        # its heartbeat, after spider_opened; Scrapy 2.19 keeps it as a class attribute.)
        self.crawler.engine._SLOT_HEARTBEAT_INTERVAL = self.poll  # type: ignore[union-attr]
        facts = network_path(self.crawler.settings, spider.profile.mirrors)
        spider.shared.join(spider.worker_id, {"network_path": facts.decode()})
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("dnm/cluster/crawl_id", spider.shared.crawl_id)
        logger.info(
            "worker %s joined crawl %s of %s", spider.worker_id, spider.shared.crawl_id, spider.market
        )
        self.heart = task.LoopingCall(self.beat, spider)
        self.heart.start(self.interval, now=False)

    def beat(self, spider: Any) -> None:
        try:
            spider.shared.beat(spider.worker_id, self.stats())
            stop = spider.shared.stop_asked()
        except Exception:
            logger.exception("could not reach Redis; the worker goes on and tries again")
            return
        if stop and not self.stopping:
            self.stopping = True
            logger.warning("stop asked for crawl %s: this worker stops", spider.shared.crawl_id)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="stopped"))  # type: ignore[union-attr]

    def spider_idle(self, spider: Any) -> None:
        shared = spider.shared
        assert self.crawler.stats is not None
        # Idle means nothing of this worker is in progress: a lease left is a request that ended with no page
        # and no retry (a failure already counted), not work to do again.
        dropped = shared.client.delete(shared.leases(spider.worker_id))
        if dropped:
            self.crawler.stats.inc_value("dnm/cluster/leases_dropped")
        progress = shared.progress()
        if progress.reaped:
            self.crawler.stats.inc_value("dnm/cluster/reaped", sum(progress.reaped.values()))
            logger.warning("put back the requests of silent workers: %s", progress.reaped)
        if progress.stop:
            raise CloseSpider("stopped")
        if progress.done or (progress.seeded and not progress.queued and not progress.leased):
            return  # nothing left anywhere: close as finished
        raise DontCloseSpider  # the others may still queue pages; asked again in DNM_CLUSTER_POLL seconds

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.heart is not None and self.heart.running:
            self.heart.stop()
        assert self.crawler.stats is not None
        try:
            released = spider.shared.release(spider.worker_id)
            if released:
                self.crawler.stats.inc_value("dnm/cluster/released", released)
                logger.info("put back %d unfinished requests for the other workers", released)
            stats = self.stats()
            stats["finish_reason"] = reason
            stats["dnm/mirrors"] = spider.mirrors.report()
            spider.shared.leave(spider.worker_id, stats)
        except Exception:
            logger.exception(
                "could not leave the crawl in Redis; its leases come back when it is found silent"
            )
