"""Categories, listings, their states and sightings, and their prices and shipping terms."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from models.base import Base, EntityState, Sighting, SnapshotProvenance, ViewBase
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

    __table_args__ = (UniqueConstraint("market_id", "listing_key", name="uq_listings_market_key"),)


class ListingValues:
    """A listing's values as the page showed them, normalized next to the strings shown: the columns a
    state stores and a snapshot shows."""

    # The vendor name the listing page showed: names change, and the snapshot keeps the one seen.
    vendor_name: Mapped[str | None] = mapped_column(String(200))
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


class ListingState(ListingValues, EntityState, Base):
    """A listing's values as a crawl read them: normalized values next to the strings the page showed.

    Stored once per change: nights that find the listing unchanged only add a `listing_sightings` row.
    Crypto conversions (`listing_prices` beyond the listing's own currency) follow the exchange rate and
    are not part of the state's hash: a state keeps those of the night it was first seen.
    """

    __tablename__ = "listing_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"))

    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))

    listing: Mapped[Listing] = relationship()
    prices: Mapped[list[ListingPrice]] = relationship(order_by="ListingPrice.position")
    regions: Mapped[list[ShippingRegion]] = relationship(order_by="ShippingRegion.position")
    shipping_options: Mapped[list[ShippingOption]] = relationship(order_by="ShippingOption.position")

    __table_args__ = (
        Index("ix_listing_states_listing", "listing_id"),
        Index("ix_listing_states_vendor", "vendor_id"),
    )


class ListingSighting(Sighting, Base):
    """That one crawl saw a listing, on which page, in which state: the cheap row an unchanged night adds."""

    __tablename__ = "listing_sightings"

    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"))
    state_id: Mapped[int] = mapped_column(ForeignKey("listing_states.id"))

    __table_args__ = (
        # At most one sighting per listing per crawl, and a crawl's sightings side by side. Crawl first:
        # a night's ~10,000 new rows land at the end of the index. Listing first, each of them went to
        # its listing's place and dirtied a page of its own, every page of the index every night
        # (revision 0006). A listing's history goes through its market's crawls (the listing_history
        # view): one index probe per crawl.
        UniqueConstraint("crawl_id", "listing_id", name="uq_listing_sightings_crawl_listing"),
    )


class ListingSnapshot(ListingValues, SnapshotProvenance, ViewBase):
    """A listing as one crawl observed it: a sighting with its state and page (the view `listing_snapshots`).

    Read-only: the archive writes states and sightings, and this view joins them back into one row per
    listing per crawl, as a researcher thinks of the data.
    """

    __tablename__ = "listing_snapshots"

    listing_id: Mapped[int] = mapped_column()
    vendor_id: Mapped[int | None] = mapped_column()
    category_id: Mapped[int | None] = mapped_column()

    listing: Mapped[Listing] = relationship(
        Listing, primaryjoin=lambda: foreign(ListingSnapshot.listing_id) == Listing.id, viewonly=True
    )
    prices: Mapped[list[ListingPrice]] = relationship(
        lambda: ListingPrice,
        primaryjoin=lambda: ListingSnapshot.state_id == foreign(ListingPrice.state_id),
        order_by=lambda: ListingPrice.position,
        viewonly=True,
    )
    regions: Mapped[list[ShippingRegion]] = relationship(
        lambda: ShippingRegion,
        primaryjoin=lambda: ListingSnapshot.state_id == foreign(ShippingRegion.state_id),
        order_by=lambda: ShippingRegion.position,
        viewonly=True,
    )
    shipping_options: Mapped[list[ShippingOption]] = relationship(
        lambda: ShippingOption,
        primaryjoin=lambda: ListingSnapshot.state_id == foreign(ShippingOption.state_id),
        order_by=lambda: ShippingOption.position,
        viewonly=True,
    )


class ListingPrice(Base):
    """Every price a listing page showed (fiat and crypto), in the order shown: rates at capture time."""

    __tablename__ = "listing_prices"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_id: Mapped[int] = mapped_column(ForeignKey("listing_states.id"))
    position: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    currency: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(64))
    shown: Mapped[str] = mapped_column(String(400))

    __table_args__ = (Index("ix_listing_prices_state", "state_id"),)


class ShippingRegion(Base):
    """One region code a listing ships from, ships to, or excludes; the raw string sits on the state."""

    __tablename__ = "shipping_regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_id: Mapped[int] = mapped_column(ForeignKey("listing_states.id"))
    # "from" | "to" | "excluded"
    role: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_shipping_regions_state", "state_id"),
        Index("ix_shipping_regions_code_role", "code", "role"),
    )


class ShippingOption(Base):
    """A delivery option offered on a listing, with its price."""

    __tablename__ = "shipping_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_id: Mapped[int] = mapped_column(ForeignKey("listing_states.id"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(400))
    price_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    price_currency: Mapped[str | None] = mapped_column(String(8))
    shown: Mapped[str | None] = mapped_column(String(400))

    __table_args__ = (Index("ix_shipping_options_state", "state_id"),)
