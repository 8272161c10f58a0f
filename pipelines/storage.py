"""Storage: files each page and its records into the archive as timestamped snapshots.

Settings: `DNM_DATABASE_URL` (else the environment variable of that name, else var/archive.sqlite),
`DNM_TRANSPORT`, `DNM_TOR_VERSION`, `DNM_RAW_DIR` (to seal a dead crawl's capture). Stats: `dnm/crawl_id`,
`dnm/stored/pages`, `dnm/storage/errors`, `dnm/stopped` (why the crawl was stopped: a full disk).
A crawl row is `running` while the spider runs and is closed as `complete` only when the spider
finished normally, every page was stored and every page type reached the profile's coverage
threshold (`dnm.coverage`); otherwise `partial` (with every reason) or `failed` (no content page).
Before the crawl row is made, crawls of the market whose process died are closed (dnm.recovery).
A disk that cannot take more (full, over quota, past the file size limit) stops the crawl with that
reason: what is committed stays, and the crawl is not `complete`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro
from sqlalchemy import event

from dnm import __version__
from dnm.archive import ArchiveWriter, CapturedPage, CrawlSetup
from dnm.coverage import shortfalls
from dnm.drift import check, fields_of, notify, run_report
from dnm.items import PageItem
from dnm.rawstore import raw_dir
from dnm.recovery import close_interrupted
from models.db import open_engine
from pipelines.diskfull import disk_failure, stop_crawl
from pipelines.killpoints import KillPoint, kill_now

logger = logging.getLogger(__name__)

# The settings that change what a crawl fetches or how; their hash goes on the crawl row.
RECORDED_SETTINGS = (
    "DNM_TRANSPORT",
    "DNM_ALLOWED_HOSTS",
    "DNM_FETCH_MEDIA",
    "CONCURRENT_REQUESTS",
    "CONCURRENT_REQUESTS_PER_DOMAIN",
    "DOWNLOAD_DELAY",
    "DOWNLOAD_TIMEOUT",
    "DOWNLOAD_MAXSIZE",
    "RETRY_TIMES",
    "USER_AGENT",
    "AUTOTHROTTLE_ENABLED",
    "CLOSESPIDER_TIMEOUT",
    "CLOSESPIDER_PAGECOUNT",
)


def settings_hash(crawler: Crawler) -> str:
    """SHA-256 over the recorded settings, in canonical JSON."""
    values = {name: crawler.settings.get(name) for name in RECORDED_SETTINGS}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def captured_page(item: PageItem) -> CapturedPage:
    """What the archive files of a page item (the crawl's pipeline and `dnm reparse` alike)."""
    return CapturedPage(
        url=item.url,
        page_type=item.page_type,
        status=item.status,
        sha256=item.sha256,
        size=len(item.body),
        fetched_at=item.fetched_at,
        server_time=item.server_time,
        extraction_errors=len(item.errors),
        warc_file=item.warc_file,
        warc_record_id=item.warc_record_id,
        payload_sha256=item.payload_sha256,
    )


class SnapshotPipeline:
    """The last pipeline: writes the crawl row, each page, and its snapshots."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.writer: ArchiveWriter | None = None
        self.failed_pages = 0
        self.kill = KillPoint(crawler.settings.get("DNM_TEST_KILL_AT"))
        self.cannot_begin: str | None = None  # why no crawl row could be made (a full disk)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SnapshotPipeline:
        pipeline = cls(crawler)
        # The finish reason is only known at spider_closed, which Scrapy sends after pipelines close.
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(pipeline.spider_opened, signal=signals.spider_opened)
        return pipeline

    def spider_opened(self, spider: Any) -> None:
        if self.cannot_begin and self.crawler.engine is not None:
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="disk_full"))

    def open_spider(self) -> None:
        spider = self.crawler.spider
        settings = self.crawler.settings
        engine = open_engine(settings.get("DNM_DATABASE_URL"))
        setup = CrawlSetup(
            tool_version=__version__,
            settings_sha256=settings_hash(self.crawler),
            transport=settings.get("DNM_TRANSPORT", "direct"),
            mirror=getattr(spider, "base_url", None),
            tor_version=settings.get("DNM_TOR_VERSION"),
        )
        market = spider.profile.market  # type: ignore[union-attr]
        # Crawls of this market whose process died are closed first (never `complete`), their raw capture
        # sealed: this crawl's payload lookups then only find records that are on disk.
        writer = ArchiveWriter(engine, spider.profile, setup)  # type: ignore[union-attr]
        try:
            close_interrupted(engine, market, raw_dir(settings.get("DNM_RAW_DIR")))
            crawl_id = writer.begin()
        except Exception as exc:
            failure = disk_failure(exc)
            if failure is None:
                raise
            where = engine.url.render_as_string(hide_password=True)
            # The spider is not open yet: it is closed as soon as it is (spider_opened).
            self.cannot_begin = f"disk full ({failure}) while writing the archive {where}: no crawl began"
            logger.error("%s: the crawl stops", self.cannot_begin)
            self.crawler.stats.set_value("dnm/stopped", self.cannot_begin)  # type: ignore[union-attr]
            return
        self.writer = writer
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("dnm/crawl_id", crawl_id)
        logger.info("crawl %s of %s started", crawl_id, market)
        self.kill.reached("begin")

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem) or self.writer is None:
            return item  # (no writer: the crawl could not begin, and is stopping)
        assert self.crawler.stats is not None
        page = captured_page(item)
        if self.crawler.stats.get_value("dnm/stopped") and self.crawler.stats.get_value("dnm/storage/disk"):
            self.failed_pages += 1  # the archive's disk is full: this page would fail like the last
            return item
        try:
            self.writer.write_page(page, item.records)
        except Exception as exc:
            self.failed_pages += 1
            self.crawler.stats.inc_value("dnm/storage/errors")
            failure = disk_failure(exc)
            if failure is None:
                logger.exception("could not store %s; the page's records are not archived", item.url)
                return item
            self.crawler.stats.set_value("dnm/storage/disk", failure)
            where = self.writer.engine.url.render_as_string(hide_password=True)
            stop_crawl(self.crawler, f"disk full ({failure}) while writing the archive {where}")
            return item
        self.kill.reached("commit")
        self.crawler.stats.inc_value("dnm/stored/pages")
        if item.is_content:
            self.crawler.stats.inc_value("dnm/stored/content_pages")
        for record in item.records:
            self.crawler.stats.inc_value(f"dnm/stored/{record.kind}")
        return item

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.writer is None:
            return
        stats = self.crawler.stats
        assert stats is not None
        self.kill.reached("close")
        mirrors = getattr(spider, "mirrors", None)
        if mirrors is not None and stats.get_value("dnm/mirrors") is None:
            # (A distributed crawl's writer has put its workers' reports there: they checked the mirrors.)
            stats.set_value("dnm/mirrors", mirrors.report())
        threshold = spider.profile.completeness.threshold
        stopped = stats.get_value("dnm/stopped")
        status, why = crawl_status(
            reason,
            self.failed_pages,
            stats.get_value("dnm/stored/content_pages", 0),
            ([stopped] if stopped else []) + shortfalls(stats.get_stats(), threshold),
        )
        stats.set_value("dnm/records/duplicate", self.writer.duplicates)
        stats.set_value("dnm/crawl_status", status)
        self.watch_drift(spider.profile, status)
        # The mirror recorded is the one crawled: not a refused clone offered first, not a dead primary.
        used = mirrors.current() if mirrors is not None else None
        if self.kill.due("finish"):
            event.listen(self.writer.sessions, "after_flush", kill_now)
        try:
            self.writer.finish(status, why, dict(stats.get_stats()), used.url if used else None)
        except Exception as exc:
            # Its pages are committed; the row stays `running` and the next crawl of the market closes it.
            failure = disk_failure(exc)
            stats.set_value("dnm/crawl_status", "running")
            message = f"could not close crawl {self.writer.crawl_id} as {status}"
            if failure is None:
                logger.exception("%s; the next crawl of the market closes it as interrupted", message)
            else:
                stats.set_value(
                    "dnm/stopped", stopped or f"disk full ({failure}) while closing the crawl row"
                )
                logger.error("%s: disk full (%s); the next crawl of the market closes it", message, failure)
        self.writer.engine.dispose()

    def watch_drift(self, profile: Any, status: str) -> None:
        """The run report, compared with the market's last good crawl (dnm.drift); alarms into the stats."""
        assert (
            self.writer is not None and self.writer.crawl_id is not None and self.writer.market_id is not None
        )
        stats = self.crawler.stats
        assert stats is not None
        report = run_report(stats.get_stats(), status, fields_of(profile))
        stats.set_value("dnm/run_report", report)
        try:
            baseline, alarms = check(
                self.writer.engine, self.writer.market_id, self.writer.crawl_id, report, profile.drift
            )
        except Exception:
            # Monitoring must never lose a crawl: the data is stored; the comparison is logged as failed.
            logger.exception("could not compare crawl %s with the last good one", self.writer.crawl_id)
            return
        stats.set_value("dnm/drift/baseline", baseline)
        stats.set_value("dnm/drift/alarms", [str(alarm) for alarm in alarms])
        for alarm in alarms:
            logger.warning("drift alarm: %s", alarm)
        hook = self.crawler.settings.get("DNM_DRIFT_HOOK")
        if alarms and hook:
            notify(hook, profile.market, self.writer.crawl_id, alarms)


def crawl_status(
    finish_reason: str, failed_pages: int, content_pages: int, coverage_shortfalls: list[str] | None = None
) -> tuple[str, str | None]:
    """How a crawl ended: `complete` only for a normal finish, every page stored, and coverage reached."""
    if content_pages == 0:
        return "failed", f"no content page archived (spider finished: {finish_reason})"
    reasons = []
    if finish_reason != "finished":
        reasons.append(f"spider stopped early: {finish_reason}")
    if failed_pages:
        reasons.append(f"{failed_pages} page(s) could not be stored")
    reasons += coverage_shortfalls or []
    return ("partial", "; ".join(reasons)) if reasons else ("complete", None)
