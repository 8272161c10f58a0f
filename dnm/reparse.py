"""Re-parsing a crawl from its raw captures (`dnm reparse`): today's profile on the crawl's bytes, no network.

The crawl's pages are read in the order they were archived; each page's body is read from the WARC
record holding its payload (this crawl's file, or an earlier crawl's for a page unchanged since: see
dnm.rawstore), with every digest checked and the payload's SHA-256 compared with the page's. Each page
becomes the PageItem the spider made of it (URL, status and capture time of the fetch; headers and body
of the record; encoding as Scrapy reads it) with its page type classified by today's profile (barrier
and mirror-check pages keep theirs: they were never parsed). The items then go through the crawl's
own pipeline code (pipelines.extraction, pipelines.normalization, the coverage counter and the
archive writer) into a NEW crawl row with `reparse_of` set and transport `reparse`; the crawl read is
never touched. Every snapshot is stamped with the profile version that read it (`profile_version`)
and links to its page, whose row points at the same WARC record as the original's.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Headers, TextResponse
from scrapy.responsetypes import responsetypes
from scrapy.settings import Settings
from scrapy.statscollectors import StatsCollector
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dnm import __version__
from dnm.archive import ArchiveWriter, CrawlSetup
from dnm.coverage import CoverageExtension, shortfalls
from dnm.extraction import classify, extract_links
from dnm.items import PageItem
from dnm.profile import Profile, load_profile
from dnm.rawstore import RawRecord, RecordReader
from models import Crawl, Market, Page, Payload
from models.crawl import digest_prefix
from pipelines.extraction import ExtractionPipeline
from pipelines.normalization import NormalizationPipeline
from pipelines.storage import captured_page, crawl_status

logger = logging.getLogger(__name__)
# Revisits refer to the first stored copy of a payload; a chain longer than this is a broken store.
MAX_REVISIT_HOPS = 16


class ReparseError(Exception):
    """A crawl that cannot be re-parsed (unknown, no raw captures, a capture missing or corrupt)."""


@dataclass
class ReparseResult:
    """The new crawl a re-parse made."""

    crawl_id: int
    reparse_of: int
    status: str
    status_reason: str | None
    pages: int
    revisits: int
    parser_version: str
    stats: dict[str, Any] = field(default_factory=dict)


class _Signals:
    """Signals of the stand-in crawler: a re-parse has no engine to send any."""

    def connect(self, *args: Any, **kwargs: Any) -> None:
        return None


class _ReparseCrawler:
    """What the pipelines and the coverage counter use of a Scrapy crawler: settings, stats, the spider's
    profile. They run unchanged on it, so a re-parse reads pages with exactly the crawl's code."""

    def __init__(self, profile: Profile) -> None:
        self.settings = Settings()
        self.signals = _Signals()
        self.spider = self
        self.profile = profile
        self.stats = StatsCollector(cast(Crawler, self))


def reparse(
    engine: Engine, crawl_id: int, raw_directory: Path, profile_dir: Path | None = None
) -> ReparseResult:
    """Re-parse crawl `crawl_id` from its WARC file(s) under `raw_directory` into a new crawl row."""
    with Session(engine) as session:
        original = session.get(Crawl, crawl_id)
        if original is None:
            raise ReparseError(f"the archive holds no crawl {crawl_id}")
        market = session.scalar(select(Market.slug).where(Market.id == original.market_id))
        pages = session.execute(
            select(
                Page.url, Page.page_type, Page.status, Page.fetched_at,
                Payload.sha256, Payload.warc_file, Payload.warc_record_id,
            )
            .join(Payload, Page.payload_id == Payload.id)
            .where(Page.crawl_id == crawl_id, Payload.warc_record_id.is_not(None))
            .order_by(Page.id)
        ).all()  # fmt: skip
        settings_sha256, mirror = original.settings_sha256, original.mirror
        finish_reason = str((original.stats or {}).get("finish_reason") or "finished")
    assert market is not None
    if not pages:
        raise ReparseError(
            f"crawl {crawl_id} has no raw captures (made before the raw store, or a re-parse itself)"
        )
    for name in dict.fromkeys(page.warc_file for page in pages):
        if not (raw_directory / name).is_file():
            raise ReparseError(f"raw capture file {raw_directory / name} of crawl {crawl_id} is missing")
    profile = load_profile(market, profile_dir)

    crawler = _ReparseCrawler(profile)
    stats = crawler.stats
    as_crawler = cast(Crawler, crawler)
    pipelines: list[Any] = [ExtractionPipeline(as_crawler), NormalizationPipeline(as_crawler)]
    for pipeline in pipelines:
        pipeline.open_spider()
    coverage = CoverageExtension(as_crawler)
    for path in profile.start:
        # Page keys are path and query: the host of these stand-in requests does not matter.
        request = Request(urljoin("http://reparse.invalid/", path.lstrip("/")))
        request.meta["dnm_expected_type"] = profile.pages[0].name
        coverage.request_scheduled(request, crawler)

    writer = ArchiveWriter(
        engine,
        profile,
        CrawlSetup(
            tool_version=__version__,
            settings_sha256=settings_sha256,
            transport="reparse",
            mirror=mirror,
            reparse_of=crawl_id,
        ),
    )
    new_id = writer.begin()
    stats.set_value("dnm/crawl_id", new_id)
    stats.set_value("dnm/reparse/of", crawl_id)
    resolver = _Resolver(engine, raw_directory)
    failed = 0
    for page in pages:
        record = resolver.record(page.warc_file, page.warc_record_id)
        if record.payload_sha256 != page.sha256:
            raise ReparseError(
                f"{page.url} of crawl {crawl_id}: record {page.warc_record_id} holds another payload"
            )
        item = _page_item(profile, page, record)
        stats.inc_value("dnm/reparse/records")
        if record.date != page.fetched_at:
            stats.inc_value("dnm/reparse/revisits")  # bytes stored by another fetch
        if ":" not in item.page_type:  # as the spider counts: content pages only
            stats.inc_value(f"dnm/pages/{item.page_type}")
        for pipeline in pipelines:
            item = pipeline.process_item(item)
        coverage.item_scraped(item, None, crawler)
        for request in _links(profile, item):
            coverage.request_scheduled(request, crawler)
        try:
            writer.write_page(captured_page(item), item.records)
        except Exception:
            failed += 1
            stats.inc_value("dnm/storage/errors")
            logger.exception("could not store the re-parse of %s", item.url)
            continue
        stats.inc_value("dnm/stored/pages")
        if item.is_content:
            stats.inc_value("dnm/stored/content_pages")
        for record_ in item.records:
            stats.inc_value(f"dnm/stored/{record_.kind}")
    values = stats.get_stats()
    status, why = crawl_status(
        finish_reason,
        failed,
        values.get("dnm/stored/content_pages", 0),
        shortfalls(values, profile.completeness.threshold),
    )
    stats.set_value("finish_reason", finish_reason)
    stats.set_value("dnm/records/duplicate", writer.duplicates)
    stats.set_value("dnm/crawl_status", status)
    writer.finish(status, why, dict(stats.get_stats()))
    return ReparseResult(
        crawl_id=new_id,
        reparse_of=crawl_id,
        status=status,
        status_reason=why,
        pages=int(values.get("dnm/reparse/records", 0)),
        revisits=int(values.get("dnm/reparse/revisits", 0)),
        parser_version=profile.parser_version,
        stats=dict(stats.get_stats()),
    )


