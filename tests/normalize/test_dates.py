"""parse_when, parse_date and parse_instant on market dates and ages."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from dnm.normalize import NormalizationError, TimeSpan, parse_date, parse_instant, parse_when

NOW = datetime(2026, 3, 14, 15, 0, 0, tzinfo=UTC)


def ago(**kwargs: int) -> datetime:
    return NOW - timedelta(**kwargs)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


RELATIVE = [
    ("3d", ago(days=4), ago(days=3)),
    ("1d 22h", ago(days=1, hours=23), ago(days=1, hours=22)),
    ("5h", ago(hours=6), ago(hours=5)),
    ("45m", ago(minutes=46), ago(minutes=45)),
    ("30s", ago(seconds=31), ago(seconds=30)),
    ("3 days ago", ago(days=4), ago(days=3)),
    ("5 hours ago", ago(hours=6), ago(hours=5)),
    ("an hour ago", ago(hours=2), ago(hours=1)),
    ("a minute ago", ago(minutes=2), ago(minutes=1)),
    ("2 weeks ago", ago(weeks=3), ago(weeks=2)),
    ("1 day ago last seen", ago(days=2), ago(days=1)),
    ("Last seen: 3 days, 4 hours ago", ago(days=3, hours=5), ago(days=3, hours=4)),
    ("2 hours and 5 minutes ago", ago(hours=2, minutes=6), ago(hours=2, minutes=5)),
    ("1 month ago", utc(2026, 1, 14, 15), utc(2026, 2, 14, 15)),
    ("1 year ago", utc(2024, 3, 14, 15), utc(2025, 3, 14, 15)),
    ("just now", ago(minutes=1), NOW),
    ("Just now", ago(minutes=1), NOW),
    ("today", utc(2026, 3, 14), NOW),
    ("yesterday", utc(2026, 3, 12, 15), utc(2026, 3, 14)),  # calendar day or 24-48 h ago
    ("Yesterday 09:12", utc(2026, 3, 13, 9, 12), utc(2026, 3, 13, 9, 13)),
    ("today at 14:32", utc(2026, 3, 14, 14, 32), utc(2026, 3, 14, 14, 33)),
]

ABSOLUTE = [
    ("28/06/2018", utc(2018, 6, 28), utc(2018, 6, 29)),
    ("Join date 28/06/2018", utc(2018, 6, 28), utc(2018, 6, 29)),
    ("Last active 19/11/2018 (today)", utc(2018, 11, 19), utc(2018, 11, 20)),  # the absolute date wins
    ("2019-10-27", utc(2019, 10, 27), utc(2019, 10, 28)),
    ("2019/10/27", utc(2019, 10, 27), utc(2019, 10, 28)),
    ("April 20, 2019", utc(2019, 4, 20), utc(2019, 4, 21)),
    ("N sold since April 20, 2019", utc(2019, 4, 20), utc(2019, 4, 21)),
    ("Dec 26, 2019", utc(2019, 12, 26), utc(2019, 12, 27)),
    ("Sept. 3rd, 2019", utc(2019, 9, 3), utc(2019, 9, 4)),
    ("20 April 2019", utc(2019, 4, 20), utc(2019, 4, 21)),
    ("Joined 20th of April, 2019", utc(2019, 4, 20), utc(2019, 4, 21)),
    ("06-03-2020", utc(2020, 3, 6), utc(2020, 3, 7)),  # day first
    ("06.03.20", utc(2020, 3, 6), utc(2020, 3, 7)),
    ("Wednesday, Nov 6, 2019 20:53:28", utc(2019, 11, 6, 20, 53, 28), utc(2019, 11, 6, 20, 53, 29)),
    ("Nov 6, 2019 8:53 PM", utc(2019, 11, 6, 20, 53), utc(2019, 11, 6, 20, 54)),
    ("Nov 6, 2019 12:05 am", utc(2019, 11, 6, 0, 5), utc(2019, 11, 6, 0, 6)),
    ("2026-03-14 14:32", utc(2026, 3, 14, 14, 32), utc(2026, 3, 14, 14, 33)),
    ("2026-03-14T14:32Z", utc(2026, 3, 14, 14, 32), utc(2026, 3, 14, 14, 33)),
    ("2026-01-02 12:00:00 UTC", utc(2026, 1, 2, 12), utc(2026, 1, 2, 12, 0, 1)),
    ("2026-01-02 12:00:00.123 GMT", utc(2026, 1, 2, 12), utc(2026, 1, 2, 12, 0, 1)),
    ("2026-01-02 12:00 +01:00", utc(2026, 1, 2, 11), utc(2026, 1, 2, 11, 1)),
    ("2026-01-02 12:00 UTC+2", utc(2026, 1, 2, 10), utc(2026, 1, 2, 10, 1)),
    ("2026-01-02 12:00 -0530", utc(2026, 1, 2, 17, 30), utc(2026, 1, 2, 17, 31)),
    ("28/06/2018 14:32 last seen", utc(2018, 6, 28, 14, 32), utc(2018, 6, 28, 14, 33)),
    ("2026-03-15", utc(2026, 3, 15), utc(2026, 3, 16)),  # within a day of now: clock skew
]


@pytest.mark.parametrize(("shown", "earliest", "latest"), RELATIVE + ABSOLUTE)
def test_parse_when(shown: str, earliest: datetime, latest: datetime) -> None:
    assert parse_when(shown, NOW) == TimeSpan(earliest, latest)


def test_results_are_utc_aware() -> None:
    span = parse_when("5h", NOW)
    assert span.earliest.tzinfo is UTC and span.latest.tzinfo is UTC


def test_naive_and_offset_now_are_read_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_when("5h", naive) == parse_when("5h", NOW)
    berlin = NOW.astimezone(timezone(timedelta(hours=1)))
    assert parse_when("5h", berlin) == parse_when("5h", NOW)


@pytest.mark.parametrize(
    ("shown", "earliest", "latest"),
    [
        ("5 hours ago", ago(hours=5, minutes=30), ago(hours=4, minutes=30)),
        ("1d 22h", ago(days=1, hours=22, minutes=30), ago(days=1, hours=21, minutes=30)),
        ("0 minutes ago", ago(seconds=30), NOW),  # never after now
        ("2019-10-27", utc(2019, 10, 27), utc(2019, 10, 28)),  # absolute dates are not rounded
    ],
)
def test_round_centres_the_span(shown: str, earliest: datetime, latest: datetime) -> None:
    assert parse_when(shown, NOW, rounding="round") == TimeSpan(earliest, latest)


@pytest.mark.parametrize(
    ("shown", "day_first", "expected"),
    [
        ("06-03-2020", True, date(2020, 3, 6)),
        ("06-03-2020", False, date(2020, 6, 3)),
        ("28/06/2018", False, date(2018, 6, 28)),  # 28 cannot be a month
        ("06/28/2018", True, date(2018, 6, 28)),
        ("2019-10-27", False, date(2019, 10, 27)),  # year-first is always Y-M-D
    ],
)
def test_day_first(shown: str, day_first: bool, expected: date) -> None:
    assert parse_date(shown, day_first=day_first) == expected
    assert parse_when(shown, NOW, day_first=day_first).earliest.date() == expected


def test_parse_date_keeps_the_shown_calendar_date() -> None:
    assert parse_date("2019-10-27 23:30 -05:00") == date(2019, 10, 27)
    assert parse_date("Member since: April 19, 2019") == date(2019, 4, 19)


def test_parse_instant() -> None:
    assert parse_instant("Server time: 2026-01-02 12:00:00 UTC") == utc(2026, 1, 2, 12)
    assert parse_instant("Wednesday, Nov 6, 2019 20:53:28") == utc(2019, 11, 6, 20, 53, 28)
    assert parse_instant("2026-01-02 13:00 +01:00") == utc(2026, 1, 2, 12)


@pytest.mark.parametrize(
    ("shown", "message"),
    [
        ("garbage", r"cannot read a date or age in 'garbage': expected a date such as"),
        ("", "cannot read a date or age"),
        ("99:99", "cannot read a date or age"),
        ("2008-12-31", "expected a time after 2009-01-01"),
        ("20 years ago", "expected a time after 2009-01-01"),
        ("2026-03-16", "expected a time no later than a day after now"),
        ("9999-12-31", "a time within the calendar"),
        ("31/02/2020", "expected a real calendar date"),
        ("13/13/2020", "expected a real calendar date"),
        ("2026-01-02 25:00", "hours 0-23"),
        ("Nov 6, 2019 13:00 PM", "an hour from 1 to 12"),
        ("2026-01-02 12:00 CET", r"cannot read a time zone in 'CET'"),
        ("2026-01-02 12:00 +15:00", "an offset between"),
        ("Ends in 3 days", "a past time"),
        ("5 days left", "a past time"),
        ("9" * 40 + " years ago", "after 2009"),
    ],
)
def test_parse_when_errors(shown: str, message: str) -> None:
    with pytest.raises(NormalizationError, match=message):
        parse_when(shown, NOW)


def test_bad_rounding_and_now() -> None:
    with pytest.raises(NormalizationError, match="'floor' or 'round'"):
        parse_when("5h", NOW, rounding="ceil")
    with pytest.raises(NormalizationError, match="a datetime for now="):
        parse_when("5h", "2026-01-01")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_date("5 hours ago"), "an absolute date"),
        (lambda: parse_date("2008-01-01"), "after 2009-01-01"),
        (lambda: parse_date("2027-01-01", now=NOW), "no later than a day after now"),
        (lambda: parse_instant("2026-01-02"), "a date with a time of day"),
        (lambda: parse_instant("Server time: unknown"), "a date with a time of day"),
    ],
)
def test_parse_date_and_instant_errors(call: object, message: str) -> None:
    with pytest.raises(NormalizationError, match=message):
        call()  # type: ignore[operator]
