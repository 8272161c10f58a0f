"""The demo market's gates (docs/hostile-demo.md items 5-7, "Challenges", "Accounts"): wait page, queue and
challenge, login with decoys, sessions, verify page, CAPTCHA images, accounts and the demo CLI bits."""

from __future__ import annotations

import base64
import io
import math
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from parsel import Selector
from PIL import Image
from werkzeug.test import TestResponse

from demo.app import create_app
from demo.hostile import captcha
from demo.hostile.accounts import demo_accounts, secrets_toml
from demo.hostile.config import Hostility
from demo.hostile.gates import gate_state
from demo.rng import rng
from demo.server import DemoServer
from demo.skins import hostility_for, noise
from demo.world import MARKETS
from dnm.cli import main, parse_hostile_sets
from tests.hostile_support import NETWORK_OFF, PAGE, Clock, app_with_clock

SEED, DAY = 1, 0
TITLES = {"hollowmere": "Hollowmere DDoS protection", "copperline": "Copperline DDoS protection"}
LOGIN_FORM = {"hollowmere": "form#login", "copperline": "form.signin"}
LOGIN_URL = {"hollowmere": "/login", "copperline": "/signin"}


def hostile_app(market: str, **keys: Any) -> tuple[Flask, Clock]:
    """A hostile app with only the given gate keys on, and its clock."""
    return app_with_clock(market, DAY, SEED, Hostility(**keys))


def page(response: TestResponse) -> Selector:
    return Selector(text=response.get_data(as_text=True))


