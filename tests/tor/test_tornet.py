"""The private Tor network: it comes up on loopback, serves the demo markets at their deterministic
onion addresses, isolates circuits by SOCKS username, lets another tor join, and leaves nothing behind."""

from __future__ import annotations

import queue
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import stem.process
from stem import StreamStatus
from stem.control import Controller, EventType
from stem.response.events import StreamEvent

from demo.server import DemoServer
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
            assert fetch(url, tor_network.client_socks_port, username).status_code == 200
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
    # A consensus that never fills up: phase 1 must time out, report, and clean up.
    monkeypatch.setattr(tornet, "_count_lines", lambda text, prefix: 0)
    network = PrivateTorNetwork(tmp_path / "net", align=False)
    with pytest.raises(TorNetworkError) as raised:
        network.start(timeout=5)
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
