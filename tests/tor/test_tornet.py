"""The private Tor network: it comes up on loopback, serves the demo markets at their deterministic
onion addresses, isolates circuits by SOCKS username, lets another tor join, and leaves nothing behind."""

from __future__ import annotations

import contextlib
import queue
import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import stem.process
from parsel import Selector
from stem import StreamStatus
from stem.control import Controller, EventType
from stem.response.events import StreamEvent

from demo.hostile.config import format_override, parse_overrides
from demo.mirrors import market_key, phisher_key
from demo.server import DemoServer
from demo.world import MARKETS
from dnm.pgpsig import verify_cleartext
from tests.tor.support import FIGURES, require_tor
from transport import tornet
from transport.errors import TorNotInstalled
from transport.onion_keys import check_v3_onion, onion_key_for, write_hidden_service_dir
from transport.tornet import (
    PrivateTorNetwork,
    TorNetworkError,
    down,
    find_tor,
    free_ports,
    load_state,
    pid_alive,
    serve_demo_over_tor,
    socks_connect,
    socks_proxy_url,
    status,
    up,
    wait_reachable,
)

DIRAUTHORITY = re.compile(r"^dnmauth\d orport=\d+ no-v2 v3ident=[0-9A-F]{40} 127\.0\.0\.1:\d+ [0-9A-F]{40}$")


def fetch(url: str, socks_port: int, username: str) -> requests.Response:
    """One GET through tor on a fresh connection (a kept-alive one would open no new stream)."""
    proxy = socks_proxy_url(socks_port, username)
    return requests.get(
        url, proxies={"http": proxy, "https": proxy}, timeout=30, headers={"Connection": "close"}
    )


def controller(port: int) -> Controller:
    """An authenticated controller (cookie auth, found through PROTOCOLINFO)."""
    ctl = Controller.from_port(address="127.0.0.1", port=port)
    ctl.authenticate()
    return ctl


