"""The benchmark's Scrapy extension: times a crawl the same way on both sides and writes its stats out.

Enabled through `EXTENSIONS` on both the pipeline run and the bare run. Settings:
`BENCH_STATS_FILE` (required: where the JSON stats go at spider close). Stats it adds:
`bench/first_request` and `bench/last_response`, `bench/last_item` (monotonic seconds),
`bench/elapsed` (first request to the later of the last response and the last item through the
pipelines), and it tops up Scrapy's `memusage/max` at close.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.statscollectors import StatsCollector

# The dotted path other modules put in EXTENSIONS; after CoreStats (0), so finish_time is set first.
EXTENSION_PATH = "bench.timing.CrawlTiming"
EXTENSION_ORDER = 1000


def peak_rss() -> int:
    """This process's peak resident set size in bytes (the quantity Scrapy's MemoryUsage reports)."""
    size = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return size if sys.platform == "darwin" else size * 1024  # KB on Linux, bytes on macOS


class CrawlTiming:
    """Records when the first request left and the last response and item arrived."""

    def __init__(self, crawler: Crawler) -> None:
        path = crawler.settings.get("BENCH_STATS_FILE")
        if not path:
            raise NotConfigured("BENCH_STATS_FILE is not set")
        assert crawler.stats is not None
        self.stats: StatsCollector = crawler.stats
        self.path = Path(path)
        self.first_request: float | None = None
        self.last_response: float | None = None
        self.last_item: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlTiming:
        timing = cls(crawler)
        crawler.signals.connect(timing.request_reached, signal=signals.request_reached_downloader)
        crawler.signals.connect(timing.response_received, signal=signals.response_received)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(timing.item_done, signal=signal)
        crawler.signals.connect(timing.spider_closed, signal=signals.spider_closed)
        return timing

    def request_reached(self, **_: Any) -> None:
        if self.first_request is None:
            self.first_request = time.monotonic()

    def response_received(self, **_: Any) -> None:
        self.last_response = time.monotonic()

    def item_done(self, **_: Any) -> None:
        self.last_item = time.monotonic()

    def spider_closed(self, **_: Any) -> None:
        """Add the timings, top up memusage/max, and write every stat to BENCH_STATS_FILE."""
        # MemoryUsage samples every 60 s, so a shorter crawl would report its startup size;
        # ru_maxrss is a high-water mark, so one more sample now makes memusage/max the true peak.
        self.stats.max_value("memusage/max", peak_rss())
        if self.first_request is not None:
            self.stats.set_value("bench/first_request", self.first_request)
        if self.last_response is not None:
            self.stats.set_value("bench/last_response", self.last_response)
        if self.last_item is not None:
            self.stats.set_value("bench/last_item", self.last_item)
        end = max((t for t in (self.last_response, self.last_item) if t is not None), default=None)
        if self.first_request is not None and end is not None:
            self.stats.set_value("bench/elapsed", end - self.first_request)
        self.path.write_text(json.dumps(self.stats.get_stats(), default=str, sort_keys=True, indent=1))
