"""When a market's crawl is due: its newest cron slot against the clock, its last recorded slot, its policy.

Pure functions of (schedule, now, last recorded slot), so the missed-run rules are tested with a fake
clock. A slot is the cron time in the market's own time zone (croniter follows DST), stored in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from croniter import croniter

from dnm.schedule.config import MarketSchedule

# Counting older missed slots stops here: a per-minute schedule down for weeks need not be walked.
COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class Decision:
    """What to do about a market now: run its newest slot, record it missed, or nothing (done or none yet)."""

    action: Literal["run", "missed", "none"]
    slot: datetime | None = None
    late: timedelta = timedelta(0)
    # Slots between the last recorded one and this one, never run: coalesced into this decision.
    skipped: int = 0
    detail: str | None = None


def latest_slot(schedule: MarketSchedule, now: datetime) -> datetime:
    """The newest slot at or before `now` (a slot exactly at `now` counts), in UTC."""
    local = now.astimezone(schedule.timezone) + timedelta(microseconds=1)
    slot: datetime = croniter(schedule.cron, local).get_prev(datetime)
    return slot.astimezone(UTC)


def next_slot(schedule: MarketSchedule, now: datetime) -> datetime:
    """The first slot after `now`, in UTC."""
    slot: datetime = croniter(schedule.cron, now.astimezone(schedule.timezone)).get_next(datetime)
    return slot.astimezone(UTC)


def slots_between(schedule: MarketSchedule, after: datetime, before: datetime) -> tuple[int, datetime | None]:
    """How many slots lie strictly between two times (counting stops at COUNT_LIMIT), and the first."""
    times = croniter(schedule.cron, after.astimezone(schedule.timezone))
    count, first = 0, None
    while count < COUNT_LIMIT:
        slot = times.get_next(datetime).astimezone(UTC)
        if slot >= before:
            break
        first = first or slot
        count += 1
    return count, first


def decide(schedule: MarketSchedule, now: datetime, last: datetime | None) -> Decision:
    """The decision for a market at `now`, given the newest slot already recorded for it (None: none ever).

    Only the newest slot is ever run: older ones that passed unrecorded (the scheduler was down, the
    machine was off) are coalesced into it and named in the detail. The newest slot runs when it is at
    most `misfire_grace` late; later than that, `missed = "run_once"` still runs it once when it is at
    most `catch_up_within` late, and `skip` records it as missed. A market never recorded has no older
    slots to account for: only its newest counts.
    """
    slot = latest_slot(schedule, now)
    if last is not None and slot <= last:
        return Decision("none")
    late = now - slot
    skipped, first = slots_between(schedule, last, slot) if last is not None else (0, None)
    earlier = ""
    if skipped:
        more = "+" if skipped >= COUNT_LIMIT else ""
        earlier = f"{skipped}{more} earlier slot(s) since {first:%Y-%m-%d %H:%M} UTC not run; "
    if late <= schedule.misfire_grace:
        return Decision("run", slot, late, skipped, earlier.rstrip("; ") or None)
    late_text = _minutes(late)
    if schedule.missed == "run_once" and late <= schedule.catch_up_within:
        detail = f"{earlier}caught up {late_text} late (missed = run_once)"
        return Decision("run", slot, late, skipped, detail)
    limit = schedule.misfire_grace if schedule.missed == "skip" else schedule.catch_up_within
    detail = f"{earlier}{late_text} late, beyond {describe(limit)} (missed = {schedule.missed})"
    return Decision("missed", slot, late, skipped, detail)


def _minutes(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def describe(span: timedelta) -> str:
    """A duration in words, as the schedule file would say it: 6 h, 10 min, 45 s."""
    seconds = int(span.total_seconds())
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
