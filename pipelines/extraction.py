"""Extraction: reads a captured page's records with its page type's field rules (raw strings only).

Settings: none of its own; the profile is the spider's. Stats: `dnm/extract/records/<kind>`,
`dnm/extract/errors` (a required field missing or a page that breaks the parser).
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler

from dnm.extraction import extract_records
from dnm.items import PageItem

logger = logging.getLogger(__name__)


class ExtractionPipeline:
    """Adds `raw_records` to each PageItem; never drops a page (barrier and unknown pages are stored too)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.hooks: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self.profile = self.crawler.spider.profile  # type: ignore[union-attr]
        self.hooks = self.profile.load_hooks()

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem) or not item.is_content:
            return item
        stats = self.crawler.stats
        assert stats is not None
        try:
            rule = self.profile.page(item.page_type)
            item.raw_records = extract_records(rule, item.parsed(), item.url)
            if self.hooks is not None and hasattr(self.hooks, "after_extract"):
                item.raw_records = self.hooks.after_extract(item, item.raw_records)
        except Exception as exc:  # a hostile page must not end the crawl; it is counted and kept
            stats.inc_value("dnm/extract/errors")
            item.errors.append(f"extraction failed: {type(exc).__name__}: {exc}")
            logger.warning("extraction failed on %s: %s", item.url, exc, exc_info=True)
            return item
        for raw in item.raw_records:
            stats.inc_value(f"dnm/extract/records/{raw.kind}")
            if raw.errors:
                stats.inc_value("dnm/extract/errors", len(raw.errors))
                item.errors.extend(raw.errors)
                logger.warning("extraction errors on %s: %s", item.url, "; ".join(raw.errors))
        return item
