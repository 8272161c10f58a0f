"""What the payloads' SHA-256 index costs a night, against the whole archive writer on the same archive.

`python -m bench.digest_index [--nights 160] [--repeat 8] [--listings 10000] [--workdir DIR]` files N
nights of the synthetic market (bench.synthetic_market) into a fresh SQLite archive, then times nights
N+1 onwards on copies of it, four ways:

- the archive writer (`ArchiveWriter`, as `bench.archive_year` runs it): the baseline;
- only the three rows each page adds (a payload for a new body, the page, the listing's sighting), as
  tuples on the driver in transactions of `--batch` pages with the writer's PRAGMAs and background
  checkpoints, looking each body's digest up first as the writer does: with the payloads as revision
  0006 kept them (a unique index on the 64 hex characters, in a side table), as the schema keeps them
  since 0007 (an index on the digest's first 64 bits, the full digest checked on the row, SQLite's
  uniqueness trigger), and the same with time-ordered digests (keys that land at the index's end, as no
  real digest does).

Three bodies in four are new each night, as the synthetic market's BTC conversions make them. Foreign
keys are off in the three row-only runs (the 0006 variant's payloads are a side table). It prints the
median seconds a night and each run's share of the writer's; bench/README.md ("the floor under a
night") reads it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from random import Random

from bench.archive_year import POSTGRES_ADMIN_URL, file_nights, fresh_archive, ingest, market_arguments, say
from bench.synthetic_market import MarketShape, SyntheticMarket
from dnm.archive import CrawlSetup
from models.checkpoint import FALLBACK_PAGES, WalCheckpointer
from models.crawl import digest_prefix
from models.db import open_engine

SETUP = CrawlSetup(tool_version="bench", settings_sha256="0" * 64, transport="synthetic")
PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=OFF", "cache_size=-65536",
           f"wal_autocheckpoint={FALLBACK_PAGES}")  # fmt: skip
VARIANTS = {
    "text": "unique index on the 64-hex-character digest (revision 0006)",
    "prefix": "index on the digest's first 64 bits (the schema's, 0007)",
    "ordered": "the same, time-ordered digests (no scatter)",
}
NOW = "2027-01-01 00:00:00.000000"


def build(workdir: Path, shape: MarketShape, nights: int, batch: int) -> tuple[Path, SyntheticMarket]:
    """An archive of `nights` nights, checkpointed into one file; and the market, ready for the next."""
    market = SyntheticMarket(shape)
    with fresh_archive("sqlite", workdir, POSTGRES_ADMIN_URL) as url:
        engine = open_engine(url)
        file_nights(engine, shape, SETUP, market.nights(nights), batch)
    return Path(str(engine.url.database)), market


def copy_of(archive: Path, name: str) -> Path:
    copy = archive.with_name(name)
    for stale in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(archive, copy)
    return copy


def writer_nights(
    archive: Path, market: SyntheticMarket, shape: MarketShape, repeat: int, batch: int
) -> list[float]:
    """Seconds of each next night through the archive writer, on a copy of the archive."""
    engine = open_engine(f"sqlite:///{copy_of(archive, 'writer.sqlite')}")
    try:
        return [ingest(engine, shape, SETUP, night, batch)[1] for night in market.nights(repeat)]
    finally:
        engine.dispose()


def with_text_table(connection: sqlite3.Connection) -> None:
    """The payloads again in a side table as revision 0006 kept them: unique on the 64-hex digest."""
    connection.execute("BEGIN")
    connection.execute(
        "CREATE TABLE payloads_text (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, "
        "size INTEGER NOT NULL, warc_file TEXT, warc_record_id TEXT)"
    )
    connection.execute(
        "INSERT INTO payloads_text SELECT id, sha256, size, warc_file, warc_record_id FROM payloads"
    )
    connection.execute("CREATE INDEX ix_payloads_text_file ON payloads_text (warc_file, warc_record_id)")
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class RowsOnly:
    """Nights of only the rows each page adds, written on the driver into a copy of the archive."""

    def __init__(self, archive: Path, variant: str, batch: int) -> None:
        self.variant, self.batch = variant, batch
        self.path = copy_of(archive, f"rows-{variant}.sqlite")
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        if variant == "text":
            with_text_table(self.connection)
        for pragma in PRAGMAS:
            self.connection.execute(f"PRAGMA {pragma}")
        self.payloads = "payloads_text" if variant == "text" else "payloads"
        self.pages = self.last_pages(self.path)
        self.random = Random(f"digest-index-{variant}")

    @staticmethod
    def last_pages(archive: Path) -> list[tuple[int, int | None, int | None]]:
        """The archive's last night's pages, to be written again: (url, listing, state), listing and
        state None on pages that are not a listing's."""
        connection = sqlite3.connect(archive)
        try:
            (last,) = connection.execute("SELECT max(id) FROM crawls").fetchone()
            sighted = dict(
                (page, (listing, state))
                for page, listing, state in connection.execute(
                    "SELECT page_id, listing_id, state_id FROM listing_sightings WHERE crawl_id = ?", (last,)
                )
            )
            pages = connection.execute("SELECT id, url_id FROM pages WHERE crawl_id = ? ORDER BY id", (last,))
            return [(url, *sighted.get(page, (None, None))) for page, url in pages]
        finally:
            connection.close()

    def night(self, number: int, checkpointer: WalCheckpointer) -> float:
        started = time.perf_counter()
        execute = self.connection.execute
        execute(
            "INSERT INTO crawls (market_id, started_at, status, tool_version, profile_version, "
            "profile_sha256, settings_sha256, transport) VALUES (1, ?, 'running', 'b', 'b', 'b', 'b', 'b')",
            (NOW,),
        )
        crawl = execute("SELECT max(id) FROM crawls").fetchone()[0]
        for start in range(0, len(self.pages), self.batch):
            chunk = self.pages[start : start + self.batch]
            execute("BEGIN IMMEDIATE")
            self.write(number, start, crawl, chunk)
            execute("COMMIT")
            checkpointer.committed()
        return time.perf_counter() - started

    def write(
        self, number: int, start: int, crawl: int, chunk: list[tuple[int, int | None, int | None]]
    ) -> None:
        execute, executemany = self.connection.execute, self.connection.executemany
        first_payload = execute(f"SELECT coalesce(max(id), 0) + 1 FROM {self.payloads}").fetchone()[0]
        first_page = execute("SELECT coalesce(max(id), 0) + 1 FROM pages").fetchone()[0]
        if self.variant == "ordered":
            digests = [f"{number:08d}{start + n:056d}" for n in range(len(chunk))]
        else:
            digests = [f"{self.random.getrandbits(256):064x}" for _ in chunk]
        new = [n for n in range(len(chunk)) if n % 4]  # three bodies in four are new
        payload_ids = {n: first_payload + k for k, n in enumerate(new)}
        # Tonight's WARC file and a record id of its own for each new body, as the raw store gives them.
        warc_file = f"synthetic/{number}.warc.gz"
        stored = {n: (warc_file, f"<urn:uuid:{uuid.UUID(int=self.random.getrandbits(128))}>") for n in new}
        if self.variant == "text":
            execute(
                "SELECT id FROM payloads_text WHERE sha256 IN (SELECT value FROM json_each(?))",
                (json.dumps(digests),),
            ).fetchall()
            executemany(
                "INSERT INTO payloads_text (id, sha256, size, warc_file, warc_record_id) "
                "VALUES (?, ?, 30000, ?, ?)",
                [(payload_ids[n], digests[n], *stored[n]) for n in new],
            )
        else:
            pairs = [(digest_prefix(digest), digest) for digest in digests]
            execute(
                "SELECT p.id FROM json_each(?) j JOIN payloads p "
                "ON p.sha256_prefix = j.value ->> 0 AND p.sha256 = j.value ->> 1",
                (json.dumps(pairs),),
            ).fetchall()
            executemany(
                "INSERT INTO payloads (id, sha256_prefix, sha256, size, warc_file, warc_record_id) "
                "VALUES (?, ?, ?, 30000, ?, ?)",
                [(payload_ids[n], *pairs[n], *stored[n]) for n in new],
            )
        executemany(
            "INSERT INTO pages (id, crawl_id, url_id, page_type, status, fetched_at, server_time, "
            "extraction_errors, payload_id) VALUES (?, ?, ?, 'listing', 200, ?, ?, 0, ?)",
            [
                (first_page + n, crawl, url, NOW, NOW, payload_ids.get(n, 1))
                for n, (url, _, _) in enumerate(chunk)
            ],
        )
        executemany(
            "INSERT INTO listing_sightings (crawl_id, page_id, listing_id, state_id) VALUES (?, ?, ?, ?)",
            [
                (crawl, first_page + n, listing, state)
                for n, (_, listing, state) in enumerate(chunk)
                if listing
            ],
        )

    def nights(self, first: int, repeat: int) -> list[float]:
        checkpointer = WalCheckpointer(self.path)
        try:
            return [self.night(first + n, checkpointer) for n in range(repeat)]
        finally:
            checkpointer.close()
            self.connection.close()


