"""Profiles: the demo profiles load, and every kind of mistake is reported with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.mirrors import market_key
from dnm.profile import Drift, ProfileError, available_markets, load_profile

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


# -- gates, login, mirror list and completeness -------------------------------------------------------

BARRIERS = (
    MINIMAL
    + """
gates:
  - {kind: wait, match: {css: 'div.wait'}, wait: 5}
  - kind: captcha
    match: {css: 'form.ddos', status: [200, 429]}
    challenge: {form: 'form.ddos', kind: clock, image: 'img::attr(src)', answer: {h: '{hour}', m: '{minute}'}}
  - {kind: killed, match: {status: 403, text: 'killed your path', title: '^Blocked'}}
login:
  url: /login
  form: 'form#login'
  username: '^User$'
  challenge: {form: 'form#login', image: 'img::attr(src)'}
  failed: {css: 'p.error'}
  banned: '(?i)banned'
  logged_out: {css: 'a.login'}
mirror_list:
  url: /mirrors
  signed: 'pre.signed::text'
  key: 'pre.key::text'
  fingerprint: '2382 5062 78b3 1011 1C58  0751 F93B B3C2 5841 4584'
completeness:
  threshold: 0.95
  expect:
    item: {page: home, css: 'p.total', regex: '(\\d+) items', per: {url: '^/(\\w*)'}, per_page: 20}
