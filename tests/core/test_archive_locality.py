"""A night's rows land side by side in the archive's indexes, so what a night writes does not grow with
the archive (revision 0006; bench/README.md, "indexes that grow at the end").

Read off SQLite itself (bench.wal_pages): the pages one night's transactions wrote to the write-ahead
log, each named by the table or index that owns it, and the frames it went there in (once per transaction
that changed it). An index keyed by listing first, or by a random WARC record id, takes a night's rows to
every part of itself and the night rewrites most of its pages; keyed by crawl first, or by WARC file
alone, the rows go to its end (keyed by file and record id, to the night's part of it, which each batch
rewrites: revision 0008).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench.synthetic_market import MarketShape
from bench.wal_pages import main, night_written
from models.db import open_engine

SHAPE = MarketShape(listings=1_000, vendors=40, seed=3)
NIGHTS = 16
# The indexes a night appends to, and the share of their pages one night may write at most.
APPENDED = ("sqlite_autoindex_listing_sightings_1", "ix_payloads_warc_file")
MAX_SHARE = 0.25


@pytest.mark.sqlite_only("reads SQLite's write-ahead log and its dbstat table")
def test_a_night_writes_the_end_of_its_indexes_not_all_of_them(tmp_path: Path) -> None:
    archive = tmp_path / "archive.sqlite"
    try:
        written = night_written(open_engine(f"sqlite:///{archive}"), SHAPE, NIGHTS, batch=250)
    except sqlite3.OperationalError as exc:
        pytest.skip(f"this SQLite has no dbstat table: {exc}")
    for name in APPENDED:
        assert written.sizes[name] >= 20, f"{name} has {written.sizes[name]} pages: too few to tell"
        assert written.written[name] <= MAX_SHARE * written.sizes[name], (
            f"one night wrote {written.written[name]} of the {written.sizes[name]} pages of {name}"
        )
    # Each batch of the night appends to the payloads' WARC index as to the payload table itself: about
    # as many log frames. Keyed by file and (random) record id, every batch came back to most of the
    # night's pages of it: about twice the table's frames (revision 0008).
    assert written.frames["ix_payloads_warc_file"] <= 1.5 * written.frames["payloads"], written.frames
    # The one a night still scatters into (deduplication looks bodies up by digest): the method sees it.
    # Keyed by the digest's first 64 bits (revision 0007), it is a fifth of the size the 64 hex
    # characters made it (about half the payload table's), so a night dirties that many fewer pages.
    digests = "ix_payloads_sha256_prefix"
    assert written.written[digests] > 0.5 * written.sizes[digests]
    assert written.sizes[digests] < 0.2 * written.sizes["payloads"]


@pytest.mark.sqlite_only("reads SQLite's write-ahead log and its dbstat table")
def test_the_command_prints_pages_by_owner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nights", "3", "--listings", "200", "--vendors", "10", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("night 3 wrote ")
    assert "sqlite_autoindex_listing_sightings_1" in out and "ix_payloads_warc_file" in out
