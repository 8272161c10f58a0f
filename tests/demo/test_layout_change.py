"""The demo market's redesign (`layout_change_day`): what a market profile still reads before and after it.

Each page is read with the market's real profile (config/markets/) and the archive's extraction and
normalization code, through the Flask test client, and compared with the same page of an app without
the option: the redesign must take exactly the listed fields away and leave everything else as it was.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from parsel import Selector

from demo.app import create_app
from demo.server import DemoServer
from demo.skins.base import DemoState, sitemap
from demo.world import MARKETS
from dnm.extraction import RawRecord, classify, extract_links, extract_records
from dnm.normalization import context_for, normalize_records
from dnm.profile import Profile, load_profile

Client = Callable[..., FlaskClient]
CHANGE = 3  # the redesign day used throughout; the small world has listings and vendors on days 2-4
SAMPLE = 25  # listings and vendors read per market-day (spread over the day's whole list)

# The profile fields each redesign takes away: listing terms (where it ships, escrow, stock) and the
# vendor's facts block. Title, id, vendor, prices, description, shipping options, the vendor's name,
# keys and feedback rows, and every link the crawl follows stay where the profiles look.
LISTING_BROKEN = {
    "hollowmere": {"ships_to", "ships_to_excluded", "ships_from", "escrow", "stock"},
    "copperline": {"ships_to", "ships_from", "escrow", "stock"},
}
VENDOR_BROKEN = {
    "hollowmere": {"level", "trust_level", "sales", "joined_on", "last_seen", "status", "feedback_count"},
    "copperline": {"level", "trust_level", "sales", "rating", "joined_on", "last_seen", "feedback_count"},
}


def state(c: FlaskClient) -> DemoState:
    return c.application.extensions["demo"]


def spread(items: list[Any], count: int = SAMPLE) -> list[Any]:
    """`count` items spread evenly over the list, first and last included."""
    if len(items) <= count:
        return items
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return {market: load_profile(market) for market in MARKETS}


def read(c: FlaskClient, profile: Profile, path: str, kind: str) -> tuple[RawRecord, list[tuple[str, str]]]:
    """The page's one record of `kind` (as the crawl's extraction reads it) and the links it yields."""
    response = c.get(path)
    assert response.status_code == 200, path
    url = "http://market.test" + path
    selector = Selector(text=response.get_data(as_text=True))
    page = classify(profile, url, selector)
    assert page is not None and page.name == kind, path
    records = [r for r in extract_records(page, selector, url) if r.kind == kind]
    assert len(records) == 1, path
    # The crawl stores a record only when normalization finds every required field.
    typed = normalize_records(page, records, context_for(profile, state(c).md.now), profile)
    assert typed[0].storable, (path, typed[0].errors)
    return records[0], extract_links(page, selector, url)


def sample_paths(c: FlaskClient) -> dict[str, list[str]]:
    md, urls = state(c).md, state(c).skin.urls
    return {
        "listing": [urls.listing(lv.id) for lv in spread(list(md.listings))],
        "vendor": [urls.vendor(vv.id) for vv in spread(list(md.vendors))],
    }


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("day", [CHANGE, CHANGE + 1])
def test_redesign_takes_the_listed_fields_away_and_nothing_else(
    market: str, day: int, client: Client, profiles: dict[str, Profile]
) -> None:
    before, after = client(market, day), client(market, day, layout_change_day=CHANGE)
    assert state(after).redesigned and not state(before).redesigned
    profile = profiles[market]
    broken = {"listing": LISTING_BROKEN[market], "vendor": VENDOR_BROKEN[market]}
    seen: dict[str, set[str]] = {"listing": set(), "vendor": set()}
    for kind, paths in sample_paths(before).items():
        assert paths, kind
        for path in paths:
            old, old_links = read(before, profile, path, kind)
            new, new_links = read(after, profile, path, kind)
            assert not old.errors and not new.errors, (path, old.errors, new.errors)
            assert not broken[kind] & new.fields.keys(), path
            assert new.fields == {k: v for k, v in old.fields.items() if k not in broken[kind]}, path
            assert new_links == old_links, path
            seen[kind] |= broken[kind] & old.fields.keys()
    # Every field the redesign should break was there to break on some sampled page.
    assert seen == broken


@pytest.mark.parametrize("market", MARKETS)
def test_listings_keep_their_title_and_id_after_the_change(
    market: str, client: Client, profiles: dict[str, Profile]
) -> None:
    c = client(market, CHANGE, layout_change_day=CHANGE)
    md, urls = state(c).md, state(c).skin.urls
    for lv in spread(list(md.listings)):
        record, _ = read(c, profiles[market], urls.listing(lv.id), "listing")
        assert record.fields["listing_id"] == lv.id
        assert record.fields["title"] == " ".join(lv.listing.title.split())
        assert "ships_to" not in record.fields and "prices" in record.fields


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("day", [0, CHANGE - 1])
def test_before_the_change_day_the_bytes_are_todays(market: str, day: int, client: Client) -> None:
    plain, later = client(market, day), client(market, day, layout_change_day=CHANGE)
    assert not state(later).redesigned
    paths = sitemap(state(plain).md, state(plain).skin.urls)
    assert len(paths) > 20
    for path in [*spread(paths, 60), "/nope"]:
        a, b = plain.get(path), later.get(path)
        assert (a.status_code, a.data) == (b.status_code, b.data), path


@pytest.mark.parametrize("market", MARKETS)
def test_after_the_change_only_listing_and_vendor_pages_differ(market: str, client: Client) -> None:
    plain, redesigned = client(market, CHANGE), client(market, CHANGE, layout_change_day=CHANGE)
    again = create_app(market, CHANGE, layout_change_day=CHANGE).test_client()
    md, urls = state(plain).md, state(plain).skin.urls
    changed = {urls.listing(lv.id) for lv in md.listings} | {urls.vendor(vv.id) for vv in md.vendors}
    differing = 0
    for path in spread(sitemap(md, urls), 80):
        a, b = plain.get(path), redesigned.get(path)
        assert b.data == again.get(path).data, path  # deterministic, like every demo page
        if path in changed:
            differing += a.data != b.data
        else:
            assert a.data == b.data, path  # home, login, categories and feedback pages: the crawl's way in
    assert differing > 0


@pytest.mark.parametrize("market", MARKETS)
def test_malformed_pages_are_cut_the_same_way(market: str) -> None:
    plain = create_app(market, CHANGE, malformed_rate=0.3).test_client()
    redesigned = create_app(market, CHANGE, malformed_rate=0.3, layout_change_day=CHANGE).test_client()
    malformed = sorted(state(plain).malformed)
    assert malformed
    for listing_id in malformed[:10]:
        path = state(plain).skin.urls.listing(listing_id)
        a, b = plain.get(path).data, redesigned.get(path).data
        assert a == b and b"</html>" not in b, path


def test_the_server_passes_the_option_to_its_apps() -> None:
    with DemoServer("copperline", CHANGE, layout_change_day=CHANGE) as server:
        c = create_app("copperline", CHANGE, layout_change_day=CHANGE).test_client()
        path = state(c).skin.urls.listing(state(c).md.listings[0].id)
        with urllib.request.urlopen(server.url + path, timeout=10) as response:
            served = response.read()
    assert state(server.app.test_client()).redesigned
    assert served == c.get(path).data and b'<dl class="row specs">' in served
