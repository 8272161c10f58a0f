"""Running crawls in this process: dnm.settings plus overrides, one crawler per market."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from spiders.market import MarketSpider


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


def run_crawls(
    jobs: Sequence[CrawlJob], overrides: dict[str, Any] | None = None, *, progress: bool = False
) -> list[int | None]:
    """Run the jobs concurrently until all finish; returns each job's crawl id (None if it never started)."""
    settings = crawl_settings(overrides)
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
    process = CrawlerProcess(settings, install_root_handler=True)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    crawlers = []
    for job in jobs:
        crawler = process.create_crawler(MarketSpider)
        process.crawl(crawler, market=job.market, mirror=job.mirror)
        crawlers.append(crawler)
    with display:
        process.start()
    return [crawler.stats.get_value("dnm/crawl_id") if crawler.stats else None for crawler in crawlers]
