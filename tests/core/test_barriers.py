"""Barrier pages: telling the demo market's gates from its content, and reading its login and challenge forms.

Every page here is the demo app's own markup, rendered with Flask's test client (no server, no Tor):
the wait page, the queue, the CAPTCHA gate (a clock on hollowmere, text on copperline), the login
form with its CSS-hidden decoys, the verify page, maintenance, the killed path, a bare 5xx and
the content pages of both skins.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from parsel import Selector
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.responsetypes import responsetypes
from werkzeug.test import TestResponse

from demo.app import create_app
from demo.hostile import captcha
from demo.hostile.accounts import demo_accounts
from demo.hostile.config import Hostility
from demo.hostile.network import nginx_error
from demo.skins import hostility_for, noise
from dnm.barriers import (
    Kind,
    answer_fields,
    classify_barrier,
    decode_data_uri,
    filled,
    form_defaults,
    hidden_classes,
    is_visible,
    meta_refresh,
    read_challenge,
    read_login_form,
    retry_after,
)
from dnm.extraction import classify, extract_links
from dnm.profile import ChallengeRule, Profile, load_profile
from tests.hostile_support import NETWORK_OFF, PAGE, Clock, app_with_clock

SEED, DAY = 1, 0
MARKETS = ("hollowmere", "copperline")
BASE = "http://market.test"


def hostile_app(market: str, **overrides: Any) -> tuple[Flask, Clock]:
    """The market's hostile preset, network faults off, some keys overridden; and its gate clock."""
    return app_with_clock(
        market, DAY, SEED, hostility_for(market).with_overrides(**{**NETWORK_OFF, **overrides})
    )


def as_scrapy(answer: TestResponse, path: str) -> Response:
    """The test client's answer as the Response class Scrapy would have built for it."""
    url = BASE + path
    headers = {key: value for key, value in answer.headers.items()}
    cls = responsetypes.from_args(headers=headers, url=url, body=answer.data)
    return cls(url=url, status=answer.status_code, headers=headers, body=answer.data)


def get(client: FlaskClient, path: str) -> Response:
    return as_scrapy(client.get(path), path)


def html(response: Response) -> HtmlResponse:
    assert isinstance(response, HtmlResponse), type(response)
    return response


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return {market: load_profile(market) for market in MARKETS}


def kind_of(profiles: dict[str, Profile], market: str, response: Response, **options: bool) -> Kind:
    return classify_barrier(profiles[market], response, **options).kind


# -- classifying the demo's pages ------------------------------------------------------------------


@pytest.mark.parametrize("market", MARKETS)
def test_wait_page(profiles: dict[str, Profile], market: str) -> None:
    app, _ = hostile_app(market, wait_seconds=3.0)
    response = html(get(app.test_client(), PAGE[market]))
    verdict = classify_barrier(profiles[market], response)
    assert verdict.kind is Kind.WAIT and verdict.gate is not None and verdict.gate.kind == "wait"
    assert meta_refresh(response) == (3.0, BASE + PAGE[market])


@pytest.mark.parametrize("market", MARKETS)
def test_queue_page(profiles: dict[str, Profile], market: str) -> None:
    app, _ = hostile_app(market, wait_seconds=0.0, queue_seconds=5.0)
    response = get(app.test_client(), PAGE[market])
    assert kind_of(profiles, market, response) is Kind.QUEUE
    # The queue refreshes itself without naming a URL: the page's own URL is asked again.
    assert meta_refresh(response) == (5.0, BASE + PAGE[market])


@pytest.mark.parametrize(("market", "kind"), [("hollowmere", "clock"), ("copperline", "text")])
def test_challenge_page(profiles: dict[str, Profile], market: str, kind: str) -> None:
    app, _ = hostile_app(market, wait_seconds=0.0, queue_seconds=0.0)
    client = app.test_client()
    response = html(get(client, PAGE[market]))
    verdict = classify_barrier(profiles[market], response)
    assert verdict.kind is Kind.CAPTCHA
    assert verdict.gate is not None and verdict.gate.challenge is not None
    rule = verdict.gate.challenge
    assert rule.kind == kind
    challenge = read_challenge(rule, response)
    assert challenge is not None
    assert challenge.method == "POST" and challenge.action == f"{BASE}/ddos"
    assert challenge.challenge_id is not None and captcha.is_cid(challenge.challenge_id)
    assert captcha.kind_of(challenge.challenge_id) == ("clock" if kind == "clock" else "image")
    fields = dict(challenge.fields)
    assert fields["cid"] == challenge.challenge_id and fields["r"] == PAGE[market]
    assert challenge.image_src is not None
    if market == "copperline":  # the image is inlined in the page
        decoded = decode_data_uri(challenge.image_src)
        assert decoded == (captcha.render_png(SEED, market, challenge.challenge_id), "image/png")
    else:  # the image is linked, and the link serves the challenge's picture
        assert challenge.image_src == f"/ddos/captcha/{challenge.challenge_id}.png"
        image = client.get(challenge.image_src)
        assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    if kind == "clock":  # a browser's defaults: the first option of each select
        assert fields["hour"] == "1" and fields["minute"] == "00"
        assert "captcha" not in fields
    else:
        assert fields["captcha"] == "" and "hour" not in fields


