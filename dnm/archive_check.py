"""Checking the raw store against itself and the database (`dnm archive verify`): is what was captured intact?

For each crawl that wrote a WARC file (its name in `crawls.stats` → `dnm/warc/file`):

1. the hash chain next to the file (`<file>.chain.jsonl`, dnm.rawstore) links line to line, and its head
   and length equal those the crawl row kept (`dnm/warc/chain_head`, `dnm/warc/chain_records`): the chain
   file cannot be rewritten to match an edited store without the database noticing;
2. the file is exactly the chained records: they start at byte 0, follow each other, end at the end of
   the file (nothing cut, nothing appended), and each record's gzip member has the SHA-256 chained;
3. every record's WARC digests hold (SHA-256 block and payload digests, read by warcio);
4. every payload the database says this file holds is a response record in the chain.

A crawl still `running` is not checked while its process lives; one whose process is gone is reported
as interrupted, with what its file holds (the next crawl of the market closes it and seals the file,
dnm.recovery; a sealed file is then checked as any other).

Nothing is repaired or rewritten: a failure names the crawl, the file and what is wrong, so the capture
is known to be unreliable before anything is exported from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

from dnm.rawstore import CHAIN_SUFFIX, GENESIS, seal_interrupted
from dnm.recovery import INTERRUPTED, process_gone
from models import Crawl, Market, Payload


@dataclass
class CrawlCheck:
    """What was found for one crawl's raw captures."""

    crawl_id: int
    market: str
    warc_file: str | None
    records: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_archive(
    engine: Engine, raw_directory: Path, *, market: str | None = None, crawl_id: int | None = None
) -> list[CrawlCheck]:
    """Check every crawl (of `market`, or only `crawl_id`) that has raw captures."""
    query = select(Crawl, Market.slug).join(Market, Crawl.market_id == Market.id).order_by(Crawl.id)
    if market:
        query = query.where(Market.slug == market)
    if crawl_id is not None:
        query = query.where(Crawl.id == crawl_id)
    checks = []
    with Session(engine) as session:
        for crawl, slug in session.execute(query):
            stats = crawl.stats or {}
            check = CrawlCheck(crawl.id, slug, stats.get("dnm/warc/file"))
            if crawl.status == "running":
                _check_running(check, raw_directory, stats)
                checks.append(check)
                continue
            if crawl.reparse_of is not None:
                continue  # a re-parse wrote no captures of its own
            if check.warc_file is None:
                check.notes.append("no raw captures (crawled before the raw store, or capture was off)")
            else:
                held = session.scalars(
                    select(Payload.warc_record_id).where(Payload.warc_file == check.warc_file)
                ).all()
                _check_file(check, raw_directory, stats, set(held))
            checks.append(check)
    return checks


def _check_running(check: CrawlCheck, raw_directory: Path, stats: dict[str, Any]) -> None:
    process = stats.get("dnm/process") or {}
    if not process_gone(process):
        where = f"pid {process['pid']} on {process['host']}" if process else "its process is not recorded"
        check.notes.append(f"still running ({where}): checked once it has ended")
        return
    said = f"{INTERRUPTED}; the next crawl of {check.market} closes it and seals its raw capture"
    path = raw_directory / str(check.warc_file)
    if check.warc_file is not None and path.is_file():
        found = seal_interrupted(path, cut=False)
        check.records = found.records
        said += f" ({found.records} records chained and whole"
        if found.cut_bytes or found.cut_lines:
            said += f"; {found.cut_bytes} bytes after them: the record in flight, to be cut"
        said += ")"
    check.problems.append(said)


class ChainError(ValueError):
    """A WARC file's hash chain that is missing, broken, or not the one the crawl row recorded."""


