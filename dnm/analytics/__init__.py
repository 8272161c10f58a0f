"""Research analytics on the archive: price histories, linked vendor identities, sales estimates, the report.

Every function takes a SQLAlchemy Engine plus a market and an optional `Period`, and returns plain
dataclasses; `as_frame` turns any of those lists into a pandas DataFrame. The method and its
assumptions are in docs/analytics.md.
"""

from dnm.analytics.crawls import CrawlActivity, CrawlInfo, Period, crawl_activity, market_crawls
from dnm.analytics.frames import as_frame
from dnm.analytics.identities import Account, Identity, identities
from dnm.analytics.prices import (
    CategoryPrices,
    PriceChange,
    PricePoint,
    category_prices,
    price_changes,
    price_history,
)
from dnm.analytics.sales import Interval, Sale, SalesEstimate, estimate_sales, intervals, sales
from dnm.analytics.shipping import Origin, shipping_origins

__all__ = [
    "Account",
    "CategoryPrices",
    "CrawlActivity",
    "CrawlInfo",
    "Identity",
    "Interval",
    "Origin",
    "Period",
    "PriceChange",
    "PricePoint",
    "Sale",
    "SalesEstimate",
    "as_frame",
    "category_prices",
    "crawl_activity",
    "estimate_sales",
    "identities",
    "intervals",
    "market_crawls",
    "price_changes",
    "price_history",
    "sales",
    "shipping_origins",
]
