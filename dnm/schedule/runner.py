"""The scheduler: due cron slots become `dnm crawl` processes, one per market at a time, each row in history.

Each crawl runs in its own process (`python -m dnm.cli crawl MARKET ...`, its own session, its output in
a log file per run): a crawl that crashes or hangs cannot take the scheduler or another market's crawl
with it, and Scrapy's reactor, which cannot restart, starts fresh every night. The crawl holds its
market's lock itself (dnm.schedule.lock); the scheduler also checks it first, so an overlap is recorded
without starting a process. A slot is claimed by inserting its `scheduled_runs` row (unique per market
and slot) before the process starts, so two schedulers on one archive never both run it.

Limits: the time box goes to the crawl as CLOSESPIDER_TIMEOUT (Scrapy stops it and files it `partial`);
a process still alive `kill_after` later is sent SIGTERM (a graceful Scrapy stop), and SIGKILL after
TERM_GRACE more. The request budget goes as CLOSESPIDER_PAGECOUNT (responses received).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dnm.schedule.config import MarketSchedule, ScheduleConfig
from dnm.schedule.lock import EXIT_LOCKED, holder, lock_dir
from dnm.schedule.timing import Decision, decide, describe, next_slot
from models import Crawl, Market, ScheduledRun
from models.db import database_url, open_engine

logger = logging.getLogger("dnm.schedule")
Clock = Callable[[], datetime]
# After SIGTERM, how long a crawl may take to close before it is killed.
TERM_GRACE = timedelta(seconds=60)
# How often the loop looks at its crawls while some run (exits, time boxes), and at most between slots.
POLL_RUNNING, POLL_IDLE = 1.0, 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CrawlResult:
    """What the archive says of the crawl a run made."""

    crawl_id: int
    status: str
    status_reason: str | None
    alarms: list[str]


@dataclass
class _Child:
    run_id: int
    schedule: MarketSchedule
    slot: datetime
    started_at: datetime
    # The market's newest crawl id before this process started: its own crawl is the next one.
    crawl_floor: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    stopped: str | None = None
    term_at: datetime | None = None
    killed: bool = False
    time_boxed: bool = False


def outcome_of(
    exit_status: int | None, crawl: CrawlResult | None, stopped: str | None, time_boxed: bool
) -> tuple[str, str | None]:
    """The history outcome of a finished run, and the words that explain it.

    `exit_status` is the crawl process's (None when unknown: it ended unwatched), `crawl` its crawl row,
    `stopped` why the scheduler signalled it (None: it did not), `time_boxed` whether that was the time box.
    """
    reason = (crawl.status_reason if crawl else None) or ""
    said = "; ".join(part for part in (stopped, reason) if part) or None
    if exit_status == EXIT_LOCKED:
        return "skipped-overlap", "another crawl of the market took its lock as this one started"
    if time_boxed or "closespider_timeout" in reason:
        return "timed-out", said
    if crawl is None:
        how = "unknown exit" if exit_status is None else f"exit {exit_status}"
        return "failed", "; ".join(filter(None, (stopped, f"the crawl never began ({how}): see the log")))
    if "closespider_pagecount" in reason:
        return "budget-spent", said
    if crawl.status == "running":
        how = "" if exit_status is None else f" (exit {exit_status})"
        return "failed", f"the crawl process ended{how} without closing crawl {crawl.crawl_id}"
    if crawl.status == "complete" and crawl.alarms:
        return "drift", "; ".join(crawl.alarms)
    return crawl.status, said


@dataclass
class Scheduler:
    """Runs the due slots of a schedule; `tick` once, or `run` until stopped (or `until`)."""

    config: ScheduleConfig
    database: str | None = None
    markets: list[str] | None = None
    clock: Clock = utc_now
    python: str = sys.executable
    lock_directory: Path | None = None
    host: str = field(default_factory=socket.gethostname)

    def __post_init__(self) -> None:
        self.url = database_url(self.database or self.config.database)
        self.engine: Engine = open_engine(self.url)
        self.schedules = self.config.enabled(self.markets)
        # Absolute, and handed to every crawl: `dnm crawl` started here must look where the scheduler looks.
        self.locks = lock_dir(str(self.lock_directory) if self.lock_directory else None).resolve()
        self.log_dir = self.config.log_dir.resolve()
        self.children: dict[str, _Child] = {}
        self._stop = threading.Event()
        self._stop_requests = 0

    # -- the loop ------------------------------------------------------------------------------

    def run(self, *, once: bool = False, until: datetime | None = None) -> None:
        """Tick until stopped (or once, or until `until`); then wait for the crawls started to end."""
        while True:
            self.tick()
            now = self.clock()
            if once or self._stop.is_set() or (until is not None and now >= until):
                break
            self._stop.wait(self._pause(now))
        if self._stop.is_set():
            self.terminate("the scheduler was stopped")
        self.drain()

    def request_stop(self) -> None:
        """Stop starting crawls and stop the running ones (SIGTERM); a second request kills them."""
        self._stop_requests += 1
        self._stop.set()
        if self._stop_requests > 1:
            for child in self.children.values():
                self._signal(child, signal.SIGKILL)
                child.killed = True

    def _pause(self, now: datetime) -> float:
        if self.children:
            return POLL_RUNNING
        wake = min((next_slot(schedule, now) for schedule in self.schedules), default=None)
        if wake is None:
            return POLL_IDLE
        return min(max((wake - now).total_seconds(), 0.01), POLL_IDLE)

    def tick(self) -> None:
        """One look: finished crawls recorded, limits enforced, orphaned rows resolved, due slots started."""
        now = self.clock()
        self._reap(now)
        self._reconcile()
        if self._stop.is_set():
            return
        for schedule in self.schedules:
            self._consider(schedule, now)

    def drain(self) -> None:
        """Wait for every crawl started here to end (limits still enforced), recording each."""
        while self.children:
            self._reap(self.clock())
            if self.children:
                threading.Event().wait(0.2)

    def terminate(self, why: str) -> None:
        """SIGTERM to every running crawl (Scrapy closes it gracefully); SIGKILL follows after TERM_GRACE."""
        now = self.clock()
        for child in self.children.values():
            if child.term_at is None:
                child.stopped, child.term_at = f"{why}: stopped (SIGTERM)", now
                self._signal(child, signal.SIGTERM)

    # -- one market ----------------------------------------------------------------------------

    def _consider(self, schedule: MarketSchedule, now: datetime) -> None:
        decision = decide(schedule, now, self._last_slot(schedule.market))
        if decision.action == "none" or decision.slot is None:
            return
        market, slot = schedule.market, decision.slot
        if decision.action == "missed":
            self._record(market, slot, "missed", detail=decision.detail)
            return
        running = self.children.get(market)
        if running is not None:
            busy = f"the crawl of the {_when(running.slot)} slot (pid {running.process.pid}) still runs"
            self._record(market, slot, "skipped-overlap", detail=_join(busy, decision.detail))
            return
        held = holder(self.locks, market, self.url)
        if held is not None:
            busy = f"another crawl of the market holds its lock ({held or 'holder unknown'})"
            self._record(market, slot, "skipped-overlap", detail=_join(busy, decision.detail))
            return
        self._start(schedule, decision, now)

    def _start(self, schedule: MarketSchedule, decision: Decision, now: datetime) -> None:
        market, slot = schedule.market, decision.slot
        assert slot is not None
        time_box = int(schedule.time_box.total_seconds())
        run_id = self._record(
            market, slot, "running", started_at=now, detail=decision.detail, host=self.host,
            time_box=time_box, request_budget=schedule.request_budget or None,
        )  # fmt: skip
        if run_id is None:
            return
        log_file = self.log_dir / market / f"{slot:%Y%m%dT%H%M%SZ}.log"
        command = [self.python, "-m", "dnm.cli", "crawl", market, *schedule.crawl_arguments()]
        command += ["--database", self.url, "--no-progress"]
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log = log_file.open("ab")
            log.write(f"# dnm schedule: {market}, slot {_when(slot)}, started {_when(now, True)}\n".encode())
            log.flush()
            floor = self._crawl_floor(market)
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "DNM_SCHEDULE_LOCK_DIR": str(self.locks)}, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            self._update(
                run_id, outcome="failed", finished_at=now, detail=f"could not start the crawl: {exc}"
            )
            logger.error("%s: could not start the crawl of slot %s: %s", market, slot, exc)
            return
        self._update(run_id, pid=process.pid, log_file=str(log_file))
        self.children[market] = _Child(run_id, schedule, slot, now, floor, process, log)
        late = f", {decision.detail}" if decision.detail else ""
        logger.info(
            "%s: slot %s: crawl started (pid %s, log %s%s)",
            market,
            _when(slot),
            process.pid,
            log_file,
            late,
        )

    # -- running crawls ------------------------------------------------------------------------

    def _reap(self, now: datetime) -> None:
        for market, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                self._enforce(child, now)
                continue
            child.log.close()
            del self.children[market]
            crawl = self._crawl_after(market, child.crawl_floor)
            outcome, detail = outcome_of(code, crawl, child.stopped, child.time_boxed)
            self._update(
                child.run_id, outcome=outcome, exit_status=code, finished_at=now, detail=detail,
                crawl_id=crawl.crawl_id if crawl else None,
            )  # fmt: skip
            logger.info(
                "%s: slot %s: %s (exit %s%s)",
                market,
                _when(child.slot),
                outcome,
                code,
                f", crawl {crawl.crawl_id}" if crawl else "",
            )

    def _enforce(self, child: _Child, now: datetime) -> None:
        schedule = child.schedule
        if child.term_at is None and now >= child.started_at + schedule.time_box + schedule.kill_after:
            child.time_boxed = True
            late, box = describe(schedule.kill_after), describe(schedule.time_box)
            child.stopped = f"still running {late} after its time box of {box}: stopped (SIGTERM)"
            child.term_at = now
            self._signal(child, signal.SIGTERM)
            logger.warning("%s: %s", schedule.market, child.stopped)
        elif child.term_at is not None and not child.killed and now >= child.term_at + TERM_GRACE:
            child.killed = True
            child.stopped = f"{child.stopped}, then killed (SIGKILL) {describe(TERM_GRACE)} later"
            self._signal(child, signal.SIGKILL)
            logger.warning("%s: crawl (pid %s) killed", schedule.market, child.process.pid)

    @staticmethod
    def _signal(child: _Child, number: int) -> None:
        # The whole process group: the crawl and the tor it launched.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, number)

    def _reconcile(self) -> None:
        """Rows left `running` by a scheduler that stopped or crashed: resolved once their crawl has ended."""
        mine = {child.run_id for child in self.children.values()}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(ScheduledRun).where(ScheduledRun.outcome == "running", ScheduledRun.host == self.host)
            ).all()
        for row in rows:
            if row.id in mine or (row.pid and _alive(row.pid)):
                continue
            if holder(self.locks, row.market, self.url) is not None:
                continue
            floor = self._crawl_floor(row.market, before=row.started_at)
            crawl = self._crawl_after(row.market, floor)
            outcome, detail = outcome_of(None, crawl, None, False)
            detail = _join("ended while no scheduler watched it", detail)
            with self.engine.begin() as connection:
                connection.execute(
                    update(ScheduledRun)
                    .where(ScheduledRun.id == row.id, ScheduledRun.outcome == "running")
                    .values(outcome=outcome, detail=detail[:500], crawl_id=crawl.crawl_id if crawl else None)
                )
            logger.warning("%s: slot %s %s: %s", row.market, row.scheduled_for, outcome, detail)

    # -- the archive ---------------------------------------------------------------------------

    def _last_slot(self, market: str) -> datetime | None:
        with self.engine.connect() as connection:
            return connection.scalar(
                select(func.max(ScheduledRun.scheduled_for)).where(ScheduledRun.market == market)
            )

    def _crawl_floor(self, market: str, before: datetime | None = None) -> int:
        query = select(func.max(Crawl.id)).join(Market).where(Market.slug == market)
        if before is not None:
            query = query.where(Crawl.started_at < before)
        with self.engine.connect() as connection:
            return connection.scalar(query) or 0

    def _crawl_after(self, market: str, floor: int) -> CrawlResult | None:
        """The market's first crawl (not a re-parse) after `floor`: with the lock, the run's own."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(Crawl.id, Crawl.status, Crawl.status_reason, Crawl.stats)
                .join(Market)
                .where(Market.slug == market, Crawl.id > floor, Crawl.reparse_of.is_(None))
                .order_by(Crawl.id)
                .limit(1)
            ).first()
        if row is None:
            return None
        alarms = list((row.stats or {}).get("dnm/drift/alarms") or [])
        return CrawlResult(row.id, row.status, row.status_reason, alarms)

    def _record(self, market: str, slot: datetime, outcome: str, **values: Any) -> int | None:
        """Insert a slot's row; None when the slot is already recorded (another scheduler claimed it)."""
        if values.get("detail"):
            values["detail"] = values["detail"][:500]
        try:
            with self.engine.begin() as connection:
                run_id = connection.execute(
                    insert(ScheduledRun)
                    .values(market=market, scheduled_for=slot, outcome=outcome, **values)
                    .returning(ScheduledRun.id)
                ).scalar_one()
        except IntegrityError:
            logger.info("%s: slot %s already recorded by another scheduler", market, slot)
            return None
        if outcome != "running":
            logger.warning("%s: slot %s: %s (%s)", market, _when(slot), outcome, values.get("detail"))
        return int(run_id)

    def _update(self, run_id: int, **values: Any) -> None:
        if values.get("detail"):
            values["detail"] = values["detail"][:500]
        with self.engine.begin() as connection:
            connection.execute(update(ScheduledRun).where(ScheduledRun.id == run_id).values(**values))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _join(*parts: str | None) -> str:
    return "; ".join(part for part in parts if part)


def _when(moment: datetime, seconds: bool = False) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M{':%S' if seconds else ''}} UTC"


def history(engine: Engine, market: str | None = None, last: int = 10) -> dict[str, list[Any]]:
    """The newest `last` rows per market, newest first (for `dnm schedule status`)."""
    query = select(ScheduledRun).order_by(ScheduledRun.market, ScheduledRun.scheduled_for.desc())
    if market:
        query = query.where(ScheduledRun.market == market)
    rows: dict[str, list[Any]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            kept = rows.setdefault(row.market, [])
            if len(kept) < last:
                kept.append(row)
    return rows
