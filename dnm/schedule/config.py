"""The schedule file (config/schedule.toml): per market a cron slot, its limits and crawl options, checked.

TOML rather than the profiles' YAML: a schedule is a handful of typed values, and YAML reads `02:30` as
the integer 9000 and `no` as false, both plausible in a crontab-minded file. A broken file gives one
ScheduleError naming the file and the key (`markets.hollowmere.cron: ...`), never a traceback.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

DEFAULT_CONFIG = Path("config/schedule.toml")
DEFAULT_LOG_DIR = Path("var/log/schedule")
MISSED_POLICIES = ("skip", "run_once")

# Built-in defaults, under the file's [defaults] table, under each market's own keys.
DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    # A nightly crawl that has not finished in 6 hours is stuck, not thorough.
    "time_box": "6h",
    # After the time box Scrapy stops the crawl itself (CLOSESPIDER_TIMEOUT); the scheduler kills the
    # process only this much later (a tor that never bootstrapped, a hung shutdown).
    "kill_after": "10m",
    "request_budget": 0,
    "misfire_grace": "5m",
    "missed": "run_once",
    "catch_up_within": "12h",
    "enabled": True,
}
# The `dnm crawl` options a market may set (`settings`: NAME = VALUE pairs, as --set).
CRAWL_KEYS = {"mirror", "transport", "allow_host", "accounts", "captcha_solver", "tor_attach", "tor_network"}
CRAWL_KEYS |= {"settings"}
MARKET_KEYS = {"cron", *DEFAULTS, *CRAWL_KEYS}
TOP_KEYS = {"database", "log_dir", "defaults", "markets"}
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class ScheduleError(ValueError):
    """A schedule file that cannot be used, with the file and the key at fault."""


@dataclass(frozen=True)
class MarketSchedule:
    """One market's slot, limits and the `dnm crawl` options it runs with."""

    market: str
    cron: str
    timezone: ZoneInfo
    time_box: timedelta
    kill_after: timedelta
    request_budget: int  # responses; 0: no budget
    misfire_grace: timedelta
    missed: str
    catch_up_within: timedelta
    enabled: bool = True
    mirrors: tuple[str, ...] = ()
    transport: str | None = None
    allow_hosts: tuple[str, ...] = ()
    accounts: str | None = None
    captcha_solver: str | None = None
    tor_attach: str | None = None
    tor_network: str | None = None
    settings: dict[str, str] = field(default_factory=dict)

    def crawl_arguments(self) -> list[str]:
        """The `dnm crawl` options this market runs with, the limits included (no database, no market)."""
        arguments: list[str] = []
        for mirror in self.mirrors:
            arguments += ["--mirror", mirror]
        for host in self.allow_hosts:
            arguments += ["--allow-host", host]
        for option, value in (
            ("--transport", self.transport), ("--accounts", self.accounts),
            ("--captcha-solver", self.captcha_solver), ("--tor-attach", self.tor_attach),
            ("--tor-network", self.tor_network),
        ):  # fmt: skip
            if value:
                arguments += [option, value]
        limits = {"CLOSESPIDER_TIMEOUT": str(int(self.time_box.total_seconds()))}
        if self.request_budget:
            limits["CLOSESPIDER_PAGECOUNT"] = str(self.request_budget)
        for name, value in {**self.settings, **limits}.items():
            arguments += ["--set", f"{name}={value}"]
        return arguments


@dataclass(frozen=True)
class ScheduleConfig:
    """The whole schedule file."""

    path: Path
    markets: dict[str, MarketSchedule]
    database: str | None = None
    log_dir: Path = DEFAULT_LOG_DIR

    def enabled(self, only: list[str] | None = None) -> list[MarketSchedule]:
        """The markets to schedule: every enabled one, or those named (named ones must exist)."""
        if only:
            unknown = sorted(set(only) - set(self.markets))
            if unknown:
                raise ScheduleError(f"{self.path}: no market {', '.join(unknown)} in the schedule")
            return [self.markets[name] for name in only]
        return [schedule for schedule in self.markets.values() if schedule.enabled]


