"""The benchmark's Scrapy extension: times a crawl the same way on both sides and writes its stats out.

Enabled through `EXTENSIONS` on both the pipeline run and the bare run. Settings:
`BENCH_STATS_FILE` (required: where the JSON stats go at spider close). Stats it adds:
`bench/first_request` and `bench/last_response`, `bench/last_item` (monotonic seconds),
`bench/elapsed` (first request to the later of the last response and the last item through the
pipelines), `bench/cpu` (CPU seconds this process used in that window),
`bench/peak_rss` (bytes, the process's own high-water mark at spider close).
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
    """This process's own peak resident set size in bytes.

    Not ru_maxrss, which Scrapy's MemoryUsage reads: Linux carries it over from the parent across
    fork and exec, so a crawl launched by the benchmark (which holds the rendered site) would
    report the benchmark's size. VmHWM belongs to the process's own address space.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # "VmHWM:   123456 kB"
    except OSError:
        pass  # no procfs (macOS): ru_maxrss is the best there is
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
        self.first_request_cpu: float | None = None
        self.last_cpu: float | None = None
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
            self.first_request_cpu = time.process_time()

    def response_received(self, **_: Any) -> None:
        self.last_response = time.monotonic()
        self.last_cpu = time.process_time()

    def item_done(self, **_: Any) -> None:
        self.last_item = time.monotonic()
        self.last_cpu = time.process_time()

    def spider_closed(self, **_: Any) -> None:
        """Add the timings and the peak RSS, and write every stat to BENCH_STATS_FILE."""
        # Measured at close: the high-water mark covers the whole crawl, whatever its length.
        self.stats.set_value("bench/peak_rss", peak_rss())
        if self.first_request is not None:
            self.stats.set_value("bench/first_request", self.first_request)
        if self.last_response is not None:
            self.stats.set_value("bench/last_response", self.last_response)
        if self.last_item is not None:
            self.stats.set_value("bench/last_item", self.last_item)
        end = max((t for t in (self.last_response, self.last_item) if t is not None), default=None)
        if self.first_request is not None and end is not None:
            self.stats.set_value("bench/elapsed", end - self.first_request)
        if self.first_request_cpu is not None and self.last_cpu is not None:
            # CPU over the same window: tells a CPU-bound side from one waiting on the network.
            self.stats.set_value("bench/cpu", self.last_cpu - self.first_request_cpu)
        self.path.write_text(json.dumps(self.stats.get_stats(), default=str, sort_keys=True, indent=1))
