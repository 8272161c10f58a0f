"""Prices: each listing's price history with its change points, and price summaries per category.

The price of a listing in a crawl is its **primary price** (`listing_snapshots.price_amount`, currency
and unit): the first fiat price the page showed, unless the market's profile prefers crypto. The other
prices a page shows (`listing_prices`, e.g. BTC and XMR equivalents) follow exchange rates and are not
used here, so a price "change" is a change the vendor made, not a move of the BTC rate.

Summaries never mix currencies or units: a category's median is computed per (crawl, category,
currency, unit), where the unit is the quantity a per-unit price is for ("g", "10 pills") and None for
a price of the whole listing. Quartiles use linear interpolation between closest ranks (numpy's and
pandas' default), in exact decimals.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dnm.analytics.crawls import Period, market_crawls
from models import Category, Crawl, Listing, ListingSnapshot, Market


@dataclass(frozen=True)
class PricePoint:
    """A listing's primary price as one crawl saw it; `changed` is true where it differs from the last."""

    market: str
    listing_id: str
    crawl_id: int
    observed_at: datetime
    amount: Decimal | None
    currency: str | None
    unit: str | None
    shown: str | None
    changed: bool


@dataclass(frozen=True)
class PriceChange:
    """A change point: the price between two consecutive observations of a listing differs."""

    market: str
    listing_id: str
    crawl_id: int
    observed_at: datetime
    previous_observed_at: datetime
    old_amount: Decimal | None
    old_currency: str | None
    old_unit: str | None
    new_amount: Decimal | None
    new_currency: str | None
    new_unit: str | None


@dataclass(frozen=True)
class CategoryPrices:
    """Price distribution of one category's listings in one crawl, in one currency and unit."""

    crawl_id: int
    observed_at: datetime
    category: str
    currency: str
    unit: str | None
    listings: int
    minimum: Decimal
    q1: Decimal
    median: Decimal
    q3: Decimal
    maximum: Decimal


def price_history(
    engine: Engine, market: str, listing_id: str, period: Period | None = None
) -> list[PricePoint]:
    """One row per usable crawl that saw the listing (`listing_id` is the market's own id), oldest first."""
    crawls = {c.crawl_id: c for c in market_crawls(engine, market, period)}
    query = (
        select(ListingSnapshot)
        .join(Listing, ListingSnapshot.listing_id == Listing.id)
        .join(Market, Listing.market_id == Market.id)
        # Sightings are indexed crawl first: through the market's crawls, one index probe each.
        .join(Crawl, (Crawl.id == ListingSnapshot.crawl_id) & (Crawl.market_id == Market.id))
        .where(Market.slug == market, Listing.listing_key == listing_id)
        .order_by(ListingSnapshot.observed_at, ListingSnapshot.id)
    )
    points: list[PricePoint] = []
    with Session(engine) as session:
        for snap in session.scalars(query):
            if snap.crawl_id not in crawls:
                continue
            price = (snap.price_amount, snap.price_currency, snap.price_unit)
            last = points[-1] if points else None
            changed = last is not None and (last.amount, last.currency, last.unit) != price
            points.append(
                PricePoint(
                    market,
                    listing_id,
                    snap.crawl_id,
                    snap.observed_at,
                    *price,
                    snap.price_shown,
                    changed,
                )
            )
    return points


def price_changes(history: list[PricePoint]) -> list[PriceChange]:
    """The change points of a price history (as returned by `price_history`)."""
    return [
        PriceChange(
            now.market,
            now.listing_id,
            now.crawl_id,
            now.observed_at,
            before.observed_at,
            before.amount,
            before.currency,
            before.unit,
            now.amount,
            now.currency,
            now.unit,
        )
        for before, now in itertools.pairwise(history)
        if now.changed
    ]


def category_prices(
    engine: Engine, market: str, period: Period | None = None, depth: int | None = None
) -> list[CategoryPrices]:
    """Price quartiles per (crawl, category, currency, unit), oldest crawl first.

    `depth` cuts category paths to their first levels (1: "Drugs", 2: "Drugs > Cannabis"); None keeps
    the full path. Listings with no price or no category are left out.
    """
    crawls = {c.crawl_id: c for c in market_crawls(engine, market, period)}
    if not crawls:
        return []
    query = (
        select(
            ListingSnapshot.crawl_id,
            Category.path,
            ListingSnapshot.price_currency,
            ListingSnapshot.price_unit,
            ListingSnapshot.price_amount,
        )
        .join(Category, ListingSnapshot.category_id == Category.id)
        .where(ListingSnapshot.crawl_id.in_(list(crawls)), ListingSnapshot.price_amount.is_not(None))
    )
    groups: dict[tuple[int, str, str, str | None], list[Decimal]] = defaultdict(list)
    with Session(engine) as session:
        for crawl_id, path, currency, unit, amount in session.execute(query):
            if currency is None:
                continue
            category = " > ".join(list(path)[:depth] if depth else path)
            groups[crawl_id, category, currency, unit].append(amount)
    out = []
    for (crawl_id, category, currency, unit), amounts in groups.items():
        amounts.sort()
        out.append(
            CategoryPrices(
                crawl_id,
                crawls[crawl_id].started_at,
                category,
                currency,
                unit,
                len(amounts),
                amounts[0],
                quantile(amounts, Decimal("0.25")),
                quantile(amounts, Decimal("0.5")),
                quantile(amounts, Decimal("0.75")),
                amounts[-1],
            )
        )
    out.sort(key=lambda r: (r.observed_at, r.crawl_id, r.category, r.currency, r.unit or ""))
    return out


def quantile(ordered: list[Decimal], q: Decimal) -> Decimal:
    """The q-quantile of sorted decimals, interpolating linearly between closest ranks (exact)."""
    if not ordered:
        raise ValueError("quantile of no values")
    position = (len(ordered) - 1) * q
    low = int(position)
    fraction = position - low
    if fraction == 0 or low + 1 >= len(ordered):
        return ordered[low]
    return ordered[low] + (ordered[low + 1] - ordered[low]) * fraction