def parse_duration(value: Any, where: str) -> timedelta:
    """`90` (minutes), "90m", "6h", "1h30m", "45s", "2d" as a timedelta; anything else is an error."""
    if isinstance(value, bool):
        raise ScheduleError(f"{where}: a duration, not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ScheduleError(f"{where}: {value} is negative")
        return timedelta(minutes=value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip().lower())
        if match and any(match.groups()):
            days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise ScheduleError(
        f"{where}: {value!r} is not a duration (minutes as a number, or like 6h, 90m, 1h30m, 45s)"
    )


def load_schedule(path: Path, *, check_profiles: bool = True) -> ScheduleConfig:
    """Read and check a schedule file; with `check_profiles`, every market must have a profile."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ScheduleError(
            f"{path}: no such schedule file (see config/schedule.toml for an example)"
        ) from exc
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot read it: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{path}: not valid TOML: {exc}") from exc
    return parse_schedule(data, path, check_profiles=check_profiles)


def parse_schedule(data: dict[str, Any], path: Path, *, check_profiles: bool = True) -> ScheduleConfig:
    """The checked schedule of a parsed file (`path` names it in errors)."""
    _keys(data, TOP_KEYS, str(path), "")
    defaults = _table(data.get("defaults", {}), f"{path}: defaults")
    _keys(defaults, MARKET_KEYS - {"cron"}, str(path), "defaults.")
    markets_table = _table(data.get("markets"), f"{path}: markets")
    if not markets_table:
        raise ScheduleError(f"{path}: no [markets.NAME] table: nothing to schedule")
    markets: dict[str, MarketSchedule] = {}
    for name, spec in markets_table.items():
        where = f"{path}: markets.{name}"
        spec = _table(spec, where)
        _keys(spec, MARKET_KEYS, str(path), f"markets.{name}.")
        markets[name] = _market(name, {**DEFAULTS, **defaults, **spec}, where)
        if check_profiles:
            from dnm.profile import ProfileError, load_profile

            try:
                load_profile(name)
            except ProfileError as exc:
                raise ScheduleError(f"{where}: no usable profile for this market: {exc}") from exc
    database = data.get("database")
    if database is not None and not (isinstance(database, str) and database):
        raise ScheduleError(f"{path}: database: an archive URL, not {database!r}")
    log_dir = data.get("log_dir", str(DEFAULT_LOG_DIR))
    if not (isinstance(log_dir, str) and log_dir):
        raise ScheduleError(f"{path}: log_dir: a folder, not {log_dir!r}")
    return ScheduleConfig(path, markets, database, Path(log_dir))


def _table(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScheduleError(f"{where}: a table, not {value!r}")
    return value


def _keys(table: dict[str, Any], allowed: set[str], path: str, prefix: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ScheduleError(
            f"{path}: {prefix}{unknown[0]}: unknown key (allowed here: {', '.join(sorted(allowed))})"
        )


def _market(name: str, spec: dict[str, Any], where: str) -> MarketSchedule:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ScheduleError(f"{where}: a market name is its profile's name (letters, digits, _ . -)")
    cron = spec.get("cron")
    if not isinstance(cron, str) or not cron.strip():
        raise ScheduleError(f'{where}.cron: required: a cron expression such as "30 2 * * *" (02:30 daily)')
    cron = " ".join(cron.split())
    if not cron.startswith("@") and len(cron.split()) != 5:
        raise ScheduleError(
            f"{where}.cron: {cron!r} must have 5 fields: minute hour day-of-month month weekday"
        )
    if not croniter.is_valid(cron):
        raise ScheduleError(f"{where}.cron: {cron!r} is not a valid cron expression")
    zone = _string(spec, "timezone", where)
    try:
        timezone = ZoneInfo(zone or "")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"{where}.timezone: unknown time zone {zone!r} (e.g. UTC, Europe/Berlin)"
        ) from exc
    budget = spec["request_budget"]
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ScheduleError(f"{where}.request_budget: a number of responses (0: no budget), not {budget!r}")
    missed = spec["missed"]
    if missed not in MISSED_POLICIES:
        raise ScheduleError(f"{where}.missed: {missed!r}: use one of {', '.join(MISSED_POLICIES)}")
    if not isinstance(spec["enabled"], bool):
        raise ScheduleError(f"{where}.enabled: true or false, not {spec['enabled']!r}")
    durations = {
        key: parse_duration(spec[key], f"{where}.{key}")
        for key in ("time_box", "kill_after", "misfire_grace", "catch_up_within")
    }
    if durations["time_box"] <= timedelta(0):
        raise ScheduleError(f"{where}.time_box: every scheduled crawl needs a time box longer than 0")
    transport = _string(spec, "transport", where)
    if transport not in (None, "tor", "direct"):
        raise ScheduleError(f"{where}.transport: tor or direct, not {transport!r}")
    if spec.get("tor_attach") and spec.get("tor_network"):
        raise ScheduleError(f"{where}: tor_attach and tor_network exclude each other")
    settings = _table(spec.get("settings"), f"{where}.settings")
    for key, value in settings.items():
        if not isinstance(value, str | int | float | bool):
            raise ScheduleError(f"{where}.settings.{key}: a string, number or boolean, not {value!r}")
    return MarketSchedule(
        market=name,
        cron=cron,
        timezone=timezone,
        missed=missed,
        request_budget=budget,
        enabled=spec["enabled"],
        mirrors=_strings(spec, "mirror", where),
        transport=transport,
        allow_hosts=_strings(spec, "allow_host", where),
        accounts=_string(spec, "accounts", where),
        captcha_solver=_string(spec, "captcha_solver", where),
        tor_attach=_string(spec, "tor_attach", where),
        tor_network=_string(spec, "tor_network", where),
        settings={key: str(value) for key, value in settings.items()},
        **durations,
    )


def _string(spec: dict[str, Any], key: str, where: str) -> str | None:
    value = spec.get(key)
    if value is not None and not (isinstance(value, str) and value):
        raise ScheduleError(f"{where}.{key}: a string, not {value!r}")
    return value


def _strings(spec: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = spec.get(key, [])
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(item, str) and item for item in values):
        raise ScheduleError(f"{where}.{key}: a string or a list of strings, not {value!r}")
    return tuple(values)
