"""Network-level hostility of the demo market: mirrors down, killed paths, maintenance and transient faults.

Items 1-4 of docs/hostile-demo.md ("Order in which a request meets the defences"), installed as
before-request hooks ahead of the gates. The server (demo/server.py) tells the app which mirror
and which circuit a request came in on through the WSGI environ (`MIRROR`, `CIRCUIT`); what an
HTTP response cannot express (closing without an answer, a reset, a truncated body) the app asks
of the server by setting `TRANSPORT` in the environ, which the server carries out.

Counters live in one `NetworkState` per app (`app.extensions["demo.network"]`), shared by every
mirror the app answers on and guarded by a lock, since the server answers on many threads.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from flask import Flask, Response, current_app, g, render_template, request
from jinja2 import TemplateNotFound

from demo.hostile.config import Hostility
from demo.rng import rng
from demo.skins.base import state

# WSGI environ keys shared with the server.
MIRROR = "demo.mirror"  # "mirror0", "mirror1", ... or "phishing": which port the request came in on
CIRCUIT = "demo.circuit"  # Tor's global circuit id (PROXY header), or "conn:<ip>:<port>" per connection
TRANSPORT = "demo.transport"  # a `Transport` the server must carry out instead of sending the response

EXTENSION = "demo.network"
FAULT_KINDS = ("500", "502", "503", "timeout", "truncated", "reset")
KILLED_BODY = "403 DDOS filter killed your path."
# nginx's own code for "close the connection without a response"; only a test client ever sees it.
NO_RESPONSE = 444
# How many requests pass between sweeps of circuits whose window has emptied.
SWEEP_EVERY = 1000

_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
# The element holding the maintenance notice, per skin (used until the skin's template exists).
_MAINTENANCE_TAG = {"hollowmere": "div", "copperline": "section"}


class Transport(StrEnum):
    """What the server does to the connection instead of (or while) answering."""

    DROP = "drop"  # close without answering (a mirror that is down)
    RESET = "reset"  # close with RST, nothing sent
    TRUNCATE = "truncate"  # send the headers with the full Content-Length, half the body, then close


class NetworkState:
    """The counters behind the network defences of one app; every method is thread-safe."""

    def __init__(self, hostility: Hostility, clock: Callable[[], float] = time.monotonic) -> None:
        self.hostility = hostility
        self.clock = clock
        self._lock = threading.Lock()
        self._requests = 0
        self._maintenance_until = 0.0
        self._fetches: dict[str, int] = {}
        self._windows: dict[str, deque[float]] = {}
        self._killed: set[str] = set()

    def next_request(self) -> int:
        """Number the request that just arrived (1 for the first, over every mirror).

        Maintenance starts here, at its request number, even if that request is turned away earlier.
        """
        now = self.clock()
        with self._lock:
            self._requests += 1
            if self._requests in self.hostility.maintenance_at:
                until = now + self.hostility.maintenance_seconds
                self._maintenance_until = max(self._maintenance_until, until)
            return self._requests

    def mirror_down(self, mirror: int, number: int) -> bool:
        """True if `mirror` is inside a down window at request `number`: `from <= number < to` (to=-1: on)."""
        window = self.hostility.mirror_down.get(mirror)
        if window is None:
            return False
        start, end = window
        return number >= start and (end == -1 or number < end)

    def charge(self, circuit: str) -> bool:
        """Count one request against a circuit; True if the circuit is (now) killed."""
        budget, span = self.hostility.circuit_budget, self.hostility.circuit_window
        now = self.clock()
        with self._lock:
            if circuit in self._killed:
                return True
            window = self._windows.setdefault(circuit, deque())
            window.append(now)
            while window and window[0] <= now - span:
                window.popleft()
            if len(window) > budget:
                self._killed.add(circuit)
                del self._windows[circuit]
                return True
            if self._requests % SWEEP_EVERY == 0:
                self._sweep(now - span)
            return False

    def _sweep(self, horizon: float) -> None:
        """Drop the windows of circuits not seen since `horizon` (the lock is held)."""
        for circuit in [c for c, w in self._windows.items() if not w or w[-1] <= horizon]:
            del self._windows[circuit]

    def forget(self, circuit: str) -> None:
        """Drop a circuit that has ended, so a later connection reusing its id starts afresh."""
        with self._lock:
            self._windows.pop(circuit, None)
            self._killed.discard(circuit)

    def maintenance_left(self) -> float:
        """Seconds of maintenance left (0.0 when the market is up)."""
        now = self.clock()
        with self._lock:
            return max(0.0, self._maintenance_until - now)

    def nth_fetch(self, url: str) -> int:
        """Count one more fetch of `url` and return its number (1 for the first)."""
        with self._lock:
            self._fetches[url] = self._fetches.get(url, 0) + 1
            return self._fetches[url]


def network(app: Flask | None = None) -> NetworkState:
    """The network state of an app (the current one by default)."""
    return (app or current_app).extensions[EXTENSION]


def connection_closed(app: Flask, circuit: str) -> None:
    """Tell the app a per-connection circuit has ended (the server calls this; no-op without hostility).

    Client ports are reused, so "conn:<ip>:<port>" must not stay killed after its connection closed.
    """
    net: NetworkState | None = app.extensions.get(EXTENSION)
    if net is not None:
        net.forget(circuit)


def fault_kind(seed: int, market: str, url: str, nth: int, rate: float) -> str | None:
    """The fault served on the nth fetch of `url`, or None; a pure function, so runs repeat."""
    stream = rng(seed, market, "fault", url, nth)
    if stream.random() >= rate:
        return None
    return stream.choice(FAULT_KINDS)


def nginx_error(code: int) -> Response:
    """A bare nginx-style error page, with no market markup."""
    title = f"{code} {_REASONS[code]}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(body, status=code, mimetype="text/html")


def no_response(transport: Transport) -> Response:
    """Ask the server to drop or reset the connection; the empty 444 stands in for nothing."""
    request.environ[TRANSPORT] = transport
    return Response(b"", status=NO_RESPONSE)


def maintenance_page(seconds_left: float) -> Response:
    """The skin's 503 maintenance page, with Retry-After."""
    skin = state().skin.name
    minutes = max(1, math.ceil(seconds_left / 60))
    name = f"{skin}/maintenance.html"
    try:
        body = render_template(name, minutes=minutes)
    except TemplateNotFound as exc:
        if exc.name != name:  # a template the maintenance page itself needs is missing: a real bug
            raise
        tag = _MAINTENANCE_TAG.get(skin, "div")
        body = (
            f"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body>\n"
            f'<{tag} class="maintenance"><h1>Maintenance</h1><p>The market is down for maintenance, '
            f"back in about {minutes} minute{'s' if minutes != 1 else ''}.</p></{tag}>\n</body></html>\n"
        )
    response = Response(body, status=503, mimetype="text/html")
    response.headers["Retry-After"] = str(max(1, math.ceil(seconds_left)))
    return response


