"""The archive benchmark on a small market: its nights are what a crawl files, and its figures add up.

No timing is checked (the benchmark itself runs on demand, never here): only that the synthetic market
is deterministic and shaped like the pipeline's records, and that what the benchmark counts, stores,
measures and checks agrees with the archive, on the backend of the test pass.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from bench.archive_year import EXIT_MISSED, EXIT_PASS, check, history_of_crawl, main, run_backend
from bench.synthetic_market import MARKET, MarketShape, Night, SyntheticMarket
from dnm.archive import content_hash
from dnm.extraction import RawRecord
from dnm.normalization import context_for, normalize_records
from dnm.profile import load_profile
from models.db import open_engine
from tests.conftest import POSTGRES_ADMIN_URL, TEST_DATABASE, require_postgresql

SHAPE = MarketShape(listings=200, vendors=20, seed=7)
NIGHTS = 5


def shas(night: Night) -> dict[str, str]:
    return {page.url: page.sha256 for page, _ in night.pages}


def listing_hashes(night: Night) -> dict[str, str]:
    return {
        record.values["listing_id"]: content_hash("listing", record.values)
        for _, records in night.pages
        for record in records
        if record.kind == "listing"
    }


def test_the_same_seed_gives_the_same_nights() -> None:
    def run(seed: int) -> list[list[tuple[str, str, int]]]:
        market = SyntheticMarket(replace(SHAPE, seed=seed))
        return [[(p.url, p.sha256, p.size) for p, _ in night.pages] for night in market.nights(4)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_an_unchanged_night_repeats_every_page_and_other_nights_move() -> None:
    first, unchanged, *moved = SyntheticMarket(SHAPE).nights(6)
    assert unchanged.unchanged and not any(night.unchanged for night in moved)
    assert shas(unchanged) == shas(first)
    assert [[r.values for r in records] for _, records in unchanged.pages] == [
        [r.values for r in records] for _, records in first.pages
    ]
    assert unchanged.started_at > first.started_at
    previous = unchanged
    for night in moved:
        # The BTC rate moves every listing page (a volatile value); a few listings change for real.
        before, after = shas(previous), shas(night)
        assert sum(before.get(url) != sha for url, sha in after.items()) > len(after) / 2
        old, new = listing_hashes(previous), listing_hashes(night)
        changed = sum(old.get(listing) != digest for listing, digest in new.items())
        assert 0 < changed < 0.2 * len(new)
        previous = night


def test_records_are_what_the_hollowmere_profile_makes_of_their_shown_strings() -> None:
    # The pipeline's own normalization, run on what our pages "show", must give our values exactly.
    profile = load_profile("hollowmere")
    kinds: Counter[str] = Counter()
    for night in SyntheticMarket(SHAPE).nights(3):
        for page, records in night.pages:
            raw = [RawRecord(record.kind, dict(record.shown)) for record in records]
            context = context_for(profile, page.server_time or page.fetched_at)
            normalized = normalize_records(profile.page(page.page_type), raw, context, profile)
            for ours, pipeline in zip(records, normalized, strict=True):
                assert pipeline.errors == [], page.url
                assert pipeline.values == ours.values, page.url
                kinds[ours.kind] += 1
    assert set(kinds) == {"category", "listing", "vendor", "feedback"}


def test_a_small_run_adds_up(database_url: str) -> None:
    result = run_backend(database_url, SHAPE, NIGHTS, batch=64, queries=30)
    assert result.problems == []
    market = SyntheticMarket(SHAPE)
    nights = list(market.nights(NIGHTS))
    assert [(n.pages, n.listings, n.vendors, n.feedback) for n in result.nights] == [
        (len(n.pages), n.count("listing"), n.count("vendor"), n.count("feedback")) for n in nights
    ]
    seen = Counter(listing for night in nights for listing in listing_hashes(night))
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            per_listing = (
                "SELECT listing_id, COUNT(*) FROM listing_history WHERE market = :m GROUP BY listing_id"
            )
            stored = dict(connection.execute(text(per_listing), {"m": MARKET}).all())
        assert stored == seen  # one listing_history row per listing per night it was on the market
        first, unchanged, last = result.nights[0], result.nights[1], result.nights[-1]
        assert unchanged.unchanged
        history = history_of_crawl(engine, unchanged.crawl_id)
        assert len(history) == first.listings
        assert history == history_of_crawl(engine, first.crawl_id)
        assert history_of_crawl(engine, last.crawl_id) != history

        # The checks the benchmark relies on can fail: a miscount, a night that moved though it should not.
        miscounted = replace(result, nights=[replace(first, listings=first.listings + 1), *result.nights[1:]])
        assert any("listing_history holds" in problem for problem in check(engine, miscounted, market))
        third = replace(result.nights[2], unchanged=True)
        moved = replace(result, nights=[*result.nights[:2], third, *result.nights[3:]])
        assert any("night 3 changed nothing" in problem for problem in check(engine, moved, market))
    finally:
        engine.dispose()

    assert result.empty_bytes > 0 and first.bytes_added > 0
    assert [n.bytes_total for n in result.nights] == sorted(n.bytes_total for n in result.nights)
    assert last.bytes_total == result.empty_bytes + sum(n.bytes_added for n in result.nights)
    assert len(result.history_ms) == 30 and all(rows >= 1 for rows in result.history_rows)
    assert len(result.summary_ms) == len(market.vendors) and len(market.vendors) < 30


def test_the_command_prints_every_target_and_writes_its_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if TEST_DATABASE == "postgresql":
        require_postgresql()
    figures_file = tmp_path / "figures.json"
    code = main(
        ["--nights", "3", "--listings", "60", "--vendors", "8", "--queries", "5", "--backend", TEST_DATABASE,
         "--postgres-url", POSTGRES_ADMIN_URL, "--workdir", str(tmp_path), "--json", str(figures_file)]
    )  # fmt: skip
    assert code in (EXIT_PASS, EXIT_MISSED)
    table = capsys.readouterr().out
    for target in (">= 20,000/s", "p50 <= 10 ms", "p50 <= 50 ms"):
        line = next(line for line in table.splitlines() if target in line)
        assert line.endswith(("PASS", "MISS")), line
    # The bytes of an unchanged night are shown for the database alone, and judged by bench.growth.
    line = next(line for line in table.splitlines() if "with raw store: bench.growth" in line)
    assert "(database only)" in line and line.endswith("n/a"), line
    (backend,) = json.loads(figures_file.read_text())["backends"]
    expected = sum(night.count("listing") for night in SyntheticMarket(MarketShape(60, 8)).nights(3))
    assert backend["listing_snapshots"] == expected
    assert backend["problems"] == []
    targets = {"ingest", "unchanged_night_bytes", "price_history_p50", "vendor_summary_p50"}
    assert set(backend["targets"]) == targets
