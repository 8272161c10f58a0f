"""Crawls whose process died: telling them from running ones, and closing them with their raw capture.

A crawl row is `running` from `ArchiveWriter.begin` until `finish` closes it. A crawl process killed in
between (SIGKILL, the OOM killer, a power cut) leaves it `running`: its pages are in the archive up to
the last committed one (a transaction per page), its WARC file holds every record it chained and at
most one record cut short after them. The row names its process (`dnm/process` in its stats: host, pid
and the process's start time, which a recycled pid does not share), so a crawl is known to be dead
when that process is gone from this host.

`close_interrupted` runs at the start of every crawl of the market (pipelines.storage), before its own
crawl row exists: each dead crawl of the market is closed as `partial` (content pages archived) or
`failed` (none), never `complete`, with the reason INTERRUPTED; its WARC file is sealed
(dnm.rawstore.seal_interrupted: the record in flight cut, the chain's head put on the row, so that
`dnm archive verify` checks it as any other), and payload rows that would point at a record the file
does not hold (only possible after a power cut) are unlinked from it, so no later crawl refers to
bytes that are not on disk. A crawl running on another host, or one whose row names no process (made
before this), is left alone: `dnm archive verify` reports it.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from dnm.rawstore import seal_interrupted
from models import Crawl, Market, Page, Payload

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the crawl process ended without closing its crawl (killed?)"
# Payload rows unlinked per statement (SQLite's limit on bound parameters).
_CHUNK = 500


def process_identity() -> dict[str, Any]:
    """This process, as a crawl row names it: host, pid, and start time (boot id and clock ticks)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _process_start(pid)}


def _process_start(pid: int) -> str | None:
    """When a process started (boot id and clock ticks since boot, from /proc), or None where unknown."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 of stat; the command name (field 2, in parentheses) may hold spaces, so count after it.
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"


def process_gone(identity: Any) -> bool:
    """True only when the process a crawl row names is certainly not running: on this host, and its pid
    is free or now another process's (a different start time)."""
    if not isinstance(identity, dict) or identity.get("host") != socket.gethostname():
        return False
    pid = identity.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's: compare start times
    started, now = identity.get("started"), _process_start(pid)
    return started is not None and now is not None and now != started


def record_warc_file(engine: Engine, crawl_id: int, warc_file: str) -> None:
    """Name a running crawl's WARC file on its row as soon as it exists, so that the file can be sealed
    if the crawl dies (the rest of the stats only come with `finish`)."""
    with Session(engine) as session, session.begin():
        crawl = session.get(Crawl, crawl_id)
        if crawl is not None:
            crawl.stats = {**(crawl.stats or {}), "dnm/warc/file": warc_file}


@dataclass(frozen=True)
class Closed:
    """A dead crawl closed by `close_interrupted`."""

    crawl_id: int
    status: str
    reason: str


def close_interrupted(engine: Engine, market: str, raw_directory: Path) -> list[Closed]:
    """Close every crawl of `market` left `running` by a process that is gone; returns what was closed."""
    with Session(engine) as session:
        running = session.execute(
            select(Crawl.id, Crawl.stats)
            .join(Market, Crawl.market_id == Market.id)
            .where(Market.slug == market, Crawl.status == "running")
            .order_by(Crawl.id)
        ).all()
    closed = []
    for crawl_id, stats in running:
        if process_gone((stats or {}).get("dnm/process")):
            closed.append(_close(engine, crawl_id, dict(stats or {}), raw_directory))
            logger.warning(
                "crawl %s of %s closed as %s: %s", crawl_id, market, closed[-1].status, closed[-1].reason
            )
    return closed


def _close(engine: Engine, crawl_id: int, stats: dict[str, Any], raw_directory: Path) -> Closed:
    reasons = [INTERRUPTED]
    warc_file = stats.get("dnm/warc/file")
    if warc_file is not None:
        reasons.append(_seal(engine, raw_directory, warc_file, stats))
    with Session(engine) as session, session.begin():
        pages, content, last = session.execute(
            select(
                func.count(Page.id),
                func.count(Page.id).filter(Page.page_type != "unknown", Page.page_type.not_like("%:%")),
                func.max(Page.fetched_at),
            ).where(Page.crawl_id == crawl_id)
        ).one()
        status = "partial" if content else "failed"
        reasons.insert(1, f"{pages} page(s) archived, {content} of them content pages")
        stats.update(
            {
                "dnm/stored/pages": pages,
                "dnm/stored/content_pages": content,
                "dnm/crawl_status": status,
                "dnm/interrupted": {
                    "closed_at": datetime.now(UTC).isoformat(),
                    "closed_by": process_identity(),
                },
            }
        )
        reason = "; ".join(reasons)
        session.execute(
            update(Crawl)
            .where(Crawl.id == crawl_id, Crawl.status == "running")
            .values(
                status=status,
                status_reason=reason[:500],
                # When it died, as near as the archive knows: its last stored page.
                finished_at=last or datetime.now(UTC),
                stats=stats,
            )
        )
    return Closed(crawl_id, status, reason)


def _seal(engine: Engine, raw_directory: Path, warc_file: str, stats: dict[str, Any]) -> str:
    """Seal the crawl's WARC file and put its chain into `stats`; returns what was done, for the reason."""
    path = raw_directory / warc_file
    if not path.is_file():
        return f"its raw capture {path} is not in the raw store: not sealed"
    sealed = seal_interrupted(path)
    stats.update(
        {
            "dnm/warc/chain_head": sealed.head,
            "dnm/warc/chain_records": sealed.records,
            "dnm/warc/bytes": path.stat().st_size,
            "dnm/warc/cut_bytes": sealed.cut_bytes,
            "dnm/warc/sealed_after_interruption": True,
        }
    )
    unlinked = _unlink_missing(engine, warc_file, sealed.responses)
    said = f"raw capture sealed after {sealed.records} records"
    if sealed.cut_bytes or sealed.cut_lines:
        said += f" ({sealed.cut_bytes} bytes of the record in flight cut"
        said += f", {sealed.cut_lines} chain line(s) dropped)" if sealed.cut_lines else ")"
    if unlinked:
        said += f"; {unlinked} payload(s) whose record never reached the file unlinked from it"
    return said


def _unlink_missing(engine: Engine, warc_file: str, held: frozenset[str]) -> int:
    """Payload rows pointing into `warc_file` at records it does not hold lose the link (a later fetch of
    the same body links it again): nothing may refer to bytes that are not on disk."""
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(Payload.id, Payload.warc_record_id).where(Payload.warc_file == warc_file)
        ).all()
        missing = [payload_id for payload_id, record_id in rows if record_id not in held]
        for start in range(0, len(missing), _CHUNK):
            session.execute(
                update(Payload)
                .where(Payload.id.in_(missing[start : start + _CHUNK]))
                .values(warc_file=None, warc_record_id=None)
            )
    return len(missing)