def verified_chain(raw_directory: Path, warc_file: str, stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The chain lines of a crawl's WARC file, each linked to the one before and the last to the head the
    crawl row kept; ChainError otherwise. Cheap (the chain file only): what a record's bytes must hash to
    can then be checked record by record (evidence export), or for the whole file (verify_archive)."""
    path = raw_directory / warc_file
    chain_path = path.with_name(path.name + CHAIN_SUFFIX)
    if not path.is_file():
        raise ChainError(f"WARC file {path} is missing")
    head, count = stats.get("dnm/warc/chain_head"), stats.get("dnm/warc/chain_records")
    if head is None:
        raise ChainError(f"{warc_file}: no hash chain recorded (captured before the chain existed)")
    if not chain_path.is_file():
        raise ChainError(f"hash chain {chain_path} is missing")
    try:
        links = list(_chain(chain_path.read_bytes()))
    except ValueError as exc:
        raise ChainError(f"hash chain {chain_path.name}: {exc}") from None
    last = hashlib.sha256(links[-1][1]).hexdigest() if links else GENESIS
    if last != head or len(links) != count:
        raise ChainError(
            f"hash chain {chain_path.name} ends at {last[:16]}… after {len(links)} records, the crawl row "
            f"recorded {str(head)[:16]}… after {count}: the chain file was rewritten or cut"
        )
    return [line for line, _ in links]


def _check_file(check: CrawlCheck, raw_directory: Path, stats: dict[str, Any], held: set[str | None]) -> None:
    path = raw_directory / str(check.warc_file)
    if path.is_file() and stats.get("dnm/warc/chain_head") is None:
        check.notes.append("no hash chain recorded (captured before the chain existed): digests only")
        _check_digests(check, path)
        return
    try:
        lines = verified_chain(raw_directory, str(check.warc_file), stats)
    except ChainError as exc:
        check.problems.append(str(exc))
        return
    check.records = len(lines)
    _check_members(check, path, lines)
    if check.ok:
        _check_digests(check, path)
    responses = {line["record_id"] for line in lines if line["type"] == "response"}
    missing = sorted(str(record) for record in held - responses)
    if missing:
        check.problems.append(
            f"{len(missing)} payload record(s) the archive points at are not in the file: {missing[:3]}"
        )


def _chain(data: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The chain's lines, each checked against the line before."""
    previous = GENESIS
    for number, raw in enumerate(data.splitlines(keepends=True)):
        try:
            line = json.loads(raw)
        except ValueError:
            raise ValueError(f"line {number + 1} is not JSON") from None
        if line.get("n") != number:
            raise ValueError(f"line {number + 1} is record {line.get('n')}: lines were removed or reordered")
        if line.get("prev") != previous:
            raise ValueError(f"line {number + 1} does not follow line {number}: a line was edited or removed")
        previous = hashlib.sha256(raw).hexdigest()
        yield line, raw


def _check_members(check: CrawlCheck, path: Path, links: list[dict[str, Any]]) -> None:
    """The file is the chained gzip members, back to back, each with its chained SHA-256."""
    size, expected_offset = path.stat().st_size, 0
    with path.open("rb") as stream:
        for line in links:
            if line["offset"] != expected_offset:
                check.problems.append(
                    f"record {line['n']} starts at byte {line['offset']}, not {expected_offset}"
                )
                return
            member = stream.read(line["length"])
            if len(member) != line["length"]:
                check.problems.append(
                    f"record {line['n']} ({line['record_id']}) is cut short: the file was truncated"
                )
                return
            if hashlib.sha256(member).hexdigest() != line["sha256"]:
                check.problems.append(
                    f"record {line['n']} ({line['type']} {line['record_id']}) was changed: "
                    "its bytes differ from the hash chained at capture"
                )
            expected_offset += line["length"]
    if size != expected_offset:
        check.problems.append(
            f"{size - expected_offset} byte(s) after the last chained record: data was appended"
        )


def _check_digests(check: CrawlCheck, path: Path) -> None:
    """Every record's SHA-256 block and payload digests, as warcio computes them."""
    try:
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream, check_digests="raise"):
                while record.raw_stream.read(1 << 16):
                    pass
    except Exception as exc:  # warcio raises several kinds; any of them is a broken capture
        check.problems.append(f"WARC digests: {exc}")