def tcp_endpoints(pid: int) -> list[tuple[str, str]]:
    """(local, remote) hex addresses of every TCP/UDP socket of `pid`, IPv6 ones marked "v6"."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "udp", "tcp6", "udp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                local, remote = fields[1].split(":")[0], fields[2].split(":")[0]
                found.append(("v6", "v6") if table.endswith("6") else (local, remote))
    return found


def test_network_comes_up_on_loopback_only(tor_network: PrivateTorNetwork) -> None:
    lines = tor_network.dirauthority_lines()
    assert len(lines) == 4 and all(DIRAUTHORITY.match(line) for line in lines), lines
    with controller(tor_network.client_control_port) as ctl:
        assert "PROGRESS=100" in ctl.get_info("status/bootstrap-phase")
        assert ctl.get_info("status/circuit-established") == "1"
    assert tor_network.client_cookie_path.stat().st_size == 32
    loopback, anywhere = "0100007F", "00000000"  # 127.0.0.1 and 0.0.0.0, little-endian hex
    for name, pid in tor_network.pids().items():
        endpoints = tcp_endpoints(pid)
        assert endpoints, f"{name} has no sockets"
        for local, remote in endpoints:
            assert local == loopback and remote in (loopback, anywhere), (name, local, remote)
    assert tor_network.start_seconds is not None and tor_network.start_seconds < 60
    assert tor_network.rss_bytes() < 1024 * 2**20


def test_onion_page_is_fetched_with_remote_name_resolution(
    tor_network: PrivateTorNetwork, demo_onions: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = demo_onions["hollowmere"]
    host = urlsplit(url).hostname
    assert host is not None
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(host, 80)  # the local resolver knows nothing of onions
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def spy(name: str, *args: object, **kwargs: object) -> object:
        looked_up.append(name)
        return real_getaddrinfo(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    began = time.monotonic()
    response = fetch(url, tor_network.client_socks_port, "resolution-check")
    FIGURES["onion fetch, new SOCKS identity"] = f"{(time.monotonic() - began) * 1000:.0f} ms"
    assert response.status_code == 200
    assert "<title>Hollowmere Market</title>" in response.text
    assert host not in looked_up  # socks5h: tor resolved it, not us


def test_each_socks_username_gets_its_own_rendezvous_circuit(
    tor_network: PrivateTorNetwork, demo_onions: dict[str, str]
) -> None:
    url = demo_onions["copperline"]
    host = urlsplit(url).hostname
    opened: queue.Queue[StreamEvent] = queue.Queue()

    def on_stream(event: StreamEvent) -> None:
        if event.status == StreamStatus.SUCCEEDED and event.target_address == host:
            opened.put(event)

    with controller(tor_network.client_control_port) as ctl:
        ctl.add_event_listener(on_stream, EventType.STREAM)
        circuit_of = {}
        for label, username in (("alice", "alice"), ("bob", "bob"), ("alice again", "alice")):
            # Until it answers 200: on the four-relay network a rendezvous now and then fails ("general
            # SOCKS server failure") and the next one succeeds, on the same username's isolation; the
            # stream that succeeds names the circuit the username keeps.
            tor_network.wait_reachable(url, timeout=60, username=username)
            circuit_of[label] = opened.get(timeout=10).circ_id
        circuits = {circ.id: circ for circ in ctl.get_circuits()}
    assert circuit_of["alice"] == circuit_of["alice again"] != circuit_of["bob"]
    for username in ("alice", "bob"):
        circuit = circuits[circuit_of[username]]
        assert circuit.socks_username == username
        assert circuit.purpose == "HS_CLIENT_REND" and circuit.rend_query == host.removesuffix(".onion")


def test_tor_serves_the_deterministic_addresses(
    tor_network: PrivateTorNetwork, demo_onions: dict[str, str]
) -> None:
    for market, url in demo_onions.items():
        assert urlsplit(url).hostname == onion_key_for(market).address
    with controller(tor_network.service_control_port) as ctl:
        published = set(ctl.list_ephemeral_hidden_services(detached=True))
    assert {onion_key_for(market).service_id for market in demo_onions} <= published


def test_a_fresh_onion_service_is_added_and_removed(tor_network: PrivateTorNetwork) -> None:
    with DemoServer("copperline", 2) as server:
        began = time.monotonic()
        url = tor_network.add_onion_service(server.port, name="fresh")
        published = time.monotonic() - began
        reached = tor_network.wait_reachable(url, timeout=30)
        FIGURES["extra onion service: ADD_ONION + first fetch"] = f"{published:.1f} s + {reached:.1f} s"
        check_v3_onion(urlsplit(url).hostname or "")
        assert tor_network.onions["fresh"] == url
        tor_network.remove_onion_service(url)
        assert "fresh" not in tor_network.onions


def test_crawler_tor_joins_and_hidden_service_dir_keeps_its_address(
    tor_network: PrivateTorNetwork, demo_onions: dict[str, str], tmp_path: Path
) -> None:
    """A tor launched by stem the way the crawler does joins the network; it also publishes an onion
    from a HiddenServiceDir written by write_hidden_service_dir, at the address derived from the key."""
    key = onion_key_for("hidden-service-dir")
    hs = write_hidden_service_dir(tmp_path / "hs", key)
    (hs / "hostname").unlink()  # so the hostname read back below is the one tor computed
    (socks,) = free_ports(1)
    with DemoServer("hollowmere", 2) as server:
        config = tor_network.joining_tor_config(tmp_path / "crawler-tor", socks)
        config["HiddenServiceDir"] = str(hs)
        config["HiddenServicePort"] = f"80 127.0.0.1:{server.port}"
        began = time.monotonic()
        process = stem.process.launch_tor_with_config(
            config, tor_cmd=find_tor(), take_ownership=True, completion_percent=100, timeout=60
        )
        try:
            FIGURES["crawler tor joining: bootstrap"] = f"{time.monotonic() - began:.1f} s"
            assert (hs / "hostname").read_text().strip() == key.address
            first = wait_reachable(demo_onions["copperline"], socks, timeout=30)
            FIGURES["crawler tor joining: first onion fetch"] = f"{first:.1f} s"
            tor_network.wait_reachable(key.url, timeout=30)
            assert "Hollowmere" in fetch(key.url, tor_network.client_socks_port, "hsdir").text
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert not pid_alive(process.pid)


def test_state_file_lets_another_process_attach(
    tor_network: PrivateTorNetwork, demo_onions: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "tornet.json"
    tor_network.save_state(path)
    state = load_state(path)
    assert state.socks_port == tor_network.client_socks_port
    assert state.control_port == tor_network.client_control_port
    assert state.cookie_path == tor_network.client_cookie_path
    assert state.dirauthority_lines == tor_network.dirauthority_lines()
    assert state.pids == tor_network.pids() and len(state.pids) == 6
    assert demo_onions.items() <= state.onions.items()
    assert state.joining_tor_config("/x", 1) == tor_network.joining_tor_config("/x", 1)
    with controller(state.control_port) as ctl:  # attach with nothing but the state
        assert "PROGRESS=100" in ctl.get_info("status/bootstrap-phase")


@pytest.mark.slow
def test_up_status_down_in_a_background_process(tmp_path: Path) -> None:
    """The `dnm tornet up|status|down` lifecycle: a second network, in its own process."""
    require_tor()
    state_file = tmp_path / "tornet.json"
    began = time.monotonic()
    state = up(state_file, tmp_path / "work", markets=["copperline"], day=1)
    FIGURES["up (background network + 1 demo onion, reachable)"] = f"{time.monotonic() - began:.1f} s"
    try:
        assert state.onions == {"copperline": onion_key_for("copperline").url}
        report = status(state_file, probe=True)
        assert report["running"] and report["reachable"] == {"copperline": True}
        with pytest.raises(TorNetworkError, match="already running"):
            up(state_file, tmp_path / "work")
    finally:
        stopped = down(state_file)
    assert stopped["stopped"] and len(stopped["pids"]) == 7  # 6 tors and the background process
    assert not any(pid_alive(pid) for pid in stopped["pids"])
    assert not state_file.exists()
    assert status(state_file)["running"] is False
    assert down(state_file)["stopped"] is False


def test_a_phase_timeout_names_the_phase_and_shows_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tor()
    # A consensus that never fills up: phase 1 must time out, report, and clean up. Only the consensus
    # wait is cut short; the phases before it keep a generous budget, since on a loaded machine the
    # authorities' control ports alone can take longer than a short overall timeout (and would be named).
    monkeypatch.setattr(tornet, "_count_lines", lambda text, prefix: 0)
    await_consensus = PrivateTorNetwork._await_consensus

    def await_briefly(self: PrivateTorNetwork, deadline: float) -> None:
        await_consensus(self, min(deadline, time.monotonic() + 3))

    monkeypatch.setattr(PrivateTorNetwork, "_await_consensus", await_briefly)
    network = PrivateTorNetwork(tmp_path / "net", align=False)
    with pytest.raises(TorNetworkError) as raised:
        network.start(timeout=120)
    message = str(raised.value)
    assert "gave up waiting for a consensus with all 4 relays" in message
    assert "--- dnmauth0: notice.log ---" in message and "[notice]" in message
    assert len(network.pids()) == 4 and not any(pid_alive(pid) for pid in network.pids().values())


def test_missing_tor_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNM_TOR_BINARY", str(tmp_path / "no-such-tor"))
    with pytest.raises(TorNotInstalled, match=r"apt-get install tor\) or set DNM_TOR_BINARY"):
        PrivateTorNetwork(tmp_path / "net")
    with pytest.raises(TorNotInstalled):
        up(tmp_path / "state.json", tmp_path / "work")


# --- onion services with exported circuit ids (HiddenServiceExportCircuitID haproxy) -------------

PROXY_LINE = re.compile(rb"PROXY TCP6 (fc00:dead:beef:4dad::[0-9a-f]+:[0-9a-f]+) ::1 (\d+) 80\r\n")


class FirstLineServer:
    """A raw TCP server on loopback recording the first line of every connection (the PROXY header)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(10)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\n" not in data and len(data) < 200:
                        chunk = conn.recv(200)
                        if not chunk:
                            break
                        data += chunk
                self.lines.put(data.split(b"\n", 1)[0] + b"\n")
                with contextlib.suppress(OSError):
                    conn.sendall(b"ok\n")

    def close(self) -> None:
        self.sock.close()


