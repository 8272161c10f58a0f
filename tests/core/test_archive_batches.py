"""The archive writer's batches: hashes as before, the same rows however pages are batched, and a failed
batch that leaves nothing behind, in the archive or in the writer."""

from __future__ import annotations

import enum
import gc
import hashlib
import json
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, func, select
from sqlalchemy.orm import Session

from bench.synthetic_market import MarketShape, SyntheticMarket, synthetic_profile
from dnm.archive import VOLATILE_FIELDS, ArchiveWriter, CapturedPage, CrawlSetup, content_hash
from dnm.normalize.dates import TimeSpan
from dnm.normalize.prices import Price
from dnm.normalize.regions import Regions
from dnm.profile import load_profile
from dnm.records import Record
from models import Listing, ListingSighting, ListingState, Page, Vendor, VendorSighting
from models.db import open_engine
from tests.conftest import POSTGRES, archive_url

SETUP = CrawlSetup(tool_version="test", settings_sha256="0" * 64, transport="direct")
NOW = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC)


def reference_hash(kind: str, values: dict[str, Any]) -> str:
    """content_hash as archives were first written with it (json.dumps with a `default`): their hashes."""

    def canonical(value: Any) -> Any:
        if isinstance(value, Decimal):
            return format(value, "f")
        if isinstance(value, datetime | date):
            return value.isoformat()
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: getattr(value, f.name) for f in fields(value)}
        if isinstance(value, tuple | set):
            return list(value)
        return str(value)

    volatile = VOLATILE_FIELDS.get(kind, frozenset())
    stable = {name: value for name, value in values.items() if name not in volatile}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=canonical).encode()).hexdigest()


class _Money(Decimal):
    pass


@dataclass(frozen=True)
class _TaggedPrice(Price):
    tag: str = "x"


class _Colour(enum.Enum):
    RED = "red"


def odd_values() -> list[tuple[str, dict[str, Any]]]:
    """Values of every type the canonical JSON meets, and some it should never meet."""
    price = Price(Decimal("1E+3"), "USD", "g", "$1,000/g")
    return [
        ("listing", {"listing_id": "1", "title": "Žluťoučký kůň 🐎", "price": price, "prices": [price]}),
        ("listing", {"price": Price(Decimal("-0.00"), "EUR", None, "€-0"), "stock": None, "escrow": True}),
        ("listing", {"price": Price(Decimal("0.1000"), "BTC", None, "0.1000 BTC"), "rating": 4.5}),
        ("listing", {"price": Price(Decimal("NaN"), "XMR", None, "?"), "n": 10**30, "f": float("inf")}),
        ("listing", {"ships_to": Regions(("EU", "US"), ("AU",), "EU, US (not AU)"), "tags": {"a"}}),
        ("listing", {"options": [{"shown": {"b": 1, "a": 2},
                                  "price": _TaggedPrice(_Money("2.50"), "USD", None, "$2.5")}]}),
        ("vendor", {"joined_on": date(2024, 2, 29), "last_seen": TimeSpan(NOW, NOW), "seen": NOW}),
        ("vendor", {"at": datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30)))}),
        ("vendor", {"naive": datetime(2026, 1, 1, 12), "colour": _Colour.RED, "nested": ((1, 2), [3, (4,)])}),
        ("feedback", {"posted": TimeSpan(NOW - timedelta(days=1), NOW), "text": 'quote " and \\ and \n'}),
        ("category", {"path": ["A", "B"], "listing_count": 0}),
        ("other", {}),
    ]  # fmt: skip


