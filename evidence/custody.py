"""The chain-of-custody log: hash-chained JSON Lines events, built and verified byte for byte.

Each line is one event, canonical JSON (sorted keys, compact separators, UTF-8, no ASCII escaping)
followed by `\\n`:

    {"action":"exported","actor":"...","at":"2026-01-02T03:04:05.678901Z","details":{...},
     "prev":"<sha256 hex of the previous line>","seq":3}

`seq` counts from 1; `at` is UTC with microseconds and never goes back; `prev` is the SHA-256 of the
previous line's exact bytes *including* its newline (64 zeros for the first line), so a third party
checks line N with `sed -n "$((N-1))p" custody_log.jsonl | sha256sum`. The *head* is the SHA-256 of the
last line (`tail -n 1 custody_log.jsonl | sha256sum`). The chain alone shows that lines were not edited,
reordered, inserted or deleted *in the middle*; dropping or rewriting the tail is only caught by comparing
the head with a value bound elsewhere (bag-info's `Custody-Log-Head-SHA256`, covered by the signature),
which is why `verify_custody` requires the expected head.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = frozenset({"seq", "at", "actor", "action", "details", "prev"})
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class CustodyError(ValueError):
    """The custody log is not the chain it claims to be; the message names the line and the problem."""


def canonical(value: Any) -> bytes:
    """The one byte form of a JSON value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def format_time(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds (`2026-01-02T03:04:05.678901Z`); a naive datetime is refused."""
    if moment.tzinfo is None:
        raise ValueError(f"custody time {moment!r} has no time zone")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CustodyLog:
    """A custody log being written: events appended in order, each chained to the line before it."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._last_at = ""

    @classmethod
    def resume(cls, data: bytes, expected_head: str) -> CustodyLog:
        """Continue an existing log (e.g. the ingest's, at export) after verifying it against its head."""
        log = cls()
        for event in verify_custody(data, expected_head):
            log._lines.append(canonical(event) + b"\n")
            log._last_at = event["at"]
        return log

    def append(
        self, action: str, actor: str, details: dict[str, Any] | None = None, at: datetime | None = None
    ) -> dict[str, Any]:
        """Add an event (at `at`, default now) and return it; `details` must be JSON (no NaN)."""
        if not action or not actor:
            raise ValueError("a custody event needs an action and an actor")
        stamp = format_time(at or datetime.now(UTC))
        # Fixed-width UTC strings compare as times do.
        if stamp < self._last_at:
            raise ValueError(f"custody event at {stamp} is earlier than the previous one ({self._last_at})")
        event = {
            "seq": len(self._lines) + 1,
            "at": stamp,
            "actor": actor,
            "action": action,
            "details": dict(details or {}),
            "prev": self.head(),
        }
        self._lines.append(canonical(event) + b"\n")
        self._last_at = stamp
        return event

    def lines(self) -> bytes:
        """The log file's bytes."""
        return b"".join(self._lines)

    def head(self) -> str:
        """SHA-256 hex of the last line (64 zeros while the log is empty)."""
        return sha256_hex(self._lines[-1]) if self._lines else GENESIS


def verify_custody(data: bytes, expected_head: str) -> list[dict[str, Any]]:
    """The events of a custody log whose every line, link and head check out; raises CustodyError."""
    if not _HEX64.fullmatch(expected_head):
        raise CustodyError(f"expected head {expected_head!r} is not a lowercase SHA-256 hex digest")
    if not data:
        raise CustodyError("custody log is empty")
    if not data.endswith(b"\n"):
        raise CustodyError("custody log: the last line has no newline (truncated?)")
    events: list[dict[str, Any]] = []
    prev, last_at = GENESIS, ""
    for number, body in enumerate(data[:-1].split(b"\n"), start=1):
        line = body + b"\n"
        event = _event(number, body)
        if event["seq"] != number:
            raise CustodyError(
                f"line {number}: seq is {event['seq']}, expected {number} (line missing or added)"
            )
        if event["prev"] != prev:
            raise CustodyError(
                f"line {number}: prev {event['prev']} is not the SHA-256 of line {number - 1} ({prev}):"
                " a line before it was edited, deleted, inserted or reordered"
            )
        if event["at"] < last_at:
            raise CustodyError(f"line {number}: time {event['at']} is earlier than line {number - 1}'s")
        events.append(event)
        prev, last_at = sha256_hex(line), event["at"]
    if prev != expected_head:
        raise CustodyError(
            f"line {len(events)} (last): head {prev} is not the expected {expected_head}"
            " (the log was cut, extended or its last line edited)"
        )
    return events


def _event(number: int, body: bytes) -> dict[str, Any]:
    """One line parsed and checked for shape and canonical form."""
    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CustodyError(f"line {number}: not JSON ({error})") from None
    if not isinstance(event, dict) or set(event) != FIELDS:
        found = sorted(event) if isinstance(event, dict) else type(event).__name__
        raise CustodyError(f"line {number}: fields {found}, expected {sorted(FIELDS)}")
    checks = (
        (type(event["seq"]) is int, "seq is not an integer"),
        (_at_ok(event["at"]), "at is not UTC ISO 8601 with microseconds"),
        (isinstance(event["actor"], str) and event["actor"] != "", "actor is empty or not text"),
        (isinstance(event["action"], str) and event["action"] != "", "action is empty or not text"),
        (isinstance(event["details"], dict), "details is not an object"),
        (
            isinstance(event["prev"], str) and bool(_HEX64.fullmatch(event["prev"])),
            "prev is not a SHA-256 hex",
        ),
    )
    for ok, problem in checks:
        if not ok:
            raise CustodyError(f"line {number}: {problem}")
    if canonical(event) != body:
        raise CustodyError(f"line {number}: not in canonical form (re-encoded or hand-edited)")
    return event


def _at_ok(value: Any) -> bool:
    if not (isinstance(value, str) and _TIME.fullmatch(value)):
        return False
    try:
        datetime.strptime(value, TIME_FORMAT)
    except ValueError:
        return False
    return True
