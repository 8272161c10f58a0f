"""Running crawls in this process: dnm.settings plus overrides, one crawler per market."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from spiders.market import MarketSpider
from transport.process import TorInstance, tor_for_crawl


@dataclass(frozen=True)
class CrawlJob:
    """One market to crawl, optionally on a given mirror."""

    market: str
    mirror: str | None = None


def crawl_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """dnm-archive's Scrapy settings with command-line overrides on top."""
    settings = Settings()
    settings.setmodule("dnm.settings", priority="project")
    if overrides:
        settings.setdict(overrides, priority="cmdline")
    return settings


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def quiet_known_noise() -> None:
    """Silence log lines we know about: httpx2 logs every request at INFO, and Scrapy warns at every
    start that its httpx handler is experimental (we pin Scrapy exactly and test that path in CI)."""
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    # httpcore logs every request's and response's headers at DEBUG: Cookie and Set-Cookie values, the
    # session tokens that must never reach a log (`--set LOG_LEVEL=DEBUG` would print them all).
    logging.getLogger("httpcore2").setLevel(logging.INFO)
    logging.getLogger("scrapy.core.downloader.handlers._base_streaming").addFilter(
        _DropMessage("is experimental and is not recommended")
    )


def _bootstrap_printer(console: Console) -> Callable[[int, str], None]:
    last = [-1]

    def show(percent: int, line: str) -> None:
        if percent != last[0]:
            last[0] = percent
            console.print(f"tor: bootstrapped {percent}% ({line.rsplit('): ', 1)[-1]})", highlight=False)

    return show


def run_crawls(
    jobs: Sequence[CrawlJob], overrides: dict[str, Any] | None = None, *, progress: bool = False
) -> list[int | None]:
    """Run the jobs concurrently until all finish; returns each job's crawl id (None if it never started)."""
    return [stats.get("dnm/crawl_id") for stats in run_crawlers(jobs, overrides, progress=progress)]


def run_crawlers(
    jobs: Sequence[CrawlJob],
    overrides: dict[str, Any] | None = None,
    *,
    progress: bool = False,
    spider: type[MarketSpider] = MarketSpider,
    fetches: bool = True,
) -> list[dict[str, Any]]:
    """Run the jobs concurrently until all finish; returns each crawler's final stats.

    `spider` is the spider class (the cluster's worker and writer are MarketSpider's); `fetches=False`
    for a crawler that fetches nothing itself (the cluster's writer), which needs no Tor.
    """
    settings = crawl_settings(overrides)
    tor: TorInstance | None = None
    if fetches and settings.get("DNM_TRANSPORT") == "tor":
        # The crawl starts only once Tor is ready; its ports and version go to every component.
        tor = tor_for_crawl(settings, _bootstrap_printer(Console(stderr=True)))
        settings.setdict(tor.settings(), priority="cmdline")
    try:
        return _run(jobs, settings, progress, spider)
    finally:
        if tor is not None:
            tor.stop()


def _run(
    jobs: Sequence[CrawlJob], settings: Settings, progress: bool, spider: type[MarketSpider]
) -> list[dict[str, Any]]:
    display: Any = nullcontext()
    if progress:
        display = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("pages"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        settings.set("DNM_PROGRESS", display, priority="cmdline")
        settings.set(
            "EXTENSIONS",
            {**settings.getdict("EXTENSIONS"), "dnm.progress.CrawlProgress": 100},
            priority="cmdline",
        )
    process = CrawlerProcess(settings)
    quiet_known_noise()
    crawlers = []
    for job in jobs:
        crawler = process.create_crawler(spider)
        process.crawl(crawler, market=job.market, mirror=job.mirror)
        crawlers.append(crawler)
    with display:
        process.start()
    return [dict(crawler.stats.get_stats()) if crawler.stats else {} for crawler in crawlers]
