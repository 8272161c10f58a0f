"""Running a distributed crawl's writer and workers in this process, with the settings each needs."""

from __future__ import annotations

import time
from typing import Any

from dnm.cluster.shared import ClusterError, Progress, SharedCrawl, active_crawl, connect
from dnm.crawler import CrawlJob, crawl_settings, run_crawlers


def worker_settings(shared: SharedCrawl, url: str) -> dict[str, Any]:
    """A worker's Scrapy settings: scrapy-redis's scheduler on the crawl's keys, pages handed over rather
    than stored (a worker needs no archive), discovered pages counted across workers."""
    settings = crawl_settings()
    return {
        "DNM_REDIS_URL": url,
        "DNM_CLUSTER_CRAWL": shared.address,
        "SCHEDULER": "dnm.cluster.scheduler.SharedScheduler",
        "SCHEDULER_QUEUE_CLASS": "dnm.cluster.queue.LeasedPriorityQueue",
        "SCHEDULER_QUEUE_KEY": shared.requests,
        "SCHEDULER_DUPEFILTER_KEY": shared.dupefilter,
        "DUPEFILTER_CLASS": "dnm.cluster.dupefilter.RedisRedirectAwareDupeFilter",
        # The queue and the filter belong to the crawl, not to one worker: the writer deletes them at the end.
        "SCHEDULER_PERSIST": True,
        "REDIS_URL": url,
        "ITEM_PIPELINES": {},
        "SPIDER_MIDDLEWARES": {
            **settings.getdict("SPIDER_MIDDLEWARES"),
            "dnm.cluster.worker.HandOffMiddleware": 10,
        },
        "EXTENSIONS": {
            **settings.getdict("EXTENSIONS"),
            "dnm.coverage.CoverageExtension": None,
            "dnm.cluster.coverage.SharedCoverage": 500,
            "dnm.cluster.worker.ClusterWorker": 510,
        },
    }


def wait_for_crawl(url: str, market: str, timeout: float) -> SharedCrawl:
    """The market's distributed crawl, waiting up to `timeout` seconds for a writer to publish it."""
    client = connect(url)
    deadline = time.monotonic() + timeout
    while (shared := active_crawl(client, market)) is None:
        if time.monotonic() > deadline:
            raise ClusterError(
                f"no distributed crawl of {market} was published in {timeout:.0f} s: start its writer with "
                f"`dnm cluster crawl {market}`"
            )
        time.sleep(0.5)
    return shared


def run_worker(
    market: str, mirror: str | None, overrides: dict[str, Any], url: str, timeout: float
) -> dict[str, Any]:
    """Join the market's distributed crawl and fetch until no work is left; returns the worker's stats."""
    from spiders.cluster import WorkerSpider

    shared = wait_for_crawl(url, market, timeout)
    return run_crawlers(
        [CrawlJob(market, mirror)], {**overrides, **worker_settings(shared, url)}, spider=WorkerSpider
    )[0]


def run_writer(market: str, mirror: str | None, overrides: dict[str, Any], url: str) -> int | None:
    """Open a distributed crawl of the market and file what its workers hand over; returns the crawl id."""
    from spiders.cluster import WriterSpider

    running = active_crawl(connect(url), market)
    if running is not None:
        raise ClusterError(
            f"crawl {running.crawl_id} of {market} is still in progress in Redis; let it finish, stop it "
            f"with `dnm cluster stop {market}`, or close it with `dnm cluster reset {market}`"
        )
    settings = crawl_settings()
    writer = {
        "DNM_REDIS_URL": url,
        "DNM_CLUSTER_WRITER": True,
        # It downloads nothing, so it has no tor for the Tor middleware to use (the guard stays: nothing
        # could leave by another way).
        "DOWNLOADER_MIDDLEWARES": {
            **settings.getdict("DOWNLOADER_MIDDLEWARES"),
            "transport.middleware.TorTransportMiddleware": None,
        },
    }
    jobs = [CrawlJob(market, mirror)]
    final = run_crawlers(jobs, {**overrides, **writer}, spider=WriterSpider, fetches=False)[0]
    return final.get("dnm/crawl_id")


def crawl_progress(url: str, market: str) -> tuple[int, Progress] | None:
    """The market's distributed crawl in progress and where it stands, or None."""
    shared = active_crawl(connect(url), market)
    if shared is None:
        return None
    return shared.crawl_id, shared.progress()


def stop(url: str, market: str) -> int | None:
    """Ask the market's distributed crawl to stop; returns its id, or None when none is in progress."""
    shared = active_crawl(connect(url), market)
    if shared is None:
        return None
    shared.ask_stop()
    return shared.crawl_id


def reset(url: str, market: str, database_url: str | None) -> int | None:
    """Forget the market's distributed crawl in Redis (its writer is gone) and close its crawl row as partial
    if it is still running; returns its id, or None when none is in progress."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from models import Crawl
    from models.db import open_engine

    shared = active_crawl(connect(url), market)
    if shared is None:
        return None
    crawl_id = shared.crawl_id
    engine = open_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(Crawl)
                .where(Crawl.id == crawl_id, Crawl.status == "running")
                .values(
                    status="partial",
                    status_reason="distributed crawl reset: its writer stopped before the end",
                    finished_at=datetime.now(UTC),
                )
            )
    finally:
        engine.dispose()
    shared.close()
    return crawl_id
