"""Analytics on the demo markets crawled on days 1 to 3, held against the market's ground truth."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest

from demo.truth import MARKETS, truth
from demo.world import world_for
from dnm.analytics import (
    Period,
    as_frame,
    category_prices,
    crawl_activity,
    estimate_sales,
    identities,
    price_changes,
    price_history,
    sales,
    shipping_origins,
)
from dnm.analytics.prices import quantile
from tests.analytics.conftest import DAYS, Archive


def _price(row: dict[str, Any]) -> tuple[Decimal | None, str | None, str | None]:
    amount = row["price_amount"]
    return (Decimal(amount) if amount is not None else None, row["price_currency"], row["price_unit"])


def _feedback_identity(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["vendor_id"], row["buyer"], row["text"], row["posted_at_earliest"])


@pytest.mark.parametrize("market", MARKETS)
def test_price_history_equals_truth(three_days: Archive, market: str) -> None:
    days = {day: {row["listing_id"]: row for row in truth(market, day)} for day in DAYS}
    crawl_day = {three_days.crawls[market, day]: day for day in DAYS}
    changed_listings = 0
    for listing_id in sorted(set().union(*days.values())):
        history = price_history(three_days.engine, market, listing_id)
        expected = {day: _price(rows[listing_id]) for day, rows in days.items() if listing_id in rows}
        got = {crawl_day[p.crawl_id]: (p.amount, p.currency, p.unit) for p in history}
        assert got == expected, listing_id
        assert [p.observed_at for p in history] == sorted(p.observed_at for p in history)
        # Change points: exactly where consecutive observed prices differ.
        seen = [expected[day] for day in sorted(expected)]
        changes = price_changes(history)
        assert len(changes) == sum(1 for a, b in itertools.pairwise(seen) if a != b)
        for change in changes:
            assert (change.old_amount, change.old_currency) != (change.new_amount, change.new_currency) or (
                change.old_unit != change.new_unit
            )
        changed_listings += bool(changes)
    assert changed_listings > 0, "the demo changes some prices between days 1 and 3"


@pytest.mark.parametrize("market", MARKETS)
def test_category_medians_equal_truth(three_days: Archive, market: str) -> None:
    got = {
        (row.crawl_id, row.category, row.currency, row.unit): row
        for row in category_prices(three_days.engine, market, depth=2)
    }
    expected: dict[tuple[int, str, str, str | None], list[Decimal]] = defaultdict(list)
    for day in DAYS:
        for row in truth(market, day):
            amount, currency, unit = _price(row)
            if amount is not None and currency and row["category"]:
                key = (three_days.crawls[market, day], " > ".join(row["category"][:2]), currency, unit)
                expected[key].append(amount)
    assert set(got) == set(expected)
    for key, amounts in expected.items():
        row = got[key]
        assert row.listings == len(amounts)
        assert row.median == statistics.median(amounts)
        assert (row.minimum, row.maximum) == (min(amounts), max(amounts))
        assert row.q1 <= row.median <= row.q3


def test_quantile_interpolates_like_numpy() -> None:
    values = [Decimal(v) for v in ("1", "2", "3", "4")]
    assert quantile(values, Decimal("0.25")) == Decimal("1.75")
    assert quantile(values, Decimal("0.5")) == Decimal("2.5")
    assert quantile([Decimal("7")], Decimal("0.75")) == Decimal("7")
    with pytest.raises(ValueError, match="no values"):
        quantile([], Decimal("0.5"))


def test_identities_are_the_demo_shared_actors(three_days: Archive) -> None:
    world = world_for(1)
    vendor_ids = {
        (row["market"], row["vendor"]): row["vendor_id"]
        for market in MARKETS
        for day in DAYS
        for row in truth(market, day, kind="vendors")
    }
    shared = world.actors[: world.scale.shared_actors]
    assert len(shared) == 4
    expected = {
        frozenset((market, vendor_ids[market, name]) for market, name in actor.names.items()): (
            actor.key.fingerprint if actor.key else None
        )
        for actor in shared
    }
    found = identities(three_days.engine)
    got = {frozenset((a.market, a.vendor_id) for a in i.accounts): i.fingerprints for i in found}
    assert got == {accounts: (fingerprint,) for accounts, fingerprint in expected.items()}
    for identity in found:
        assert identity.markets == tuple(sorted(MARKETS))
        assert identity.first_seen_at is not None and identity.last_seen_at is not None
        assert identity.first_seen_at <= identity.last_seen_at
    # The market filter keeps identities with an account there: every shared actor is on both.
    assert len(identities(three_days.engine, "copperline")) == 4
    # Every keyed account is an identity of its own or part of one; its key is the one truth shows.
    keyed = {
        (row["market"], row["vendor_id"]): row["pgp_fingerprint"]
        for market in MARKETS
        for day in DAYS
        for row in truth(market, day, kind="vendors")
        if row["pgp_fingerprint"]
    }
    everyone = identities(three_days.engine, min_accounts=1)
    assert {(a.market, a.vendor_id): a.fingerprints for i in everyone for a in i.accounts} == {
        account: (fingerprint,) for account, fingerprint in keyed.items()
    }


@pytest.mark.parametrize("market", MARKETS)
def test_sales_are_the_feedback_new_between_days(three_days: Archive, market: str) -> None:
    feedback = {day: truth(market, day, kind="feedback") for day in DAYS}
    listings = {day: {row["listing_id"]: row for row in truth(market, day)} for day in DAYS}
    estimates = estimate_sales(three_days.engine, market)
    assert [e.crawl_id for e in estimates] == [three_days.crawls[market, day] for day in DAYS[1:]]
    for estimate, day in zip(estimates, DAYS[1:], strict=True):
        before = {_feedback_identity(row) for row in feedback[day - 1]}
        new = [row for row in feedback[day] if _feedback_identity(row) not in before]
        assert new, "the demo posts feedback every day"
        assert estimate.feedback == len(new)
        assert estimate.estimated_sales == len(new)
        # Each sale at its listing's primary price that day, else at the price shown with the feedback.
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for row in new:
            listing = listings[day].get(row["listing_id"])
            amount, currency, _ = (
                _price(listing) if listing else (row["price_amount"], row["price_currency"], None)
            )
            if amount is not None and currency:
                revenue[currency] += Decimal(amount)
        assert estimate.revenue == dict(revenue)
        assert estimate.complete and estimate.unvalued == 0
        # Feedback posted in the interval, as the market's clock tells it: none was missed the night before.
        assert estimate.posted_before_interval == 0
        assert estimate.interval_start < estimate.interval_end


@pytest.mark.parametrize("market", MARKETS)
def test_sales_by_vendor_and_rate(three_days: Archive, market: str) -> None:
    engine = three_days.engine
    every = sales(engine, market)
    by_vendor = estimate_sales(engine, market, by=("vendor",))
    assert Counter({e.vendor_id: e.feedback for e in by_vendor}) == Counter(s.vendor_id for s in every)
    assert all(e.crawl_id is None and e.interval_end is None for e in by_vendor)
    by_all = estimate_sales(engine, market, by=("interval", "vendor", "category"))
    assert sum(e.feedback for e in by_all) == len(every)
    halved = estimate_sales(engine, market, feedback_rate=0.5)
    for one, half in zip(estimate_sales(engine, market), halved, strict=True):
        assert half.estimated_sales == 2 * one.estimated_sales
        assert half.revenue == {c: 2 * v for c, v in one.revenue.items()}
    total = estimate_sales(engine, market, by=())
    assert len(total) == 1 and total[0].feedback == len(every)
    with pytest.raises(ValueError, match="feedback_rate"):
        estimate_sales(engine, market, feedback_rate=0)
    with pytest.raises(ValueError, match="grouping"):
        estimate_sales(engine, market, by=("listing",))


def test_period_filters_crawls_and_keeps_the_baseline(three_days: Archive) -> None:
    market = "hollowmere"
    activity = crawl_activity(three_days.engine, market)
    assert [a.crawl_id for a in activity] == [three_days.crawls[market, day] for day in DAYS]
    assert [a.listings for a in activity] == [len(truth(market, day)) for day in DAYS]
    assert [a.vendors for a in activity] == [len(truth(market, day, kind="vendors")) for day in DAYS]
    last = Period(since=activity[-1].started_at)
    assert [a.crawl_id for a in crawl_activity(three_days.engine, market, last)] == [activity[-1].crawl_id]
    # The period's first interval still opens with the crawl before it.
    [estimate] = estimate_sales(three_days.engine, market, last)
    assert estimate.crawl_id == activity[-1].crawl_id and estimate.interval_start == activity[-2].started_at
    assert estimate_sales(three_days.engine, market, Period(until=activity[0].started_at)) == []


@pytest.mark.parametrize("market", MARKETS)
def test_shipping_origins_count_distinct_listings(three_days: Archive, market: str) -> None:
    expected: dict[str, set[str]] = defaultdict(set)
    for day in DAYS:
        for row in truth(market, day):
            for code in row["ships_from"]:
                expected[code].add(row["listing_id"])
    origins = shipping_origins(three_days.engine, market)
    assert {o.code: o.listings for o in origins} == {code: len(ids) for code, ids in expected.items()}
    assert [o.listings for o in origins] == sorted((o.listings for o in origins), reverse=True)


def test_as_frame_gives_pandas_frames(three_days: Archive) -> None:
    pandas = pytest.importorskip("pandas")
    frame = as_frame(estimate_sales(three_days.engine, "copperline"))
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame["feedback"]) == [e.feedback for e in estimate_sales(three_days.engine, "copperline")]
    assert as_frame([{"a": 1}, {"a": 2}])["a"].tolist() == [1, 2]
