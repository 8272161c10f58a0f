"""Profiles: the demo profiles load, and every kind of mistake is reported with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnm.profile import ProfileError, available_markets, load_profile

MINIMAL = """
market: tiny
version: "1"
mirrors: ["http://tiny.example"]
pages:
  - type: home
    match: {url: '^/$'}
    links:
      - {css: 'a.item::attr(href)', to: item}
  - type: item
    match: {url: '^/item/'}
    records:
      listing:
        fields:
          listing_id: {url: '/item/(\\d+)'}
          title: 'h1'
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def test_minimal_profile_compiles(tmp_path: Path) -> None:
    profile = load_profile("tiny", tmp_path if write(tmp_path, MINIMAL) else None)
    assert profile.market == "tiny"
    assert [p.name for p in profile.pages] == ["home", "item"]
    title = profile.page("item").records[0].fields[1]
    assert title.name == "title" and title.css == "h1"
    assert profile.parser_version.startswith("tiny@1+")
    assert len(profile.sha256) == 64


def test_demo_profiles_load() -> None:
    markets = available_markets()
    assert {"hollowmere", "copperline"} <= set(markets)
    for market in markets:
        profile = load_profile(market)
        assert profile.pages and profile.clock is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('version: "1"\n', ""), "missing required key 'version'"),
        (("title: 'h1'", "titel: 'h1'"), "unknown key(s) ['titel']"),
        (("to: item}", "to: nowhere}"), "link target 'nowhere' is not a page type"),
        (("'/item/(\\d+)'", "'/item/(\\d+'"), "bad regular expression"),
        (("title: 'h1'", "title: {css: 'h1', normalize: nope}"), "unknown normalizer 'nope'"),
        (("title: 'h1'", "title: {css: 'h1', xpath: '//h1'}"), "give exactly one source"),
        (("          title: 'h1'\n", ""), "a listing record needs ['title']"),
        (("match: {url: '^/$'}", "match: {}"), "pages.home.match"),
        (("pages:", "pages: []\nold_pages:"), "unknown key(s) ['old_pages']"),
    ],
)
def test_mistakes_name_their_place(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in MINIMAL, old
    write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ProfileError) as caught:
        load_profile("tiny", tmp_path)
    assert message in str(caught.value)
    assert "tiny.yaml" in str(caught.value)


def test_broken_yaml_and_unknown_market(tmp_path: Path) -> None:
    write(tmp_path, "market: [unclosed")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile("tiny", tmp_path)
    with pytest.raises(ProfileError, match=r"no profile for market 'atlantis'.*known: tiny"):
        load_profile("atlantis", tmp_path)


def test_onion_mirrors_are_validated(tmp_path: Path) -> None:
    from transport.onion_keys import onion_key_for

    good = onion_key_for("profile-test").address
    write(tmp_path, MINIMAL.replace("http://tiny.example", f"http://{good}"))
    assert load_profile("tiny", tmp_path).mirrors == (f"http://{good}",)
    broken = good[:10] + ("b" if good[10] != "b" else "c") + good[11:]
    write(tmp_path, MINIMAL.replace("http://tiny.example", f"http://{broken}"))
    with pytest.raises(ProfileError, match=r"mirrors\[0\]: .*checksum mismatch"):
        load_profile("tiny", tmp_path)
    write(tmp_path, MINIMAL.replace("http://tiny.example", "http://abcdefghijklmnop.onion"))
    with pytest.raises(ProfileError, match="v2 onion address"):
        load_profile("tiny", tmp_path)
