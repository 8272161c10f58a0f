"""The simulated clock: which instant "now" is on a demo day, and day arithmetic on instants.

Nothing in the demo reads the wall clock; pages and truth must be byte-identical for the same
(seed, market, day), so every instant is derived from the day number.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

# Day 0's server time. Day N is exactly N days later, always at noon UTC.
EPOCH = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# Midnight of day 0; day boundaries (for "which day did this sale happen on") start here.
MIDNIGHT = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def now(day: int) -> datetime:
    """Server time shown on every page of a given demo day."""
    return EPOCH + timedelta(days=day)


def day_start(day: int) -> datetime:
    """Midnight UTC at the start of a demo day."""
    return MIDNIGHT + timedelta(days=day)


def day_of(instant: datetime) -> int:
    """The demo day an instant falls in (days before day 0 are negative)."""
    return (instant - MIDNIGHT) // DAY


def date_of_day(day: int) -> date:
    """Calendar date of a demo day."""
    return day_start(day).date()


def iso(instant: datetime) -> str:
    """ISO 8601 with an explicit UTC offset, as the export schema wants ("2026-01-02T07:00:00+00:00")."""
    return instant.astimezone(UTC).isoformat(timespec="seconds")