@pytest.mark.parametrize("market", MARKETS)
def test_login_page(profiles: dict[str, Profile], market: str) -> None:
    app, _ = hostile_app(market, wait_seconds=0.0, queue_seconds=0.0, gate_captcha=None)
    client = app.test_client()
    first = get(client, PAGE[market])
    if market == "hollowmere":  # sends the visitor to its login page; Scrapy follows the redirect
        assert first.status == 302
        login_path = urlsplit(first.headers[b"Location"].decode()).path
        assert login_path == profiles[market].login.url  # type: ignore[union-attr]
        first = get(client, f"{login_path}?next={PAGE[market]}")
    assert first.status == 200
    assert kind_of(profiles, market, first) is Kind.LOGIN
    assert kind_of(profiles, market, first, logged_in=True) is Kind.LOGIN


@pytest.mark.parametrize("market", MARKETS)
def test_maintenance_page(profiles: dict[str, Profile], market: str) -> None:
    app, _ = hostile_app(market, maintenance_at=(1,), maintenance_seconds=90.0)
    response = get(app.test_client(), PAGE[market])
    assert response.status == 503
    verdict = classify_barrier(profiles[market], response)
    assert verdict.kind is Kind.MAINTENANCE and verdict.gate is not None  # the profile's gate, not ERROR
    assert retry_after(response) == 90.0


@pytest.mark.parametrize("market", MARKETS)
def test_killed_path(profiles: dict[str, Profile], market: str) -> None:
    app, _ = hostile_app(market, circuit_budget=1)
    client = app.test_client()
    assert get(client, PAGE[market]).status != 403
    killed = get(client, PAGE[market])
    assert killed.status == 403 and isinstance(killed, TextResponse)
    assert kind_of(profiles, market, killed) is Kind.KILLED
    # Recognised without the profile's gate too: the generic sign.
    bare = dataclasses.replace(profiles[market], gates=())
    verdict = classify_barrier(bare, killed)
    assert verdict.kind is Kind.KILLED and verdict.gate is None


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_bare_server_errors(profiles: dict[str, Profile], market: str, status: int) -> None:
    response = as_scrapy(nginx_error(status), PAGE[market])  # type: ignore[arg-type]
    verdict = classify_barrier(profiles[market], response)
    assert verdict.kind is Kind.ERROR and verdict.gate is None
    too_many = HtmlResponse(BASE + "/", status=429, body=b"<html><body>slow down</body></html>")
    assert kind_of(profiles, market, too_many) is Kind.ERROR


def content_pages(market: str) -> dict[str, Response]:
    """One page of every page type of the friendly market, found by following the profile's own links."""
    profile = load_profile(market)
    client = create_app(market, DAY, seed=SEED).test_client()
    found: dict[str, Response] = {}
    queue = ["/"]
    while queue and len(found) < len(profile.pages):
        path = queue.pop(0)
        response = html(get(client, path))
        page = classify(profile, response.url, response.selector)
        assert page is not None, path
        if page.name in found:
            continue
        found[page.name] = response
        for url, _ in extract_links(page, response.selector, response.url):
            parts = urlsplit(url)
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


