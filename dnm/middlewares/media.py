"""Media guard: images, video and binaries are not downloaded unless a setting says so.

Real markets can carry abusive media; an archive for researchers must not collect it by accident.
Requests for media-looking URLs are refused before they leave, and any response whose headers
announce a non-text type is cut off before its body is read. The one exception is a CAPTCHA image
the barrier middleware fetches for a solver (`meta["dnm_captcha_image"]`); it is never archived.
Settings: `DNM_FETCH_MEDIA` (default False). Stats: `dnm/media/refused`, `dnm/media/stopped`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured, StopDownload

logger = logging.getLogger(__name__)

MEDIA_SUFFIXES = (
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".svg", ".ico", ".tif", ".tiff", ".avif",
    ".mp4", ".webm", ".avi", ".mov", ".mkv", ".mp3", ".ogg", ".wav",
    ".zip", ".rar", ".7z", ".gz", ".exe", ".apk", ".pdf", ".bin",
)  # fmt: skip
TEXT_TYPES = ("text/", "application/xhtml", "application/xml", "application/json")


def is_media_url(url: str) -> bool:
    """True when the URL's path ends like a media or binary file."""
    return urlsplit(url).path.lower().endswith(MEDIA_SUFFIXES)


def is_text_type(content_type: str) -> bool:
    """True for a Content-Type a page can have (missing counts as text: it is sniffed later)."""
    content_type = content_type.strip().lower()
    return not content_type or content_type.startswith(TEXT_TYPES)


class MediaGuardMiddleware:
    """Refuses media requests and stops non-text downloads at their headers."""

    def __init__(self, crawler: Crawler) -> None:
        if crawler.settings.getbool("DNM_FETCH_MEDIA"):
            raise NotConfigured("DNM_FETCH_MEDIA is on")
        self.stats = crawler.stats
        crawler.signals.connect(self.headers_received, signal=signals.headers_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MediaGuardMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> Any:
        if request.meta.get("dnm_captcha_image"):
            return None  # a CAPTCHA a solver must see: the only image a crawl fetches
        if is_media_url(request.url):
            assert self.stats is not None
            self.stats.inc_value("dnm/media/refused")
            raise IgnoreRequest(f"media not fetched (DNM_FETCH_MEDIA is off): {request.url}")
        return None

    def headers_received(self, headers: Any, body_length: int, request: Request, spider: Spider) -> None:
        content_type = (headers.get(b"Content-Type") or b"").decode("latin-1")
        if request.meta.get("dnm_captcha_image") and content_type.lower().startswith("image/"):
            return
        if not is_text_type(content_type):
            assert self.stats is not None
            self.stats.inc_value("dnm/media/stopped")
            logger.warning("stopped a %s download: %s", content_type, request.url)
            raise StopDownload(fail=True)