def test_content_hash_is_the_hash_archives_hold() -> None:
    market = SyntheticMarket(MarketShape(listings=60, vendors=8, seed=3))
    records = [
        (record.kind, record.values) for night in market.nights(3) for _, rs in night.pages for record in rs
    ]
    assert {kind for kind, _ in records} == {"category", "listing", "vendor", "feedback"}
    for kind, values in [*records, *odd_values()]:
        assert content_hash(kind, values) == reference_hash(kind, values), (kind, values)


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table by id, without the columns that say when the writer ran."""
    written_now = {("crawls", "started_at"), ("crawls", "finished_at"), ("markets", "created_at")}
    metadata = MetaData()
    with engine.connect() as connection:
        metadata.reflect(connection)
        tables = {}
        for name, table in sorted(metadata.tables.items()):
            if name == "alembic_version":
                continue
            columns = [column for column in table.c if (name, column.name) not in written_now]
            tables[name] = [tuple(row) for row in connection.execute(select(*columns).order_by(table.c.id))]
    return tables


def crawl_nights(engine: Engine, batch: int) -> None:
    """Three nights of a small market, with a page repeated, a reparse of the second, written `batch`
    pages per write_pages call."""
    shape = MarketShape(listings=40, vendors=6, seed=11)
    crawl_ids = []
    for night in SyntheticMarket(shape).nights(3):
        pages = list(night.pages)
        page, records = pages[40]
        pages.insert(45, (replace(page, url=page.url + "?again"), records))
        writer = ArchiveWriter(engine, synthetic_profile(shape), SETUP)
        crawl_ids.append(writer.begin())
        for start in range(0, len(pages), batch):
            writer.write_pages(pages[start : start + batch])
        writer.finish("complete", None, {})
        assert writer.duplicates == 1
    reparse = ArchiveWriter(engine, synthetic_profile(shape), replace(SETUP, reparse_of=crawl_ids[1]))
    reparse.begin()
    reparse.write_pages(pages)
    reparse.finish("complete", None, {})


@pytest.mark.parametrize("batch", [1, 7])
def test_batches_write_the_rows_one_page_at_a_time_would(tmp_path: Path, batch: int) -> None:
    urls = [archive_url(tmp_path, "pages"), archive_url(tmp_path, f"batches-{batch}")]
    engines = [open_engine(url) for url in urls]
    try:
        crawl_nights(engines[0], batch=1)
        crawl_nights(engines[1], batch=batch if batch > 1 else 1000)
        one_by_one, batched = dump(engines[0]), dump(engines[1])
        assert one_by_one.keys() == batched.keys()
        for table in one_by_one:
            assert one_by_one[table] == batched[table], table
        assert len(one_by_one["listing_sightings"]) > 100 and one_by_one["feedback"]
    finally:
        for engine, url in zip(engines, urls, strict=True):
            engine.dispose()
            POSTGRES.drop(url)


def listing_page(key: str, vendor: str, title: str | None = "A title") -> tuple[CapturedPage, list[Record]]:
    values: dict[str, Any] = {"listing_id": key, "vendor": vendor, "vendor_id": vendor,
                              "price": Price(Decimal("9.50"), "USD", None, "$9.50")}  # fmt: skip
    if title is not None:
        values["title"] = title
    page = CapturedPage(f"http://m/listing/{key}", "listing", 200, key.rjust(64, "0"), 100, NOW, NOW, 0)
    return page, [Record(kind="listing", values=values)]


def vendor_page(key: str, feedback: str) -> tuple[CapturedPage, list[Record]]:
    vendor = Record(kind="vendor", values={"vendor_id": key, "name": key.upper(), "sales": 3})
    posted = TimeSpan(NOW - timedelta(days=2), NOW - timedelta(days=1))
    left = Record(kind="feedback", values={"vendor_id": key, "text": feedback, "rating": 5, "posted": posted})
    page = CapturedPage(f"http://m/vendor/{key}", "vendor", 200, key.rjust(64, "f"), 100, NOW, NOW, 0)
    return page, [left, vendor]


def test_a_failed_batch_leaves_nothing_behind(database_url: str) -> None:
    engine = open_engine(database_url)
    try:
        writer = ArchiveWriter(engine, load_profile("hollowmere"), SETUP)
        crawl_id = writer.begin()
        writer.write_pages([listing_page("1", "v1"), vendor_page("v1", "fine")])
        # A new vendor, a new listing of it, its feedback, then a listing without its required title.
        failing = [vendor_page("v2", "good"), listing_page("2", "v2"), listing_page("1", "v1"),
                   listing_page("3", "v2", title=None)]  # fmt: skip
        with pytest.raises(KeyError, match="title"):
            writer.write_pages(failing)
        # The same pages again, the broken one fixed: stored as if the failure had never been.
        writer.write_pages([*failing[:3], listing_page("3", "v2")])
        writer.finish("complete", None, {})
        assert writer.duplicates == 1  # listing 1, seen in the first batch; the failed one counts nothing
        with Session(engine) as session:
            sightings = session.execute(
                select(Listing.listing_key, Page.url)
                .join(ListingSighting, ListingSighting.listing_id == Listing.id)
                .join(Page, Page.id == ListingSighting.page_id)
                .where(ListingSighting.crawl_id == crawl_id)
                .order_by(Listing.listing_key)
            ).all()
            assert [tuple(row) for row in sightings] == [
                ("1", "http://m/listing/1"), ("2", "http://m/listing/2"), ("3", "http://m/listing/3"),
            ]  # fmt: skip
            assert session.scalars(select(Vendor.vendor_key).order_by(Vendor.id)).all() == ["v1", "v2"]
            assert session.scalar(select(func.count()).select_from(VendorSighting)) == 2
            assert session.scalar(select(func.count()).select_from(ListingState)) == 3
            assert session.scalar(select(func.count()).select_from(Page)) == 6
    finally:
        engine.dispose()


def test_crawls_written_in_turn_keep_their_rows_apart(database_url: str) -> None:
    # Two markets' crawls alternate their batches on one archive: every id a batch takes is its own.
    engine = open_engine(database_url)
    try:
        writers = []
        for market, seed in (("first", 1), ("second", 2)):
            shape = MarketShape(listings=30, vendors=5, seed=seed)
            writer = ArchiveWriter(engine, replace(synthetic_profile(shape), market=market), SETUP)
            writer.begin()
            writers.append((writer, next(SyntheticMarket(shape).nights(1)).pages))
        for start in range(0, 60, 9):
            for writer, pages in writers:
                writer.write_pages(pages[start : start + 9])
        with Session(engine) as session:
            crossed = session.scalar(
                select(func.count())
                .select_from(ListingSighting)
                .join(Page, Page.id == ListingSighting.page_id)
                .join(ListingState, ListingState.id == ListingSighting.state_id)
                .join(Listing, Listing.id == ListingSighting.listing_id)
                .where(
                    (Page.crawl_id != ListingSighting.crawl_id)
                    | (ListingState.listing_id != Listing.id)
                    | (Page.url.not_like("%/listing/" + Listing.listing_key))
                )
            )
            assert crossed == 0
            assert session.scalar(select(func.count()).select_from(ListingSighting)) == sum(
                1 for _, pages in writers for _, records in pages[:60] for r in records if r.kind == "listing"
            )
    finally:
        engine.dispose()


def test_the_collector_rests_while_the_writer_loads_its_caches_and_writes(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both allocate an object per row they read or write, all kept until they end: a collector pass
    # meanwhile frees nothing and walks the whole process (~0.8 s of a `begin` at night 162 in a process
    # holding the synthetic market and six of its nights).
    enabled: dict[str, list[bool]] = {}

    def spy(name: str) -> Any:
        original = getattr(ArchiveWriter, name)

        def spied(self: ArchiveWriter, *args: Any) -> Any:
            enabled.setdefault(name, []).append(gc.isenabled())
            return original(self, *args)

        return spied

    for name in ("_load_entities", "_insert_rows"):
        monkeypatch.setattr(ArchiveWriter, name, spy(name))
    shape = MarketShape(listings=40, vendors=6, seed=11)
    engine = open_engine(database_url)
    try:
        for night in SyntheticMarket(shape).nights(2):
            writer = ArchiveWriter(engine, synthetic_profile(shape), SETUP)
            writer.begin()
            writer.write_pages(night.pages[:30])
            writer.write_pages(night.pages[30:])
            writer.finish("complete", None, {})
    finally:
        engine.dispose()
    assert enabled == {"_load_entities": [False] * 2, "_insert_rows": [False] * 4}
    assert gc.isenabled()
