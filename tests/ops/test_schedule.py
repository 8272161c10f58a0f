"""The scheduler: schedule file checks, cron and missed-run rules on a fake clock, the market lock, the
system-scheduler units; and for real, crawls of a demo market started at their cron slot, refused when
they would overlap, stopped by their time box and request budget, each with its history row."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from demo.server import DemoServer
from dnm.schedule.config import ScheduleConfig, ScheduleError, load_schedule, parse_duration, parse_schedule
from dnm.schedule.install import crontab_block, on_calendar, replace_block, systemd_units
from dnm.schedule.lock import EXIT_LOCKED, MarketLock, MarketLocked, holder
from dnm.schedule.runner import CrawlResult, Scheduler, outcome_of
from dnm.schedule.timing import decide, latest_slot
from models import Crawl, ScheduledRun
from models.db import open_engine
from tests.conftest import latest_crawl, run_dnm

ROOT = Path(__file__).resolve().parents[2]
MARKET = "copperline"


def schedule_of(**keys: Any) -> Any:
    """One market's checked schedule from the keys given (a cron of 03:00 UTC by default)."""
    spec = {"cron": "0 3 * * *", **keys}
    return parse_schedule({"markets": {MARKET: spec}}, Path("test.toml")).markets[MARKET]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the schedule file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[markets.copperline]\ncron = '61 * * * *'\n",
            "markets.copperline.cron: '61 * * * *' is not a valid",
        ),
        ("[markets.copperline]\ncron = '0 3 * *'\n", "must have 5 fields"),
        ("[markets.copperline]\n", "markets.copperline.cron: required"),
        ("[markets.copperline]\ncron = '0 3 * * *'\ntimezone = 'Mars/Olympus'\n", "unknown time zone"),
        (
            "[markets.copperline]\ncron = '0 3 * * *'\ntime_box = 'soon'\n",
            "time_box: 'soon' is not a duration",
        ),
        ("[markets.copperline]\ncron = '0 3 * * *'\ntime_box = 0\n", "needs a time box longer than 0"),
        ("[markets.copperline]\ncron = '0 3 * * *'\nmissed = 'later'\n", "use one of skip, run_once"),
        ("[markets.copperline]\ncron = '0 3 * * *'\nrequest_budget = -1\n", "request_budget: a number"),
        ("[markets.copperline]\ncron = '0 3 * * *'\ncorn = 1\n", "markets.copperline.corn: unknown key"),
        (
            "[defaults]\ncron = '0 3 * * *'\n[markets.copperline]\ncron = '0 3 * * *'\n",
            "defaults.cron: unknown",
        ),
        ("[markets.nowhere]\ncron = '0 3 * * *'\n", "markets.nowhere: no usable profile"),
        ("[defaults]\ntimezone = 'UTC'\n", "no [markets.NAME] table"),
        ("[markets.copperline\ncron = 1\n", "not valid TOML"),
    ],
)
def test_a_broken_schedule_file_is_refused_with_the_key_at_fault(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text(text)
    with pytest.raises(ScheduleError, match=None) as caught:
        load_schedule(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_the_cli_says_what_is_wrong_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text("[markets.copperline]\ncron = '0 25 * * *'\n")
    result = run_dnm("schedule", "check", "--config", str(path))
    assert result.returncode == 2
    assert "markets.copperline.cron: '0 25 * * *' is not a valid cron expression" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_example_schedule_is_valid_and_its_defaults_apply() -> None:
    config = load_schedule(ROOT / "config" / "schedule.toml")
    assert set(config.markets) == {"hollowmere", "copperline"}
    copperline = config.markets["copperline"]
    assert copperline.timezone.key == "Europe/Berlin" and copperline.time_box == timedelta(hours=4)
    assert config.markets["hollowmere"].time_box == timedelta(hours=6)  # from [defaults]
    arguments = copperline.crawl_arguments()
    assert "CLOSESPIDER_TIMEOUT=14400" in arguments and "CLOSESPIDER_PAGECOUNT=20000" in arguments


@pytest.mark.parametrize(
    ("value", "minutes"), [(90, 90), ("90m", 90), ("1h30m", 90), ("2d", 2880), ("45s", 0.75)]
)
def test_durations(value: Any, minutes: float) -> None:
    assert parse_duration(value, "x") == timedelta(minutes=minutes)


# -- cron slots and missed runs, on a fake clock ----------------------------------------------------


def test_a_slot_is_due_at_its_time_and_not_before() -> None:
    schedule = schedule_of(missed="skip", misfire_grace="5m")
    assert latest_slot(schedule, at("2026-03-10T03:00:00")) == at("2026-03-10T03:00:00")
    before = decide(schedule, at("2026-03-10T02:59:59"), last=at("2026-03-09T03:00:00"))
    assert before.action == "none"
    due = decide(schedule, at("2026-03-10T03:00:02"), last=at("2026-03-09T03:00:00"))
    assert (due.action, due.slot, due.skipped) == ("run", at("2026-03-10T03:00:00"), 0)
    # Once recorded, the same slot is done.
    assert decide(schedule, at("2026-03-10T03:01:00"), last=at("2026-03-10T03:00:00")).action == "none"


def test_missed_runs_skip_or_run_once_within_the_catch_up_window() -> None:
    last = at("2026-03-07T03:00:00")  # then the scheduler was down for three nights
    now = at("2026-03-10T09:00:00")  # six hours after the newest slot
    skip = decide(schedule_of(missed="skip"), now, last)
    assert (skip.action, skip.slot, skip.skipped) == ("missed", at("2026-03-10T03:00:00"), 2)
    assert skip.detail and "2 earlier slot(s) since 2026-03-08 03:00 UTC not run" in skip.detail
    once = decide(schedule_of(missed="run_once", catch_up_within="12h"), now, last)
    assert (once.action, once.slot) == ("run", at("2026-03-10T03:00:00"))
    assert once.detail and "caught up 6.0 h late" in once.detail
    too_late = decide(schedule_of(missed="run_once", catch_up_within="4h"), now, last)
    assert too_late.action == "missed" and "beyond 4 h" in (too_late.detail or "")
    # Never recorded: only the newest slot counts, nothing before it is called missed.
    first = decide(schedule_of(missed="run_once"), now, None)
    assert (first.action, first.skipped) == ("run", 0)


def test_slots_follow_the_markets_time_zone_across_dst() -> None:
    berlin = schedule_of(cron="30 2 * * *", timezone="Europe/Berlin")
    # 02:30 in Berlin is 01:30 UTC in winter and 00:30 UTC in summer; on 2026-03-29 it does not exist.
    assert latest_slot(berlin, at("2026-03-10T12:00:00")) == at("2026-03-10T01:30:00")
    assert latest_slot(berlin, at("2026-04-10T12:00:00")) == at("2026-04-10T00:30:00")


def test_outcomes() -> None:
    done = CrawlResult(7, "complete", None, [])
    assert outcome_of(0, done, None, False) == ("complete", None)
    assert outcome_of(4, CrawlResult(7, "complete", None, ["ships_to fell"]), None, False)[0] == "drift"
    partial = CrawlResult(7, "partial", "spider stopped early: closespider_pagecount", [])
    assert outcome_of(3, partial, None, False)[0] == "budget-spent"
    timed = CrawlResult(7, "partial", "spider stopped early: closespider_timeout", [])
    assert outcome_of(3, timed, None, False)[0] == "timed-out"
    assert outcome_of(EXIT_LOCKED, None, None, False)[0] == "skipped-overlap"
    assert outcome_of(-9, None, "killed", True) == ("timed-out", "killed")
    assert outcome_of(1, None, None, False)[0] == "failed"


# -- the market lock ------------------------------------------------------------------------------


def test_one_lock_per_market_and_archive(tmp_path: Path) -> None:
    with MarketLock(tmp_path, MARKET, "sqlite:///a"):
        with pytest.raises(MarketLocked, match=f"pid {os.getpid()}"):
            MarketLock(tmp_path, MARKET, "sqlite:///a").acquire()
        assert holder(tmp_path, MARKET, "sqlite:///a")
        assert holder(tmp_path, MARKET, "sqlite:///b") is None  # another archive: its own lock
        assert holder(tmp_path, "hollowmere", "sqlite:///a") is None
    assert holder(tmp_path, MARKET, "sqlite:///a") is None


def hold_lock(directory: Path, market: str, archive: str) -> subprocess.Popen[str]:
    """Another process holding a market's lock, as a running crawl does; returns once it holds it."""
    code = (
        "import sys, time; from pathlib import Path; from dnm.schedule.lock import MarketLock\n"
        f"MarketLock(Path({str(directory)!r}), {market!r}, {archive!r}).acquire('test holder')\n"
        "print('held', flush=True); time.sleep(120)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_sigkilled_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    process = hold_lock(tmp_path, MARKET, "sqlite:///a")
    try:
        assert f"pid {process.pid}" in (holder(tmp_path, MARKET, "sqlite:///a") or "")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert holder(tmp_path, MARKET, "sqlite:///a") is None
        with MarketLock(tmp_path, MARKET, "sqlite:///a"):
            pass
    finally:
        process.kill()


def test_dnm_crawl_is_refused_while_another_crawl_of_the_market_holds_the_lock(
    tmp_path: Path, database_url: str
) -> None:
    locks = tmp_path / "locks"
    with MarketLock(locks, MARKET, database_url):
        result = run_dnm(
            "crawl", MARKET, "--mirror", "http://127.0.0.1:9", "--transport", "direct", "--allow-host",
            "127.0.0.1", "--database", database_url, "--no-progress",
            env={"DNM_SCHEDULE_LOCK_DIR": str(locks)},
        )  # fmt: skip
    assert result.returncode == EXIT_LOCKED, result.stderr[-2000:]
    assert f"another crawl of {MARKET} is running (pid {os.getpid()}" in result.stderr
    with Session(open_engine(database_url)) as session:
        assert session.scalar(select(func.count()).select_from(Crawl)) == 0


# -- systemd and cron -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "calendar"),
    [
        ("30 2 * * *", "UTC", "*-*-* 02:30:00 UTC"),
        (
            "*/15 1-3 * * 1-5",
            "Europe/Berlin",
            "Mon,Tue,Wed,Thu,Fri *-*-* 01,02,03:00,15,30,45:00 Europe/Berlin",
        ),
        ("0 4 1,15 * *", "UTC", "*-*-01,15 04:00:00 UTC"),
        ("0 0 * * 0", "UTC", "Sun *-*-* 00:00:00 UTC"),
        ("@daily", "UTC", "*-*-* 00:00:00 UTC"),
        ("0 4 1 * 1", "UTC", None),  # cron: the 1st OR a Monday; systemd cannot say "or"
        ("0 4 L * *", "UTC", None),
    ],
)
def test_cron_to_systemd_oncalendar(cron: str, zone: str, calendar: str | None) -> None:
    assert on_calendar(schedule_of(cron=cron, timezone=zone)) == calendar
    analyze = shutil.which("systemd-analyze")
    if calendar and analyze:
        checked = subprocess.run([analyze, "calendar", calendar], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


def test_units_and_crontab_run_the_scheduler_once(tmp_path: Path) -> None:
    config = load_schedule(ROOT / "config" / "schedule.toml")
    units = {unit.name: unit.text for unit in systemd_units(config, tmp_path, dnm="/venv/bin/dnm")}
    assert set(units) == {
        f"dnm-crawl-{m}.{k}" for m in ("hollowmere", "copperline") for k in ("service", "timer")
    }
    assert "ExecStart=/venv/bin/dnm schedule run --once --config" in units["dnm-crawl-copperline.service"]
    assert "--market copperline" in units["dnm-crawl-copperline.service"]
    assert "OnCalendar=*-*-* 03:30:00 Europe/Berlin" in units["dnm-crawl-copperline.timer"]
    block = crontab_block(config, tmp_path, dnm="/venv/bin/dnm")
    mine = "MAILTO=me\n0 1 * * * backup\n"
    installed = replace_block(mine, block)
    assert installed.startswith(mine) and "* * * * * cd " in installed
    assert replace_block(installed, block) == installed  # installing again changes nothing


def test_install_write_puts_the_units_in_the_unit_folder(tmp_path: Path) -> None:
    result = run_dnm("schedule", "install", "--write", "--unit-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir())[:2] == [
        "dnm-crawl-copperline.service",
        "dnm-crawl-copperline.timer",
    ]
    assert "systemctl --user enable --now" in result.stdout


# -- for real: the scheduler starts crawls of a demo market -----------------------------------------


class FakeClock:
    """The scheduler's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def demo() -> Iterator[DemoServer]:
    with DemoServer(MARKET, 1) as server:
        yield server


def config_for(server: DemoServer, tmp_path: Path, **keys: Any) -> ScheduleConfig:
    spec = {
        "cron": "0 3 * * *", "mirror": server.url, "transport": "direct", "allow_host": ["127.0.0.1"],
        "missed": "skip", "misfire_grace": "1m", **keys,
    }  # fmt: skip
    data = {"log_dir": str(tmp_path / "logs"), "markets": {MARKET: spec}}
    return parse_schedule(data, tmp_path / "schedule.toml")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Crawls started by the scheduler keep their cookies, raw captures and locks in this test's folder."""
    for name in ("DNM_SESSION_DIR", "DNM_RAW_DIR", "DNM_SCHEDULE_LOCK_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return tmp_path / "dnm_schedule_lock_dir"


def runs(url: str) -> list[ScheduledRun]:
    with Session(open_engine(url)) as session:
        return list(session.scalars(select(ScheduledRun).order_by(ScheduledRun.scheduled_for)))


def crawl_count(url: str) -> int:
    with Session(open_engine(url)) as session:
        return session.scalar(select(func.count()).select_from(Crawl)) or 0


def test_the_scheduler_runs_a_crawl_at_its_cron_time(
    demo: DemoServer, tmp_path: Path, database_url: str, isolated: Path
) -> None:
    clock = FakeClock(at("2026-03-10T02:59:30"))
    scheduler = Scheduler(config_for(demo, tmp_path), database_url, clock=clock)
    scheduler.tick()
    # Before 03:00 nothing starts; the previous night's slot, a day late, is recorded missed (missed = skip).
    assert not scheduler.children
    assert [(r.outcome, r.scheduled_for) for r in runs(database_url)] == [("missed", at("2026-03-09T03:00"))]
    clock.now = at("2026-03-10T03:00:04")
    scheduler.tick()
    assert list(scheduler.children) == [MARKET]
    scheduler.drain()
    clock.now = at("2026-03-10T03:10:00")
    scheduler.tick()  # the slot is done: nothing more starts
    assert not scheduler.children
    _, ran = runs(database_url)
    crawl = latest_crawl(scheduler.engine, MARKET)
    assert (ran.scheduled_for, ran.outcome, ran.exit_status, ran.crawl_id) == (
        at("2026-03-10T03:00"), "complete", 0, crawl.id,
    )  # fmt: skip
    assert crawl.status == "complete" and ran.started_at == at("2026-03-10T03:00:04")
    assert ran.pid and ran.time_box == 6 * 3600 and ran.log_file and Path(ran.log_file).exists()
    assert (
        "crawl 1 of copperline" in Path(ran.log_file).read_text()
        or "coverage" in Path(ran.log_file).read_text()
    )
    assert crawl_count(database_url) == 1


def test_an_overlapping_run_is_refused_and_recorded(
    demo: DemoServer, tmp_path: Path, database_url: str, isolated: Path
) -> None:
    clock = FakeClock(at("2026-03-10T03:00:01"))
    scheduler = Scheduler(config_for(demo, tmp_path, cron="*/5 * * * *"), database_url, clock=clock)
    scheduler.tick()
    first = scheduler.children[MARKET].process.pid
    # The next slot comes while that crawl still runs (it takes seconds; the fake clock moved 5 min).
    clock.now = at("2026-03-10T03:05:01")
    scheduler.tick()
    scheduler.drain()
    ran, refused = runs(database_url)
    assert ran.outcome == "complete" and ran.pid == first
    assert refused.outcome == "skipped-overlap" and refused.crawl_id is None and refused.pid is None
    assert f"(pid {first}) still runs" in (refused.detail or "")

    # A crawl of the market started elsewhere (by hand) holds its lock: the next slot is refused too,
    # without a process; once that crawl is SIGKILLed, the lock is free and the following slot runs.
    holding = hold_lock(isolated, MARKET, scheduler.url)
    try:
        clock.now = at("2026-03-10T03:10:01")
        scheduler.tick()
        assert not scheduler.children
        assert runs(database_url)[-1].outcome == "skipped-overlap"
        assert f"holds its lock (pid {holding.pid}" in (runs(database_url)[-1].detail or "")
    finally:
        holding.kill()
        holding.wait(10)
    assert crawl_count(database_url) == 1
    clock.now = at("2026-03-10T03:15:01")
    scheduler.tick()
    scheduler.drain()
    assert [r.outcome for r in runs(database_url)] == [
        "complete",
        "skipped-overlap",
        "skipped-overlap",
        "complete",
    ]
    assert crawl_count(database_url) == 2


def test_time_box_and_request_budget_stop_a_run(
    demo: DemoServer, tmp_path: Path, database_url: str, isolated: Path
) -> None:
    clock = FakeClock(at("2026-03-10T03:00:01"))
    budget = Scheduler(config_for(demo, tmp_path, request_budget=20), database_url, clock=clock)
    budget.tick()
    budget.drain()
    [spent] = runs(database_url)
    assert spent.outcome == "budget-spent" and spent.request_budget == 20, spent.detail
    assert "closespider_pagecount" in (spent.detail or "")

    # A crawl still running after its time box (and kill_after) is stopped by the scheduler itself.
    boxed = Scheduler(config_for(demo, tmp_path, time_box="1s", kill_after="0s"), database_url, clock=clock)
    clock.now = at("2026-03-11T03:00:01")
    boxed.tick()
    clock.now = at("2026-03-11T03:00:03")
    began = time.monotonic()
    boxed.drain()
    assert time.monotonic() - began < 30
    timed = runs(database_url)[-1]
    assert timed.outcome == "timed-out" and timed.exit_status is not None
    assert "after its time box of 1 s: stopped (SIGTERM)" in (timed.detail or "")


def test_dnm_schedule_run_once_from_the_command_line(
    demo: DemoServer, tmp_path: Path, database_url: str
) -> None:
    # Every minute, on time within two: whenever this runs, the current minute's slot is due.
    path = tmp_path / "schedule.toml"
    path.write_text(
        f"log_dir = {str(tmp_path / 'logs')!r}\n[markets.{MARKET}]\n"
        f"cron = '* * * * *'\nmisfire_grace = '2m'\nmirror = {demo.url!r}\n"
        "transport = 'direct'\nallow_host = ['127.0.0.1']\n"
    )
    locks = {"DNM_SCHEDULE_LOCK_DIR": str(tmp_path / "locks")}
    result = run_dnm(
        "schedule", "run", "--once", "--config", str(path), "--database", database_url, env=locks
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [ran] = runs(database_url)
    assert ran.outcome == "complete" and ran.crawl_id == latest_crawl(open_engine(database_url), MARKET).id
    status = run_dnm("schedule", "status", "--config", str(path), "--database", database_url)
    assert status.returncode == 0 and "complete" in status.stdout and f"crawl {ran.crawl_id}" in status.stdout


def test_scrapy_cfg_names_the_scrapyd_deploy_target(monkeypatch: pytest.MonkeyPatch) -> None:
    from scrapy.utils.conf import get_config

    # Read as Scrapy (and scrapyd-client, which uses the same reader) read it, from the project folder.
    monkeypatch.chdir(ROOT)
    config = get_config()
    assert config.get("settings", "default") == "dnm.settings"
    assert config.get("deploy", "url") == "http://127.0.0.1:6800/"
    assert config.get("deploy", "project") == "dnm-archive"


def test_a_run_left_running_by_a_dead_scheduler_is_resolved(
    tmp_path: Path, database_url: str, isolated: Path
) -> None:
    config = parse_schedule({"markets": {MARKET: {"cron": "0 3 1 1 *"}}}, tmp_path / "schedule.toml")
    scheduler = Scheduler(config, database_url, clock=FakeClock(at("2026-03-10T03:00:00")))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with Session(scheduler.engine) as session:
        session.add(
            ScheduledRun(
                market=MARKET, scheduled_for=at("2026-01-01T03:00"), started_at=at("2026-01-01T03:00:01"),
                outcome="running", pid=gone.pid, host=scheduler.host,
            )
        )  # fmt: skip
        session.commit()
    scheduler.tick()
    [row] = runs(database_url)
    assert row.outcome == "failed" and "ended while no scheduler watched it" in (row.detail or "")


def test_the_long_running_scheduler_stops_on_sigterm_and_is_alone(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "schedule.toml"
    path.write_text(f"[markets.{MARKET}]\ncron = '0 3 1 1 *'\n")
    env = {**os.environ, "DNM_SCHEDULE_LOCK_DIR": str(tmp_path / "locks")}
    command = [
        sys.executable,
        "-m",
        "dnm.cli",
        "schedule",
        "run",
        "--config",
        str(path),
        "--database",
        database_url,
    ]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert first.stderr is not None and "scheduling copperline" in first.stderr.readline()
        second = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        assert second.returncode == 1 and "a scheduler already runs for this archive" in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
    finally:
        first.kill()
