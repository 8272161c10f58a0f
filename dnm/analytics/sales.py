"""Sales estimated from feedback that is new between crawls (Christin 2013; Soska & Christin 2015).

Method. Markets ask buyers to leave feedback on every finished order, so each feedback is taken as
one sale. The archive stores each feedback once (`feedback`, deduplicated across crawls on vendor,
listing, buyer mask, rating, text and overlapping posting windows) with the crawl that first saw it
(`first_crawl_id`). Consecutive usable crawls of a market (complete or partial, not re-parses; see
`dnm.analytics.crawls`) bound intervals; feedback first seen by a crawl is a sale in the interval that
ends with that crawl (the "cumulative store D" of Christin 2013: novel feedback timestamped when
first seen). The first crawl's feedback is the market's backlog: it has no interval and is left out.

Price. A sale is valued at the listing's **primary price** (the snapshot's `price_amount`, currency and
unit) in the crawl that first saw the feedback; if that crawl did not see the listing, the listing's
latest earlier observation, else its earliest later one (`price_observed_at` says which). Feedback not
tied to a listing (a vendor page that shows no item) is valued at the price the market printed with it
(`feedback.price_amount`, often approximate and converted by the market, e.g. "~ $30"),
`price_source="feedback"`; with neither it is counted but unvalued. Revenue is summed per currency and
currencies are never converted or mixed: converting needs a dated exchange-rate series, which the
archive does not hold.

Under-reporting. `feedback_rate` is the share of sales that leave feedback; estimated sales are
feedback / rate. It defaults to 1.0 (every sale leaves feedback), which makes the estimate the lower
bound the literature reports; no published rate is built in (see docs/analytics.md).

Assumptions and biases (docs/analytics.md has the full list and the citations):
- one feedback = one order of one listing unit (multi-unit orders, orders without feedback, deleted
  feedback, stealth or private listings and banned vendors' removed pages undercount);
- fake or self-bought feedback, edited feedback stored twice (a finalize-early placeholder replaced
  after delivery) and scams that collect feedback before delivery overcount;
- the price at the time of sale is approximated by the price at first sighting: discounts, shipping
  fees and price changes between crawls are not seen, and holding prices (a sold-out listing priced
  at 99,999) are not filtered here;
- a sale is dated by when its feedback was first seen, which is after the order; feedback posted
  before the interval (its posting window ends before the market's clock at the previous crawl) but
  missed by that crawl (a page not fetched, a vendor back from vacation) is still counted in the
  interval where it was first seen and flagged `posted_before_interval`;
- an interval ending or starting with a `partial` crawl is a lower bound (`complete` is false).
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dnm.analytics.crawls import Period, market_crawls
from models import Category, Crawl, Feedback, Listing, ListingSnapshot, Market, Vendor

GROUPINGS = ("interval", "vendor", "category")


@dataclass(frozen=True)
class Interval:
    """The time between two consecutive usable crawls; sales in it are feedback first seen by `crawl_id`."""

    crawl_id: int
    previous_crawl_id: int
    start: datetime
    end: datetime
    complete: bool
    # The market's clock when the opening crawl began (None when its pages print no clock).
    market_start: datetime | None = None


@dataclass(frozen=True)
class Sale:
    """One new feedback taken as one sale, with the price it is valued at."""

    feedback_id: int
    market: str
    crawl_id: int
    interval_start: datetime
    interval_end: datetime
    vendor_id: str
    vendor: str
    listing_id: str | None
    category: str | None
    rating: int | None
    posted_earliest: datetime | None
    posted_latest: datetime | None
    amount: Decimal | None
    currency: str | None
    unit: str | None
    price_source: str | None  # "listing", "feedback" or None (unvalued)
    price_observed_at: datetime | None
    posted_before_interval: bool


@dataclass(frozen=True)
class SalesEstimate:
    """Estimated sales of one group; fields not grouped by are None. Revenue is per currency."""

    crawl_id: int | None
    interval_start: datetime | None
    interval_end: datetime | None
    vendor_id: str | None
    vendor: str | None
    category: str | None
    feedback: int
    estimated_sales: Decimal
    revenue: dict[str, Decimal]
    unvalued: int
    posted_before_interval: int
    complete: bool


def intervals(engine: Engine, market: str, period: Period | None = None) -> list[Interval]:
    """Intervals between consecutive usable crawls, for those whose closing crawl started in the period.

    The opening crawl may be before the period: the baseline a period's first interval needs.
    """
    period = period or Period()
    crawls = market_crawls(engine, market)
    return [
        Interval(
            now.crawl_id,
            before.crawl_id,
            before.started_at,
            now.started_at,
            complete=before.status == "complete" and now.status == "complete",
            market_start=before.market_clock_at,
        )
        for before, now in itertools.pairwise(crawls)
        if period.holds(now.started_at)
    ]


def sales(
    engine: Engine,
    market: str,
    period: Period | None = None,
    *,
    category_depth: int | None = None,
    feedback_prices: bool = True,
) -> list[Sale]:
    """Every new feedback in the period's intervals as a sale, oldest interval first.

    `category_depth` cuts category paths (1: "Drugs"); `feedback_prices=False` leaves feedback not
    tied to a listing unvalued instead of using the price printed with it.
    """
    spans = {i.crawl_id: i for i in intervals(engine, market, period)}
    if not spans:
        return []
    with Session(engine) as session:
        rows = session.execute(
            select(Feedback, Vendor.vendor_key, Vendor.name, Listing.listing_key)
            .join(Vendor, Feedback.vendor_id == Vendor.id)
            .join(Market, Vendor.market_id == Market.id)
            .outerjoin(Listing, Feedback.listing_id == Listing.id)
            .where(Market.slug == market, Feedback.first_crawl_id.in_(list(spans)))
            .order_by(Feedback.first_seen_at, Feedback.id)
        ).all()
        listing_ids = {fb.listing_id for fb, *_ in rows if fb.listing_id is not None}
        prices = _listing_prices(session, listing_ids, category_depth)
    out = []
    for fb, vendor_key, vendor_name, listing_key in rows:
        span = spans[fb.first_crawl_id]
        observed = _price_for(prices.get(fb.listing_id or -1, []), fb.first_crawl_id, fb.first_seen_at)
        amount = currency = unit = category = observed_at = source = None
        if observed is not None:
            observed_at, _, amount, currency, unit, category = observed
            source = "listing" if amount is not None and currency else None
        if source is None and feedback_prices and fb.price_amount is not None and fb.price_currency:
            amount, currency, unit, observed_at, source = (
                fb.price_amount,
                fb.price_currency,
                None,
                None,
                "feedback",
            )
        if source is None:
            amount = currency = unit = observed_at = None
        out.append(
            Sale(
                feedback_id=fb.id,
                market=market,
                crawl_id=fb.first_crawl_id,
                interval_start=span.start,
                interval_end=span.end,
                vendor_id=vendor_key,
                vendor=vendor_name,
                listing_id=listing_key,
                category=category,
                rating=fb.rating,
                posted_earliest=fb.posted_earliest,
                posted_latest=fb.posted_latest,
                amount=amount,
                currency=currency,
                unit=unit,
                price_source=source,
                price_observed_at=observed_at,
                posted_before_interval=fb.posted_latest is not None
                and fb.posted_latest < (span.market_start or span.start),
            )
        )
    out.sort(key=lambda s: (s.interval_end, s.feedback_id))
    return out


def estimate_sales(
    engine: Engine,
    market: str,
    period: Period | None = None,
    *,
    by: Sequence[str] = ("interval",),
    feedback_rate: float = 1.0,
    category_depth: int | None = None,
    feedback_prices: bool = True,
) -> list[SalesEstimate]:
    """Sales aggregated by any of "interval", "vendor", "category" (none: one total for the period).

    Every interval of the period appears when grouping by interval alone, with zero sales if no
    feedback was new in it: a quiet night is data too.
    """
    unknown = set(by) - set(GROUPINGS)
    if unknown:
        raise ValueError(f"unknown grouping {sorted(unknown)}: use any of {', '.join(GROUPINGS)}")
    if not 0 < feedback_rate <= 1:
        raise ValueError(f"feedback_rate {feedback_rate} must be in (0, 1]: the share of sales with feedback")
    rate = Decimal(str(feedback_rate))
    period_intervals = intervals(engine, market, period)
    spans = {i.crawl_id: i for i in period_intervals}
    groups: dict[tuple[object, ...], list[Sale]] = defaultdict(list)
    if tuple(by) == ("interval",):
        for span in period_intervals:
            groups[(span.crawl_id,)] = []
    for sale in sales(engine, market, period, category_depth=category_depth, feedback_prices=feedback_prices):
        key = tuple(
            {"interval": sale.crawl_id, "vendor": sale.vendor_id, "category": sale.category}[g] for g in by
        )
        groups[key].append(sale)
    out = []
    for key, members in groups.items():
        fields: dict[str, Any] = dict(zip(by, key, strict=True))
        span = spans.get(fields["interval"]) if "interval" in fields else None
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for sale in members:
            if sale.amount is not None and sale.currency:
                revenue[sale.currency] += sale.amount
        count = len(members)
        covered = {s.crawl_id for s in members} if span is None else {span.crawl_id}
        out.append(
            SalesEstimate(
                crawl_id=span.crawl_id if span else None,
                interval_start=span.start if span else None,
                interval_end=span.end if span else None,
                vendor_id=fields.get("vendor"),
                vendor=members[0].vendor if "vendor" in fields and members else None,
                category=fields.get("category"),
                feedback=count,
                estimated_sales=_scaled(Decimal(count), rate),
                revenue={c: _scaled(v, rate) for c, v in sorted(revenue.items())},
                unvalued=sum(1 for s in members if s.price_source is None),
                posted_before_interval=sum(1 for s in members if s.posted_before_interval),
                complete=all(spans[c].complete for c in covered),
            )
        )
    # Oldest interval first (crawl ids grow with time), then the largest groups.
    out.sort(
        key=lambda e: (
            e.interval_end.timestamp() if e.interval_end else 0.0,
            -e.feedback,
            e.vendor_id or "",
            e.category or "",
        )
    )
    return out


def _scaled(value: Decimal, rate: Decimal) -> Decimal:
    """A feedback-based figure corrected for under-reporting (unchanged at rate 1)."""
    return value if rate == 1 else value / rate


# (observed_at, crawl_id, amount, currency, unit, category) per snapshot of a listing, oldest first.
_Observed = tuple[datetime, int, Decimal | None, str | None, str | None, str | None]


def _listing_prices(session: Session, listing_ids: set[int], depth: int | None) -> dict[int, list[_Observed]]:
    if not listing_ids:
        return {}
    rows = session.execute(
        select(
            ListingSnapshot.listing_id,
            ListingSnapshot.observed_at,
            ListingSnapshot.crawl_id,
            ListingSnapshot.price_amount,
            ListingSnapshot.price_currency,
            ListingSnapshot.price_unit,
            Category.path,
        )
        .join(Listing, ListingSnapshot.listing_id == Listing.id)
        # Sightings are indexed crawl first: through the listing's market's crawls, one probe each.
        .join(Crawl, (Crawl.id == ListingSnapshot.crawl_id) & (Crawl.market_id == Listing.market_id))
        .outerjoin(Category, ListingSnapshot.category_id == Category.id)
        .where(ListingSnapshot.listing_id.in_(sorted(listing_ids)))
        .order_by(ListingSnapshot.observed_at, ListingSnapshot.id)
    )
    out: dict[int, list[_Observed]] = defaultdict(list)
    for listing_id, observed_at, crawl_id, amount, currency, unit, path in rows:
        category = " > ".join(list(path)[:depth] if depth else path) if path else None
        out[listing_id].append((observed_at, crawl_id, amount, currency, unit, category))
    return out


def _price_for(observed: list[_Observed], crawl_id: int, seen_at: datetime) -> _Observed | None:
    """The observation of the feedback's first crawl, else the latest before it, else the earliest after."""
    if not observed:
        return None
    for row in observed:
        if row[1] == crawl_id:
            return row
    index = bisect.bisect_right([row[0] for row in observed], seen_at)
    return observed[index - 1] if index > 0 else observed[0]
