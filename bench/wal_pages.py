"""Which tables and indexes one night writes: the pages of SQLite's write-ahead log, by owner.

`python -m bench.wal_pages [--nights 60] [--listings 10000] [--vendors 600] [--workdir DIR]` files
nights 1 to N-1 of the synthetic market (bench.synthetic_market) into a fresh SQLite archive, then night
N with no checkpoint, so every page its transactions wrote stays in the log. Each page number in the
log's frame headers is named by the table or index that owns it (SQLite's `dbstat` table) and the
table prints, per owner, the pages written, the pages it has, and the frames: a page goes to the log
once per transaction that changes it, so the frames are what the night's commits wrote and its
checkpoints copied. An index a night's rows scatter into shows most of its pages written (and more
frames than pages: every batch comes back to them), and that cost grows with the archive; one they
append to shows a few.
bench/README.md ("indexes that grow at the end") reads it; tests/core/test_archive_locality.py checks it.
"""

from __future__ import annotations

import argparse
import sqlite3
import struct
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from sqlalchemy import Engine, event

import dnm.archive
from bench.archive_year import POSTGRES_ADMIN_URL, file_nights, fresh_archive, ingest, market_arguments
from bench.synthetic_market import MarketShape, SyntheticMarket
from dnm.archive import CrawlSetup
from models.db import open_engine

SETUP = CrawlSetup(tool_version="bench", settings_sha256="0" * 64, transport="synthetic")
# The log's own header, and each frame's header before its page (sqlite.org/fileformat.html#walformat).
WAL_HEADER, FRAME_HEADER = 32, 24


@dataclass(frozen=True)
class Written:
    """Pages one night wrote, the log frames it wrote them in, and the pages there are, per table or index."""

    written: Counter[str]
    frames: Counter[str]
    sizes: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.written.values())


def frames_in_wal(wal: Path) -> list[int]:
    """The page number of each frame in a write-ahead log, in log order."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    frames, offset = [], WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(data):
        frames.append(struct.unpack(">I", data[offset : offset + 4])[0])
        offset += FRAME_HEADER + page_size
    return frames


def page_owners(archive: Path) -> dict[int, str]:
    """Each page's table or index (raises sqlite3.OperationalError where SQLite has no dbstat)."""
    connection = sqlite3.connect(archive)
    try:
        return {page: name for name, page in connection.execute("SELECT name, pageno FROM dbstat")}
    finally:
        connection.close()


def night_written(engine: Engine, shape: MarketShape, nights: int, batch: int = 500) -> Written:
    """File nights 1..N-1 into the SQLite archive at `engine`, then night N keeping its log; what N wrote."""
    archive = Path(str(engine.url.database))
    *earlier, last = SyntheticMarket(shape).nights(nights)
    file_nights(engine, shape, SETUP, earlier, batch)
    # No checkpoint thread and no automatic checkpoint: the log keeps the night's every page.
    event.listen(engine, "connect", _no_autocheckpoint)
    try:
        with mock.patch.object(dnm.archive.WalCheckpointer, "for_engine", return_value=None):
            ingest(engine, shape, SETUP, last, batch)
        frames = frames_in_wal(archive.with_name(archive.name + "-wal"))
    finally:
        event.remove(engine, "connect", _no_autocheckpoint)
        engine.dispose()
    owner = page_owners(archive)
    return Written(
        Counter(owner[page] for page in set(frames) if page in owner),
        Counter(owner[page] for page in frames if page in owner),
        Counter(owner.values()),
    )


def _no_autocheckpoint(dbapi_connection: sqlite3.Connection, _: object) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wal_pages", description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=60, help="the night measured is the last (default 60)")
    market_arguments(parser, "where the archive is made (kept); default a temporary one")
    args = parser.parse_args(argv)
    if args.nights < 2:
        parser.error("--nights must be at least 2")
    shape = MarketShape(listings=args.listings, vendors=args.vendors)
    with tempfile.TemporaryDirectory(prefix="dnm-wal-pages-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        print(
            f"{args.nights - 1} nights of {shape.describe()}, then night {args.nights} ...", file=sys.stderr
        )
        try:
            with fresh_archive("sqlite", workdir, POSTGRES_ADMIN_URL) as url:
                written = night_written(open_engine(url), shape, args.nights, args.batch)
        except sqlite3.OperationalError as exc:
            print(f"this SQLite cannot say which table owns a page (dbstat): {exc}", file=sys.stderr)
            return 2
    frames = sum(written.frames.values())
    print(f"night {args.nights} wrote {written.total:,} distinct pages in {frames:,} frames")
    print(f"{'table or index':45} {'written':>9} {'of pages':>9} {'share':>6} {'frames':>9} {'of all':>6}")
    for name, count in written.written.most_common():
        size, owned = written.sizes[name], written.frames[name]
        print(f"{name:45} {count:>9,} {size:>9,} {count / size:>6.0%} {owned:>9,} {owned / frames:>6.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
