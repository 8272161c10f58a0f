"""Dates and times as markets show them, read into UTC spans.

A market time is never a point: "5 hours ago" (rounded down by the market) means between 5 and 6
hours before the page was fetched, and "2019-10-27" means some time that day. ``parse_when``
returns a ``TimeSpan`` covering every instant the text can denote. Decisions:

* Bounds are closed: ``earliest <= t <= latest``. A span is exactly one unit of the shown
  precision wide, so one bound may be an instant the text just excludes (with floor rounding "5 hours
  ago" is ``[now-6h, now-5h]`` although exactly 6 h is not possible).
* Relative ages ("3d", "1d 22h", "5 hours ago", "2 weeks ago") are read with the market's rounding:
  ``rounding="floor"`` (the default; what Dream-style "3d" counters do) spans ``[N+1, N]`` units ago;
  ``rounding="round"`` centres the span on N units ago, ``[N+½, N-½]`` (never after ``now``). The
  unit is the smallest one shown. Months and years use calendar arithmetic.
* "just now" is the last minute; "today" runs from 00:00 UTC to ``now``; "yesterday" alone covers both
  readings markets use, the previous UTC day and "one day ago" (24 to 48 hours before ``now``), since a
  page cannot tell which it meant; "today 14:32" and "yesterday 14:32" are that minute.
* Absolute dates span their whole UTC day, "HH:MM" times their minute, "HH:MM:SS" their second;
  rounding does not apply to them. When a text holds both an absolute date and a relative note
  ("Last active 19/11/2018 (today)"), the absolute date wins.
* Numeric dates are day-first by default ("06-03-2020" is 6 March); ``day_first=False`` reads
  month-first. A day above 12 settles the order whatever ``day_first`` says. Two-digit years are 20xx.
* Times without a zone, and a naive ``now``, are taken as UTC. "UTC", "GMT", "Z" and numeric offsets
  ("+01:00", "UTC+2") are applied; other zone names ("CET", "EST") are ambiguous and raise.
* Anything before 2009-01-01 (no market existed) or starting more than a day after ``now``
  raises, as do future phrasings ("in 3 days", "5 days left").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from dateutil.relativedelta import relativedelta

from dnm.normalize.errors import NormalizationError, require_text
from dnm.normalize.text import clean_text

EARLIEST_PLAUSIBLE = datetime(2009, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True)
class TimeSpan:
    """The closed UTC interval ``[earliest, latest]`` a market date or age can denote."""

    earliest: datetime
    latest: datetime


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})(?!\d)"
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})(?!\d)"),
    re.compile(
        r"(?<!\d)(?P<first>\d{1,2})(?P<sep>[-/.])(?P<second>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})(?!\d)"
    ),
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}", re.I),
    re.compile(rf"(?<!\d){_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}", re.I),
)
# Case matters here: "PM"/"UTC" are read, while a lower-case word after the time ("last seen") is not
# mistaken for a zone name.
_TIME = re.compile(
    r"\s*,?\s*(?:at\s+|T|@\s*)?(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?"
    r"(?:\s*(?P<half>[AaPp])\.?[Mm]\.?(?!\w))?"
    r"(?:\s*(?:(?P<utc>UTC|GMT|Z)(?![A-Za-z])|(?=[+-]))(?P<offset>[+-]\d{1,2}(?::?\d{2})?(?!\d))?"
    r"|\s*(?P<zone>[A-Z]{2,5})(?![A-Za-z]))?"
)
_RELATIVE_UNIT = (
    r"(?P<unit>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?|w"
    r"|months?|mos?|mon|years?|yrs?|y)"
)
# "a"/"an"/"one" need a space before the unit, so the "and" in "2 hours and 5 minutes" is not "a(n) d(ay)".
_RELATIVE = re.compile(rf"(?<!\w)(?:(?P<count>\d+)\s*|(?:an?|one)\s+){_RELATIVE_UNIT}(?!\w)", re.I)
_RELATIVE_JOIN = re.compile(r"[\s,]*(?:and\s+)?", re.I)
_UNIT_NAMES = {
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "d": "days",
    "w": "weeks",
    "y": "years",
}
_UNIT_ORDER = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_FUTURE_BEFORE = re.compile(r"\bin\s*$", re.I)
_FUTURE_AFTER = re.compile(r"\s*(?:from\s+now|left|remaining|to\s+go)\b", re.I)
_JUST_NOW = re.compile(
    r"\b(?:just\s+now|right\s+now|moments?\s+ago|(?:a\s+)?few\s+seconds\s+ago|seconds\s+ago|now)\b", re.I
)
_DAY_WORD = re.compile(r"\b(?P<word>today|yesterday)\b", re.I)

EXPECTED_WHEN = (
    "a date such as '28/06/2018', '2019-10-27', 'April 20, 2019', or an age such as '3d', "
    "'1d 22h', '5 hours ago', 'yesterday'"
)


@dataclass(frozen=True)
class _Absolute:
    """An absolute date/time found in a text: the UTC span it covers and the calendar date shown."""

    span: TimeSpan
    shown: date
    has_time: bool


def parse_when(text: str, now: datetime, *, day_first: bool = True, rounding: str = "floor") -> TimeSpan:
    """Read an absolute date/time or a relative age into the UTC span it denotes, relative to ``now``."""
    cleaned = clean_text(require_text(text, "a date or age"))
    if rounding not in ("floor", "round"):
        raise NormalizationError("a rounding mode", rounding, "'floor' or 'round'")
    now = _as_utc(now)
    absolute = _find_absolute(cleaned, text, day_first=day_first)
    try:
        span = _relative(cleaned, text, now, rounding) if absolute is None else absolute.span
    except OverflowError:  # "just now" or "yesterday" against a clock at the calendar's first day
        raise NormalizationError("a date", text, "a time within the calendar") from None
    _check_plausible(span.earliest, text, now)
    return span


def parse_date(text: str, *, day_first: bool = True, now: datetime | None = None) -> date:
    """Read the calendar date a text shows ("Join date 28/06/2018" -> 2018-06-28), without zone shifts.

    Relative ages need ``parse_when``. With ``now``, dates more than a day ahead of it raise.
    """
    absolute = _find_absolute(clean_text(require_text(text, "a date")), text, day_first=day_first)
    if absolute is None:
        raise NormalizationError("a date", text, "an absolute date such as '28/06/2018' or 'April 20, 2019'")
    _check_plausible(absolute.span.earliest, text, now)
    return absolute.shown


def parse_instant(text: str, *, day_first: bool = True, now: datetime | None = None) -> datetime:
    """Read a date with a time of day, e.g. a "Server time: 2026-01-02 12:00:00 UTC" footer, as UTC."""
    absolute = _find_absolute(clean_text(require_text(text, "a date and time")), text, day_first=day_first)
    if absolute is None or not absolute.has_time:
        raise NormalizationError(
            "a date and time", text, "a date with a time of day, e.g. '2026-01-02 12:00:00 UTC'"
        )
    _check_plausible(absolute.span.earliest, text, now)
    return absolute.span.earliest


def _as_utc(moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise NormalizationError("a reference time", moment, "a datetime for now=")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _check_plausible(earliest: datetime, text: str, now: datetime | None) -> None:
    """Refuse times before the first markets or more than a day after ``now`` (when known)."""
    now = None if now is None else _as_utc(now)
    if earliest < EARLIEST_PLAUSIBLE:
        raise NormalizationError("a date", text, "a time after 2009-01-01, when the first markets opened")
    # Subtracting from `earliest` (2009 or later here) cannot overflow; adding to a `now` of 9999-12-31 can.
    if now is not None and earliest - FUTURE_TOLERANCE > now:
        limit = f"{now:%Y-%m-%d %H:%M} UTC"
        raise NormalizationError("a date", text, f"a time no later than a day after now ({limit})")


def _find_absolute(cleaned: str, text: str, *, day_first: bool) -> _Absolute | None:
    """Find the leftmost absolute date in ``cleaned`` and the time of day right after it, if any."""
    matches = [m for m in (p.search(cleaned) for p in _DATE_PATTERNS) if m is not None]
    if not matches:
        return None
    match = min(matches, key=lambda m: m.start())
    try:
        shown = _calendar_date(match, day_first=day_first)
    except ValueError:
        raise NormalizationError("a date", text, "a real calendar date") from None
    time = _TIME.match(cleaned, match.end())
    if time is None:
        midnight = datetime(shown.year, shown.month, shown.day, tzinfo=UTC)
        return _Absolute(_span(midnight, timedelta(days=1), text), shown, has_time=False)
    return _Absolute(_with_time(shown, time, text), shown, has_time=True)


def _span(start: datetime, width: timedelta, text: str) -> TimeSpan:
    try:
        return TimeSpan(start, start + width)
    except OverflowError:  # year 9999 and the like
        raise NormalizationError("a date", text, "a time within the calendar") from None


def _calendar_date(match: re.Match[str], *, day_first: bool) -> date:
    groups = match.groupdict()
    year = int(groups["year"])
    year += 2000 if year < 100 else 0
    if groups.get("first"):
        first, second = int(groups["first"]), int(groups["second"])
        day, month = (first, second) if day_first else (second, first)
        if month > 12 >= day:  # only one reading is a real date
            day, month = month, day
    else:
        day = int(groups["day"])
        month = int(groups["month"]) if groups["month"].isdigit() else _MONTHS[groups["month"].casefold()]
    return date(year, month, day)


def _with_time(shown: date, time: re.Match[str], text: str) -> TimeSpan:
    """The span of the minute or second shown by ``time`` on day ``shown``, shifted to UTC."""
    if time["zone"]:
        expected = "UTC, GMT, Z or a numeric offset such as +01:00"
        raise NormalizationError("a time zone", time["zone"], expected, within=text)
    hour, minute = int(time["hour"]), int(time["minute"])
    if time["half"]:
        if not 1 <= hour <= 12:
            raise NormalizationError("a time of day", text, "an hour from 1 to 12 before AM/PM")
        hour = hour % 12 + (12 if time["half"].lower() == "p" else 0)
    second = int(time["second"] or 0)
    try:
        local = datetime(shown.year, shown.month, shown.day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise NormalizationError("a time of day", text, "hours 0-23, minutes and seconds 0-59") from None
    width = timedelta(seconds=1) if time["second"] else timedelta(minutes=1)
    try:
        start = local - _offset(time["offset"], text)
    except OverflowError:
        raise NormalizationError("a date", text, "a time within the calendar") from None
    return _span(start, width, text)


def _offset(offset: str | None, text: str) -> timedelta:
    """Parse "+01:00", "+0100", "-5" as the zone's offset from UTC."""
    if not offset:
        return timedelta(0)
    digits = offset[1:].replace(":", "")
    hours, minutes = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
    if hours > 14 or minutes > 59:
        expected = "an offset between -14:00 and +14:00"
        raise NormalizationError("a time zone offset", offset, expected, within=text)
    sign = -1 if offset[0] == "-" else 1
    return sign * timedelta(hours=hours, minutes=minutes)