@pytest.mark.parametrize("market", MARKETS)
def test_content_pages_are_content(profiles: dict[str, Profile], market: str) -> None:
    pages = content_pages(market)
    assert set(pages) == {p.name for p in profiles[market].pages}
    client = create_app(market, DAY, seed=SEED).test_client()
    pages["mirrors"], pages["pgp"] = get(client, "/mirrors"), get(client, "/pgp")
    for name, response in pages.items():
        assert response.status == 200, name
        for logged_in in (False, True):
            verdict = classify_barrier(profiles[market], response, logged_in=logged_in)
            assert verdict.kind is Kind.CONTENT, (name, logged_in, verdict)
    # A market behind all its gates serves the same pages once they are passed.
    app, _ = hostile_app(market, wait_seconds=0.0, queue_seconds=0.0, gate_captcha=None, login_required=False)
    assert kind_of(profiles, market, get(app.test_client(), "/")) is Kind.CONTENT


def test_logged_out_marker(tmp_path: Path) -> None:
    """A profile whose login says how a page seen without a session looks: only logged-in requests care."""
    text = (load_profile("hollowmere").path).read_text(encoding="utf-8")
    old = "  banned: '(?i)banned'\n"
    assert old in text
    marker = "  logged_out: {css: 'div.hdr a[href=\"/login\"]', text: '>Login</a>'}\n"
    (tmp_path / "hollowmere.yaml").write_text(text.replace(old, old + marker), encoding="utf-8")
    profile = load_profile("hollowmere", tmp_path)
    assert profile.login is not None and profile.login.logged_out is not None
    client = create_app("hollowmere", DAY, seed=SEED).test_client()
    logged_out = html(get(client, "/"))  # the demo's header shows "Login" to everyone
    assert classify_barrier(profile, logged_out).kind is Kind.CONTENT
    verdict = classify_barrier(profile, logged_out, logged_in=True)
    assert verdict.kind is Kind.LOGIN and verdict.gate is None
    # The same page as a logged-in visitor sees it: "Logout" in the header instead.
    body = logged_out.body.replace(b'href="/login">Login</a>', b'href="/logout">Logout</a>')
    assert body != logged_out.body
    logged_in_page = logged_out.replace(body=body)
    assert classify_barrier(profile, logged_in_page, logged_in=True).kind is Kind.CONTENT


def test_short_meta_refresh_page_is_a_wait_without_a_gate(profiles: dict[str, Profile]) -> None:
    bare = dataclasses.replace(profiles["hollowmere"], gates=())
    short = HtmlResponse(
        BASE + "/", body=b'<html><head><meta http-equiv="refresh" content="2; url=/home"></head></html>'
    )
    verdict = classify_barrier(bare, short)
    assert verdict.kind is Kind.WAIT and verdict.gate is None
    long = short.replace(body=short.body.replace(b"</head>", b"</head><p>" + b"x" * 9000 + b"</p>"))
    assert classify_barrier(bare, long).kind is Kind.CONTENT


# -- passing the gates as the crawler does, with the readers under test ----------------------------


def answer_challenge(
    client: FlaskClient, rule: ChallengeRule, response: HtmlResponse, market: str
) -> Response:
    """Fill and send a challenge form with the right answer (from the demo's side channel)."""
    challenge = read_challenge(rule, response)
    assert challenge is not None and challenge.challenge_id is not None
    fields = filled(
        challenge.fields, answer_fields(rule, captcha.answer(SEED, market, challenge.challenge_id))
    )
    path = urlsplit(challenge.action).path
    return as_scrapy(client.post(path, data=urlencode(fields), content_type=FORM), path)


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("market", MARKETS)
def test_every_gate_in_turn_then_content(profiles: dict[str, Profile], market: str) -> None:
    profile = profiles[market]
    assert profile.login is not None
    app, clock = hostile_app(market, wait_seconds=1.0, queue_seconds=1.0, post_login_captcha=1.0)
    client = app.test_client()
    seen, challenges = [], []
    response = get(client, PAGE[market])
    for _ in range(12):
        if response.status in (302, 303):
            location = urlsplit(response.headers[b"Location"].decode())
            path = location.path + (f"?{location.query}" if location.query else "")
            response = get(client, path)
            continue
        verdict = classify_barrier(profile, response, logged_in=True)
        seen.append(verdict.kind)
        if verdict.kind is Kind.CONTENT:
            break
        page = html(response)
        if verdict.kind in (Kind.WAIT, Kind.QUEUE):
            found = meta_refresh(page)
            assert found is not None
            clock.now += found[0]
            response = get(client, urlsplit(found[1]).path)
        elif verdict.kind is Kind.CAPTCHA:
            assert verdict.gate is not None and verdict.gate.challenge is not None
            challenges.append(verdict.gate.challenge.form)
            response = answer_challenge(client, verdict.gate.challenge, page, market)
        elif verdict.kind is Kind.LOGIN:
            form = read_login_form(profile.login, page)
            assert form is not None
            account = demo_accounts(SEED, market)[0]
            values = {form.username: account.username, form.password: account.password}
            if profile.login.challenge is not None:
                challenge = read_challenge(profile.login.challenge, page)
                assert challenge is not None and challenge.challenge_id is not None
                answer = captcha.answer(SEED, market, challenge.challenge_id)
                values.update(answer_fields(profile.login.challenge, answer))
            path = urlsplit(form.action).path
            data = urlencode(filled(form.fields, values))
            response = as_scrapy(client.post(path, data=data, content_type=FORM), path)
        else:
            pytest.fail(f"unexpected {verdict} at {response.url}")
    assert seen == [Kind.WAIT, Kind.QUEUE, Kind.CAPTCHA, Kind.LOGIN, Kind.CAPTCHA, Kind.CONTENT]
    assert challenges == ["form.ddos", "form.verify"]  # the gate's challenge, then the post-login verify page
    assert response.url == BASE + PAGE[market]
    assert classify(profile, response.url, html(response).selector) is not None


