"""The bare side of the benchmark: a spider that fetches a fixed URL list and does nothing else.

Run as `python -m bench.bare URLS_FILE OVERRIDES_FILE`: the URLs (one a line) become start
requests; the overrides (JSON) are the very ones the pipeline run gets, applied through
`dnm.crawler.crawl_settings`, so transport, allowed hosts, concurrency, download handler and
middlewares are the same. Only `ITEM_PIPELINES` is emptied.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

from dnm.crawler import crawl_settings


class BareSpider(scrapy.Spider):
    """Requests each given URL once; the callback ignores the response."""

    name = "bench-bare"

    def __init__(self, urls: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = list(urls)

    async def start(self) -> AsyncIterator[Any]:
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> None:
        """Nothing: the point of this side is the cost of fetching alone."""


def run_bare(urls: Sequence[str], overrides: dict[str, Any]) -> None:
    """Crawl the URLs with dnm-archive's settings plus overrides, no item pipelines (blocks)."""
    settings = crawl_settings(overrides)
    settings.set("ITEM_PIPELINES", {}, priority="cmdline")
    process = CrawlerProcess(settings, install_root_handler=True)
    # As dnm.crawler.run_crawls does, so both sides log alike.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    process.crawl(BareSpider, urls=urls)
    process.start()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("urls_file", type=Path, help="URLs to fetch, one a line")
    parser.add_argument("overrides_file", type=Path, help="Scrapy setting overrides as a JSON object")
    args = parser.parse_args(argv)
    urls = [line for line in args.urls_file.read_text().splitlines() if line]
    run_bare(urls, json.loads(args.overrides_file.read_text()))


if __name__ == "__main__":
    main()