def _relative(cleaned: str, text: str, now: datetime, rounding: str) -> TimeSpan:
    """Read an age ("1d 22h", "5 hours ago"), "just now", "today" or "yesterday" relative to ``now``."""
    run = _relative_run(cleaned, text)
    if run is not None:
        return _age_span(now, run, rounding)
    if _JUST_NOW.search(cleaned):
        return TimeSpan(now - timedelta(minutes=1), now)
    day_word = _DAY_WORD.search(cleaned)
    if day_word is None:
        raise NormalizationError("a date or age", text, EXPECTED_WHEN)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = midnight - timedelta(days=1) if day_word["word"].casefold() == "yesterday" else midnight
    time = _TIME.match(cleaned, day_word.end())
    if time is not None:
        return _with_time(day.date(), time, text)
    if day is midnight:
        return TimeSpan(day, now)
    # Calendar yesterday and "a day ago" (floor of elapsed days == 1) differ by up to a day.
    return TimeSpan(min(day, now - timedelta(days=2)), max(midnight, now - timedelta(days=1)))


def _relative_run(cleaned: str, text: str) -> dict[str, int] | None:
    """Collect the first run of age components ("1d 22h", "3 days, 4 hours") as unit -> count."""
    components: dict[str, int] = {}
    end = None
    for match in _RELATIVE.finditer(cleaned):
        if end is not None and not _RELATIVE_JOIN.fullmatch(cleaned, end, match.start()):
            break
        if end is None and _FUTURE_BEFORE.search(cleaned, 0, match.start()):
            raise NormalizationError("a date or age", text, "a past time, not one still to come")
        unit = _unit_name(match["unit"])
        components[unit] = components.get(unit, 0) + int(match["count"] or 1)
        end = match.end()
    if end is not None and _FUTURE_AFTER.match(cleaned, end):
        raise NormalizationError("a date or age", text, "a past time, not one still to come")
    return components or None


