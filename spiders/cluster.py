"""The two spiders of a distributed crawl: workers fetch a market together, one writer files it.

Both are the generic market spider, driven by the same profile. A `WorkerSpider` fetches through the
shared queue of its crawl (scrapy-redis, dnm.cluster) and hands every page it captures to the writer;
it needs Redis and Tor, not the archive. The `WriterSpider` fetches nothing: it opens the crawl row,
publishes the crawl in Redis, and yields the handed-over pages to the usual pipelines (extraction,
normalization, raw capture, storage) until no work is left anywhere; then the crawl closes as any
crawl does (coverage, drift, status). docs/operations.md, "Scale-out".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from twisted.python.failure import Failure

from dnm.cluster.handoff import from_wire
from dnm.cluster.queue import LEASE
from dnm.cluster.shared import ClusterError, SharedCrawl, connect, new_worker_id, redis_url
from dnm.cluster.worker import deliver
from dnm.cluster.writer import fold_worker_stats
from spiders.market import MarketSpider

logger = logging.getLogger(__name__)


def _client(crawler: Crawler) -> Any:
    return connect(redis_url(crawler.settings))


def _ttl(crawler: Crawler) -> float:
    return crawler.settings.getfloat("DNM_CLUSTER_WORKER_TTL", 10.0)


class WorkerSpider(MarketSpider):
    """Fetches a market with the other workers of its crawl: `dnm cluster worker MARKET`."""

    name = "market-worker"
    shared: SharedCrawl
    worker_id: str

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> WorkerSpider:
        spider: WorkerSpider = super().from_crawler(crawler, *args, **kwargs)  # type: ignore[assignment]
        address = crawler.settings.get("DNM_CLUSTER_CRAWL")
        if not address:
            raise ClusterError("a worker needs its crawl: DNM_CLUSTER_CRAWL (`dnm cluster worker` sets it)")
        spider.shared = SharedCrawl.at(_client(crawler), spider.market, address, _ttl(crawler))
        spider.worker_id = crawler.settings.get("DNM_CLUSTER_WORKER_ID") or new_worker_id()
        return spider

    async def start(self) -> AsyncIterator[Any]:
        """The first worker queues the start pages; the others wait for work (or the crawl's end)."""
        if not await self.mirrors_ready():
            return
        # Pages fetched before the crawl began (the mirror checks) belong to no request of the queue.
        deliver(self.crawler, None, self.drain_pending())
        while True:
            if self.shared.seed():
                for request in self.start_pages():
                    yield request
                # Scrapy queued each request before asking for the next: they are all in Redis now.
                self.shared.mark_seeded()
                return
            progress = self.shared.progress()
            if progress.seeded or progress.queued or progress.done or progress.stop:
                return
            await asyncio.sleep(0.2)

    def on_error(self, failure: Failure) -> Any:
        """A request that brought no page: its barrier pages are handed over and its lease ends."""
        pages = list(super().on_error(failure))
        request = getattr(failure, "request", None)
        deliver(self.crawler, request.meta.get(LEASE) if request is not None else None, pages)
        return []


class WriterSpider(MarketSpider):
    """Files a distributed crawl of a market into the archive: `dnm cluster crawl MARKET`."""

    name = "market-writer"
    shared: SharedCrawl
    # Pages yielded to the pipelines and not yet filed, by item: their hand-off leaves Redis once filed.
    filing: dict[int, bytes]

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> WriterSpider:
        spider: WriterSpider = super().from_crawler(crawler, *args, **kwargs)  # type: ignore[assignment]
        spider.filing = {}
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(spider.item_done, signal=signal)
        return spider

    def item_done(self, item: Any, **_: Any) -> None:
        wire = self.filing.pop(id(item), None)
        if wire is not None:
            self.shared.filed(wire)

    async def start(self) -> AsyncIterator[Any]:
        stats, settings = self.crawler.stats, self.crawler.settings
        assert stats is not None
        crawl_id = stats.get_value("dnm/crawl_id")
        if crawl_id is None:
            raise CloseSpider("no_crawl_row")
        self.shared = SharedCrawl(_client(self.crawler), self.market, crawl_id, worker_ttl=_ttl(self.crawler))
        try:
            self.shared.publish()
        except ClusterError as exc:
            logger.error("%s", exc)
            raise CloseSpider("another_crawl_in_progress") from exc
        logger.info("crawl %s of %s published: start workers with `dnm cluster worker %s`",
                    crawl_id, self.market, self.market)  # fmt: skip
        patience = settings.getfloat("DNM_CLUSTER_WAIT_WORKERS", 600.0)
        alone_since = time.monotonic()
        reason = "finished"
        while True:
            wire = self.shared.take_item()
            if wire is not None:
                try:
                    item = from_wire(wire)
                except ValueError as exc:
                    stats.inc_value("dnm/cluster/bad_handoffs")
                    logger.error("a handed-over page could not be read, skipped: %s", exc)
                    self.shared.filed(wire)
                    continue
                self.filing[id(item)] = wire
                yield item
                continue
            progress = self.shared.progress()
            if progress.stop:
                reason = "stopped"
            if not progress.work_left:
                break
            if reason == "stopped" and not progress.live_workers and not progress.handed_over:
                break  # the workers are gone and everything they handed over is filed
            if progress.live_workers:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > patience:
                reason = "no_workers"
                logger.error("no worker for %.0f s while work is left: the crawl stops as partial", patience)
                break
            await asyncio.sleep(0.1)
        await self.let_workers_go(settings.getfloat("DNM_CLUSTER_HEARTBEAT", 2.0))
        fold_worker_stats(stats, self.shared)
        stats.set_value("dnm/cluster/left", {"queued": progress.queued, "leased": progress.leased})
        self.shared.close()
        if reason != "finished":
            raise CloseSpider(reason)

    async def let_workers_go(self, heartbeat: float) -> None:
        """Tell the workers the crawl is over and give them a few heartbeats to report their last stats."""
        self.shared.finish()
        deadline = time.monotonic() + 3 * heartbeat + 6  # Scrapy looks at an idle worker every 5 s
        while self.shared.progress().live_workers and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