def exchange(address: str, socks_port: int, username: str, timeout: float = 30.0) -> bytes:
    """Connect through tor as `username`, send a line, return the answer."""
    with socks_connect(address, 80, socks_port, username=username, timeout=timeout) as sock:
        sock.sendall(b"hello\n")
        return sock.recv(16)


def test_exported_circuit_ids_reach_the_server_and_differ_per_socks_username(
    tor_network: PrivateTorNetwork,
) -> None:
    server = FirstLineServer()
    key = onion_key_for("export-circuit-id")
    try:
        began = time.monotonic()
        url = tor_network.add_onion_service(server.port, key, name="exported", export_circuit_id=True)
        FIGURES["onion service with exported circuit ids: SETCONF + upload"] = (
            f"{time.monotonic() - began:.1f} s"
        )
        assert url == key.url and tor_network.onions["exported"] == url
        circuits = {}
        for label, username in (("alice", "alice"), ("bob", "bob"), ("alice again", "alice")):
            assert exchange(key.address, tor_network.client_socks_port, username) == b"ok\n"
            line = server.lines.get(timeout=10)
            match = PROXY_LINE.fullmatch(line)
            assert match, line
            circuits[label] = match.group(1)
        assert circuits["alice"] == circuits["alice again"] != circuits["bob"]
        with controller(tor_network.service_control_port) as ctl:
            configured = ctl.get_hidden_service_conf()
        (options,) = [v for k, v in configured.items() if k.endswith(key.service_id)]
        assert options["HiddenServiceExportCircuitID"] == "haproxy"
    finally:
        with contextlib.suppress(TorNetworkError):
            tor_network.remove_onion_service(key.url)
        server.close()
    assert "exported" not in tor_network.onions


