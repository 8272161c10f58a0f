"""Normalization: turns raw record strings into typed values (prices, regions, dates, names, keys).

Relative dates are resolved against the market's own clock when the profile says where the page
prints it, else against the capture time. A normalizer that raises anything but a NormalizationError (a
bug) leaves the page stored without records, counted under `dnm/normalize/errors/crashed`. Stats:
`dnm/normalize/errors/<kind>.<field>`, `dnm/records/dropped/<kind>` (a required field could not be
read), and fill counts for drift detection (dnm.drift): `dnm/fill/<page type>/<kind>/records` and
`dnm/fill/<page type>/<kind>/<field>` (records whose field has a value), over every record the page
yielded, stored or not.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler

from dnm.extraction import read_field
from dnm.items import PageItem
from dnm.normalization import context_for, normalize_records
from dnm.normalize import NormalizationError, normalize

logger = logging.getLogger(__name__)


class NormalizationPipeline:
    """Fills `records` on each PageItem from its `raw_records`."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalizationPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self.profile = self.crawler.spider.profile  # type: ignore[union-attr]
        self.fields: dict[str, dict[str, tuple[str, ...]]] = {}

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem) or not item.raw_records:
            return item
        stats = self.crawler.stats
        assert stats is not None
        item.server_time = self.server_time(item)
        context = context_for(self.profile, item.server_time or item.fetched_at)
        try:
            records = normalize_records(
                self.profile.page(item.page_type), item.raw_records, context, self.profile
            )
        except Exception as exc:  # a normalizer bug must not lose the page: it is stored, counted, logged
            stats.inc_value("dnm/normalize/errors/crashed")
            item.errors.append(f"normalization failed: {type(exc).__name__}: {exc}")
            logger.error("normalization failed on %s: %s", item.url, exc, exc_info=True)
            return item
        self.count_fill(item.page_type, records)
        for record in records:
            for error in record.errors:
                stats.inc_value(f"dnm/normalize/errors/{error.split(':', 1)[0]}")
            if record.errors:
                logger.warning("normalization errors on %s: %s", item.url, "; ".join(record.errors))
                item.errors.extend(e for e in record.errors if e not in item.errors)
            if record.storable:
                item.records.append(record)
            else:
                stats.inc_value(f"dnm/records/dropped/{record.kind}")
        return item

    def count_fill(self, page_type: str, records: list[Any]) -> None:
        """How many records of each kind the page yielded, and how many have each profile field filled."""
        stats = self.crawler.stats
        assert stats is not None
        fields = self.fields.get(page_type)
        if fields is None:
            rule = self.profile.page(page_type)
            fields = self.fields[page_type] = {r.kind: tuple(f.name for f in r.fields) for r in rule.records}
        for record in records:
            prefix = f"dnm/fill/{page_type}/{record.kind}"
            stats.inc_value(f"{prefix}/records")
            for name in fields.get(record.kind, ()):
                if filled(record.values.get(name)):
                    stats.inc_value(f"{prefix}/{name}")

    def server_time(self, item: PageItem) -> Any:
        """The market clock printed on the page, if the profile knows where; None otherwise."""
        if self.profile.clock is None:
            return None
        shown = read_field(self.profile.clock, item.parsed(), item.url)
        if not isinstance(shown, str):
            return None
        try:
            # Not checked against the capture time: a market's clock may run on its own timeline (the demo's
            # does); a clock at the calendar's end (9999-12-31) is read, and dates against it are errors.
            return normalize(self.profile.clock.normalize or "instant", shown)
        except NormalizationError as exc:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("dnm/normalize/errors/clock")
            logger.warning("unreadable market clock on %s: %s", item.url, exc)
            return None


def filled(value: Any) -> bool:
    """Whether a normalized value says something: not missing, not an empty string, list or region set.

    0 and False are values (no stock left, no escrow)."""
    if value is None:
        return False
    if isinstance(value, str | list | tuple | dict | set):
        return bool(value)
    codes = getattr(value, "codes", None)
    if codes is not None:  # Regions: the codes named, or those excluded
        return bool(codes) or bool(getattr(value, "excluded", ()))
    return True
