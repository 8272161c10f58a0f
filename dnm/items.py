"""The one item the spider yields: a captured page, which the pipelines enrich and store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from parsel import Selector

from dnm.extraction import RawRecord
from dnm.records import Record


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