def cookie(client: FlaskClient, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found else None


def answer_form(market: str, cid: str, right: bool = True) -> dict[str, str]:
    """The answer inputs of a challenge, filled from the demo side channel (or deliberately wrong)."""
    text = captcha.answer(SEED, market, cid)
    if captcha.kind_of(cid) == "clock":
        hour, minute = text.split(":")
        if not right:
            hour = str(int(hour) % 12 + 1)
        return {"cid": cid, "hour": hour, "minute": minute}
    return {"cid": cid, "captcha": text if right else text + "X"}


def image_bytes(market: str, client: FlaskClient, img_src: str) -> bytes:
    """The challenge image the page shows: linked (hollowmere) or inlined as a data: URI (copperline)."""
    if market == "copperline":
        assert img_src.startswith("data:image/png;base64,")
        return base64.b64decode(img_src.split(",", 1)[1])
    assert img_src.startswith("/ddos/captcha/") and img_src.endswith(".png")
    response = client.get(img_src)
    assert response.status_code == 200 and response.mimetype == "image/png"
    return response.data


def login_form(market: str, username: str, password: str, **extra: str) -> dict[str, str]:
    """A login POST with the real inputs filled and every decoy left empty."""
    fields, _ = noise.login_fields(SEED, market, DAY)
    form = {f.name: "" for f in fields}
    for f in fields:
        if f.real:
            form[f.name] = username if f.label == "Username" else password
    return {**form, **extra}


def log_in(market: str, client: FlaskClient, account: int = 0, next_path: str = "/") -> TestResponse:
    """Log in through the form as a browser would: the captcha inside it (if any) solved."""
    sel = page(client.get(LOGIN_URL[market]))
    extra = {"next": next_path}
    cid = sel.css(f"{LOGIN_FORM[market]} input[name=cid]::attr(value)").get()
    if cid:
        extra.update(answer_form(market, cid))
    user = demo_accounts(SEED, market)[account]
    return client.post(LOGIN_URL[market], data=login_form(market, user.username, user.password, **extra))


# CAPTCHAs


@pytest.mark.parametrize("kind", captcha.KINDS)
def test_challenge_ids_answers_and_images(kind: str) -> None:
    cids = [captcha.new_cid(SEED, "hollowmere", kind, n) for n in range(1, 40)]
    assert len(set(cids)) == len(cids)
    assert all(captcha.is_cid(c) and captcha.kind_of(c) == kind for c in cids)
    for cid in cids[:5]:
        text = captcha.answer(SEED, "hollowmere", cid)
        assert text == captcha.answer(SEED, "hollowmere", cid)
        if kind == "clock":
            hour, minute = text.split(":")
            assert 1 <= int(hour) <= 12 and len(minute) == 2 and 0 <= int(minute) <= 59
        else:
            assert 4 <= len(text) <= 6 and set(text) <= set(captcha.ALPHABET)
        png = captcha.render_png(SEED, "hollowmere", cid)
        captcha.render_png.cache_clear()
        assert captcha.render_png(SEED, "hollowmere", cid) == png  # seeded distortion: same bytes
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG"
        assert image.size == (captcha.CLOCK_SIZE if kind == "clock" else captcha.IMAGE_SIZE)
    assert captcha.answer(SEED, "copperline", cids[0]) != captcha.answer(SEED, "hollowmere", cids[0]) or (
        captcha.answer(SEED, "copperline", cids[1]) != captcha.answer(SEED, "hollowmere", cids[1])
    )


def _darkness(image: Image.Image, angle: float, length: float) -> int:
    """How dark the clock face is at `length` from the centre, `angle` degrees clockwise from 12."""
    cx, cy = captcha.CLOCK_SIZE[0] / 2, captcha.CLOCK_SIZE[1] / 2
    rad = math.radians(angle)
    return 255 - int(image.getpixel((cx + length * math.sin(rad), cy - length * math.cos(rad))))


def _apart(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_clock_hands_point_at_the_answer() -> None:
    radius = min(captcha.CLOCK_SIZE) / 2 - 8
    for n in range(1, 12):
        cid = captcha.new_cid(SEED, "copperline", "clock", n)
        hour, minute = (int(x) for x in captcha.answer(SEED, "copperline", cid).split(":"))
        image = Image.open(io.BytesIO(captcha.render_png(SEED, "copperline", cid))).convert("L")
        minute_angle, hour_angle = minute * 6, (hour % 12 + minute / 60) * 30
        assert _darkness(image, minute_angle, radius * 0.7) > 100  # only the minute hand reaches this far
        assert _darkness(image, hour_angle, radius * 0.35) > 100
        # Away from both hands, the face is light at that distance.
        for angle in range(0, 360, 15):
            if _apart(angle, minute_angle) > 20 and _apart(angle, hour_angle) > 20:
                assert _darkness(image, angle, radius * 0.7) < 60, (cid, angle)


def test_check_reads_the_answer_inputs() -> None:
    clock = captcha.new_cid(SEED, "hollowmere", "clock", 1)
    hour, minute = captcha.answer(SEED, "hollowmere", clock).split(":")
    assert captcha.check(SEED, "hollowmere", clock, {"hour": hour, "minute": minute})
    assert captcha.check(SEED, "hollowmere", clock, {"hour": hour.zfill(2), "minute": minute})
    assert not captcha.check(SEED, "hollowmere", clock, {"hour": hour, "minute": "xx"})
    assert not captcha.check(SEED, "hollowmere", clock, {})
    text = captcha.new_cid(SEED, "hollowmere", "image", 2)
    solution = captcha.answer(SEED, "hollowmere", text)
    assert captcha.check(SEED, "hollowmere", text, {"captcha": f" {solution[:2].lower()} {solution[2:]}"})
    assert not captcha.check(SEED, "hollowmere", text, {"captcha": solution[:-1]})
    assert not captcha.check(SEED, "hollowmere", "not-a-cid", {"captcha": solution})


def test_challenge_store_is_one_shot_expires_and_is_thread_safe() -> None:
    clock = Clock()
    store = captcha.Challenges(SEED, "hollowmere", clock=clock, capacity=500)
    issued: list[str] = []
    threads = [
        threading.Thread(target=lambda: issued.extend(store.issue("image") for _ in range(50)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(issued)) == 400
    cid = issued[-1]
    assert store.live(cid, 60)
    assert not store.solve(cid, 60, answer_form("hollowmere", cid, right=False))
    assert not store.solve(cid, 60, answer_form("hollowmere", cid))  # used up by the wrong answer
    late = store.issue("clock")
    clock.advance(61)
    assert not store.live(late, 60) and not store.solve(late, 60, answer_form("hollowmere", late))
    forged = captcha.new_cid(SEED, "hollowmere", "image", 10_000)
    assert not store.solve(forged, 60, answer_form("hollowmere", forged))


# 5. Wait page


@pytest.mark.parametrize("market", MARKETS)
def test_wait_page_until_the_wait_is_over(market: str) -> None:
    app, clock = hostile_app(market, wait_seconds=3.0)
    c = app.test_client()
    first = c.get(PAGE[market] + "?x=1")
    sel = page(first)
    assert first.status_code == 200
    assert sel.css("title::text").get() == "Redirecting…"
    refresh = sel.css("meta[http-equiv=refresh]::attr(content)").get()
    assert refresh == f"3; url={PAGE[market]}?x=1"
    notice = sel.css("div.wait::text" if market == "hollowmere" else "p.wait::text").get()
    assert notice == "Please wait 3 seconds…"
    issued = cookie(c, "__wt")
    assert issued
    clock.advance(2.2)
    again = c.get(PAGE[market] + "?x=1")
    assert "Redirecting" in again.text and "Please wait 1 seconds" in again.text
    assert cookie(c, "__wt") == issued  # coming back early does not restart the wait
    clock.advance(1.0)
    assert c.get(PAGE[market] + "?x=1").status_code == 200
    assert "Redirecting" not in c.get(PAGE[market]).text
    # A forged cookie is no cookie.
    c.set_cookie("__wt", issued.replace(issued.split(".")[0], "1"))
    assert "Redirecting" in c.get(PAGE[market]).text


# 6. Anti-DDoS gate


def _challenge_page(market: str, c: FlaskClient, clock: Clock, path: str) -> Selector:
    """Pass the queue and return the challenge page."""
    queue = c.get(path)
    sel = page(queue)
    assert queue.status_code == 200
    assert sel.css("title::text").get() == TITLES[market]
    assert sel.css("div.queue::text").re_first(r"You are number (\d+) in the queue")
    assert sel.css("meta[http-equiv=refresh]::attr(content)").get() == "2"
    assert (cookie(c, "dcap") or "").startswith("queue.")
    clock.advance(1.0)
    assert page(c.get(path)).css("div.queue")  # still queued
    clock.advance(1.1)
    challenge = c.get(path)
    assert challenge.status_code == 200
    assert (cookie(c, "dcap") or "").startswith("challenge.")
    return page(challenge)


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("kind", captcha.KINDS)
def test_queue_then_challenge_then_solved(market: str, kind: str) -> None:
    app, clock = hostile_app(market, queue_seconds=2.0, gate_captcha=kind, gate_ttl=30.0)
    c = app.test_client()
    sel = _challenge_page(market, c, clock, PAGE[market])
    assert sel.css("title::text").get() == TITLES[market]
    form = sel.css("form.ddos")
    assert form.attrib["method"].upper() == "POST" and form.attrib["action"] == "/ddos"
    cid = form.css("input[type=hidden][name=cid]::attr(value)").get()
    assert cid and captcha.kind_of(cid) == kind
    assert form.css("input[type=hidden][name=r]::attr(value)").get() == PAGE[market]
    png = image_bytes(market, c, form.css("img.captcha::attr(src)").get() or "")
    assert Image.open(io.BytesIO(png)).size == (captcha.CLOCK_SIZE if kind == "clock" else captcha.IMAGE_SIZE)
    if kind == "clock":
        assert form.css("select[name=hour] option::attr(value)").getall() == [str(h) for h in range(1, 13)]
        assert len(form.css("select[name=minute] option")) == 60
    else:
        assert form.css("input[name=captcha]")
    solved = c.post("/ddos", data={"r": PAGE[market], **answer_form(market, cid)})
    assert solved.status_code == 303 and solved.headers["Location"] == PAGE[market]
    assert (cookie(c, "dcap") or "").startswith("solved.")
    content = c.get(PAGE[market])
    assert content.status_code == 200 and TITLES[market] not in content.text
    # The image of a used challenge is gone, as is any invented one.
    assert c.get(f"/ddos/captcha/{cid}.png").status_code == 404
    assert c.get("/ddos/captcha/zzz.png").status_code == 404
    # The solved cookie lasts gate_ttl seconds, then it is back to the queue.
    clock.advance(29)
    assert TITLES[market] not in c.get(PAGE[market]).text
    clock.advance(2)
    assert page(c.get(PAGE[market])).css("div.queue")


@pytest.mark.parametrize("market", MARKETS)
def test_wrong_or_expired_answer_gets_a_new_challenge(market: str) -> None:
    app, clock = hostile_app(market, gate_captcha="clock", challenge_ttl=10.0)
    c = app.test_client()
    first = page(c.get(PAGE[market]))  # no queue: straight to the challenge
    cid = first.css("form.ddos input[name=cid]::attr(value)").get() or ""
    wrong = c.post("/ddos", data={"r": PAGE[market], **answer_form(market, cid, right=False)})
    sel = page(wrong)
    assert wrong.status_code == 200 and sel.css("p.error")
    again = sel.css("form.ddos input[name=cid]::attr(value)").get() or ""
    assert again and again != cid
    assert sel.css("form.ddos input[name=r]::attr(value)").get() == PAGE[market]
    # The first challenge was used up by the wrong answer: its right answer no longer counts.
    assert page(c.post("/ddos", data={"r": "/", **answer_form(market, cid)})).css("p.error")
    assert not (cookie(c, "dcap") or "").startswith("solved.")
    latest = page(c.get(PAGE[market])).css("form.ddos input[name=cid]::attr(value)").get() or ""
    clock.advance(11)
    assert page(c.post("/ddos", data={"r": "/", **answer_form(market, latest)})).css("p.error")
    fresh = page(c.get(PAGE[market])).css("form.ddos input[name=cid]::attr(value)").get() or ""
    # An outside address in r is not followed.
    done = c.post("/ddos", data={"r": "//evil.example/", **answer_form(market, fresh)})
    assert done.status_code == 303 and done.headers["Location"] == "/"


def test_gate_cookie_is_signed_and_gate_pages_are_exempt() -> None:
    app, _clock = hostile_app("hollowmere", gate_captcha="image")
    c = app.test_client()
    c.set_cookie("dcap", "solved.99999999999999.0123456789abcdef01234567")
    assert page(c.get("/")).css("form.ddos")
    assert c.get("/ddos").status_code == 405  # reached the route: /ddos itself is never gated
    assert c.post("/ddos", data={}).status_code == 200


def test_queue_without_captcha_lets_the_visitor_through_after_waiting() -> None:
    app, clock = hostile_app("copperline", queue_seconds=1.0)
    c = app.test_client()
    assert page(c.get("/")).css("div.queue")
    clock.advance(1.5)
    content = c.get("/")
    assert content.status_code == 200 and not page(content).css("div.queue, form.ddos")
    assert (cookie(c, "dcap") or "").startswith("solved.")


# 7. Login and sessions


@pytest.mark.parametrize("market", MARKETS)
def test_pages_need_a_session_but_the_exempt_ones_do_not(market: str) -> None:
    app, _clock = hostile_app(market, login_required=True)
    c = app.test_client()
    response = c.get(PAGE[market] + "?page=1")
    if market == "hollowmere":
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert location.path == "/login" and parse_qs(location.query)["next"] == [PAGE[market] + "?page=1"]
        sel = page(c.get(response.headers["Location"]))
    else:
        sel = page(response)
        assert response.status_code == 200
        assert sel.css("div.notice::text").get() == "Please sign in to continue"
    form = sel.css(LOGIN_FORM[market])
    assert form.attrib["action"] == LOGIN_URL[market]
    assert form.css("input[type=hidden][name=next]::attr(value)").get() == PAGE[market] + "?page=1"
    for path in (LOGIN_URL[market], "/mirrors", "/pgp"):
        assert c.get(path).status_code == 200, path
    # /verify is reached (not gated by the login hook) and asks for a login itself.
    verify = c.get("/verify")
    if market == "hollowmere":
        assert verify.status_code == 302 and verify.headers["Location"] == "/login?next=/"
    else:
        assert verify.status_code == 200 and page(verify).css("div.notice")


@pytest.mark.parametrize("market", MARKETS)
def test_login_with_the_real_fields_and_decoys_ignored(market: str) -> None:
    app, _clock = hostile_app(market, login_required=True, login_captcha="image")
    c = app.test_client()
    sel = page(c.get(LOGIN_URL[market]))
    form = sel.css(LOGIN_FORM[market])
    labels = form.css("label::text").getall()
    assert "Username" in labels and "Password" in labels
    cid = form.css("input[name=cid]::attr(value)").get() or ""
    assert captcha.kind_of(cid) == "image" and form.css("img.captcha")
    user = demo_accounts(SEED, market)[0]
    fields, _ = noise.login_fields(SEED, market, DAY)
    # Credentials only in the decoys do not log in.
    decoys = {
        f.name: (user.username if f.label == "Username" else user.password) for f in fields if not f.real
    }
    attempt = c.post(LOGIN_URL[market], data={**decoys, "next": "/", **answer_form(market, cid)})
    assert page(attempt).css("p.error::text").get() == "Invalid username or password"
    # The real ones do, whatever the decoys hold.
    cid = page(attempt).css(f"{LOGIN_FORM[market]} input[name=cid]::attr(value)").get() or ""
    junk = {f.name: "junk" for f in fields if not f.real}
    good = login_form(market, user.username, user.password, next=PAGE[market], **answer_form(market, cid))
    response = c.post(LOGIN_URL[market], data={**good, **junk})
    assert response.status_code == 303 and response.headers["Location"] == PAGE[market]
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("sid=") and "HttpOnly" in set_cookie
    content = c.get(PAGE[market])
    assert content.status_code == 200 and not page(content).css(LOGIN_FORM[market])


@pytest.mark.parametrize("market", MARKETS)
def test_login_errors(market: str) -> None:
    app, _clock = hostile_app(market, login_required=True, login_captcha="clock")
    c = app.test_client()
    good, banned = demo_accounts(SEED, market)[0], demo_accounts(SEED, market)[1]
    assert banned.banned and not good.banned

    def attempt(username: str, password: str, right_captcha: bool = True) -> str | None:
        cid = page(c.get(LOGIN_URL[market])).css("input[name=cid]::attr(value)").get() or ""
        form = login_form(market, username, password, **answer_form(market, cid, right=right_captcha))
        response = c.post(LOGIN_URL[market], data=form)
        assert response.status_code == 200 and cookie(c, "sid") is None
        return page(response).css("p.error::text").get()

    assert attempt(good.username, good.password + "x") == "Invalid username or password"
    assert attempt("nobody", good.password) == "Invalid username or password"
    assert attempt(banned.username, banned.password) == "This account has been banned"
    assert attempt(banned.username, "wrong") == "Invalid username or password"
    assert attempt(good.username, good.password, right_captcha=False) == "Wrong captcha"


@pytest.mark.parametrize("market", MARKETS)
def test_session_expires_by_time(market: str) -> None:
    app, clock = hostile_app(market, login_required=True, session_ttl=6.0)
    c = app.test_client()
    assert log_in(market, c).status_code == 303
    clock.advance(5.5)
    assert not page(c.get(PAGE[market])).css(LOGIN_FORM[market]) and c.get(PAGE[market]).status_code == 200
    clock.advance(1.0)
    after = c.get(PAGE[market])
    if market == "hollowmere":
        assert after.status_code == 302 and after.headers["Location"].startswith("/login?next=")
    else:
        assert page(after).css("div.notice") and page(after).css(LOGIN_FORM[market])


@pytest.mark.parametrize("market", MARKETS)
def test_session_expires_by_request_count(market: str) -> None:
    app, _clock = hostile_app(market, login_required=True, session_max_requests=5)
    c = app.test_client()
    assert log_in(market, c).status_code == 303
    served = [c.get(PAGE[market]) for _ in range(5)]
    assert all(r.status_code == 200 and not page(r).css(LOGIN_FORM[market]) for r in served)
    sixth = c.get(PAGE[market])
    assert sixth.status_code == 302 if market == "hollowmere" else page(sixth).css("div.notice")
    assert log_in(market, c).status_code == 303  # a new login gives a new session
    assert not page(c.get(PAGE[market])).css(LOGIN_FORM[market])


def test_sessions_count_requests_exactly_across_threads() -> None:
    app, _clock = hostile_app("hollowmere", login_required=True, session_max_requests=100)
    c = app.test_client()
    log_in("hollowmere", c)
    sid = cookie(c, "sid")
    sessions = gate_state(app).sessions
    results: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(30):
            ok = sessions.serve(sid) is not None
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 100


@pytest.mark.parametrize("market", MARKETS)
def test_post_login_verify_page(market: str) -> None:
    app, _clock = hostile_app(market, login_required=True, post_login_captcha=1.0, gate_captcha="clock")
    c = app.test_client()
    gate = page(c.get("/")).css("form.ddos input[name=cid]::attr(value)").get() or ""
    assert c.post("/ddos", data={"r": "/", **answer_form(market, gate)}).status_code == 303
    response = log_in(market, c, next_path=PAGE[market])
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/verify" and parse_qs(location.query)["next"] == [PAGE[market]]
    blocked = c.get(PAGE[market])
    if market == "hollowmere":
        assert blocked.status_code == 302 and blocked.headers["Location"].startswith("/verify?next=")
        sel = page(c.get(blocked.headers["Location"]))
    else:
        assert blocked.status_code == 200
        sel = page(blocked)
    form = sel.css("form.verify")
    assert form.attrib["action"] == "/verify" and form.attrib["method"].upper() == "POST"
    assert form.css("input[name=next]::attr(value)").get() == PAGE[market]
    cid = form.css("input[name=cid]::attr(value)").get() or ""
    assert captcha.kind_of(cid) == "clock"
    image_bytes(market, c, form.css("img.captcha::attr(src)").get() or "")
    wrong = c.post("/verify", data={"next": PAGE[market], **answer_form(market, cid, right=False)})
    assert page(wrong).css("p.error::text").get() == "Wrong captcha"
    cid = page(wrong).css("form.verify input[name=cid]::attr(value)").get() or ""
    done = c.post("/verify", data={"next": PAGE[market], **answer_form(market, cid)})
    assert done.status_code == 303 and done.headers["Location"] == PAGE[market]
    content = c.get(PAGE[market])
    assert content.status_code == 200 and not page(content).css("form.verify, form.ddos")


def test_post_login_captcha_share_follows_the_seeded_draw() -> None:
    app, _clock = hostile_app("copperline", login_required=True, post_login_captcha=0.5)
    user = demo_accounts(SEED, "copperline")[0]
    for number in range(1, 7):
        c = app.test_client()
        response = log_in("copperline", c)
        expected = rng(SEED, "copperline", "post-login", user.username, number).random() < 0.5
        assert response.headers["Location"].startswith("/verify") == expected


# Friendly mode


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("hostility", [None, Hostility()])
def test_friendly_market_unchanged(market: str, hostility: Hostility | None) -> None:
    app = create_app(market, DAY, seed=SEED, hostility=hostility)
    assert "gates" not in app.extensions
    c = app.test_client()
    assert c.get(PAGE[market]).status_code == 200
    sel = page(c.get(LOGIN_URL[market]))
    assert not sel.css("input[name=next], input[name=cid], p.error, div.notice")
    response = c.post(LOGIN_URL[market], data={})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert c.post("/ddos").status_code == 404 and c.get("/verify").status_code == 404


def test_gate_on_but_login_off_keeps_the_friendly_login() -> None:
    app, clock = hostile_app("hollowmere", wait_seconds=1.0)
    c = app.test_client()
    assert "Redirecting" in c.get("/login").text
    clock.advance(2)
    assert not page(c.get("/login")).css("input[name=next], input[name=cid]")
    assert c.post("/login", data={}).headers["Location"] == "/"


# Presets, accounts and CLI


def test_presets_differ_and_are_hostile() -> None:
    hollow, copper = hostility_for("hollowmere"), hostility_for("copperline")
    assert hollow.active and copper.active and hollow != copper
    assert hollow.login_required and copper.login_required
    assert (hollow.gate_captcha, copper.gate_captcha) == ("clock", "image")
    assert hollow.wait_seconds > 0 and copper.wait_seconds == 0
    with pytest.raises(ValueError):
        hostility_for("nowhere")


def test_accounts_are_deterministic_and_the_second_is_banned() -> None:
    for market in MARKETS:
        accounts = demo_accounts(SEED, market)
        assert accounts == demo_accounts(SEED, market)
        assert [a.banned for a in accounts] == [False, True, False]
        assert len({a.username for a in accounts}) == 3 and all(len(a.password) >= 12 for a in accounts)
    assert demo_accounts(SEED, "hollowmere") != demo_accounts(SEED + 1, "hollowmere")
    text = secrets_toml(SEED, MARKETS)
    assert text.startswith("# dnm-archive accounts (demo market, generated; keep outside the repository)\n")
    parsed = tomllib.loads(text)
    assert parsed["copperline"][1] == {
        "username": demo_accounts(SEED, "copperline")[1].username,
        "password": demo_accounts(SEED, "copperline")[1].password,
    }


def test_cli_accounts_and_hostile_sets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "accounts", "--market", "hollowmere", "--seed", "3"]) == 0
    assert tomllib.loads(capsys.readouterr().out) == tomllib.loads(secrets_toml(3, ["hollowmere"]))
    assert main(["demo", "accounts", "--market", "nowhere"]) == 2
    overrides = parse_hostile_sets(
        ["maintenance_at=[150, 300]", "mirror_down={0: [200, -1]}", "gate_captcha=clock"]
    )
    assert overrides == {"maintenance_at": (150, 300), "mirror_down": {0: (200, -1)}, "gate_captcha": "clock"}
    preset = hostility_for("hollowmere").with_overrides(**overrides)
    assert preset.mirror_down == {0: (200, -1)} and preset.wait_seconds == 1.0
    assert main(["demo", "serve", "--hostile-set", "no_such_key=1"]) == 2
    assert main(["demo", "serve", "--hostile-set", "novalue"]) == 2


# Over real sockets


def test_whole_gate_sequence_on_a_threaded_server() -> None:
    hostility = hostility_for("hollowmere").with_overrides(**NETWORK_OFF, post_login_captcha=0.0)
    with DemoServer("hollowmere", DAY, seed=SEED, hostility=hostility) as server, requests.Session() as s:
        target = server.url + PAGE["hollowmere"]
        wait = s.get(target, timeout=10)
        assert "Redirecting" in wait.text and "__wt" in s.cookies
        time.sleep(1.05)
        queue = s.get(target, timeout=10)
        assert Selector(text=queue.text).css("div.queue")
        time.sleep(1.05)
        challenge = Selector(text=s.get(target, timeout=10).text)
        cid = challenge.css("form.ddos input[name=cid]::attr(value)").get() or ""
        image = s.get(server.url + (challenge.css("img.captcha::attr(src)").get() or ""), timeout=10)
        assert Image.open(io.BytesIO(image.content)).size == captcha.CLOCK_SIZE
        solved = s.post(
            server.url + "/ddos", data={"r": PAGE["hollowmere"], **answer_form("hollowmere", cid)}, timeout=10
        )
        # Followed the 303 to the page, which wants a login: 302 to the login form.
        assert solved.url.startswith(server.url + "/login?next=")
        login = Selector(text=solved.text)
        user = demo_accounts(SEED, "hollowmere")[2]
        cid = login.css("form#login input[name=cid]::attr(value)").get() or ""
        form = login_form(
            "hollowmere",
            user.username,
            user.password,
            next=PAGE["hollowmere"],
            **answer_form("hollowmere", cid),
        )
        content = s.post(server.url + "/login", data=form, timeout=10)
        assert content.status_code == 200 and content.url == target
        assert Selector(text=content.text).css("div.category.selected")

        # Threads share the gate and session state: parallel fetches all get the content.
        cookies = s.cookies.get_dict()

        def fetch(_: int) -> int:
            return requests.get(target, cookies=cookies, allow_redirects=False, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(fetch, range(16))) == {200}