def _unit_name(unit: str) -> str:
    unit = unit.casefold()
    if unit.startswith("mo"):
        return "months"
    if unit.startswith("mi") or unit == "m":
        return "minutes"
    return _UNIT_NAMES[unit[0]]


def _age_span(now: datetime, components: dict[str, int], rounding: str) -> TimeSpan:
    """Span of an age whose smallest shown unit was rounded down ("floor") or to nearest ("round")."""
    smallest = next(unit for unit in reversed(_UNIT_ORDER) if unit in components)

    def ago(extra: int) -> datetime:
        shifted = dict(components, **{smallest: components[smallest] + extra})
        try:
            return now - relativedelta(**shifted)  # type: ignore[arg-type]
        except (OverflowError, ValueError):
            # Beyond the calendar: a shift forward ("0m" rounded, -1 unit and nothing larger) from a clock
            # at its last day passes the end, any other shift the start (rejected as too old).
            forward = shifted[smallest] < 0 and not any(v for k, v in shifted.items() if k != smallest)
            return (datetime.max if forward else datetime.min).replace(tzinfo=UTC)

    if rounding == "floor":
        return TimeSpan(ago(1), ago(0))
    return TimeSpan(_midpoint(ago(1), ago(0)), min(now, _midpoint(ago(0), ago(-1))))


def _midpoint(a: datetime, b: datetime) -> datetime:
    return a + (b - a) / 2
