"""The one item the spider yields: a captured page, which the pipelines enrich and store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from parsel import Selector

from dnm.extraction import RawRecord
from dnm.records import Record

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class HttpExchange:
    """The HTTP around a captured body, as the raw store writes it: what was asked, and what came back
    besides the body. Header values are kept as sent and received; the raw store redacts secrets."""

    method: str = "GET"
    request_headers: Headers = ()
    protocol: str = "HTTP/1.1"
    reason: str = ""
    response_headers: Headers = ()


def header_pairs(headers: Any) -> Headers:
    """Scrapy `Headers` (or any mapping of names to a value or list of values) as (name, value) pairs."""
    pairs: list[tuple[str, str]] = []
    for name, values in headers.items():
        for value in values if isinstance(values, list | tuple) else [values]:
            pairs.append((_text(name), _text(value)))
    return tuple(pairs)


def exchange_of(response: Any, request: Any = None) -> HttpExchange:
    """The exchange that produced a Scrapy response; `request` when the response does not carry its own."""
    request = request if request is not None else getattr(response, "request", None)
    sent: Headers = ()
    method = "GET"
    if request is not None:
        method = request.method
        sent = header_pairs(request.headers)
        if not any(name.lower() == "host" for name, _ in sent):
            # The download handler adds Host itself; the archive shows the request as it went out.
            sent = (("Host", urlsplit(request.url).netloc), *sent)
    protocol = getattr(response, "protocol", None) or "HTTP/1.1"
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:  # a status no standard names: the phrase is not known
        reason = ""
    return HttpExchange(
        method=method,
        request_headers=sent,
        protocol=protocol.upper() if protocol.lower().startswith("http/") else protocol,
        reason=reason,
        response_headers=header_pairs(response.headers),
    )


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


@dataclass
class PageItem:
    """A fetched page with its capture facts; pipelines add raw records, then typed records."""

    url: str
    page_type: str
    status: int
    body: bytes
    sha256: str
    fetched_at: datetime
    encoding: str = "utf-8"
    expected_type: str | None = None
    server_time: datetime | None = None
    # The HTTP exchange, for the raw store (None for pages not captured over HTTP).
    http: HttpExchange | None = field(default=None, repr=False)
    # Where the raw store wrote the page (set by pipelines.capture): file, record, payload digest (hex).
    warc_file: str | None = None
    warc_record_id: str | None = None
    payload_sha256: str | None = None
    raw_records: list[RawRecord] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # The spider's parsed tree, reused to avoid parsing twice; rebuilt from `body` when absent.
    selector: Selector | None = field(default=None, repr=False, compare=False)

    @property
    def is_content(self) -> bool:
        """True for a page of one of the profile's page types; False for barrier pages ("gate:<kind>"),
        mirror checks ("mirrors:key", "mirrors:list") and pages of no known type."""
        return self.page_type != "unknown" and ":" not in self.page_type

    def parsed(self) -> Selector:
        """The page's parse tree."""
        if self.selector is None:
            self.selector = Selector(text=self.body.decode(self.encoding, errors="replace"))
        return self.selector
