"""The custody log: canonical, reproducible lines chained by SHA-256, and every way of editing, cutting,
reordering or padding the log is refused with the line and the problem named."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from evidence.custody import GENESIS, CustodyError, CustodyLog, canonical, verify_custody

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, UTC)


def three_events() -> CustodyLog:
    log = CustodyLog()
    log.append("captured", "crawler@node-1", {"crawl_id": 7, "warc": "m/7-x.warc.gz"}, at=T0)
    log.append(
        "ingested", "archive", {"pages": 12, "note": "ünïcode kept as UTF-8"}, at=T0 + timedelta(hours=1)
    )
    log.append("exported", "analyst Ana", {"query": {"vendor": "v1"}}, at=T0 + timedelta(days=1))
    return log


def lines_of(log: CustodyLog) -> list[bytes]:
    return log.lines().splitlines(keepends=True)


def test_a_log_is_canonical_chained_and_verifies() -> None:
    log = three_events()
    lines = lines_of(log)
    assert len(lines) == 3 and all(line.endswith(b"\n") for line in lines)
    first = json.loads(lines[0])
    assert first["seq"] == 1 and first["prev"] == GENESIS and first["at"] == "2026-01-02T03:04:05.678901Z"
    # prev is the SHA-256 of the previous line's bytes, newline included (what `sed -n Np | sha256sum` gives).
    assert json.loads(lines[1])["prev"] == hashlib.sha256(lines[0]).hexdigest()
    assert json.loads(lines[2])["prev"] == hashlib.sha256(lines[1]).hexdigest()
    assert log.head() == hashlib.sha256(lines[2]).hexdigest()
    assert "ünïcode".encode() in lines[1]  # UTF-8, not \u escapes
    assert lines[0] == canonical(first) + b"\n" and b" " not in lines[0].replace(b"crawler@node-1", b"")
    events = verify_custody(log.lines(), log.head())
    assert [e["action"] for e in events] == ["captured", "ingested", "exported"]
    assert events[2]["details"] == {"query": {"vendor": "v1"}}


def test_the_same_events_give_the_same_bytes() -> None:
    assert three_events().lines() == three_events().lines()
    # Times given in another zone are stored as the same UTC instant.
    other = CustodyLog()
    other.append("captured", "crawler@node-1", {"warc": "m/7-x.warc.gz", "crawl_id": 7},
                 at=T0.astimezone(timezone(timedelta(hours=5))))  # fmt: skip
    assert lines_of(other)[0] == lines_of(three_events())[0]


def test_a_log_resumes_after_verification_and_keeps_chaining() -> None:
    log = three_events()
    resumed = CustodyLog.resume(log.lines(), log.head())
    event = resumed.append("verified", "court clerk", at=T0 + timedelta(days=2))
    assert event["seq"] == 4 and event["prev"] == log.head()
    assert len(verify_custody(resumed.lines(), resumed.head())) == 4
    with pytest.raises(CustodyError, match="head"):
        CustodyLog.resume(log.lines(), GENESIS)


def test_append_refuses_what_the_verifier_would_refuse() -> None:
    log = three_events()
    with pytest.raises(ValueError, match="earlier"):
        log.append("exported", "x", at=T0)
    with pytest.raises(ValueError, match="time zone"):
        log.append("exported", "x", at=datetime(2030, 1, 1))
    with pytest.raises(ValueError):
        log.append("exported", "x", {"price": float("nan")}, at=T0 + timedelta(days=3))
    with pytest.raises(ValueError, match="action and an actor"):
        log.append("", "x", at=T0 + timedelta(days=3))
    assert len(verify_custody(log.lines(), log.head())) == 3  # nothing half-appended


def edit(index: int, old: bytes, new: bytes) -> Callable[[list[bytes]], list[bytes]]:
    def apply(lines: list[bytes]) -> list[bytes]:
        assert old in lines[index]
        return [line.replace(old, new) if i == index else line for i, line in enumerate(lines)]

    return apply


def rechained(lines: list[bytes], events: list[dict]) -> list[bytes]:
    """What a forger who recomputes prev for every line writes (the head still gives it away)."""
    out: list[bytes] = []
    for event in events:
        event = {**event, "prev": hashlib.sha256(out[-1]).hexdigest() if out else GENESIS}
        out.append(canonical(event) + b"\n")
    return out


TAMPERINGS: dict[str, tuple[Callable[[list[bytes]], list[bytes]], str]] = {
    "middle line edited": (
        edit(1, b'"pages":12', b'"pages":13'),
        r"line 3: prev .* not the SHA-256 of line 2",
    ),
    "last line edited": (
        edit(2, b"analyst Ana", b"analyst Bob"),
        r"line 3 \(last\): head .* not the expected",
    ),
    "first line edited": (edit(0, b"node-1", b"node-2"), r"line 2: prev"),
    "lines reordered": (lambda ls: [ls[0], ls[2], ls[1]], r"line 2: seq is 3, expected 2"),
    "middle line deleted": (lambda ls: [ls[0], ls[2]], r"line 2: seq is 3, expected 2"),
    "last line deleted": (lambda ls: ls[:2], r"line 2 \(last\): head"),
    "line inserted": (lambda ls: [ls[0], ls[0], ls[1], ls[2]], r"line 2: seq is 1, expected 2"),
    "seq gap with prev recomputed": (
        lambda ls: rechained(ls, [json.loads(ls[0]), {**json.loads(ls[1]), "seq": 3}]),
        r"line 2: seq is 3, expected 2",
    ),
    "all prev recomputed after an edit": (
        lambda ls: rechained(
            ls, [json.loads(edit(0, b"node-1", b"node-2")(ls)[0])] + [json.loads(x) for x in ls[1:]]
        ),
        r"line 3 \(last\): head",
    ),
    "bad JSON": (edit(1, b'{"action"', b'{"action'), r"line 2: not JSON"),
    "not canonical (spaces)": (edit(1, b'"pages":12', b'"pages": 12'), r"line 2: not in canonical form"),
    "CRLF line end": (edit(0, b"}\n", b"}\r\n"), r"line 1: not in canonical form"),
    "extra field": (edit(0, b'"seq":1', b'"seq":1,"x":1'), r"line 1: fields"),
    "blank line": (lambda ls: [ls[0], b"\n", *ls[1:]], r"line 2: not JSON"),
    "last newline cut": (lambda ls: [*ls[:2], ls[2][:-1]], r"no newline \(truncated\?\)"),
    "time not UTC microseconds": (edit(0, b'05.678901Z"', b'05Z"'), r"line 1: at is not UTC ISO 8601"),
    "time going back": (edit(1, b'"at":"2026-01-02T04', b'"at":"2026-01-01T04'), r"line 2"),
}


@pytest.mark.parametrize("name", TAMPERINGS)
def test_a_tampered_log_fails_naming_the_line(name: str) -> None:
    log = three_events()
    change, message = TAMPERINGS[name]
    tampered = b"".join(change(lines_of(log)))
    assert tampered != log.lines()
    with pytest.raises(CustodyError, match=message):
        verify_custody(tampered, log.head())


def test_time_going_back_is_refused_even_when_the_chain_is_recomputed() -> None:
    log = three_events()
    events = [json.loads(line) for line in lines_of(log)]
    events[1]["at"] = "2026-01-01T00:00:00.000000Z"
    forged = rechained([], events)
    head = hashlib.sha256(forged[-1]).hexdigest()
    with pytest.raises(CustodyError, match=r"line 2: time .* earlier than line 1"):
        verify_custody(b"".join(forged), head)


def test_the_head_must_be_the_one_bound_elsewhere() -> None:
    log = three_events()
    with pytest.raises(CustodyError, match="not the expected"):
        verify_custody(log.lines(), "f" * 64)
    with pytest.raises(CustodyError, match="not a lowercase SHA-256"):
        verify_custody(log.lines(), log.head().upper())
    with pytest.raises(CustodyError, match="empty"):
        verify_custody(b"", GENESIS)
