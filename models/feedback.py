"""Buyer feedback, stored once however many crawls see it (the raw material of sales estimates)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.types import ExactDecimal, UTCDateTime


class Feedback(Base):
    """One feedback row; its posting time is an interval narrowed by every crawl that sees it.

    Markets print ages like "3d" or "5 hours ago", which only say the posting falls in a window.
    Two sightings are the same feedback when vendor, listing, buyer mask, rating and text agree
    and their windows overlap; the stored window is then the intersection.
    """

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    listing_id: Mapped[int | None] = mapped_column(ForeignKey("listings.id"))
    rating: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64))
    buyer: Mapped[str | None] = mapped_column(String(100))
    posted_earliest: Mapped[datetime | None] = mapped_column(UTCDateTime())
    posted_latest: Mapped[datetime | None] = mapped_column(UTCDateTime())
    price_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    price_currency: Mapped[str | None] = mapped_column(String(8))
    first_crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_page_sha256: Mapped[str] = mapped_column(String(64))
    last_crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sightings: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ix_feedback_identity", "vendor_id", "text_sha256"),
        # Every crawl that sees a feedback updates its row (last seen, sightings). Room left in each page
        # lets PostgreSQL keep the new row version in the same page (a HOT update, no index entries) and
        # reuse the old one's space, so an unchanged night does not grow the table by a copy of it.
        {"postgresql_with": {"fillfactor": 80}},
    )
