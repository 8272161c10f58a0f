"""The demo market's gates: wait page, EndGame-style queue and challenge, login and sessions, verify page.

Items 5-7 of docs/hostile-demo.md. `install` registers one before-request hook per gate, after the
network-level hooks, so a request meets them in the contract's order: wait page (`__wt` cookie),
anti-DDoS gate (signed `dcap` cookie: queue -> challenge -> solved), then the login check (`sid`
session cookie, and the post-login verify page). The skins' login views call `attempt_login` and
`login_challenge`; everything else lives here.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import (
    Flask,
    abort,
    after_this_request,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
)
from werkzeug.wrappers import Response

from demo.hostile import accounts, captcha
from demo.hostile.captcha import Challenges
from demo.hostile.config import Hostility
from demo.hostile.sessions import Session, Sessions
from demo.rng import rng
from demo.skins import base, noise
from demo.skins.base import state

WAIT_COOKIE = "__wt"
GATE_COOKIE = "dcap"
SESSION_COOKIE = "sid"
GATE_PREFIX = "/ddos"  # POST /ddos and /ddos/captcha/<cid>.png: never gated, never behind login
LOGIN_EXEMPT = frozenset({"/mirrors", "/pgp", "/verify"})  # plus the login page and /ddos*
NOTICE = "Please sign in to continue"
WRONG_CAPTCHA = "Wrong captcha"
INVALID_LOGIN = "Invalid username or password"
BANNED = "This account has been banned"


@dataclass(frozen=True)
class Look:
    """How a skin shows its gates: what the contract lets differ between markets."""

    title: str  # market name in page titles
    in_place: bool  # sign-in and verify pages rendered in place (200) instead of a 302 to them
    inline_images: bool  # challenge images as data: URIs instead of /ddos/captcha/<cid>.png
    login_template: str


LOOKS = {
    "hollowmere": Look("Hollowmere", False, False, "hollowmere/login.html"),
    "copperline": Look("Copperline", True, True, "copperline/signin.html"),
}


@dataclass(frozen=True)
class Challenge:
    """A challenge as a page shows it (the `challenge` macro in _shared/macros.html)."""

    cid: str
    kind: str
    src: str  # image URL or data: URI
    width: int
    height: int


class GateState:
    """Per-app gate state: the hostility, the cookie key, issued challenges and live sessions.

    `clock` gives the time used for every expiry; tests may replace it.
    """

    def __init__(self, hostility: Hostility, seed: int, market: str) -> None:
        self.hostility, self.seed, self.market = hostility, seed, market
        self.look = LOOKS[market]
        self.clock: Callable[[], float] = time.time
        # Derived, not random: the same demo market signs the same cookies the same way.
        self.key = rng(seed, market, "cookie-key").randbytes(32)
        self.challenges = Challenges(seed, market, clock=lambda: self.clock())
        self.sessions = Sessions(
            seed,
            market,
            ttl=hostility.session_ttl,
            max_requests=hostility.session_max_requests,
            clock=lambda: self.clock(),
        )

    def now(self) -> float:
        """The current time, seconds."""
        return self.clock()

    def pack(self, *parts: str) -> str:
        """A signed cookie value: the parts joined by dots, then the signature."""
        payload = ".".join(parts)
        return f"{payload}.{self._sign(payload)}"

    def unpack(self, value: str | None) -> list[str] | None:
        """The parts of a signed cookie value, or None if it is missing or forged."""
        if not value or "." not in value:
            return None
        payload, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        return payload.split(".")

    def _sign(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()[:24]


def gate_state(app: Flask | None = None) -> GateState:
    """The gate state of an app (the current one by default)."""
    return (app or current_app).extensions["gates"]


def _millis(t: float) -> str:
    return str(int(t * 1000))


def _parse_millis(text: str) -> float | None:
    return int(text) / 1000 if text.isdigit() else None


def safe_next(path: str | None) -> str:
    """A local path to go back to; anything else (absent, absolute, scheme-relative) means home."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def _here() -> str:
    """The path and query of the current request."""
    return request.full_path.rstrip("?") if request.query_string else request.path


def _gate_exempt(path: str) -> bool:
    return path == GATE_PREFIX or path.startswith(GATE_PREFIX + "/")


def _login_exempt(path: str) -> bool:
    return path in LOGIN_EXEMPT or path == state().skin.urls.login() or _gate_exempt(path)


# Challenges


