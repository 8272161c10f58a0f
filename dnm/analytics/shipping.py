"""Shipping origins: how many distinct listings shipped from each country or region in a period.

Counts come from `shipping_regions` rows with role `from` (ISO 3166-1 alpha-2 codes, or region codes
such as `WW` and `EU`, docs/data-dictionary.md). A listing counts once per origin it showed in any
crawl of the period; a listing that moved from DE to NL counts for both.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, distinct, func, select
from sqlalchemy.orm import Session

from dnm.analytics.crawls import Period, market_crawls
from models import ListingSnapshot, ShippingRegion


@dataclass(frozen=True)
class Origin:
    """A shipping origin and the number of distinct listings that showed it."""

    code: str
    listings: int


def shipping_origins(engine: Engine, market: str, period: Period | None = None) -> list[Origin]:
    """Origins by number of listings, most first (ties by code)."""
    crawl_ids = [c.crawl_id for c in market_crawls(engine, market, period)]
    if not crawl_ids:
        return []
    query = (
        select(ShippingRegion.code, func.count(distinct(ListingSnapshot.listing_id)))
        .join(ListingSnapshot, ShippingRegion.state_id == ListingSnapshot.state_id)
        .where(ShippingRegion.role == "from", ListingSnapshot.crawl_id.in_(crawl_ids))
        .group_by(ShippingRegion.code)
    )
    with Session(engine) as session:
        rows = session.execute(query).all()
    return sorted((Origin(code, count) for code, count in rows), key=lambda o: (-o.listings, o.code))