def median(seconds: list[float]) -> float:
    """The median night, the first left out (a fresh copy's log and caches start cold)."""
    return statistics.median(seconds[1:] if len(seconds) > 2 else seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.digest_index", description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=160, help="nights in the archive before (default 160)")
    parser.add_argument("--repeat", type=int, default=8, help="nights timed each way (default 8)")
    market_arguments(parser, "where the archives are made (kept); default a temporary one")
    args = parser.parse_args(argv)
    if args.nights < 1 or args.repeat < 1:
        parser.error("--nights and --repeat must be at least 1")
    shape = MarketShape(listings=args.listings, vendors=args.vendors)
    with tempfile.TemporaryDirectory(prefix="dnm-digest-index-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        say(f"{args.nights} nights of {shape.describe()} ...")
        archive, market = build(workdir, shape, args.nights, args.batch)
        say(f"nights {args.nights + 1}-{args.nights + args.repeat} through the archive writer ...")
        writer = median(writer_nights(archive, market, shape, args.repeat, args.batch))
        floors = {}
        for variant in VARIANTS:
            say(f"the same nights' rows alone, {VARIANTS[variant]} ...")
            floors[variant] = median(
                RowsOnly(archive, variant, args.batch).nights(args.nights + 1, args.repeat)
            )
        listings = sum(1 for _, listing, _ in RowsOnly.last_pages(archive) if listing)
    timed = f"{args.nights + 1}-{args.nights + args.repeat}"
    print(f"nights {timed} on a {args.nights}-night archive ({listings:,} listings), median seconds a night")
    print(f"{'archive writer (baseline)':64} {writer:6.3f} s {listings / writer:>8,.0f}/s  1.00")
    print("the rows each page adds, alone (payload, page, sighting):")
    for variant, seconds in floors.items():
        print(
            f"  {VARIANTS[variant]:62} {seconds:6.3f} s {listings / seconds:>8,.0f}/s  {seconds / writer:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
