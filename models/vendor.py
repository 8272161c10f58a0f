"""Vendors, their states and sightings, and the OpenPGP keys that tie identities together."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from models.base import Base, EntityState, Sighting, SnapshotProvenance, ViewBase
from models.types import ExactDecimal, UTCDateTime


class Vendor(Base):
    """A vendor account on one market, keyed by the market's own id for it."""

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(primary_key=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"))
    vendor_key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("market_id", "vendor_key", name="uq_vendors_market_key"),)


class VendorValues:
    """A vendor profile's values as the page showed them: the columns a state stores and a snapshot shows."""

    name: Mapped[str] = mapped_column(String(200))
    name_shown: Mapped[str] = mapped_column(String(400))
    level: Mapped[int | None] = mapped_column(Integer)
    trust_level: Mapped[int | None] = mapped_column(Integer)
    sales: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    joined_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str | None] = mapped_column(String(16))
    feedback_count: Mapped[int | None] = mapped_column(Integer)
    fingerprint_shown: Mapped[str | None] = mapped_column(String(64))


class VendorState(VendorValues, EntityState, Base):
    """A vendor profile's values as a crawl read them; stored once per change (models.base.EntityState)."""

    __tablename__ = "vendor_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))

    pgp_key_id: Mapped[int | None] = mapped_column(ForeignKey("pgp_keys.id"))

    __table_args__ = (Index("ix_vendor_states_vendor", "vendor_id"),)


class VendorSighting(Sighting, Base):
    """That one crawl saw a vendor profile, on which page, in which state, and when the vendor was last
    active by the page."""

    __tablename__ = "vendor_sightings"

    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    state_id: Mapped[int] = mapped_column(ForeignKey("vendor_states.id"))
    # "Last seen 3 hours ago" moves every night without the vendor changing: kept per sighting.
    last_seen_earliest: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_latest: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_shown: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("vendor_id", "crawl_id", name="uq_vendor_sightings_vendor_crawl"),
        Index("ix_vendor_sightings_crawl", "crawl_id"),
    )


class VendorSnapshot(VendorValues, SnapshotProvenance, ViewBase):
    """A vendor profile as one crawl observed it: a sighting with its state and page (the view
    `vendor_snapshots`); read-only."""

    __tablename__ = "vendor_snapshots"

    vendor_id: Mapped[int] = mapped_column()
    # "Last seen 3 hours ago" moves every night without the vendor changing: kept per sighting.
    last_seen_earliest: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_latest: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_shown: Mapped[str | None] = mapped_column(String(200))
    pgp_key_id: Mapped[int | None] = mapped_column()

    pgp_key: Mapped[PgpKey | None] = relationship(
        lambda: PgpKey, primaryjoin=lambda: foreign(VendorSnapshot.pgp_key_id) == PgpKey.id, viewonly=True
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
