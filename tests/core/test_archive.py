"""The archive writer: snapshots only added, feedback stored once and its posting window narrowed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dnm.archive import ArchiveWriter, CapturedPage, CrawlSetup, content_hash
from dnm.normalize.dates import TimeSpan
from dnm.normalize.prices import Price
from dnm.profile import load_profile
from dnm.records import Record
from models import Feedback, ListingSnapshot, Vendor
from models.db import open_engine

NOW = datetime(2026, 1, 2, 12, tzinfo=UTC)
SETUP = CrawlSetup(tool_version="test", settings_sha256="0" * 64, transport="direct")


@pytest.fixture
def engine(database_url):
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


def page(url: str, at: datetime = NOW) -> CapturedPage:
    return CapturedPage(url, "vendor", 200, "f" * 64, 100, at, at, 0)


def feedback(text: str, earliest: datetime, latest: datetime, listing: str | None = "7") -> Record:
    values = {"vendor_id": "v1", "text": text, "buyer": "a...1", "rating": 5, "listing_id": listing,
              "posted": TimeSpan(earliest, latest)}  # fmt: skip
    return Record(kind="feedback", values={k: v for k, v in values.items() if v is not None})


def crawl(engine, records: list[Record], at: datetime = NOW) -> int:
    writer = ArchiveWriter(engine, load_profile("hollowmere"), SETUP)
    crawl_id = writer.begin()
    writer.write_page(page("http://m/vendor/v1", at), records)
    writer.finish("complete", None, {})
    return crawl_id


def test_feedback_seen_again_is_narrowed_not_duplicated(engine) -> None:
    # Day 1 shows "5h" (a one-hour window); day 2 shows "1d 5h" (another one-hour window, overlapping).
    first = crawl(engine, [feedback("great", NOW - timedelta(hours=6), NOW - timedelta(hours=5))])
    second = crawl(
        engine,
        [feedback("great", NOW - timedelta(hours=5, minutes=30), NOW - timedelta(hours=4, minutes=30), None)],
        NOW + timedelta(days=1),
    )
    with Session(engine) as session:
        rows = session.scalars(select(Feedback)).all()
    assert len(rows) == 1
    (row,) = rows
    assert (row.first_crawl_id, row.last_crawl_id, row.sightings) == (first, second, 2)
    assert row.posted_earliest == NOW - timedelta(hours=5, minutes=30)
    assert row.posted_latest == NOW - timedelta(hours=5)
    assert row.listing_id is not None  # the link seen on day 1 is kept when day 2 no longer shows it


def test_same_words_twice_in_one_crawl_are_two_feedbacks(engine) -> None:
    window = (NOW - timedelta(days=4), NOW - timedelta(days=3))
    crawl(engine, [feedback("All good.", *window), feedback("All good.", *window)])
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Feedback)) == 2


def test_disjoint_windows_are_different_feedback(engine) -> None:
    crawl(engine, [feedback("ok", NOW - timedelta(days=9), NOW - timedelta(days=8))])
    crawl(engine, [feedback("ok", NOW - timedelta(days=3), NOW - timedelta(days=2))], NOW + timedelta(days=1))
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Feedback)) == 2


def test_a_listing_seen_twice_in_a_crawl_is_one_snapshot(engine) -> None:
    listing = Record(
        kind="listing",
        values={"listing_id": "7", "title": "x", "vendor": "V", "vendor_id": "v1",
                "price": Price(Decimal("1.50"), "USD", None, "$1.50")},
    )  # fmt: skip
    writer = ArchiveWriter(engine, load_profile("hollowmere"), SETUP)
    writer.begin()
    writer.write_page(page("http://m/listing/7"), [listing])
    writer.write_page(page("http://m/listing/7?ref=2"), [listing])
    assert writer.duplicates == 1
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ListingSnapshot)) == 1
        assert session.scalar(select(Vendor.name)) == "V"


def test_content_hash_ignores_what_moves_daily() -> None:
    base = {"name": "V", "sales": 3, "last_seen": TimeSpan(NOW, NOW)}
    later = {**base, "last_seen": TimeSpan(NOW + timedelta(days=1), NOW + timedelta(days=1))}
    assert content_hash("vendor", base) == content_hash("vendor", later)
    assert content_hash("vendor", base) != content_hash("vendor", {**base, "sales": 4})


def test_a_crawl_reads_only_the_archived_feedback_with_the_words_it_shows(engine) -> None:
    # A year of a vendor's feedback is ten times what a night's pages show: only the feedback with the
    # vendor and words of one shown can be seen again, and only it is read, batch by batch.
    window = (NOW - timedelta(days=3), NOW - timedelta(days=2))
    crawl(engine, [feedback(words, *window) for words in ("fast", "stealthy", "as described")])
    writer = ArchiveWriter(engine, load_profile("hollowmere"), SETUP)
    writer.begin()
    later = NOW + timedelta(days=1)
    writer.write_page(page("http://m/vendor/v1", later), [feedback("stealthy", *window)])
    (vendor_id,) = writer._feedback
    assert list(writer._feedback[vendor_id]) == [hashlib.sha256(b"stealthy").hexdigest()]
    # A later batch of the same crawl showing other words of the same vendor reads those then.
    writer.write_page(page("http://m/vendor/v1?page=2", later), [feedback("fast", *window)])
    writer.finish("complete", None, {})
    with Session(engine) as session:
        sightings = sorted(tuple(row) for row in session.execute(select(Feedback.text, Feedback.sightings)))
    assert sightings == [("as described", 1), ("fast", 2), ("stealthy", 2)]


def test_a_crawl_reads_back_only_feedback_whose_window_reaches_what_it_shows(engine) -> None:
    # "A+++" every week for a year: a vendor page showing this week's reads this week's, not the year's;
    # a later page of the same crawl showing an older one reads back that far, keeping what it narrowed.
    weeks = [(NOW - timedelta(weeks=w, days=1), NOW - timedelta(weeks=w)) for w in range(52)]
    crawl(engine, [feedback("A+++", *window) for window in weeks])
    writer = ArchiveWriter(engine, load_profile("hollowmere"), SETUP)
    writer.begin()
    later = NOW + timedelta(days=1)
    this_week = (weeks[0][0] + timedelta(hours=6), weeks[0][1])  # shown again, its window narrower
    writer.write_page(page("http://m/vendor/v1", later), [feedback("A+++", *this_week)])
    (loaded,) = writer._feedback.values()
    assert [(k.earliest, k.latest) for k in loaded[hashlib.sha256(b"A+++").hexdigest()]] == [this_week]
    writer.write_page(page("http://m/vendor/v1?page=9", later), [feedback("A+++", *weeks[10])])
    (known,) = loaded.values()
    assert [(k.earliest, k.latest) for k in known] == [this_week, *weeks[1:11]]  # in archive order
    # Open windows ("a while ago") may be any feedback: the pair is then read whole.
    writer.write_page(page("http://m/vendor/v1?page=99", later), [
        Record(kind="feedback", values={"vendor_id": "v1", "text": "A+++", "buyer": "a...1", "rating": 5})
    ])  # fmt: skip
    assert len(known) == 52
    writer.finish("complete", None, {})
    with Session(engine) as session:
        rows = session.execute(
            select(Feedback.posted_earliest, Feedback.sightings).order_by(Feedback.id)
        ).all()
    # Each shown one was taken for the archived one with its window (none stored twice), the open one
    # for the first not yet sighted by this crawl, in archive order.
    assert len(rows) == 52
    assert [n for n, (_, sightings) in enumerate(rows) if sightings == 2] == [0, 1, 10]
    assert rows[0].posted_earliest == this_week[0]
