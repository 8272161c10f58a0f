"""One crawl per market and archive at a time: an flock(2) on a lock file held by the crawling process.

The lock is taken by `dnm crawl` itself (DNM_SCHEDULE_LOCK, on by default), so a scheduled crawl and one
started by hand exclude each other. It is per market *and archive* (`<lock dir>/<market>.<archive>.lock`,
the archive named by a hash of its URL): two crawls of a market into one archive would interleave its
history, while a crawl into a scratch archive (a test, a trial profile) disturbs nothing.

flock rather than a PID file: the kernel releases it when the holding process ends however it ends
(SIGKILL, OOM killer, power cut), so a crash never leaves a stale lock to be cleaned by hand, and a
recycled PID can never keep it. The descriptor is not inherited by children (the crawl's tor), so it
dies with the crawl alone. The file itself stays; while locked it says who holds it. Limit: one host.
Crawls of one market from several machines need a lock in the shared database (a PostgreSQL advisory
lock) instead; docs/operations.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_LOCK_DIR = Path("var/locks")
# `dnm crawl` exits with this when another crawl of the market holds its lock: sysexits' EX_TEMPFAIL
# ("try again later"), which cron and systemd users read as such.
EXIT_LOCKED = 75


class MarketLocked(Exception):
    """Another process holds the market's crawl lock; says which, from what the holder wrote."""

    def __init__(self, market: str, path: Path, holder: str) -> None:
        who = f" ({holder})" if holder else ""
        super().__init__(
            f"another crawl of {market} is running{who}: one crawl per market at a time (lock {path})"
        )
        self.market, self.path, self.holder = market, path, holder


def lock_dir(setting: str | None = None) -> Path:
    """The lock folder: the DNM_SCHEDULE_LOCK_DIR setting, else $DNM_SCHEDULE_LOCK_DIR, else var/locks."""
    return Path(setting or os.environ.get("DNM_SCHEDULE_LOCK_DIR") or DEFAULT_LOCK_DIR)


def lock_path(directory: Path, market: str, archive: str) -> Path:
    """The lock file of a market crawled into the archive at URL `archive` (as given: spell it alike)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", market):
        raise ValueError(f"{market!r} is not a market name")
    return directory / f"{market}.{hashlib.sha256(archive.encode()).hexdigest()[:12]}.lock"


class MarketLock:
    """The crawl lock of one market; `acquire` never waits, it raises MarketLocked."""

    def __init__(self, directory: Path, market: str, archive: str) -> None:
        self.market = market
        self.path = lock_path(directory, market, archive)
        self._fd: int | None = None

    def acquire(self, note: str = "") -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise MarketLocked(self.market, self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {started}{f', {note}' if note else ''}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the only descriptor releases the flock
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> MarketLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(directory: Path, market: str, archive: str) -> str | None:
    """Who holds a market's lock ("" if the holder wrote nothing yet), or None when it is free.

    Probing takes the lock for an instant: a crawl starting at that very instant is refused and exits
    EXIT_LOCKED, which its caller reads as an overlap (the scheduler does).
    """
    lock = MarketLock(directory, market, archive)
    try:
        lock.acquire()
    except MarketLocked as exc:
        return exc.holder
    lock.release()
    return None


def hold_market_locks(markets: Iterable[str], overrides: dict[str, Any]) -> ExitStack:
    """Take the crawl lock of every market, in the archive the settings name, for `dnm crawl`.

    Nothing is taken when DNM_SCHEDULE_LOCK is off.

    Returns an ExitStack that releases them; raises MarketLocked, holding none, if any is taken.
    """
    from dnm.crawler import crawl_settings
    from models.db import database_url

    settings = crawl_settings(overrides)
    stack = ExitStack()
    if not settings.getbool("DNM_SCHEDULE_LOCK"):
        return stack
    directory = lock_dir(settings.get("DNM_SCHEDULE_LOCK_DIR"))
    archive = database_url(settings.get("DNM_DATABASE_URL"))
    with ExitStack() as taking:
        for market in sorted(set(markets)):
            lock = MarketLock(directory, market, archive)
            lock.acquire("dnm crawl")
            taking.callback(lock.release)
        stack.push(taking.pop_all())
    return stack
