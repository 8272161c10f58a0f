"""The simulated world: determinism, evolution over days, shared actors and scale."""

from __future__ import annotations

import pytest

from demo import clock
from demo.skins import get_skin
from demo.skins.base import sitemap
from demo.truth import KINDS, truth
from demo.world import MARKETS, World, resolve_scale, world_for


def all_truth(world: World, market: str, day: int) -> dict:
    return {kind: truth(market, day, world.seed, world.scale, kind) for kind in KINDS}


def test_fresh_worlds_with_the_same_seed_are_identical() -> None:
    a, b = World(7), World(7)
    for market in MARKETS:
        for day in (0, 9):
            ma, mb = a.day(market, day), b.day(market, day)
            assert [lv.listing.__dict__ for lv in ma.listings] == [lv.listing.__dict__ for lv in mb.listings]
            assert [(v.id, v.sales, v.rating, v.last_seen, v.feedback) for v in ma.vendors] == [
                (v.id, v.sales, v.rating, v.last_seen, v.feedback) for v in mb.vendors
            ]


def test_truth_is_deterministic_and_seed_dependent() -> None:
    assert all_truth(world_for(1), "hollowmere", 3) == all_truth(world_for(1), "hollowmere", 3)
    one = truth("copperline", 0, seed=1)
    two = truth("copperline", 0, seed=2)
    assert {r["title"] for r in one} != {r["title"] for r in two}
    assert {v["vendor"] for v in truth("copperline", 0, 1, kind="vendors")} != {
        v["vendor"] for v in truth("copperline", 0, 2, kind="vendors")
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("market", MARKETS)
def test_the_market_moves_within_ten_days(market: str, seed: int) -> None:
    world = world_for(seed)
    d0, d10 = world.day(market, 0), world.day(market, 10)
    ids0, ids10 = {lv.id for lv in d0.listings}, {lv.id for lv in d10.listings}
    assert ids10 - ids0, "some listings appear"
    assert ids0 - ids10, "some listings vanish"
    common = ids0 & ids10
    assert any(d0.listing(i).price != d10.listing(i).price for i in common), "some prices change"
    statuses = [{v.id: v.status for v in world.day(market, d).vendors} for d in range(11)]
    assert any("vacation" in s.values() for s in statuses[1:]), "a vendor goes on vacation"
    banned0 = {v for v, s in statuses[0].items() if s == "banned"}
    banned10 = {v for v, s in statuses[10].items() if s == "banned"}
    assert banned10 - banned0, "a vendor is banned"
    assert len(statuses[10]) > len(statuses[0]), "a vendor joins"
    fb0 = sum(len(v.feedback) for v in d0.vendors)
    fb10 = sum(len(v.feedback) for v in d10.vendors)
    assert fb10 > fb0, "feedback accumulates"


def test_banned_vendor_keeps_page_but_loses_listings() -> None:
    world = world_for(1)
    for market in MARKETS:
        md = world.day(market, 10)
        banned = [v for v in md.vendors if v.status == "banned"]
        assert banned
        assert not any(lv.vendor.status == "banned" for lv in md.listings)
        before = world.day(market, banned[0].vendor.ban_day - 1)
        assert any(lv.vendor.id == banned[0].id for lv in before.listings)
        assert banned[0].last_seen <= clock.day_start(banned[0].vendor.ban_day)


def test_vacation_hides_listings_on_hollowmere_and_flags_them_on_copperline() -> None:
    world = world_for(1)
    for market, hidden in (("hollowmere", True), ("copperline", False)):
        for day in range(11):
            md = world.day(market, day)
            away = {v.id for v in md.vendors if v.status == "vacation"}
            shown = {lv.vendor.id for lv in md.listings if lv.vendor_away}
            if hidden:
                assert not shown & away and not any(lv.vendor.id in away for lv in md.listings)
            else:
                assert shown <= away


def test_history_reaches_before_day_zero() -> None:
    md = world_for(1).day("hollowmere", 0)
    assert min(v.vendor.joined_at for v in md.vendors) < clock.now(-300)
    oldest = min(f.feedback.posted_at for v in md.vendors for f in v.feedback)
    assert oldest < clock.now(-180)
    assert any(f.listing_id is None for v in md.vendors for f in v.feedback), "feedback on listings now gone"


def test_shared_actors_use_one_key_under_different_names() -> None:
    world = world_for(1)
    by_fpr: dict[str, list[tuple[str, str]]] = {}
    for market in MARKETS:
        for v in truth(market, 0, kind="vendors"):
            if v["pgp_fingerprint"]:
                by_fpr.setdefault(v["pgp_fingerprint"], []).append((market, v["vendor"]))
    shared = {f: names for f, names in by_fpr.items() if len(names) > 1}
    assert len(shared) == world.scale.shared_actors
    assert 3 <= len(shared) <= 4
    for names in shared.values():
        assert sorted(m for m, _ in names) == sorted(MARKETS)
        assert names[0][1].lower() != names[1][1].lower()
    assert all(len(names) <= 2 for names in by_fpr.values())


def test_names_are_unique_per_market() -> None:
    for market in MARKETS:
        names = [v.name.lower() for v in world_for(1).vendors[market].values()]
        assert len(names) == len(set(names))


@pytest.mark.parametrize("market", MARKETS)
def test_small_scale_page_budget(market: str) -> None:
    world = world_for(1)
    for day in (0, 5, 10, 20):
        md = world.day(market, day)
        pages = sitemap(md, get_skin(market).urls)
        assert 250 <= len(pages) <= 370, (day, len(pages))
        assert 25 <= len(md.vendors) <= 40
        assert 130 <= len(md.listings) <= 200


def test_scale_overrides_and_errors() -> None:
    tiny = World(1, {"vendors": 8, "listings": 30, "new_vendors": 1, "shared_actors": 2})
    md = tiny.day("copperline", 0)
    assert len(md.vendors) == 8
    assert 15 <= len(md.listings) <= 50
    assert resolve_scale("large").vendors == 300
    with pytest.raises(ValueError, match="unknown scale"):
        resolve_scale("huge")
    with pytest.raises(ValueError, match="unknown scale fields"):
        resolve_scale({"listingz": 3})
    with pytest.raises(ValueError, match="unknown market"):
        world_for(1).day("silkpath", 0)


def test_relative_time_rules() -> None:
    from datetime import timedelta

    from demo.skins.fmt import age_compact, age_words

    assert age_compact(timedelta(minutes=59, seconds=59)) == "59m"
    assert age_compact(timedelta(hours=5, minutes=59)) == "5h"
    assert age_compact(timedelta(days=1, hours=22, minutes=30)) == "1d 22h"
    assert age_compact(timedelta(days=3, hours=23)) == "3d"
    assert age_words(timedelta(seconds=59)) == "just now"
    assert age_words(timedelta(minutes=1)) == "1 minute ago"
    assert age_words(timedelta(hours=5, minutes=59)) == "5 hours ago"
    assert age_words(timedelta(days=1, hours=23)) == "yesterday"
    assert age_words(timedelta(days=3)) == "3 days ago"
