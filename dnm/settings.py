"""Scrapy settings of dnm-archive: every knob with its default, in one place.

The generic spider, pipelines and middlewares read these; `dnm crawl` and tests override them.
"""

from __future__ import annotations

BOT_NAME = "dnm-archive"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

# -- dnm-archive's own settings ----------------------------------------------------------------
DNM_TRANSPORT = "tor"  # "tor" (the default, onion hosts only) or "direct" (allowed hosts only)
DNM_ALLOWED_HOSTS: list[str] = []  # hosts fetched without Tor: loopback test servers only
DNM_FETCH_MEDIA = False  # images, video and binaries are never fetched unless this is on
DNM_DATABASE_URL: str | None = None  # else $DNM_DATABASE_URL, else sqlite:///var/archive.sqlite
DNM_PROFILE_DIR: str | None = None  # else $DNM_PROFILE_DIR, else config/markets/
DNM_TOR_VERSION: str | None = None  # set by the Tor transport when it starts

# -- behaving like a careful human visitor ------------------------------------------------------
# Tor Browser's User-Agent: the crawler must not identify itself to the markets it studies.
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
}
ROBOTSTXT_OBEY = False  # markets publish none worth obeying, and fetching it is one more request
COOKIES_ENABLED = True
TELNETCONSOLE_ENABLED = False
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 8
DOWNLOAD_TIMEOUT = 90
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
RETRY_TIMES = 4
REDIRECT_MAX_TIMES = 5
MEDIA_ALLOW_REDIRECTS = False

DOWNLOADER_MIDDLEWARES = {
    "dnm.middlewares.guard.TransportGuardMiddleware": 50,
    "dnm.middlewares.media.MediaGuardMiddleware": 60,
}
ITEM_PIPELINES = {
    "pipelines.extraction.ExtractionPipeline": 100,
    "pipelines.normalization.NormalizationPipeline": 200,
    "pipelines.storage.SnapshotPipeline": 900,
}

LOG_LEVEL = "INFO"
STATS_DUMP = False  # the stats are kept on the crawl row and summarised at the end instead
FEED_EXPORT_ENCODING = "utf-8"
