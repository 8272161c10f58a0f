"""Tor Browser's request headers: every request leaves with the headers, values and order Tor Browser sends.

A market sees each request's headers, and their order, as they arrive: Scrapy and httpx add theirs
in an order of their own (Host, Connection, Accept, ..., User-Agent, Accept-Encoding) and leave out
the fetch metadata every Firefox sends, which tells a crawler from a person as surely as a
"Scrapy/2.x" User-Agent would. This middleware, the last before the download handler, gives each
request what Tor Browser 128 (Firefox 128 ESR) sends for the same action:
- a page: `DEFAULT_REQUEST_HEADERS` (dnm/settings.py) with `Sec-Fetch-Site` "none" for an address
  typed in (no Referer), "same-origin" for a link followed; a form post adds `Origin`;
- a CAPTCHA image (`meta["dnm_captcha_image"]`): an image load's Accept and fetch metadata;
and puts them in Firefox's order. A Referer naming another mirror (pages are addressed on the
canonical mirror, then moved onto the live one) is moved onto the request's own mirror: a person
browsing that mirror would have come from a page of it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Headers

# Firefox's order of request headers over HTTP/1.1 (httpx writes Host first, before all of them).
ORDER = (
    "User-Agent",
    "Accept",
    "Accept-Language",
    "Accept-Encoding",
    "Content-Type",
    "Content-Length",
    "Origin",
    "Referer",
    "Connection",
    "Cookie",
    "Upgrade-Insecure-Requests",
    "Sec-Fetch-Dest",
    "Sec-Fetch-Mode",
    "Sec-Fetch-Site",
    "Sec-Fetch-User",
    "Priority",
)
# What an <img> load sends instead of a navigation's headers.
IMAGE = {
    "Accept": "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
    "Sec-Fetch-Dest": "image",
    "Sec-Fetch-Mode": "no-cors",
    "Priority": "u=5, i",
}
NAVIGATION_ONLY = ("Upgrade-Insecure-Requests", "Sec-Fetch-User")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def browser_headers(request: Request) -> Headers:
    """The request's headers as Tor Browser would send them for the same action, in its order."""
    headers = {name.decode("latin-1").title(): values for name, values in request.headers.items() if values}
    headers["Connection"] = [b"keep-alive"]
    referer = headers.get("Referer")
    if referer:
        parts = urlsplit(referer[0].decode("latin-1"))
        here = urlsplit(request.url)
        headers["Referer"] = [urlunsplit((here.scheme, here.netloc, parts.path, parts.query, "")).encode()]
        headers["Sec-Fetch-Site"] = [b"same-origin"]
    else:
        headers["Sec-Fetch-Site"] = [b"none"]
    if request.method == "POST":
        headers["Origin"] = [origin(request.url).encode()]
    if request.body:
        # httpx would append its own Content-Length after every other header.
        headers["Content-Length"] = [str(len(request.body)).encode()]
    if request.meta.get("dnm_captcha_image"):
        headers.update({name: [value.encode()] for name, value in IMAGE.items()})
        for name in NAVIGATION_ONLY:
            headers.pop(name, None)
    rank = {name: i for i, name in enumerate(ORDER)}
    # Headers Firefox never sends keep their relative order, after Firefox's own.
    ordered = sorted(headers.items(), key=lambda item: rank.get(item[0], len(ORDER)))
    return Headers(dict(ordered))


class BrowserHeadersMiddleware:
    """Downloader middleware: Tor Browser's headers on every request, just before it is sent."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BrowserHeadersMiddleware:
        return cls()

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        request.headers = browser_headers(request)
