"""Drift rules on stats alone: fill rates per field, unfilled fields shown as 0, drops beyond the profile's
threshold raise alarms and smaller ones do not."""

from __future__ import annotations

from dnm.drift import Alarm, compare, fill_rates, run_report
from dnm.profile import Drift

FIELDS = {"listing/listing": ["title", "prices", "ships_to"]}


def stats(records: int, title: int, prices: int, parsed: int = 100) -> dict[str, object]:
    values: dict[str, object] = {
        "dnm/fill/listing/listing/records": records,
        "dnm/coverage/listing/discovered": 100,
        "dnm/coverage/listing/fetched": 100,
        "dnm/coverage/listing/parsed": parsed,
        "dnm/errors/timeout": 2,
    }
    if title:
        values["dnm/fill/listing/listing/title"] = title
    if prices:
        values["dnm/fill/listing/listing/prices"] = prices
    return values


def test_fill_rates_and_a_never_filled_field_at_zero() -> None:
    assert fill_rates(stats(50, 50, 25)) == {
        "listing/listing.title": (1.0, 50),
        "listing/listing.prices": (0.5, 50),
    }
    report = run_report(stats(50, 50, 25), "complete", FIELDS)
    assert report["fill"]["listing/listing.ships_to"] == {"rate": 0.0, "records": 50}
    assert report["coverage"] == {"listing": 1.0} and report["errors"] == {"dnm/errors/timeout": 2}


def test_a_drop_beyond_the_threshold_is_an_alarm_and_a_small_one_is_not() -> None:
    drift = Drift(max_drop=0.1, min_records=5)
    good = run_report(stats(100, 100, 98), "complete", FIELDS)
    assert compare(run_report(stats(100, 100, 92), "complete", FIELDS), good, 7, drift) == []
    alarms = compare(run_report(stats(100, 100, 0, parsed=80), "complete", FIELDS), good, 7, drift)
    assert alarms == [
        Alarm("fill", "listing/listing.prices", 0.98, 0.0, 7),
        Alarm("coverage", "listing", 1.0, 0.8, 7),
    ]
    assert str(alarms[0]) == "listing/listing.prices fill rate fell from 98% to 0% (last good crawl 7)"


def test_too_few_records_in_the_baseline_are_not_watched() -> None:
    drift = Drift(max_drop=0.1, min_records=5)
    good = run_report(stats(3, 3, 3), "complete", FIELDS)
    assert compare(run_report(stats(3, 3, 0), "complete", FIELDS), good, 1, drift) == []