def _page_item(profile: Profile, page: Any, record: RawRecord) -> PageItem:
    """The PageItem the spider made of a fetch, its page type read with today's profile."""
    assert record.body is not None
    body = record.body
    headers = Headers(record.headers)
    response_class = responsetypes.from_args(headers=headers, url=page.url, body=body)
    response = response_class(url=page.url, status=page.status, headers=headers, body=body)
    text = isinstance(response, TextResponse)
    page_type = page.page_type
    if ":" not in page_type:
        # Content pages are classified again: today's profile may know a page the old one did not.
        rule = classify(profile, page.url, response.selector) if text else None
        page_type = rule.name if rule else "unknown"
    return PageItem(
        url=page.url,
        page_type=page_type,
        status=page.status,
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        fetched_at=page.fetched_at,
        encoding=response.encoding if text else "latin-1",
        selector=response.selector if text else None,
        warc_file=page.warc_file,
        warc_record_id=page.warc_record_id,
        payload_sha256=page.sha256,
    )


def _links(profile: Profile, item: PageItem) -> Iterator[Request]:
    """The requests the spider would have made from this page, for the coverage counter."""
    if not item.is_content or item.selector is None:
        return
    rule = profile.page(item.page_type)
    for url, to in extract_links(rule, item.selector, item.url):
        yield Request(url, meta={"dnm_expected_type": to})


class _Resolver:
    """Records by id, with their payload: a revisit record (an archive made before revision 0004 may point
    a page at one) is followed to the record it refers to, found through the payloads table."""

    def __init__(self, engine: Engine, raw_directory: Path) -> None:
        self.engine = engine
        self.reader = RecordReader(raw_directory)
        self.files: dict[str, str | None] = {}

    def record(self, warc_file: str, record_id: str) -> RawRecord:
        try:
            first = self.reader.read(warc_file, record_id)
        except (LookupError, OSError, ValueError) as exc:
            raise ReparseError(f"record {record_id} in {warc_file}: {exc}") from exc
        current, hops = first, 0
        while current.body is None:
            if current.refers_to is None or hops >= MAX_REVISIT_HOPS:
                raise ReparseError(f"revisit {record_id} in {warc_file} does not resolve to a payload")
            where = self.file_of(current.refers_to, current.payload_sha256) or warc_file
            try:
                current = self.reader.read(where, current.refers_to)
            except (LookupError, OSError, ValueError) as exc:
                raise ReparseError(f"revisit {record_id} in {warc_file}: {exc}") from exc
            hops += 1
        if current.payload_sha256 != first.payload_sha256:
            raise ReparseError(
                f"revisit {record_id} in {warc_file} refers to {current.record_id}, "
                "whose payload digest differs"
            )
        return replace(first, body=current.body)

    def file_of(self, record_id: str, payload_sha256: str) -> str | None:
        """The file of the record a revisit refers to, found by the payload digest the revisit carries
        (payloads are indexed by digest, not by record id): the payload row of those bytes names the
        record, and its file, when it is that record."""
        if record_id not in self.files:
            with Session(self.engine) as session:
                self.files[record_id] = session.scalar(
                    select(Payload.warc_file).where(
                        Payload.sha256_prefix == digest_prefix(payload_sha256),
                        Payload.sha256 == payload_sha256,
                        Payload.warc_record_id == record_id,
                    )
                )
        return self.files[record_id]
