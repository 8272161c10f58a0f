"""The `dnm schedule` commands: run the scheduler, check the schedule, show its history, install timers."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from dnm.cli import EXIT_DRIFT, EXIT_FAILED, EXIT_OK, EXIT_USAGE, _timestamp
from dnm.schedule.config import DEFAULT_CONFIG, ScheduleConfig, ScheduleError, load_schedule

# Outcomes that need no one's attention in the morning.
GOOD = ("complete", "running")


class CliError(Exception):
    """A user-facing error of these commands: printed as dnm.cli prints its own, with its exit status.

    Not dnm.cli.CliError: under `python -m dnm.cli` that module runs as __main__, and an exception class
    imported from `dnm.cli` here would be another class, which its main() would not catch.
    """

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def _handler(function: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(function)
    def handle(args: argparse.Namespace) -> int:
        try:
            return function(args)
        except CliError as exc:
            Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
            return exc.status

    return handle


def add_schedule_commands(commands: Any) -> None:
    schedule = commands.add_parser(
        "schedule", help="the nightly scheduler: cron slots per market, locks, limits, run history"
    )
    sub = schedule.add_subparsers(title="schedule commands", metavar="COMMAND")

    def command(name: str, text: str, handler: Any) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=text)
        parser.add_argument(
            "--config", type=Path, default=DEFAULT_CONFIG, help="the schedule file (%(default)s)"
        )
        parser.set_defaults(handler=_handler(handler))
        return parser

    run = command(
        "run", "start each market's crawl at its cron slots, in its own process (long-running)", cmd_run
    )
    run.add_argument(
        "--database", help="archive URL (default: the file's `database`, $DNM_DATABASE_URL, ...)"
    )
    run.add_argument("--market", action="append", help="only this market (repeatable)")
    run.add_argument(
        "--once", action="store_true", help="start what is due now, wait for it, exit (for cron or a timer)"
    )
    run.add_argument(
        "--until", type=_timestamp, help="stop starting crawls at this time (ISO, UTC), then wait"
    )
    run.add_argument("--verbose", "-v", action="store_true", help="log at DEBUG level")

    check = command("check", "check the schedule file and print each market's next slots", cmd_check)
    check.add_argument("--next", type=int, default=3, help="slots to print per market (default 3)")

    status = command("status", "per market: the next slot and the last runs from the history", cmd_status)
    status.add_argument(
        "--database", help="archive URL (default: the file's `database`, $DNM_DATABASE_URL, ...)"
    )
    status.add_argument("--last", type=int, default=5, help="runs per market (default 5)")

    install = command(
        "install", "print (or write) systemd units or a crontab line that run the schedule", cmd_install
    )
    kind = install.add_mutually_exclusive_group()
    kind.add_argument("--systemd", action="store_true", help="a .timer and .service per market (default)")
    kind.add_argument("--systemd-daemon", action="store_true", help="one service running `dnm schedule run`")
    kind.add_argument("--cron", action="store_true", help="a crontab line running `--once` every minute")
    install.add_argument(
        "--write",
        action="store_true",
        help="install: unit files into --unit-dir, or the line into your crontab",
    )
    install.add_argument(
        "--unit-dir", type=Path, help="where --write puts units (default: ~/.config/systemd/user)"
    )
    install.add_argument(
        "--workdir", type=Path, default=Path.cwd(), help="the project folder the units run in (default: here)"
    )


def _config(args: argparse.Namespace, *, check_profiles: bool = True) -> ScheduleConfig:
    try:
        return load_schedule(args.config, check_profiles=check_profiles)
    except ScheduleError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def cmd_run(args: argparse.Namespace) -> int:
    from dnm.schedule.lock import MarketLock, MarketLocked, lock_dir
    from dnm.schedule.runner import Scheduler

    config = _config(args)
    # The scheduler's decisions at INFO; other libraries (Alembic's migration chatter) only when they warn.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("dnm.schedule").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        scheduler = Scheduler(config, args.database, markets=args.market)
    except ScheduleError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if not scheduler.schedules:
        raise CliError(f"{args.config}: every market is disabled: nothing to schedule", EXIT_USAGE)
    # One long-running scheduler per archive (`--once` runs from cron may overlap: slots are claimed).
    loop_lock = None
    if not args.once:
        loop_lock = MarketLock(lock_dir(str(scheduler.locks)), "scheduler", f"loop:{scheduler.url}")
        try:
            loop_lock.acquire("dnm schedule run")
        except MarketLocked as exc:
            raise CliError(f"a scheduler already runs for this archive ({exc.holder})") from exc

    def stop(number: int, _frame: Any) -> None:
        logging.getLogger("dnm.schedule").warning("signal %s: stopping", signal.Signals(number).name)
        scheduler.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    names = ", ".join(schedule.market for schedule in scheduler.schedules)
    logging.getLogger("dnm.schedule").info(
        "scheduling %s (%s)", names, "once" if args.once else "until stopped"
    )
    try:
        scheduler.run(once=args.once, until=args.until)
    finally:
        if loop_lock is not None:
            loop_lock.release()
        scheduler.engine.dispose()
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from croniter import croniter

    from dnm.schedule.install import on_calendar
    from dnm.schedule.runner import utc_now
    from dnm.schedule.timing import describe

    config = _config(args)
    now = utc_now()
    for schedule in config.markets.values():
        state = "" if schedule.enabled else "  (disabled)"
        budget = f"{schedule.request_budget} responses" if schedule.request_budget else "none"
        print(f"{schedule.market}: cron {schedule.cron!r} {schedule.timezone.key}{state}")
        box, kill = describe(schedule.time_box), describe(schedule.kill_after)
        print(f"  time box {box}, killed {kill} later; request budget {budget}")
        catch_up = (
            f", caught up within {describe(schedule.catch_up_within)}"
            if schedule.missed == "run_once"
            else ""
        )
        print(f"  missed: {schedule.missed} (on time within {describe(schedule.misfire_grace)}{catch_up})")
        print(f"  systemd OnCalendar: {on_calendar(schedule) or '(none equivalent: a per-minute timer)'}")
        times = croniter(schedule.cron, now.astimezone(schedule.timezone))
        for _ in range(args.next):
            slot = times.get_next(type(now))
            print(f"  next: {slot:%Y-%m-%d %H:%M %Z} = {slot.astimezone(now.tzinfo):%Y-%m-%d %H:%M} UTC")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0 when every market's newest finished slot is `complete`, else 4 (for a morning check)."""
    from dnm.schedule.runner import history, utc_now
    from dnm.schedule.timing import next_slot
    from models.db import database_url, open_engine

    config = _config(args, check_profiles=False)
    engine = open_engine(database_url(args.database or config.database))
    try:
        runs = history(engine, last=args.last)
    finally:
        engine.dispose()
    now, worst = utc_now(), EXIT_OK
    for market in sorted({*config.markets, *runs}):
        schedule = config.markets.get(market)
        when = (
            f"next slot {next_slot(schedule, now):%Y-%m-%d %H:%M} UTC" if schedule else "not in the schedule"
        )
        print(f"{market}: {when}")
        for row in runs.get(market, []):
            crawl = f"crawl {row.crawl_id}" if row.crawl_id else "no crawl"
            took = ""
            if row.started_at and row.finished_at:
                took = f" in {int((row.finished_at - row.started_at).total_seconds())} s"
            detail = f"  {row.detail}" if row.detail else ""
            print(f"  {row.scheduled_for:%Y-%m-%d %H:%M} UTC  {row.outcome:<15} {crawl}{took}{detail}")
        newest = next((row for row in runs.get(market, []) if row.outcome != "running"), None)
        if newest is not None and newest.outcome not in GOOD:
            worst = EXIT_DRIFT
    if not runs:
        print("no scheduled run recorded yet")
    return worst


