"""Formatting primitives both skins build on: digit grouping, relative ages and calendar words.

Relative ages always round down ("5 hours ago" means at least 5 and less than 6 hours have
passed), so a parser can turn a shown age into an exact [earliest, latest] interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def grouped(amount: Decimal, places: int = 2) -> str:
    """Thousands separated with commas, dot decimals: 1234.5 -> "1,234.50"."""
    quantum = Decimal(1).scaleb(-places)
    return f"{amount.quantize(quantum, rounding=ROUND_HALF_UP):,.{places}f}"


def coin(amount: Decimal, places: int) -> str:
    """A crypto amount with fixed decimals, more of them for tiny values so it never reads 0."""
    if amount < Decimal(1).scaleb(-places + 1):
        places += 2
    return f"{amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"


def split(delta: timedelta) -> tuple[int, int, int, int]:
    """Whole days, hours, minutes and seconds of a non-negative interval (floored)."""
    total = max(0, int(delta.total_seconds()))
    return total // 86_400, total % 86_400 // 3600, total % 3600 // 60, total % 60


def age_compact(delta: timedelta) -> str:
    """Market-terse ages: "12m", "5h", "1d 22h" under three days, then "3d"."""
    days, hours, minutes, _ = split(delta)
    if days == 0 and hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h"
    if days < 3:
        return f"{days}d {hours}h"
    return f"{days}d"


def age_words(delta: timedelta) -> str:
    """Forum-style ages: "just now", "1 minute ago", "5 hours ago", "yesterday", "3 days ago"."""
    days, hours, minutes, _ = split(delta)
    if days == 0 and hours == 0 and minutes == 0:
        return "just now"
    if days == 0 and hours == 0:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    if days == 0:
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    if days == 1:
        return "yesterday"
    return f"{days} days ago"


def long_date(instant: datetime) -> str:
    """Like "June 28, 2026"."""
    return f"{MONTHS[instant.month - 1]} {instant.day}, {instant.year}"


def weekday_time(instant: datetime) -> str:
    """Like "Friday, Jan 2, 2026 12:00:00"."""
    return (
        f"{WEEKDAYS[instant.weekday()]}, {MONTHS[instant.month - 1][:3]} {instant.day}, {instant.year} "
        f"{instant:%H:%M:%S}"
    )