def test_exported_services_are_configured_together_and_removed_one_by_one(
    tor_network: PrivateTorNetwork,
) -> None:
    server = FirstLineServer()
    first, second = onion_key_for("export-first"), onion_key_for("export-second")
    try:
        tor_network.add_onion_service(server.port, first, export_circuit_id=True)
        # A second SETCONF must carry the first service along, or tor would drop it.
        tor_network.add_onion_service(server.port, second, export_circuit_id=True)
        for key in (first, second):
            assert (
                exchange(key.address, tor_network.client_socks_port, f"both-{key.service_id[:8]}") == b"ok\n"
            )
            assert PROXY_LINE.fullmatch(server.lines.get(timeout=10))
        with pytest.raises(TorNetworkError, match="already published"):
            tor_network.add_onion_service(server.port, first, export_circuit_id=True)
        tor_network.remove_onion_service(first.url)
        with controller(tor_network.service_control_port) as ctl:
            dirs = list(ctl.get_hidden_service_conf())
        assert [Path(d).name for d in dirs] == [second.service_id]
        assert exchange(second.address, tor_network.client_socks_port, "after-removal") == b"ok\n"
        assert PROXY_LINE.fullmatch(server.lines.get(timeout=10))
        # Tor refuses the stream once the client learns the service is gone, or keeps trying its old
        # introduction points until the timeout: either way nothing reaches the server.
        with pytest.raises((TorNetworkError, TimeoutError)):
            exchange(first.address, tor_network.client_socks_port, "removed", timeout=15)
        assert server.lines.empty()
    finally:
        for key in (first, second):
            with contextlib.suppress(TorNetworkError, ValueError):
                tor_network.remove_onion_service(key.url)
        server.close()
    with controller(tor_network.service_control_port) as ctl:
        assert ctl.get_hidden_service_conf() == {}


# Gates and faults off, a small circuit budget, three mirrors of which the last is down from the start,
# and the phishing clone: what is tested here is the Tor side of the hostile demo.
OPEN_HOSTILE = {
    "wait_seconds": 0.0,
    "queue_seconds": 0.0,
    "gate_captcha": None,
    "login_required": False,
    "fault_rate": 0.0,
    "maintenance_at": (),
    "circuit_budget": 3,
    "circuit_window": 600.0,
    "mirrors": 3,
    "mirror_down": {2: (1, -1)},
    "phishing": True,
}


def signed_urls(page: str, key_armored: str) -> list[str]:
    """The URLs of the signed mirror list on a /mirrors page, after checking its signature."""
    signed = Selector(page).css("pre.pgp-signed::text").get()
    assert signed is not None, page[:500]
    return [line for line in verify_cleartext(signed, key_armored).lines if line.startswith("http")]


