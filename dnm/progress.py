"""Progress display of running crawls: pages fetched against pages known, per market, on the terminal.

Enabled by the `DNM_PROGRESS` setting holding a rich Progress (the CLI sets it when stderr is a
terminal); otherwise Scrapy's periodic LogStats lines are the progress report.
"""

from __future__ import annotations

from typing import Any

from rich.progress import Progress, TaskID
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured


class CrawlProgress:
    """A Scrapy extension that moves one progress bar per crawler."""

    def __init__(self, crawler: Crawler, progress: Progress) -> None:
        self.crawler = crawler
        self.progress = progress
        self.task: TaskID | None = None
        self.fetched = 0
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.response_received, signal=signals.response_received)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        progress = crawler.settings.get("DNM_PROGRESS")
        if not isinstance(progress, Progress):
            raise NotConfigured("no progress display")
        return cls(crawler, progress)

    def spider_opened(self, spider: Any) -> None:
        self.task = self.progress.add_task(getattr(spider, "market", spider.name), total=None)

    def response_received(self, **_: Any) -> None:
        self.fetched += 1
        assert self.task is not None
        engine = self.crawler.engine
        pending = len(engine._slot.scheduler) if engine and engine._slot else 0  # type: ignore[arg-type]
        self.progress.update(self.task, completed=self.fetched, total=self.fetched + pending)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.task is not None:
            self.progress.update(
                self.task,
                total=self.fetched,
                completed=self.fetched,
                description=f"{spider.market} ({reason})",
            )
