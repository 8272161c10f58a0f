"""The system scheduler instead of `dnm schedule run`: systemd units (a timer per market) or a crontab line.

Every unit or line runs `dnm schedule run --once`, never `dnm crawl` directly, so a crawl started by the
system scheduler still gets the lock, the time box, the budget, the missed-run policy and its history row.

systemd: a market's cron expression becomes the timer's OnCalendar (same fields, each expanded to a
list by croniter, in the market's time zone), with Persistent=true so a slot missed while the machine
was off fires at boot and the missed-run policy decides. Two cron forms have no OnCalendar equivalent:
day-of-month and weekday both restricted (cron runs when *either* matches, systemd when both do), and
croniter's L / # / ? extensions. Such a market's timer fires every minute, and `--once` picks its slots.
cron: one line, every minute, for all markets: cron reads expressions in the daemon's time zone and
Debian's cron has no CRON_TZ, so the time-zone-aware slot choice stays with `--once`.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter

from dnm.schedule.config import MarketSchedule, ScheduleConfig

WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
CRON_MARKER = "# dnm-archive schedule"


@dataclass(frozen=True)
class Unit:
    """A systemd unit file: its name and text."""

    name: str
    text: str


def on_calendar(schedule: MarketSchedule) -> str | None:
    """The systemd OnCalendar of a market's cron expression, or None when systemd cannot say the same."""
    try:
        minutes, hours, days, months, weekdays = croniter(schedule.cron).expanded[:5]
    except (ValueError, KeyError):
        return None
    fields = (minutes, hours, days, months, weekdays)
    if any(not isinstance(value, int) for field in fields for value in field if value != "*"):
        return None  # L, #, ?: croniter extensions systemd has no word for
    if croniter(schedule.cron).nth_weekday_of_month:
        return None
    if days != ["*"] and weekdays != ["*"]:
        return None  # cron: either matches; systemd: both must

    def listed(values: list[int | str], width: int = 2) -> str:
        return "*" if values == ["*"] else ",".join(f"{int(value):0{width}d}" for value in values)

    weekday = "" if weekdays == ["*"] else ",".join(WEEKDAYS[int(day) % 7] for day in weekdays) + " "
    date = f"*-{listed(months)}-{listed(days)}"
    return f"{weekday}{date} {listed(hours)}:{listed(minutes)}:00 {schedule.timezone.key}"


def once_command(config: ScheduleConfig, dnm: str, market: str | None = None) -> list[str]:
    command = [dnm, "schedule", "run", "--once", "--config", str(config.path.resolve())]
    if market:
        command += ["--market", market]
    return command


def dnm_executable() -> str:
    """This installation's `dnm`: beside the running interpreter (the venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "dnm"
    return str(beside) if beside.exists() else "dnm"


def systemd_units(config: ScheduleConfig, workdir: Path, dnm: str | None = None) -> list[Unit]:
    """A .service and a .timer per enabled market (`dnm-crawl-<market>`)."""
    dnm = dnm or dnm_executable()
    units = []
    for schedule in config.enabled():
        name = f"dnm-crawl-{schedule.market}"
        calendar = on_calendar(schedule)
        note = (
            f"# cron {schedule.cron!r} ({schedule.timezone.key})"
            if calendar
            else f"# cron {schedule.cron!r}: no OnCalendar says the same; every minute, --once picks slots"
        )
        # The scheduler enforces the time box itself; systemd's own limit is a backstop a little beyond it.
        limit = int((schedule.time_box + schedule.kill_after).total_seconds()) + 300
        service = f"""[Unit]
Description=dnm-archive: scheduled crawl of {schedule.market}
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
WorkingDirectory={workdir}
ExecStart={shlex.join(once_command(config, dnm, schedule.market))}
TimeoutStartSec={limit}
# SIGTERM to the scheduler, which stops the crawl gracefully and records it.
KillMode=mixed
Nice=5
"""
        timer = f"""[Unit]
Description=dnm-archive: when to crawl {schedule.market}

[Timer]
{note}
OnCalendar={calendar or "minutely"}
# A slot missed while the machine was off fires at boot; the schedule's `missed` policy decides.
Persistent=true
Unit={name}.service

[Install]
WantedBy=timers.target
"""
        units += [Unit(f"{name}.service", service), Unit(f"{name}.timer", timer)]
    return units


def daemon_unit(config: ScheduleConfig, workdir: Path, dnm: str | None = None) -> Unit:
    """One long-running service: `dnm schedule run`, restarted if it dies."""
    command = [dnm or dnm_executable(), "schedule", "run", "--config", str(config.path.resolve())]
    return Unit(
        "dnm-schedule.service",
        f"""[Unit]
Description=dnm-archive: the crawl scheduler (dnm schedule run)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
WorkingDirectory={workdir}
ExecStart={shlex.join(command)}
Restart=on-failure
RestartSec=30
# SIGTERM to the scheduler, which stops running crawls gracefully and records them; then the rest.
KillMode=mixed
TimeoutStopSec=120

[Install]
WantedBy=default.target
""",
    )


def crontab_block(config: ScheduleConfig, workdir: Path, dnm: str | None = None) -> str:
    """The crontab lines, between markers so that `--write` can replace them later."""
    command = shlex.join(once_command(config, dnm or dnm_executable()))
    log = workdir / config.log_dir / "cron.log"
    return (
        f"{CRON_MARKER} ({workdir}): every minute `--once` starts the slots that are due\n"
        f"* * * * * cd {shlex.quote(str(workdir))} && {command} >> {shlex.quote(str(log))} 2>&1\n"
        f"{CRON_MARKER} end\n"
    )


def replace_block(crontab: str, block: str) -> str:
    """The user's crontab with our block replaced (or appended); everything else kept as it was."""
    lines, kept, inside = crontab.splitlines(keepends=True), [], False
    for line in lines:
        if line.startswith(CRON_MARKER) and not line.startswith(f"{CRON_MARKER} end"):
            inside = True
            continue
        if inside and line.startswith(f"{CRON_MARKER} end"):
            inside = False
            continue
        if not inside:
            kept.append(line)
    text = "".join(kept)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + block
