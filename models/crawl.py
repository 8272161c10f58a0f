"""Markets, the crawls run against them, and the pages each crawl captured."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.types import UTCDateTime


class Market(Base):
    """A marketplace as named by its profile; everything else hangs off it."""

    __tablename__ = "markets"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    crawls: Mapped[list[Crawl]] = relationship(back_populates="market")


class Crawl(Base):
    """One run of the spider against one market: when, with what, and how it ended."""

    __tablename__ = "crawls"

    id: Mapped[int] = mapped_column(primary_key=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # running -> complete | partial | failed; never "complete" without its data committed.
    status: Mapped[str] = mapped_column(String(16), default="running")
    status_reason: Mapped[str | None] = mapped_column(String(500))
    tool_version: Mapped[str] = mapped_column(String(40))
    profile_version: Mapped[str] = mapped_column(String(40))
    profile_sha256: Mapped[str] = mapped_column(String(64))
    settings_sha256: Mapped[str] = mapped_column(String(64))
    transport: Mapped[str] = mapped_column(String(16))
    tor_version: Mapped[str | None] = mapped_column(String(40))
    mirror: Mapped[str | None] = mapped_column(String(300))
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A re-parse (`dnm reparse`) of an earlier crawl's raw captures: that crawl's id; None for a crawl
    # that fetched its pages itself.
    reparse_of: Mapped[int | None] = mapped_column(ForeignKey("crawls.id"))

    market: Mapped[Market] = relationship(back_populates="crawls")
    pages: Mapped[list[Page]] = relationship(back_populates="crawl")

    __table_args__ = (Index("ix_crawls_market_started", "market_id", "started_at"),)


class Page(Base):
    """One fetched response as the crawl saw it; every snapshot points at the page it came from."""

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    url: Mapped[str] = mapped_column(String(2000))
    page_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The market's own clock as printed on the page, when the profile knows where; relative
    # dates on the page were resolved against it.
    server_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    extraction_errors: Mapped[int] = mapped_column(Integer, default=0)
    # The raw capture (dnm.rawstore): the WARC file (relative to DNM_RAW_DIR), the record written for
    # this page (a response, or a revisit of an identical earlier payload) and the payload's SHA-256 (hex).
    warc_file: Mapped[str | None] = mapped_column(String(500))
    warc_record_id: Mapped[str | None] = mapped_column(String(100))
    payload_sha256: Mapped[str | None] = mapped_column(String(64))

    crawl: Mapped[Crawl] = relationship(back_populates="pages")

    __table_args__ = (
        Index("ix_pages_crawl_url", "crawl_id", "url"),
        Index("ix_pages_sha256", "sha256"),
        # Revisits: has this market's archive stored this payload before, and in which record?
        Index("ix_pages_payload_sha256", "payload_sha256"),
        Index("ix_pages_warc_record_id", "warc_record_id"),
    )
