"""The digest-index benchmark on a small market: each way of writing a night's rows writes what it says.

No timing is checked (the benchmark runs on demand): only that the three row-only runs add, night after
night, the payloads, pages and sightings the archive writer added for the same pages, keyed as named.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench.digest_index import VARIANTS, RowsOnly, build, main
from bench.synthetic_market import MarketShape
from models.crawl import digest_prefix

pytestmark = pytest.mark.sqlite_only("times SQLite's own indexes on copies of a SQLite file")

SHAPE = MarketShape(listings=120, vendors=10, seed=5)


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("crawls", "pages", "payloads", "listing_sightings")
        }


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_way_adds_a_nights_rows(tmp_path: Path, variant: str) -> None:
    archive, _ = build(tmp_path, SHAPE, 2, 50)
    pages = RowsOnly.last_pages(archive)
    listings = sum(1 for _, listing, _ in pages if listing)
    before = counts(archive)
    run = RowsOnly(archive, variant, 50)
    assert len(run.nights(3, 2)) == 2
    after = counts(run.path)
    new_bodies = sum(1 for n in range(len(pages)) if n % 50 % 4)  # three in four of each batch
    assert after["crawls"] == before["crawls"] + 2
    assert after["pages"] == before["pages"] + 2 * len(pages)
    assert after["listing_sightings"] == before["listing_sightings"] + 2 * listings
    with sqlite3.connect(run.path) as connection:
        if variant == "text":
            # The archive's payloads again, then the new ones, keyed by the whole digest as 0006 kept them.
            rows = connection.execute("SELECT sha256 FROM payloads_text").fetchall()
            assert len(rows) == before["payloads"] + 2 * new_bodies
            assert after["payloads"] == before["payloads"]
        else:
            assert after["payloads"] == before["payloads"] + 2 * new_bodies
            rows = connection.execute("SELECT sha256_prefix, sha256 FROM payloads").fetchall()
            assert all(key == digest_prefix(sha) for key, sha in rows)
        # Every page written points at a payload there is.
        orphans = connection.execute(
            f"SELECT count(*) FROM pages WHERE payload_id NOT IN (SELECT id FROM {run.payloads})"
        ).fetchone()[0]
        assert orphans == 0


def test_it_prints_the_writer_and_the_three_floors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--nights", "2", "--repeat", "2", "--listings", "120", "--vendors", "10", "--batch", "50"]
    assert main([*argv, "--workdir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("nights 3-4 on a 2-night archive")
    assert lines[1].startswith("archive writer (baseline)") and lines[1].endswith("1.00")
    assert [
        line.strip()[: len(label)] for line, label in zip(lines[3:], VARIANTS.values(), strict=True)
    ] == list(VARIANTS.values())
