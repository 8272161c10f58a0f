"""Categories, listings, what each crawl saw of them, and their prices and shipping terms."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, SnapshotProvenance
from models.types import ExactDecimal, UTCDateTime


class Category(Base):
    """A node of a market's category tree, identified by its path from the root."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"))
    # " > "-joined path: unique per market and readable in plain SQL.
    path_key: Mapped[str] = mapped_column(String(1000))
    path: Mapped[list[str]] = mapped_column(JSON)
    category_key: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("market_id", "path_key", name="uq_categories_market_path"),)


class CategoryObservation(Base):
    """The listing count a market claimed for a category in one crawl (what completeness is judged by)."""

    __tablename__ = "category_observations"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    listing_count: Mapped[int | None] = mapped_column(Integer)

    category: Mapped[Category] = relationship()

    __table_args__ = (UniqueConstraint("category_id", "crawl_id", name="uq_category_obs_category_crawl"),)


class Listing(Base):
    """A listing on one market, keyed by the market's own id for it."""

    __tablename__ = "listings"

    id: Mapped[int] = mapped_column(primary_key=True)
    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id"))
    listing_key: Mapped[str] = mapped_column(String(200))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

    snapshots: Mapped[list[ListingSnapshot]] = relationship(back_populates="listing")

    __table_args__ = (UniqueConstraint("market_id", "listing_key", name="uq_listings_market_key"),)


class ListingSnapshot(SnapshotProvenance, Base):
    """A listing as one crawl observed it: normalized values next to the strings the page showed."""

    __tablename__ = "listing_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"))

    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    # The vendor name the listing page showed: names change, and the snapshot keeps the one seen.
    vendor_name: Mapped[str | None] = mapped_column(String(200))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    title: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str | None] = mapped_column(Text)
    price_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    price_currency: Mapped[str | None] = mapped_column(String(8))
    price_unit: Mapped[str | None] = mapped_column(String(64))
    price_shown: Mapped[str | None] = mapped_column(String(400))
    escrow: Mapped[bool | None] = mapped_column(Boolean)
    stock: Mapped[int | None] = mapped_column(Integer)
    stock_shown: Mapped[str | None] = mapped_column(String(200))
    ships_from_shown: Mapped[str | None] = mapped_column(String(1000))
    ships_to_shown: Mapped[str | None] = mapped_column(String(2000))

    listing: Mapped[Listing] = relationship(back_populates="snapshots")
    prices: Mapped[list[ListingPrice]] = relationship(order_by="ListingPrice.position")
    regions: Mapped[list[ShippingRegion]] = relationship(order_by="ShippingRegion.position")
    shipping_options: Mapped[list[ShippingOption]] = relationship(order_by="ShippingOption.position")

    __table_args__ = (
        UniqueConstraint("listing_id", "crawl_id", name="uq_listing_snapshots_listing_crawl"),
        Index("ix_listing_snapshots_crawl", "crawl_id"),
        Index("ix_listing_snapshots_vendor", "vendor_id"),
    )


class ListingPrice(Base):
    """Every price a listing page showed (fiat and crypto), in the order shown: rates at capture time."""

    __tablename__ = "listing_prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("listing_snapshots.id"))
    position: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    currency: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(64))
    shown: Mapped[str] = mapped_column(String(400))


class ShippingRegion(Base):
    """One region code a listing ships from, ships to, or excludes; the raw string sits on the snapshot."""

    __tablename__ = "shipping_regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("listing_snapshots.id"))
    # "from" | "to" | "excluded"
    role: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_shipping_regions_code_role", "code", "role"),)


class ShippingOption(Base):
    """A delivery option offered on a listing, with its price."""

    __tablename__ = "shipping_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("listing_snapshots.id"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(400))
    price_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    price_currency: Mapped[str | None] = mapped_column(String(8))
    shown: Mapped[str | None] = mapped_column(String(400))