def new_challenge(kind: str) -> Challenge:
    """Issue a challenge and describe it for a page, with its image linked or embedded per skin."""
    gs = gate_state()
    cid = gs.challenges.issue(kind)
    width, height = captcha.CLOCK_SIZE if kind == "clock" else captcha.IMAGE_SIZE
    if gs.look.inline_images:
        src = "data:image/png;base64," + b64encode(captcha.render_png(gs.seed, gs.market, cid)).decode()
    else:
        src = f"{GATE_PREFIX}/captcha/{cid}.png"
    return Challenge(cid, kind, src, width, height)


def login_challenge() -> Challenge | None:
    """The challenge inside the login form, if the market puts one there."""
    kind = gate_state().hostility.login_captcha
    return new_challenge(kind) if kind else None


def verify_kind(hostility: Hostility) -> str:
    """The kind of the post-login anti-phishing captcha (the config has no key of its own for it)."""
    return hostility.login_captcha or hostility.gate_captcha or "image"


def captcha_image(cid: str) -> Response:
    """GET /ddos/captcha/<cid>.png: the image of a live challenge."""
    gs = gate_state()
    if not captcha.is_cid(cid) or not gs.challenges.live(cid, gs.hostility.challenge_ttl):
        abort(404)
    response = Response(captcha.render_png(gs.seed, gs.market, cid), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


# 5. Wait page


def _wait_gate() -> Response | None:
    gs = gate_state()
    wait = gs.hostility.wait_seconds
    if not wait or _gate_exempt(request.path):
        return None
    now = gs.now()
    parts = gs.unpack(request.cookies.get(WAIT_COOKIE))
    issued = _parse_millis(parts[0]) if parts and len(parts) == 1 else None
    if issued is not None and now - issued >= wait:
        return None
    remaining = wait if issued is None else wait - (now - issued)
    seconds = max(1, math.ceil(remaining))
    page = render_template(f"{gs.market}/wait.html", seconds=seconds, url=_here())
    response = make_response(page, 200)
    # Coming back early keeps the first cookie: the wait counts from the first visit.
    if issued is None:
        response.set_cookie(WAIT_COOKIE, gs.pack(_millis(now)), httponly=True, samesite="Lax")
    return response


# 6. Anti-DDoS gate


def _gate_page(template: str, status: int = 200, cookie: str | None = None, **context: Any) -> Response:
    gs = gate_state()
    response = make_response(
        render_template(f"{gs.market}/{template}", title=gs.look.title, **context), status
    )
    if cookie is not None:
        response.set_cookie(GATE_COOKIE, gs.pack(cookie, _millis(gs.now())), httponly=True, samesite="Lax")
    return response


def _challenge_page(back: str, error: str | None = None) -> Response:
    kind = gate_state().hostility.gate_captcha
    assert kind is not None
    return _gate_page(
        "challenge.html", cookie="challenge", challenge=new_challenge(kind), r=back, error=error
    )


def _queue_page(issued: float, fresh: bool) -> Response:
    gs = gate_state()
    remaining = max(0.0, gs.hostility.queue_seconds - (gs.now() - issued))
    # The position shrinks as the wait runs out, from a start drawn per queue entry.
    start = rng(gs.seed, gs.market, "queue", _millis(issued)).randint(40, 900)
    position = 1 + int(start * remaining / gs.hostility.queue_seconds)
    return _gate_page(
        "queue.html",
        cookie="queue" if fresh else None,
        position=position,
        seconds=max(1, math.ceil(remaining)),
    )


def _set_solved(response: Response) -> Response:
    gs = gate_state()
    response.set_cookie(GATE_COOKIE, gs.pack("solved", _millis(gs.now())), httponly=True, samesite="Lax")
    return response


def _ddos_gate() -> Response | None:
    gs = gate_state()
    h = gs.hostility
    if not (h.queue_seconds > 0 or h.gate_captcha) or _gate_exempt(request.path):
        return None
    now = gs.now()
    parts = gs.unpack(request.cookies.get(GATE_COOKIE))
    phase, issued = None, None
    if parts and len(parts) == 2:
        phase, issued = parts[0], _parse_millis(parts[1])
    if issued is None:
        phase = None
    if phase == "solved" and issued is not None and now - issued < h.gate_ttl:
        return None
    if phase == "challenge" and h.gate_captcha:
        return _challenge_page(_here())
    if phase == "queue" and issued is not None and now - issued < h.queue_seconds:
        return _queue_page(issued, fresh=False)
    if phase not in ("queue", "challenge") and h.queue_seconds > 0:
        return _queue_page(now, fresh=True)
    if h.gate_captcha:
        return _challenge_page(_here())
    # A queue without a captcha: waiting was the whole test, so this request goes through.
    after_this_request(_set_solved)
    return None


def ddos_submit() -> Response:
    """POST /ddos: a right answer goes back to `r` with the gate solved; a wrong one gets a new challenge."""
    gs = gate_state()
    h = gs.hostility
    if not h.gate_captcha:
        abort(404)
    back = safe_next(request.form.get("r"))
    if gs.challenges.solve(request.form.get("cid", ""), h.challenge_ttl, request.form):
        return _set_solved(redirect(back, code=303))
    return _challenge_page(back, error=f"{WRONG_CAPTCHA}, or it expired. Try again.")


# 7. Login, sessions and the verify page


def _sign_in_page(back: str) -> Response:
    gs = gate_state()
    login = state().skin.urls.login()
    if not gs.look.in_place:
        return redirect(f"{login}?next={quote(back)}", code=302)
    page = render_template(gs.look.login_template, **base.login_context(notice=NOTICE, next_path=back))
    return make_response(page, 200)


def _verify_page(back: str, error: str | None = None) -> Response:
    gs = gate_state()
    challenge = new_challenge(verify_kind(gs.hostility))
    page = render_template(
        f"{gs.market}/verify.html", challenge=challenge, next=back, error=error, title=gs.look.title
    )
    return make_response(page, 200)


def _login_gate() -> Response | None:
    gs = gate_state()
    if not gs.hostility.login_required or _login_exempt(request.path):
        return None
    session = gs.sessions.serve(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return _sign_in_page(_here())
    if not session.verified:
        if gs.look.in_place:
            return _verify_page(_here())
        return redirect(f"/verify?next={quote(_here())}", code=302)
    return None


def current_session() -> Session | None:
    """The request's live session, without counting a request on it."""
    return gate_state().sessions.get(request.cookies.get(SESSION_COOKIE))


def verify() -> Response:
    """GET/POST /verify: the post-login anti-phishing captcha; solved, it goes on to `next`."""
    gs = gate_state()
    back = safe_next(request.values.get("next"))
    session = current_session()
    if session is None:
        return _sign_in_page(back)
    if session.verified:
        return redirect(back, code=303 if request.method == "POST" else 302)
    if request.method == "GET":
        return _verify_page(back)
    if gs.challenges.solve(request.form.get("cid", ""), gs.hostility.challenge_ttl, request.form):
        gs.sessions.verify(session.sid)
        return redirect(back, code=303)
    return _verify_page(back, error=WRONG_CAPTCHA)


def login_enforced() -> bool:
    """True if this app checks logins (a hostile market with `login_required`)."""
    gates = current_app.extensions.get("gates")
    return gates is not None and gates.hostility.login_required


def attempt_login() -> Response | str:
    """Check a POSTed login form: a redirect with a `sid` cookie on success, else the error to show."""
    gs = gate_state()
    h = gs.hostility
    form = request.form
    if h.login_captcha and not gs.challenges.solve(form.get("cid", ""), h.challenge_ttl, form):
        return WRONG_CAPTCHA
    md = state().md
    fields, _ = noise.login_fields(md.seed, md.market, md.day)
    real = {f.label: form.get(f.name, "") for f in fields if f.real}
    account = accounts.find(md.seed, md.market, real["Username"].strip())
    if account is None or not hmac.compare_digest(account.password.encode(), real["Password"].encode()):
        return INVALID_LOGIN
    if account.banned:
        return BANNED
    number = gs.sessions.login_number(account.username)
    check = rng(md.seed, md.market, "post-login", account.username, number).random() < h.post_login_captcha
    session = gs.sessions.create(account.username, verified=not check)
    back = safe_next(form.get("next"))
    response = redirect(f"/verify?next={quote(back)}" if check else back, code=303)
    response.set_cookie(SESSION_COOKIE, session.sid, httponly=True, samesite="Lax")
    return response


def install(app: Flask, hostility: Hostility) -> None:
    """Register the gate hooks (after the network-level ones) and the /ddos and /verify routes."""
    demo = app.extensions["demo"]
    app.extensions["gates"] = GateState(hostility, demo.md.seed, demo.md.market)
    app.before_request(_wait_gate)
    app.before_request(_ddos_gate)
    app.before_request(_login_gate)
    app.add_url_rule(GATE_PREFIX, "ddos", ddos_submit, methods=["POST"])
    app.add_url_rule(f"{GATE_PREFIX}/captcha/<cid>.png", "ddos_captcha", captcha_image)
    app.add_url_rule("/verify", "verify", verify, methods=["GET", "POST"])