def _mirror_index() -> int | None:
    """The index of the mirror the request came in on; a test client counts as the primary."""
    mirror = request.environ.get(MIRROR, "mirror0")
    return int(mirror[len("mirror") :]) if mirror.startswith("mirror") else None


def _circuit() -> str:
    """The request's circuit; without the server's, the client's address stands in."""
    environ = request.environ
    default = f"conn:{environ.get('REMOTE_ADDR', '')}:{environ.get('REMOTE_PORT', '')}"
    return str(environ.get(CIRCUIT, default))


def _count() -> None:
    g.demo_request_number = network().next_request()


def _mirror_down() -> Response | None:
    index = _mirror_index()
    if index is not None and network().mirror_down(index, g.demo_request_number):
        return no_response(Transport.DROP)
    return None


def _killed_path() -> Response | None:
    if not network().charge(_circuit()):
        return None
    response = Response(KILLED_BODY, status=403, mimetype="text/plain")
    response.headers["Connection"] = "close"
    return response


def _maintenance() -> Response | None:
    seconds_left = network().maintenance_left()
    return maintenance_page(seconds_left) if seconds_left > 0 else None


def _fault() -> Response | None:
    if request.method != "GET":
        return None
    query = request.query_string.decode("latin-1")
    # The path, not the full URL: the same page on another mirror or port is the same fetch.
    url = request.path + (f"?{query}" if query else "")
    net, demo = network(), state()
    kind = fault_kind(demo.md.seed, demo.md.market, url, net.nth_fetch(url), net.hostility.fault_rate)
    if kind is None:
        return None
    if kind == "timeout":
        time.sleep(net.hostility.fault_timeout)
        return nginx_error(504)
    if kind == "truncated":
        request.environ[TRANSPORT] = Transport.TRUNCATE  # the page is built as usual, then cut
        return None
    if kind == "reset":
        return no_response(Transport.RESET)
    return nginx_error(int(kind))


def install(app: Flask, hostility: Hostility) -> None:
    """Register the network defences that are on, in the order a request meets them."""
    if not 0.0 <= hostility.fault_rate <= 1.0:
        raise ValueError(f"fault_rate must be between 0.0 and 1.0, got {hostility.fault_rate}")
    if hostility.mirrors < 1:
        raise ValueError(f"mirrors must be at least 1, got {hostility.mirrors}")
    app.extensions[EXTENSION] = NetworkState(hostility)
    app.before_request(_count)
    if hostility.mirror_down:
        app.before_request(_mirror_down)
    if hostility.circuit_budget > 0:
        app.before_request(_killed_path)
    if hostility.maintenance_at:
        app.before_request(_maintenance)
    if hostility.fault_rate > 0:
        app.before_request(_fault)
