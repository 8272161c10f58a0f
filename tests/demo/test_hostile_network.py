"""Network-level hostility over real sockets: killed paths, PROXY circuits, maintenance, faults, mirrors."""

from __future__ import annotations

import http.client
import itertools
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from demo.hostile.accounts import demo_accounts
from demo.hostile.config import Hostility
from demo.hostile.network import FAULT_KINDS, KILLED_BODY, fault_kind
from demo.server import DemoServer, ProxyHeaderError, parse_proxy_line
from demo.skins.noise import login_fields

TIMEOUT = 10.0


@dataclass
class Answer:
    """What a raw connection got back: the status (None if nothing) and the body."""

    status: int | None
    headers: dict[str, str]
    body: bytes


def raw_get(port: int, path: str = "/", preamble: bytes = b"", cookie: str | None = None) -> Answer:
    """One GET on a fresh connection, written by hand, read until the server closes."""
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    request = f"GET {path} HTTP/1.1\r\nHost: demo\r\n{extra}Connection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(preamble + request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data:
        return Answer(None, {}, b"")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return Answer(int(lines[0].split()[1]), headers, body)


def exchange(sock: socket.socket, path: str = "/") -> tuple[http.client.HTTPResponse, bytes]:
    """One GET on a kept-alive connection; the socket stays open for the next one."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: demo\r\n\r\n".encode())
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response, response.read()


def tor_proxy_line(circuit: int) -> bytes:
    """The PROXY line tor's HiddenServiceExportCircuitID haproxy writes for a global circuit id."""
    source = f"fc00:dead:beef:4dad::{circuit >> 16:x}:{circuit & 0xFFFF:x}"
    return f"PROXY TCP6 {source} ::1 {circuit & 0xFFFF} 0\r\n".encode()


