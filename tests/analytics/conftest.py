"""Analytics test fixtures: the demo markets crawled on days 1 to 3, and a hand-built hostile archive."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from demo.server import DemoServer
from demo.truth import MARKETS
from models import (
    Category,
    Crawl,
    Feedback,
    Listing,
    ListingSighting,
    ListingState,
    Market,
    Page,
    Payload,
    PgpKey,
    ShippingRegion,
    Url,
    Vendor,
    VendorKey,
    VendorSighting,
    VendorState,
)
from models.db import open_engine
from tests.conftest import POSTGRES, archive_url, crawl_demo, latest_crawl

DAYS = (1, 2, 3)


@dataclass
class Archive:
    """An archive under test and the crawl id of each (market, day)."""

    url: str
    engine: Engine
    crawls: dict[tuple[str, int], int]


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """Both demo markets crawled on days 1, 2 and 3 (day-major order, as nightly crawls run)."""
    url = archive_url(tmp_path_factory.mktemp("analytics"))
    engine = open_engine(url)
    archive = Archive(url, engine, {})
    for day in DAYS:
        for market in MARKETS:
            with DemoServer(market, day) as server:
                result = crawl_demo(url, market, server.url)
            assert result.returncode == 0, result.stderr[-3000:]
            archive.crawls[market, day] = latest_crawl(engine, market).id
    yield archive
    engine.dispose()
    POSTGRES.drop(url)


# Market text is hostile: each of these would run script if a page put it in as markup.
HOSTILE_VENDOR = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">Dr. "Evil" & Co'
HOSTILE_CATEGORY = "<script>window.pwned = 3</script>Cannabis"
HOSTILE_ALIAS = '</td></tr></table><svg onload="window.pwned = 4"></svg>alias'
HOSTILE_ORIGIN = "<b>X</b>"
T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


@pytest.fixture
def hostile_archive(tmp_path: Path) -> Iterator[Archive]:
    """Two crawls of "evilmarket" whose vendor name, category and origin are markup, one key shared with
    an account on "othermarket", and one feedback new in the second crawl."""
    url = archive_url(tmp_path)
    engine = open_engine(url)
    crawls: dict[tuple[str, int], int] = {}
    with Session(engine) as session:
        key = PgpKey(fingerprint="AB" * 20, armored="-----BEGIN PGP PUBLIC KEY BLOCK-----", first_seen_at=T0)
        session.add(key)
        for slug, name in (("evilmarket", HOSTILE_VENDOR), ("othermarket", HOSTILE_ALIAS)):
            market = Market(slug=slug, name=slug, created_at=T0)
            session.add(market)
            session.flush()
            category = Category(
                market_id=market.id, path_key=f"Drugs > {HOSTILE_CATEGORY}", path=["Drugs", HOSTILE_CATEGORY]
            )
            vendor = Vendor(market_id=market.id, vendor_key="v<1>", name=name, first_seen_at=T0)
            listing = Listing(market_id=market.id, listing_key="l<1>", first_seen_at=T0)
            session.add_all([category, vendor, listing])
            session.flush()
            for day in (1, 2):
                at = T0 + timedelta(days=day - 1)
                crawl = Crawl(
                    market_id=market.id,
                    started_at=at,
                    finished_at=at + timedelta(minutes=5),
                    status="complete",
                    tool_version="test",
                    profile_version="test@1",
                    profile_sha256="0" * 64,
                    settings_sha256="0" * 64,
                    transport="direct",
                )
                session.add(crawl)
                session.flush()
                crawls[slug, day] = crawl.id
                payload = session.scalar(select(Payload).where(Payload.sha256 == "1" * 64))
                if payload is None:
                    payload = Payload(sha256="1" * 64, size=1)
                    session.add(payload)
                    session.flush()
                page_url = session.scalar(select(Url).where(Url.url == "http://evil.test/"))
                if page_url is None:
                    page_url = Url(url="http://evil.test/")
                    session.add(page_url)
                    session.flush()
                page = Page(
                    crawl_id=crawl.id,
                    url_id=page_url.id,
                    page_type="listing",
                    status=200,
                    fetched_at=at,
                    payload_id=payload.id,
                )
                session.add(page)
                session.flush()
                state = {"content_sha256": "2" * 64, "profile_version": "test@1"}
                seen = {"crawl_id": crawl.id, "page_id": page.id}
                vendor_state = VendorState(vendor_id=vendor.id, name=name, name_shown=name, **state)
                listing_state = ListingState(
                    listing_id=listing.id,
                    vendor_id=vendor.id,
                    vendor_name=name,
                    category_id=category.id,
                    title=HOSTILE_VENDOR,
                    price_amount=Decimal("10.50") * day,
                    price_currency="EUR",
                    **state,
                )
                listing_state.regions = [ShippingRegion(role="from", position=0, code=HOSTILE_ORIGIN)]
                session.add_all([vendor_state, listing_state])
                session.flush()
                session.add_all(
                    [
                        VendorSighting(vendor_id=vendor.id, state_id=vendor_state.id, **seen),
                        ListingSighting(listing_id=listing.id, state_id=listing_state.id, **seen),
                    ]
                )
            session.add(
                VendorKey(
                    vendor_id=vendor.id,
                    pgp_key_id=key.id,
                    first_crawl_id=crawls[slug, 1],
                    last_crawl_id=crawls[slug, 2],
                )
            )
            text = f"{HOSTILE_VENDOR} thanks"
            session.add(
                Feedback(
                    vendor_id=vendor.id,
                    listing_id=listing.id,
                    rating=5,
                    text=text,
                    text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                    buyer="<b>b</b>",
                    first_crawl_id=crawls[slug, 2],
                    first_seen_at=T0 + timedelta(days=1),
                    first_page_sha256="1" * 64,
                    last_crawl_id=crawls[slug, 2],
                    last_seen_at=T0 + timedelta(days=1),
                    sightings=1,
                )
            )
        session.commit()
    archive = Archive(url, engine, crawls)
    yield archive
    engine.dispose()
    POSTGRES.drop(url)