"""
)


def test_barrier_keys_compile(tmp_path: Path) -> None:
    write(tmp_path, BARRIERS)
    profile = load_profile("tiny", tmp_path)
    wait, gate, killed = profile.gates
    assert (wait.kind, wait.match.css, wait.wait, wait.challenge) == ("wait", "div.wait", 5.0, None)
    assert gate.kind == "captcha" and gate.match.status == (200, 429) and gate.wait is None
    assert gate.challenge is not None and gate.challenge.kind == "clock"
    assert gate.challenge.answer == (("h", "{hour}"), ("m", "{minute}"))
    assert killed.match.status == (403,) and killed.match.text is not None and killed.match.title is not None
    assert killed.match.text.search("DDOS filter killed your path") and killed.match.title.match("Blocked!")
    login = profile.login
    assert login is not None and (login.url, login.form) == ("/login", "form#login")
    assert login.username.pattern == "^User$" and login.password.search("Password")  # the default label
    assert login.challenge is not None and login.challenge.kind == "text"
    assert login.challenge.answer == (("captcha", "{text}"),)  # a text challenge's default field
    assert login.failed is not None and login.failed.css == "p.error"
    assert login.banned is not None and login.banned.search("This account has been BANNED")
    assert login.logged_out is not None and login.logged_out.css == "a.login"
    mirror_list = profile.mirror_list
    assert mirror_list is not None and mirror_list.key_url == "/mirrors"  # defaults to the list's page
    assert mirror_list.fingerprint == "2382506278B310111C580751F93BB3C258414584"
    assert profile.completeness.threshold == 0.95
    (rule,) = profile.completeness.expect
    assert (rule.count, rule.page, rule.per_page) == ("item", "home", 20)
    assert rule.value.css == "p.total" and rule.value.regex is not None
    assert rule.per is not None and rule.per.url is not None


def test_barrier_keys_are_optional(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    profile = load_profile("tiny", tmp_path)
    assert profile.gates == () and profile.login is None and profile.mirror_list is None
    assert profile.completeness.threshold == 1.0 and profile.completeness.expect == ()


def test_drift_thresholds_compile_default_and_are_checked(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    assert load_profile("tiny", tmp_path).drift == Drift(max_drop=0.1, min_records=5)
    write(tmp_path, MINIMAL + "drift: {max_drop: 0.25, min_records: 20}\n")
    assert load_profile("tiny", tmp_path).drift == Drift(max_drop=0.25, min_records=20)
    for bad, where in (("{max_drop: 2}", "drift.max_drop"), ("{min_records: 0}", "drift.min_records"),
                       ("{typo: 1}", "drift")):  # fmt: skip
        write(tmp_path, MINIMAL + f"drift: {bad}\n")
        with pytest.raises(ProfileError, match=where):
            load_profile("tiny", tmp_path)


MARKETS = ("hollowmere", "copperline")


def test_demo_profiles_barrier_keys() -> None:
    captcha_kinds = {"hollowmere": ["clock", "text"], "copperline": ["text", "text"]}
    for market in MARKETS:
        profile = load_profile(market)
        kinds = [gate.kind for gate in profile.gates]
        assert kinds == ["killed", "maintenance", "wait", "queue", "captcha", "captcha"]
        challenges = [gate.challenge for gate in profile.gates if gate.kind == "captcha"]
        assert [c.kind for c in challenges if c is not None] == captcha_kinds[market]
        assert all(gate.challenge is None for gate in profile.gates if gate.kind != "captcha")
        assert profile.login is not None and profile.login.username.pattern == "^Username$"
        assert profile.login.banned is not None and profile.login.failed is not None
        assert profile.mirror_list is not None
        assert profile.mirror_list.fingerprint == market_key(1, market).fingerprint
        assert (profile.mirror_list.url, profile.mirror_list.key_url) == ("/mirrors", "/pgp")
        assert profile.completeness.threshold == 1.0
        expect = {rule.count: rule for rule in profile.completeness.expect}
        assert set(expect) == {"listing", "category"}
        assert expect["listing"].page == "home" and expect["category"].page == "category"
        assert expect["category"].per is not None
    assert load_profile("hollowmere").login.challenge is not None  # type: ignore[union-attr]
    assert load_profile("copperline").login.challenge is None  # type: ignore[union-attr]
    per_page = {m: {r.count: r.per_page for r in load_profile(m).completeness.expect} for m in MARKETS}
    assert per_page == {
        "hollowmere": {"listing": None, "category": None},  # "page 1 of 7" counts pages already
        "copperline": {"listing": None, "category": 20},  # "(412 items)": 20 a page
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("kind: wait,", "kind: ddos,"), "gates[0].kind: must be one of"),
        (("  - {kind: killed,", "  - {kind: captcha,"), "gates[2]: a captcha gate needs 'challenge'"),
        (("match: {css: 'div.wait'}, ", ""), "gates[0]: a gate needs 'match'"),
        (("match: {css: 'div.wait'}", "match: {}"), "gates[0].match: give at least one of"),
        (("match: {css: 'div.wait'}", "match: {id: 'x'}"), "gates[0].match: unknown key(s) ['id']"),
        (("status: [200, 429]", "status: ['200']"), "gates[1].match.status: expected an HTTP status"),
        (("text: 'killed your path'", "text: 'killed (your'"), "gates[2].match.text: bad regular expression"),
        (("title: '^Blocked'", "title: '[B'"), "gates[2].match.title: bad regular expression"),
        (("wait: 5}", "wait: -1}"), "gates[0].wait: expected seconds"),
        (("wait: 5}", "wait: soon}"), "gates[0].wait: expected seconds"),
        (("kind: clock,", "kind: audio,"), "gates[1].challenge.kind: must be one of ['text', 'clock']"),
        (
            ("m: '{minute}'", "m: '{minutes}'"),
            "gates[1].challenge.answer.m: unknown placeholder(s) ['minutes']",
        ),
        (("h: '{hour}'", "h: '{}'"), "gates[1].challenge.answer.h: unknown placeholder(s) ['']"),
        (("answer: {h: '{hour}', m: '{minute}'}", "answer: [hour]"), "gates[1].challenge.answer: expected"),
        (("challenge: {form: 'form.ddos', ", "challenge: {"), "gates[1].challenge: a challenge needs"),
        (("  url: /login\n", ""), "login: missing required key 'url'"),
        (("username: '^User$'", "username: '^User('"), "login.username: bad regular expression"),
        (("banned: '(?i)banned'", "banned: '(?i)banned['"), "login.banned: bad regular expression"),
        (("logged_out: {css: 'a.login'}", "logged_out: {css: 'a', text: '('}"), "login.logged_out.text: bad"),
        (("challenge: {form: 'form#login', ", "challenge: {kind: clock, "), "login.challenge: a challenge"),
        (("failed: {css: 'p.error'}", "failed: {css: 'p', xpath: '//p'}"), "login.failed: give exactly one"),
        (("  banned:", "  band:"), "login: unknown key(s) ['band']"),
        (("'2382 5062 78b3", "'2382 5062 78G3"), "mirror_list.fingerprint: expected a v4 (40 hex)"),
        ((" 5841 4584'", " 5841'"), "mirror_list.fingerprint: expected a v4"),
        (("  key: 'pre.key::text'\n", ""), "mirror_list: missing required key 'key'"),
        (("threshold: 0.95", "threshold: 1.5"), "completeness.threshold: expected a share between 0"),
        (("threshold: 0.95", "threshold: 0"), "completeness.threshold: expected a share"),
        (("threshold: 0.95", "threshold: all"), "completeness.threshold: expected a share"),
        (
            ("    item: {page: home,", "    vendor: {page: home,"),
            "completeness.expect: unknown key(s) ['vendor']",
        ),
        (("item: {page: home,", "item: {page: nowhere,"), "completeness.expect.item.page: expected one of"),
        (("item: {page: home,", "item: {"), "completeness.expect.item.page: expected one of the page types"),
        (("per_page: 20}", "per_page: 0}"), "completeness.expect.item.per_page: expected a positive integer"),
        (("regex: '(\\d+) items'", "regex: '(\\d+ items'"), "completeness.expect.item.regex: bad regular"),
        (
            ("per: {url: '^/(\\w*)'}", "per: {url: '^/(\\w*'}"),
            "completeness.expect.item.per.url: bad regular",
        ),
        (
            ("css: 'p.total', ", "css: 'p.total', xpath: '//p', "),
            "completeness.expect.item: give exactly one",
        ),
    ],
)
def test_barrier_mistakes_name_their_place(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    old, new = change
    assert BARRIERS.count(old) == 1, old
    write(tmp_path, BARRIERS.replace(old, new))
    with pytest.raises(ProfileError) as caught:
        load_profile("tiny", tmp_path)
    assert message in str(caught.value)
    assert "tiny.yaml" in str(caught.value)


def test_gates_must_be_a_list(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + "gates: {kind: wait, match: {css: 'div.wait'}}\n")
    with pytest.raises(ProfileError, match="gates: expected a list of gate pages"):
        load_profile("tiny", tmp_path)