# -- the login form and its decoys ----------------------------------------------------------------


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("day", [0, 1, 5])
def test_login_form_finds_the_real_inputs_among_decoys(market: str, day: int) -> None:
    profile = load_profile(market)
    assert profile.login is not None
    hostility = Hostility(login_required=True)
    client = create_app(market, day, seed=SEED, hostility=hostility).test_client()
    page = html(get(client, profile.login.url))
    form = read_login_form(profile.login, page)
    assert form is not None
    fields, hiding = noise.login_fields(SEED, market, day)
    real = {f.label: f.name for f in fields if f.real}
    assert (form.username, form.password) == (real["Username"], real["Password"])
    # The decoys do carry the same labels: only the page's CSS tells them apart.
    decoys = [f for f in fields if not f.real]
    assert any(f.label in ("Username", "Password") and f.kind != "hidden" for f in decoys)
    assert set(hiding) <= hidden_classes(page.selector)
    assert form.method == "POST" and form.action == BASE + profile.login.url
    # Everything a browser would send goes along, decoys included, so the form looks filled by a person.
    sent = dict(form.fields)
    assert {f.name for f in fields} <= set(sent)
    assert sent.get("next") == "/"


def test_login_form_absent_or_unreadable() -> None:
    profile = load_profile("copperline")
    assert profile.login is not None
    client = create_app("copperline", DAY, seed=SEED).test_client()
    assert read_login_form(profile.login, html(get(client, "/"))) is None  # no form on the page
    page = html(get(client, profile.login.url))
    assert read_login_form(profile.login, page) is not None
    # Labels the market does not use: no input is guessed.
    wrong = dataclasses.replace(profile.login, username=re.compile("^E-mail$"))
    assert read_login_form(wrong, page) is None


def test_challenge_inside_a_login_form(profiles: dict[str, Profile]) -> None:
    login = profiles["hollowmere"].login
    assert login is not None and login.challenge is not None
    app, _ = hostile_app("hollowmere", wait_seconds=0.0, queue_seconds=0.0, gate_captcha=None)
    page = html(get(app.test_client(), login.url))
    challenge = read_challenge(login.challenge, page)
    assert challenge is not None and challenge.challenge_id is not None
    assert challenge.image_src == f"/ddos/captcha/{challenge.challenge_id}.png"
    # A login form without a challenge today is not a challenge.
    friendly = create_app("hollowmere", DAY, seed=SEED, hostility=Hostility(login_required=True))
    assert read_challenge(login.challenge, html(get(friendly.test_client(), login.url))) is None


# -- small readers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("0; URL='/x'", (0.0, f"{BASE}/x")),
        ("5", (5.0, f"{BASE}/here?a=1")),
        ("3;url=/y", (3.0, f"{BASE}/y")),
        ('1.5, url="other"', (1.5, f"{BASE}/other")),
        ("2; URL=http://elsewhere.test/z", (2.0, "http://elsewhere.test/z")),
        ("soon", None),
    ],
)
def test_meta_refresh_variants(content: str, expected: tuple[float, str] | None) -> None:
    body = f'<html><head><meta http-equiv="Refresh" content={quoted(content)}></head><body></body></html>'
    response = HtmlResponse(f"{BASE}/here?a=1", body=body.encode())
    assert meta_refresh(response) == expected


