"""The scheduler's run history: one row per cron slot of a market, whether it ran, and how it ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.types import UTCDateTime

# What became of a slot. `running` until the crawl process ends; then the crawl's own verdict
# (`complete`, `partial`, `drift`, `failed`), or `timed-out` / `budget-spent` when the time box or the
# request budget stopped it. A slot that did not run is `skipped-overlap` (another crawl of the market
# held its lock) or `missed` (the scheduler was not running in time, and the missed-run policy said no).
OUTCOMES = (
    "running",
    "complete",
    "partial",
    "drift",
    "failed",
    "timed-out",
    "budget-spent",
    "skipped-overlap",
    "missed",
)


class ScheduledRun(Base):
    """One cron slot of one market as the scheduler (dnm.schedule) handled it.

    The (market, scheduled_for) pair is unique: a slot is claimed by inserting its row before the
    crawl starts, so two schedulers pointed at one archive never both run the same slot.
    """

    __tablename__ = "scheduled_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The profile's slug, not a foreign key: a market's first scheduled crawl is what creates its row.
    market: Mapped[str] = mapped_column(String(64))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16))
    # The `dnm crawl` process: its exit status (negative: killed by that signal), id and host.
    exit_status: Mapped[int | None] = mapped_column(Integer)
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    crawl_id: Mapped[int | None] = mapped_column(ForeignKey("crawls.id"))
    # The limits the run was given: seconds (CLOSESPIDER_TIMEOUT) and responses (CLOSESPIDER_PAGECOUNT).
    time_box: Mapped[int | None] = mapped_column(Integer)
    request_budget: Mapped[int | None] = mapped_column(Integer)
    log_file: Mapped[str | None] = mapped_column(String(500))
    # Why, in words: the lock holder, slots missed before this one, a kill after the time box.
    detail: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("market", "scheduled_for", name="uq_scheduled_runs_market_slot"),)
