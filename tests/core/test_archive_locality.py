"""A night's rows land side by side in the archive's indexes, so what a night writes does not grow with
the archive (revision 0006; bench/README.md, "indexes that grow at the end").

Read off SQLite itself: the pages one night's transactions wrote to the write-ahead log, each named by
the table or index that owns it (the `dbstat` table). An index keyed by listing first, or by a random
WARC record id, takes a night's rows to every part of itself and the night rewrites most of its pages;
keyed by crawl first, or by WARC file first, the rows go to its end.
"""

from __future__ import annotations

import sqlite3
import struct
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import event

import dnm.archive
from bench.archive_year import ingest
from bench.synthetic_market import MarketShape, SyntheticMarket
from dnm.archive import CrawlSetup
from models.db import open_engine

SHAPE = MarketShape(listings=1_000, vendors=40, seed=3)
NIGHTS = 16
SETUP = CrawlSetup(tool_version="test", settings_sha256="0" * 64, transport="synthetic")
# The indexes a night appends to, and the share of their pages one night may write at most.
APPENDED = ("sqlite_autoindex_listing_sightings_1", "ix_payloads_warc_file")
MAX_SHARE = 0.25


def pages_in_wal(wal: Path) -> set[int]:
    """The page numbers of the frames in a write-ahead log (sqlite.org/fileformat.html#walformat)."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    pages, offset = set(), 32
    while offset + 24 + page_size <= len(data):
        pages.add(struct.unpack(">I", data[offset : offset + 4])[0])
        offset += 24 + page_size
    return pages


def owners(archive: Path) -> tuple[dict[int, str], Counter[str]]:
    """Each page's table or index, and the pages each one has."""
    connection = sqlite3.connect(archive)
    try:
        rows = connection.execute("SELECT name, pageno FROM dbstat").fetchall()
    except sqlite3.OperationalError as exc:
        pytest.skip(f"this SQLite has no dbstat table: {exc}")
    finally:
        connection.close()
    return {page: name for name, page in rows}, Counter(name for name, _ in rows)


@pytest.mark.sqlite_only("reads SQLite's write-ahead log and its dbstat table")
def test_a_night_writes_the_end_of_its_indexes_not_all_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "archive.sqlite"
    engine = open_engine(f"sqlite:///{archive}")
    *earlier, last = SyntheticMarket(SHAPE).nights(NIGHTS)
    for night in earlier:
        ingest(engine, SHAPE, SETUP, night, 250)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()

    # The last night's pages stay in the log: no checkpoint thread, no automatic checkpoint.
    monkeypatch.setattr(dnm.archive.WalCheckpointer, "for_engine", classmethod(lambda cls, engine: None))
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA wal_autocheckpoint=0"))
    ingest(engine, SHAPE, SETUP, last, 250)
    written = pages_in_wal(archive.with_name(archive.name + "-wal"))
    engine.dispose()

    owner, sizes = owners(archive)
    by_index = Counter(owner[page] for page in written if page in owner)
    for name in APPENDED:
        assert sizes[name] >= 20, f"{name} has {sizes[name]} pages: too few to tell"
        assert by_index[name] <= MAX_SHARE * sizes[name], (
            f"one night wrote {by_index[name]} of the {sizes[name]} pages of {name}"
        )
