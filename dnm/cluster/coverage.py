"""Coverage of a distributed crawl: pages discovered are counted across all workers, once each.

A page linked from pages two workers fetched is discovered by both; its key goes into one Redis set per
page type (`SharedCrawl.note_discovered`), and the writer reads the sets' sizes at the end. Fetched,
parsed and claimed counts are the writer's own (`dnm.coverage.CoverageExtension` sees every page it files).

Settings: EXTENSIONS replaces dnm.coverage.CoverageExtension with dnm.cluster.coverage.SharedCoverage on
workers (dnm.cluster.run does).
"""

from __future__ import annotations

from dnm.coverage import PREFIX, CoverageExtension


class SharedCoverage(CoverageExtension):
    """A worker's coverage counter: discovered pages go to the crawl's shared sets."""

    def note(self, page_type: str, count: str, key: str) -> None:
        if count != "discovered":
            super().note(page_type, count, key)
            return
        keys = self.seen[page_type][count]
        if key in keys:
            return
        keys.add(key)
        spider = self.crawler.spider
        total = spider.shared.note_discovered(page_type, key)  # type: ignore[union-attr]
        assert self.crawler.stats is not None
        self.crawler.stats.set_value(f"{PREFIX}{page_type}/discovered", total)
