"""Markets, the crawls run against them, and the pages each crawl captured."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    event,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

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


def digest_prefix(sha256: str) -> int:
    """The first 64 bits of a hex SHA-256 digest as a signed 64-bit integer (`payloads.sha256_prefix`).

    Signed, as PostgreSQL's BIGINT and SQLite's INTEGER hold it: `('x' || left(sha256, 16))::bit(64)::bigint`.
    """
    prefix = int(sha256[:16], 16)
    return prefix - (1 << 64) if prefix >= 1 << 63 else prefix


def _prefix_default(context: Any) -> int:
    return digest_prefix(context.get_current_parameters()["sha256"])


class Payload(Base):
    """A page body the archive holds: stored once however many fetches, crawls or URLs returned it.

    The bytes live in the raw store (dnm.rawstore): `warc_file` (relative to DNM_RAW_DIR) and the
    response record holding them. Both are None when the raw capture failed or was off for the fetch
    that brought the body; a later capture of the same body fills them in.

    Found by digest through `sha256_prefix` (`digest_prefix`), with the full digest compared on the row:
    `Payload.sha256_prefix == digest_prefix(x), Payload.sha256 == x`. On SQLite that column is the only
    index (revision 0007): a night adds thousands of bodies, each at a random place of the digest index,
    and an index of 64-hex-character keys four times the size of one of integers took each of them to a
    page of its own. A trigger keeps digests unique there. PostgreSQL, where several crawls may write at
    once and insert with ON CONFLICT, keeps its unique index on the digest and needs no other.
    """

    __tablename__ = "payloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    sha256_prefix: Mapped[int] = mapped_column(BigInteger, default=_prefix_default)
    size: Mapped[int] = mapped_column(Integer)
    warc_file: Mapped[str | None] = mapped_column(String(500))
    warc_record_id: Mapped[str | None] = mapped_column(String(100))

    # The payloads of one WARC file (crash recovery unlinks those whose record never reached it). Keyed
    # by the file alone: a batch's new payloads land at the end of this index. Keyed by the (random)
    # record id, each dirtied a page of its own (revision 0006); by file and record id, every batch still
    # came back to most of the night's pages (revision 0008).
    __table_args__ = (
        Index("ix_payloads_warc_file", "warc_file"),
        UniqueConstraint("sha256", name="uq_payloads_sha256").ddl_if(dialect="postgresql"),
        Index("ix_payloads_sha256_prefix", "sha256_prefix").ddl_if(dialect="sqlite"),
    )


# SQLite's uniqueness of digests, checked through the prefix index (revision 0007 creates it in archives
# made before; `sqlite_master` holds it as written here).
PAYLOAD_DIGEST_UNIQUE = """CREATE TRIGGER payloads_sha256_unique BEFORE INSERT ON payloads
WHEN EXISTS (SELECT 1 FROM payloads WHERE sha256_prefix = NEW.sha256_prefix AND sha256 = NEW.sha256)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: payloads.sha256'); END"""
event.listen(Payload.__table__, "after_create", DDL(PAYLOAD_DIGEST_UNIQUE).execute_if(dialect="sqlite"))


class Url(Base):
    """A URL the archive fetched, stored once however many nights fetch it again."""

    __tablename__ = "urls"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)


class Page(Base):
    """One fetch as the crawl saw it; every snapshot points at the page it came from.

    A row is small on purpose: a night that finds a market unchanged writes one per page fetched; the
    URL is a shared `urls` row and the body (with its hash and raw capture) a shared `payloads` row.
    """

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    url_id: Mapped[int] = mapped_column(ForeignKey("urls.id"))
    page_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The market's own clock as printed on the page, when the profile knows where; relative
    # dates on the page were resolved against it.
    server_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    extraction_errors: Mapped[int] = mapped_column(Integer, default=0)
    payload_id: Mapped[int] = mapped_column(ForeignKey("payloads.id"))

    crawl: Mapped[Crawl] = relationship(back_populates="pages")
    payload: Mapped[Payload] = relationship()

    # No index on payload_id or url_id: nothing asks "which fetches returned this body" often enough to pay
    # an index entry on every page of every night.
    __table_args__ = (Index("ix_pages_crawl", "crawl_id"),)


def _payload_column(column: Any) -> Any:
    """A payload column read through the page (`Page.sha256`, ...), usable in queries and on loaded rows."""
    return column_property(select(column).where(Payload.id == Page.payload_id).scalar_subquery())


# The URL fetched: read-only, from the page's `urls` row.
Page.url = column_property(select(Url.url).where(Url.id == Page.url_id).scalar_subquery())
# The body's SHA-256 (hex) and size, and the raw capture holding it: read-only, from the page's payload.
Page.sha256 = _payload_column(Payload.sha256)
Page.size = _payload_column(Payload.size)
Page.warc_file = _payload_column(Payload.warc_file)
Page.warc_record_id = _payload_column(Payload.warc_record_id)
Page.payload_sha256 = _payload_column(Payload.sha256)