def quoted(value: str) -> str:
    """An HTML attribute value quoted with whichever quote it does not contain."""
    return f"'{value}'" if '"' in value else f'"{value}"'


def test_meta_refresh_absent() -> None:
    assert meta_refresh(HtmlResponse(BASE + "/", body=b"<html><head></head></html>")) is None
    assert meta_refresh(Response(BASE + "/x.png", body=b"\x89PNG")) is None


def test_retry_after() -> None:
    assert retry_after(Response(BASE, headers={"Retry-After": "120"})) == 120.0
    assert retry_after(Response(BASE, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})) is None
    assert retry_after(Response(BASE)) is None


def test_hidden_classes_and_visibility() -> None:
    selector = Selector(
        text="""<html><head><style>.a{display:none} .b { color: red } .c{ Display : None ;}
        .d{width:1px;display:none} .e, .wrap .f{display:none} .g:hover{display:none}
        @media screen { .h{display:none} }</style></head><body><form>
        <input name="plain">
        <input name="secret" type="HIDDEN">
        <div class="x a"><input name="in_hidden_class"></div>
        <div class="b"><input name="in_red"></div>
        <div style="display: none"><p><input name="inline_hidden"></p></div>
        <input name="invisible" style="visibility:hidden">
        <input name="own_class" class="d">
        </form></body></html>"""
    )
    hidden = hidden_classes(selector)
    # A grouped rule hides every class it lists (a decoy hidden that way is no less hidden).
    assert hidden == {"a", "c", "d", "e", "f", "h"}
    visible = {element.attrib["name"] for element in selector.css("input") if is_visible(element, hidden)}
    assert visible == {"plain", "in_red"}


def test_form_defaults_send_what_a_browser_sends() -> None:
    form = Selector(
        text="""<form>
        <input name="t" value="v"><input name="empty">
        <input type="checkbox" name="off" value="1"><input type="checkbox" name="on" value="yes" checked>
        <input type="radio" name="r" value="a"><input type="radio" name="r" value="b" checked>
        <select name="s1"><option value="x">X</option><option value="y" selected>Y</option></select>
        <select name="s2"><option value="first">1</option><option value="second">2</option></select>
        <textarea name="note">hello</textarea>
        <input type="submit" name="go" value="Go"><input type="image" name="img"><input type="file" name="f">
        <input value="no name">
        </form>"""
    ).css("form")[0]
    assert form_defaults(form) == [
        ("t", "v"),
        ("empty", ""),
        ("on", "yes"),
        ("r", "b"),
        ("s1", "y"),
        ("s2", "first"),
        ("note", "hello"),
    ]


def test_filled_sets_and_adds_values() -> None:
    fields = [("a", "1"), ("b", ""), ("a", "2")]
    assert filled(fields, {"b": "x", "c": "y"}) == [("a", "1"), ("b", "x"), ("a", "2"), ("c", "y")]
    assert filled(fields, {}) == fields


def test_answer_fields() -> None:
    clock = ChallengeRule(form="form.ddos", kind="clock", answer=(("hour", "{hour}"), ("minute", "{minute}")))
    assert answer_fields(clock, "7:05") == {"hour": "7", "minute": "05"}
    assert answer_fields(clock, " 12:5 ") == {"hour": "12", "minute": "05"}
    assert answer_fields(clock, "11.30") == {"hour": "11", "minute": "30"}
    assert answer_fields(clock, "no time") == {"hour": "", "minute": ""}
    text = ChallengeRule(form="form.verify")
    assert answer_fields(text, " K7QX ") == {"captcha": "K7QX"}
    combined = ChallengeRule(form="f", answer=(("answer", "{text}"), ("time", "{hour}h{minute}")))
    assert answer_fields(combined, "9:41") == {"answer": "9:41", "time": "9h41"}


def test_decode_data_uri() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    encoded = base64.b64encode(png).decode()
    assert decode_data_uri(f"data:image/png;base64,{encoded}") == (png, "image/png")
    assert decode_data_uri(f"  data:;base64,{encoded}\n") == (png, "application/octet-stream")
    assert decode_data_uri("data:text/plain,hello") is None  # not base64
    assert decode_data_uri("/ddos/captcha/abc.png") is None
    assert decode_data_uri("data:image/png;base64,abc") is None  # broken padding
