"""Vendors, what each crawl saw of them, and the OpenPGP keys that tie identities together."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, SnapshotProvenance
from models.types import ExactDecimal, UTCDateTime


class Vendor(Base):
    """A vendor account on one market, keyed by the market's own id for it."""

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(primary_key=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"))
    vendor_key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    snapshots: Mapped[list[VendorSnapshot]] = relationship(back_populates="vendor")

    __table_args__ = (UniqueConstraint("market_id", "vendor_key", name="uq_vendors_market_key"),)


class VendorSnapshot(SnapshotProvenance, Base):
    """A vendor profile as one crawl observed it, with the page it came from."""

    __tablename__ = "vendor_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))

    name: Mapped[str] = mapped_column(String(200))
    name_shown: Mapped[str] = mapped_column(String(400))
    level: Mapped[int | None] = mapped_column(Integer)
    trust_level: Mapped[int | None] = mapped_column(Integer)
    sales: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    joined_on: Mapped[date | None] = mapped_column(Date)
    last_seen_earliest: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_latest: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_shown: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(16))
    feedback_count: Mapped[int | None] = mapped_column(Integer)
    fingerprint_shown: Mapped[str | None] = mapped_column(String(64))
    pgp_key_id: Mapped[int | None] = mapped_column(ForeignKey("pgp_keys.id"))

    vendor: Mapped[Vendor] = relationship(back_populates="snapshots")
    pgp_key: Mapped[PgpKey | None] = relationship()

    __table_args__ = (
        UniqueConstraint("vendor_id", "crawl_id", name="uq_vendor_snapshots_vendor_crawl"),
        Index("ix_vendor_snapshots_crawl", "crawl_id"),
    )


class PgpKey(Base):
    """An OpenPGP public key, stored once however many vendors or markets show it."""

    __tablename__ = "pgp_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    armored: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class VendorKey(Base):
    """That a vendor account showed a key, and over which crawls: the basis for linking identities."""

    __tablename__ = "vendor_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    pgp_key_id: Mapped[int] = mapped_column(ForeignKey("pgp_keys.id"))
    first_crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    last_crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    # A printed fingerprint that differs from the key block is a red flag (tampering, phishing).
    printed_fingerprint_matches: Mapped[bool | None] = mapped_column(Boolean)

    vendor: Mapped[Vendor] = relationship()
    pgp_key: Mapped[PgpKey] = relationship()

    __table_args__ = (UniqueConstraint("vendor_id", "pgp_key_id", name="uq_vendor_keys_vendor_key"),)