def cmd_install(args: argparse.Namespace) -> int:
    from dnm.schedule.install import crontab_block, daemon_unit, replace_block, systemd_units

    config = _config(args)
    workdir = args.workdir.resolve()
    if args.cron:
        block = crontab_block(config, workdir)
        if not args.write:
            sys.stdout.write(block)
            print("# install with: dnm schedule install --cron --write  (keeps the rest of your crontab)")
            return EXIT_OK
        return _write_crontab(block, replace_block)
    units = [daemon_unit(config, workdir)] if args.systemd_daemon else systemd_units(config, workdir)
    if not args.write:
        for unit in units:
            print(f"# {unit.name}\n{unit.text}")
        print("# install with: dnm schedule install --write  (into ~/.config/systemd/user)")
        return EXIT_OK
    folder = (
        args.unit_dir or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd/user"
    )
    folder.mkdir(parents=True, exist_ok=True)
    for unit in units:
        (folder / unit.name).write_text(unit.text, encoding="utf-8")
        print(f"wrote {folder / unit.name}")
    enable = [unit.name for unit in units if unit.name.endswith(".timer")] or [units[0].name]
    print("then: systemctl --user daemon-reload && systemctl --user enable --now " + " ".join(enable))
    print("(and `loginctl enable-linger $USER` so they run while you are logged out)")
    return EXIT_OK


def _write_crontab(block: str, replace_block: Any) -> int:
    crontab = shutil.which("crontab")
    if crontab is None:
        raise CliError("crontab not found: install Debian's cron package, or use --systemd")
    current = subprocess.run([crontab, "-l"], capture_output=True, text=True)
    # `crontab -l` fails when the user has none yet: start from an empty one.
    text = current.stdout if current.returncode == 0 else ""
    written = subprocess.run([crontab, "-"], input=replace_block(text, block), capture_output=True, text=True)
    if written.returncode != 0:
        raise CliError(f"crontab refused the new table: {written.stderr.strip()}", EXIT_FAILED)
    print("crontab updated: the dnm-archive block replaced, the rest kept (crontab -l to see it)")
    return EXIT_OK