def outcome(port: int, path: str, fault_timeout: float) -> str:
    """Fetch once on a new connection and name what happened: "ok", a status, or a fault kind."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    started = time.monotonic()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        length = int(response.getheader("Content-Length", "-1"))
        try:
            body = response.read()
        except http.client.IncompleteRead as exc:
            assert len(exc.partial) == length // 2 and length > 0
            return "truncated"
    except http.client.RemoteDisconnected:
        return "dropped"
    except ConnectionResetError:
        return "reset"
    finally:
        conn.close()
    if response.status == 200:
        assert b"Hollowmere" in body
        return "ok"
    assert b"<center>nginx</center>" in body and b"Hollowmere" not in body
    if response.status == 504:
        assert time.monotonic() - started >= fault_timeout
        return "timeout"
    return str(response.status)


def test_friendly_server_is_one_port_without_network_defences() -> None:
    with DemoServer("copperline", 1) as server:
        assert server.ports == {"mirror0": server.port}
        assert server.mirror_urls == [server.url] and server.phishing_url is None
        assert server.app.extensions["public_urls"] == {"mirror0": server.url}
        assert "demo.network" not in server.app.extensions
        for _ in range(30):  # no budget, no faults: every answer is the page
            answer = raw_get(server.port)
            assert answer.status == 200 and b"Copperline" in answer.body


def test_budget_kills_the_circuit_and_only_a_new_connection_helps() -> None:
    with DemoServer("hollowmere", 1, hostility=Hostility(circuit_budget=3)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            for _ in range(3):  # one kept-alive connection: one circuit
                response, _ = exchange(sock)
                assert response.status == 200 and response.getheader("Connection") is None
            response, body = exchange(sock)
            assert response.status == 403 and response.getheader("Content-Type").startswith("text/plain")
            assert response.getheader("Connection") == "close" and body.decode() == KILLED_BODY
            assert sock.recv(1) == b""  # the server closed the killed path
        assert raw_get(server.port).status == 200  # a new connection is a new circuit


def test_budget_counts_within_the_window_only() -> None:
    hostility = Hostility(circuit_budget=2, circuit_window=0.5)
    with DemoServer("hollowmere", 1, hostility=hostility) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        statuses = []
        for pause in (0, 0, 0.7, 0, 0.7, 0):
            time.sleep(pause)
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        conn.close()
        assert statuses == [200] * 6


def test_parse_proxy_line() -> None:
    # The man page's example (tor(1), HiddenServiceExportCircuitID) and tor's own zero-padding-free form.
    assert parse_proxy_line(b"PROXY TCP6 fc00:dead:beef:4dad::ffff:ffff ::1 65535 42\r\n") == "4294967295"
    assert parse_proxy_line(tor_proxy_line(0xABCDEF)) == str(0xABCDEF)
    assert parse_proxy_line(tor_proxy_line(7)) == "7"
    assert parse_proxy_line(b"PROXY TCP4 10.0.0.5 127.0.0.1 4444 80\r\n") == "conn:10.0.0.5:4444"
    assert parse_proxy_line(b"PROXY UNKNOWN\r\n") is None
    for bad in (b"PROXY TCP6 nonsense ::1 1 2\r\n", b"PROXY TCP6 ::1 ::1 1 2\n", b"PROXY SCTP a b 1 2\r\n"):
        with pytest.raises(ProxyHeaderError):
            parse_proxy_line(bad)


def test_proxy_header_sets_the_circuit_shared_by_its_connections() -> None:
    hostility = Hostility(circuit_budget=2)
    with DemoServer("hollowmere", 1, hostility=hostility, proxy_protocol=True) as server:
        circuit = tor_proxy_line(0xABCDEF)
        # Three connections on one Tor circuit share its budget of two.
        assert raw_get(server.port, preamble=circuit).status == 200
        assert raw_get(server.port, preamble=circuit).status == 200
        killed = raw_get(server.port, preamble=circuit)
        assert killed.status == 403 and killed.body.decode() == KILLED_BODY
        assert raw_get(server.port, preamble=circuit).status == 403  # stays killed on later connections
        # Another circuit, and a connection without a header (its own circuit), are not affected.
        assert raw_get(server.port, preamble=tor_proxy_line(0xABCDF0)).status == 200
        assert raw_get(server.port).status == 200
        assert raw_get(server.port, preamble=b"PROXY UNKNOWN\r\n").status == 200
        # A malformed header ends the connection unanswered.
        assert raw_get(server.port, preamble=b"PROXY TCP6 garbage\r\n").status is None


@pytest.mark.parametrize("market, tag", [("hollowmere", "div"), ("copperline", "section")])
def test_maintenance_window_then_recovery(market: str, tag: str) -> None:
    hostility = Hostility(maintenance_at=(3,), maintenance_seconds=1.0)
    with DemoServer(market, 1, hostility=hostility) as server:
        assert [raw_get(server.port).status for _ in range(2)] == [200, 200]
        started = time.monotonic()
        for _ in range(2):  # request 3 starts it, request 4 is still inside
            down = raw_get(server.port)
            assert down.status == 503 and down.headers["Retry-After"] == "1"
            notice = rf'<{tag} class="maintenance">((?!</{tag}>).)*down for maintenance'
            assert re.search(notice, down.body.decode(), re.S)
        time.sleep(max(0.0, 1.05 - (time.monotonic() - started)))
        assert raw_get(server.port).status == 200


def fault_sequence(hostility: Hostility, paths: list[str]) -> list[str]:
    with DemoServer("hollowmere", 1, hostility=hostility) as server:
        return [outcome(server.port, path, hostility.fault_timeout) for path in paths]


def test_faults_of_every_kind_and_a_retry_may_succeed() -> None:
    hostility = Hostility(fault_rate=0.5, fault_timeout=0.2)
    urls = [f"/?{urlencode({'n': n})}" for n in range(10)]
    paths = [url for url in urls for _ in range(4)]  # each URL fetched four times in a row
    seen = fault_sequence(hostility, paths)
    fetched: dict[str, int] = {}
    expected = []
    for path in paths:
        fetched[path] = fetched.get(path, 0) + 1
        expected.append(fault_kind(1, "hollowmere", path, fetched[path], hostility.fault_rate) or "ok")
    assert seen == expected
    assert set(seen) == {"ok", *FAULT_KINDS}
    retried = [(a, b) for i, (a, b) in enumerate(itertools.pairwise(seen)) if i % 4 != 3]
    assert any(a != "ok" and b == "ok" for a, b in retried)  # a retry of the same URL got the page
    # The same fetch sequence on a fresh market meets the same faults.
    assert fault_sequence(hostility, paths) == seen


def test_faults_spare_posts() -> None:
    with DemoServer("hollowmere", 1, hostility=Hostility(fault_rate=1.0, fault_timeout=0.1)) as server:
        for _ in range(5):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            conn.request(
                "POST", "/login", body=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert conn.getresponse().status == 303
            conn.close()
        assert outcome(server.port, "/", 0.1) in FAULT_KINDS


def test_mirror_down_window() -> None:
    hostility = Hostility(mirrors=3, mirror_down={0: (3, 6), 2: (2, -1)})
    with DemoServer("hollowmere", 1, hostility=hostility) as server:
        primary, second, third = (server.ports[f"mirror{i}"] for i in range(3))
        got = [
            raw_get(primary).status,  # request 1
            raw_get(second).status,  # 2
            raw_get(primary).status,  # 3: mirror 0 down from request 3 ...
            raw_get(second).status,  # 4
            raw_get(primary).status,  # 5 ... to request 6 (exclusive)
            raw_get(primary).status,  # 6
            raw_get(third).status,  # 7: mirror 2 is down for good from request 2
            raw_get(second).status,  # 8
        ]
        assert got == [200, 200, None, 200, None, 200, None, 200]


def test_mirrors_share_one_app_and_its_sessions() -> None:
    hostility = Hostility(mirrors=2, login_required=True)
    with DemoServer("hollowmere", 1, hostility=hostility) as server:
        primary, second = server.ports["mirror0"], server.ports["mirror1"]
        assert primary != second and server.mirror_urls == [server.url, f"http://127.0.0.1:{second}"]
        assert raw_get(second).status == 302  # not logged in
        account = next(a for a in demo_accounts(1, "hollowmere") if not a.banned)
        fields, _ = login_fields(1, "hollowmere", 1)
        form = {
            f.name: (account.username if f.label == "Username" else account.password)
            for f in fields
            if f.real
        }
        conn = http.client.HTTPConnection("127.0.0.1", primary, timeout=TIMEOUT)
        conn.request(
            "POST",
            "/login",
            body=urlencode({**form, "next": "/"}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 303
        sid = re.match(r"sid=([^;]+)", response.getheader("Set-Cookie", "")).group(1)
        answer = raw_get(second, cookie=f"sid={sid}")
        assert answer.status == 200 and b"Browse categories" in answer.body


def test_phishing_port_serves_the_clone() -> None:
    hostility = Hostility(mirrors=2, phishing=True)
    with DemoServer("copperline", 1, hostility=hostility) as server:
        assert set(server.ports) == {"mirror0", "mirror1", "phishing"}
        assert server.phishing_url == f"http://127.0.0.1:{server.ports['phishing']}"
        assert server.phishing_app is not None and server.phishing_app is not server.app
        assert server.app.extensions["public_urls"] == server.local_urls
        server.set_public_urls(
            {"mirror0": "http://a.onion", "mirror1": "http://b.onion", "phishing": "http://p.onion"}
        )
        assert server.phishing_app.extensions["public_urls"]["phishing"] == "http://p.onion"
        genuine = raw_get(server.ports["mirror1"], "/pgp")
        clone = raw_get(server.ports["phishing"], "/pgp")
        assert genuine.status == clone.status == 200
        key = re.compile(rb'<pre class="pgp-key">(.*?)</pre>', re.S)
        assert key.search(genuine.body).group(1) != key.search(clone.body).group(1)
        listed = raw_get(server.ports["phishing"], "/mirrors").body
        assert b"http://p.onion" in listed