def test_hostile_demo_publishes_every_mirror_and_the_clone_with_circuit_ids(
    tor_network: PrivateTorNetwork, demo_onions: dict[str, str]
) -> None:
    # The friendly demo onions are up on the same tor, and one key cannot be served twice: the hostile
    # markets take the addresses of key_seed 2.
    with pytest.raises(TorNetworkError, match="already published"):
        tor_network.add_onion_service(1, onion_key_for("hollowmere"), export_circuit_id=True)
    began = time.monotonic()
    with serve_demo_over_tor(
        tor_network, MARKETS, day=1, key_seed=2, hostile=True, hostile_set=OPEN_HOSTILE
    ) as onions:
        FIGURES["hostile demo: 2 markets x (3 mirrors + clone) published"] = (
            f"{time.monotonic() - began:.1f} s"
        )
        socks = tor_network.client_socks_port
        for market in MARKETS:
            labels = [market, f"{market}-mirror1", f"{market}-mirror2"]
            assert onions.mirrors[market] == [onion_key_for(label, 2).url for label in labels]
            assert onions.urls[market] == onion_key_for(market, 2).url
            assert onions.phishing[market] == onion_key_for(f"{market}-phishing", 2).url
            genuine = fetch(onions.mirrors[market][1] + "/mirrors", socks, "mirrors").text
            assert signed_urls(genuine, market_key(1, market).armored) == onions.mirrors[market]
            clone = fetch(onions.phishing[market] + "/mirrors", socks, "clone").text
            listed = signed_urls(clone, phisher_key(1, market).armored)
            assert listed == [onions.phishing[market], *onions.mirrors[market]]
            # Mirror 2 is published (the wait skipped it) but drops every request.
            with pytest.raises(requests.ConnectionError):
                fetch(onions.mirrors[market][2] + "/pgp", socks, "down")
        # The circuit id reaches the server: one SOCKS identity (one circuit) is killed after its budget,
        # although every fetch is a new TCP connection; another identity is not.
        url = onions.urls["hollowmere"] + "/pgp"
        answers = [fetch(url, socks, "budget-a") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 403]
        assert "killed your path" in answers[-1].text
        assert fetch(url, socks, "budget-b").status_code == 200
    with controller(tor_network.service_control_port) as ctl:
        assert ctl.get_hidden_service_conf() == {}


def test_friendly_demo_signs_its_onion_address(
    tor_network: PrivateTorNetwork, demo_onions: dict[str, str]
) -> None:
    for market, url in demo_onions.items():
        # A fresh circuit to an onion can fail once on the private network (a SOCKS general failure in
        # CI); the page must still answer within a minute.
        tor_network.wait_reachable(url + "/mirrors", timeout=60, username="friendly-mirrors")
        page = fetch(url + "/mirrors", tor_network.client_socks_port, "friendly-mirrors").text
        assert signed_urls(page, market_key(1, market).armored) == [url]


def test_hostile_set_survives_the_trip_to_the_background_process() -> None:
    for key, value in OPEN_HOSTILE.items():
        assert parse_overrides([format_override(key, value)]) == {key: value}


@pytest.mark.slow
def test_up_hostile_records_mirrors_and_clone(tmp_path: Path) -> None:
    require_tor()
    state_file = tmp_path / "tornet.json"
    settings = {**OPEN_HOSTILE, "mirrors": 2, "mirror_down": {1: (1, -1)}}
    state = up(state_file, tmp_path / "work", markets=["copperline"], hostile=True, hostile_set=settings)
    try:
        mirrors = [onion_key_for("copperline").url, onion_key_for("copperline-mirror1").url]
        phishing = onion_key_for("copperline-phishing").url
        assert state.mirrors == {"copperline": mirrors} and state.phishing == {"copperline": phishing}
        assert state.onions == {
            "copperline": mirrors[0],
            "copperline-mirror1": mirrors[1],
            "copperline-phishing": phishing,
        }
        report = status(state_file)
        assert (
            report["running"] and report["mirrors"] == state.mirrors and report["phishing"] == state.phishing
        )
        page = fetch(mirrors[0] + "/mirrors", state.socks_port, "up-hostile").text
        assert signed_urls(page, market_key(1, "copperline").armored) == mirrors
        with pytest.raises(requests.ConnectionError):  # mirror_down reached the background process
            fetch(mirrors[1] + "/mirrors", state.socks_port, "up-hostile")
    finally:
        down(state_file)
