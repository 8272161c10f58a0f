"""A private Tor network on loopback: four directory authorities, an onion-service tor and a client tor.

Tests and the offline demo reach the demo marketplace as real v3 onion services through it, with no
internet. The start is phased (see docs/tornet.md and /work/shared/research/tor-private-network.md):
keys for the authorities, then the authorities alone until each holds a consensus listing every relay
with its microdescriptor, then the onion-service tor and the client tor, which then bootstrap in
under a second instead of backing off on 404s. Onion services are published with ADD_ONION, or,
when the server needs each client's circuit id (`export_circuit_id`), from HiddenServiceDirs set with
SETCONF, the only way tor exports circuit ids (HiddenServiceExportCircuitID haproxy). `up`/`down`/
`status` run the same network with the demo markets in a background process described by a JSON
state file, for the `dnm tornet` command.

Environment: `DNM_TOR_BINARY` names the tor binary (default: `tor` on PATH, then /usr/sbin/tor);
`tor-gencert` is looked for beside it, then on PATH.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import requests
import stem
from stem.control import Controller, EventType
from stem.response.events import HSDescEvent

from transport.errors import TorError, TorNotInstalled
from transport.onion_keys import (
    OnionKey,
    add_onion_key_blob,
    onion_key_for,
    onion_key_from_seed,
    write_hidden_service_dir,
)
from transport.process import SEARCH_PATH_FALLBACK, render_torrc, tor_binary

if TYPE_CHECKING:
    from demo.hostile.config import Hostility
    from demo.server import DemoServer

log = logging.getLogger(__name__)

TorConfig = dict[str, str | list[str]]
T = TypeVar("T")

STATE_VERSION = 1
# Onion-service circuits are four hops and never reuse a relay, so fewer relays cannot work.
MIN_AUTHORITIES = 4
STOP_GRACE_SECONDS = 5.0
# The authorities' first vote is timed by the wall clock: at 3 s past each multiple of 5 s
# (TestingV3AuthInitialVotingInterval 5, vote and dist delays shrunk to 1 s each). Started at most
# ALIGN_WINDOW_SECONDS past a multiple, they vote >= 2 s after starting, time enough to exchange
# descriptors, so the first consensus lists every relay. Measured here: starts at offsets 0-2.0 s
# all gave a full first consensus (phase 1: 5.9 s at 0, 4.6 s at 1.0, 3.6 s at 2.0); 2.5 s missed
# it and cost a 10 s voting round. 1.0 s keeps a 1 s margin for slower machines.
VOTING_GRID_SECONDS = 5.0
ALIGN_WINDOW_SECONDS = 1.0


class TorNetworkError(TorError):
    """The private network did not come up, a node died, or a process survived `stop()`.

    The message ends with the last lines of every node's log.
    """


# --- binaries and ports -------------------------------------------------------------------------


def find_tor(binary: str | None = None) -> str:
    """The tor binary (see transport.process.tor_binary)."""
    return tor_binary(binary)


def find_tor_gencert(tor: str) -> str:
    """tor-gencert beside the tor binary, else on PATH (it mints the authorities' v3 keys)."""
    beside = Path(tor).with_name("tor-gencert")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("tor-gencert") or shutil.which(
        "tor-gencert", path=os.pathsep.join(SEARCH_PATH_FALLBACK)
    )
    if found is None:
        raise TorNotInstalled("tor-gencert")
    return found


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that nothing listens on (bound to port 0 together)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- torrc --------------------------------------------------------------------------------------


def network_options(dirauthority_lines: Sequence[str]) -> TorConfig:
    """Options every tor on the network needs, the crawler's own included (torrc or stem config).

    Merge them into any client config, e.g. transport.process.launch_tor(extra_config=...).
    """
    return {
        "TestingTorNetwork": "1",
        "DirAuthority": list(dirauthority_lines),
        "UseDefaultFallbackDirs": "0",
        "ClientUseIPv6": "0",
        "AssumeReachable": "1",  # no reachability self-tests: they cost seconds and prove nothing here
        "PathsNeededToBuildCircuits": "0.67",
        # Parsing the GeoIP files costs ~5 s per tor when six start at once on two cores.
        "GeoIPFile": '""',
        "GeoIPv6File": '""',
        # Vanguards-lite picks the last hop of an onion-service circuit without excluding the guard. In
        # the first consensuses relays' weights are their self-observed bandwidths, 0 until each one
        # publishes a fresh descriptor; when one relay alone has a weight, every new onion-service
        # circuit takes it as guard *and* last hop and fails, every second, until the next consensus.
        # Seen: a joining tor stuck 13-19 s at "Bootstrapped 95%" (1 run in 6 to 1 in 56, by timing).
        # (Authorities' bandwidths cannot be pinned: tor ignores measured bandwidths for them.)
        # Without vanguards-lite, tor never takes the last hop as guard. The real Tor network is
        # never this small, so this is for the private network only.
        "VanguardsLiteEnabled": "0",
        # Tor learns its circuit build timeout from the build times it sees: tens of milliseconds on
        # loopback. When the machine is busy (several tors, a crawl, other tests) builds overrun it, are
        # abandoned as timed out, and onion-service circuits fail for tens of seconds until tor resets
        # the timeout to 60 s ("Resetting timeout to 60000ms after 18 timeouts", seen with ten onion
        # services on the service tor). A fixed timeout (CircuitBuildTimeout, 60 s) cannot be undercut.
        "LearnCircuitBuildTimeout": "0",
    }


def joining_tor_config(
    dirauthority_lines: Sequence[str],
    data_directory: Path | str,
    socks_port: int,
    control_port: int | None = None,
) -> TorConfig:
    """The stem `launch_tor_with_config` config of a client tor (e.g. the crawler's) joining a network.

    SOCKS on 127.0.0.1 with isolation by SOCKS credentials; a cookie-authenticated control port when
    `control_port` is given. `Log notice stdout` is how stem sees "Bootstrapped 100%".
    """
    config: TorConfig = {
        "DataDirectory": str(data_directory),
        "SocksPort": f"127.0.0.1:{socks_port} IsolateSOCKSAuth KeepAliveIsolateSOCKSAuth",
        **network_options(dirauthority_lines),
        "Log": ["notice stdout"],
    }
    if control_port is not None:
        config["ControlPort"] = f"127.0.0.1:{control_port}"
        config["CookieAuthentication"] = "1"
    return config


# --- nodes --------------------------------------------------------------------------------------


@dataclass
class TorNode:
    """One tor process of the network: its role, directory, ports, process and long-lived controller."""

    name: str
    role: str  # "authority", "service" or "client"
    datadir: Path
    control_port: int
    or_port: int | None = None
    dir_port: int | None = None
    socks_port: int | None = None
    fingerprint: str | None = None  # RSA identity, 40 hex
    v3ident: str | None = None  # authority certificate identity, 40 hex
    process: subprocess.Popen[bytes] | None = None
    controller: Controller | None = None

    @property
    def notice_log(self) -> Path:
        return self.datadir / "notice.log"

    @property
    def output_log(self) -> Path:
        """tor's stdout and stderr (warnings, and errors before the notice log is open)."""
        return self.datadir / "tor.out"

    @property
    def torrc(self) -> Path:
        return self.datadir / "torrc"

    @property
    def cookie_path(self) -> Path:
        return self.datadir / "control_auth_cookie"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def dirauthority_line(self) -> str:
        """This authority's DirAuthority value (the text after the keyword)."""
        return (
            f"{self.name} orport={self.or_port} no-v2 v3ident={self.v3ident} "
            f"127.0.0.1:{self.dir_port} {self.fingerprint}"
        )

    def tail(self, lines: int = 15) -> str:
        """The last lines of this node's notice log and output, for error messages."""
        parts = []
        for path in (self.notice_log, self.output_log):
            text = _tail_file(path, lines)
            if text:
                parts.append(f"--- {self.name}: {path.name} ---\n{text}")
        return "\n".join(parts)


def _tail_file(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 200 * lines))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


# --- the network --------------------------------------------------------------------------------


class DescriptorUploads:
    """Follows a service tor's HS_DESC events until each service's descriptor is on every HSDir it was
    sent to (UPLOAD events, each answered by UPLOADED or FAILED).

    The first UPLOADED is not enough: a client asking an HSDir whose upload is still on its way gets a
    404, counts that HSDir as asked, and, once every HSDir it asks has said 404, fails every stream to
    the address for a while ("No more HSDir available to query"; seen here with 8 services at once).
    """

    def __init__(self, service_ids: Iterable[str]) -> None:
        self.pending = set(service_ids)
        self._uploaded: set[str] = set()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._changed = threading.Condition()

    def on_event(self, event: HSDescEvent) -> None:
        """The stem listener: count uploads started and finished per (service, HSDir)."""
        if event.address not in self.pending:
            return
        key = (event.address, str(event.directory))
        with self._changed:
            if event.action == "UPLOAD":
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
            elif event.action in ("UPLOADED", "FAILED"):
                self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)
                if event.action == "UPLOADED":
                    self._uploaded.add(event.address)
            self._changed.notify_all()

    def _done(self, service_id: str) -> bool:
        in_flight = any(n for (sid, _), n in self._in_flight.items() if sid == service_id)
        return service_id in self._uploaded and not in_flight

    def wait(self, timeout: float) -> list[str]:
        """Wait until every service is fully uploaded; return those not uploaded anywhere by then.

        A service on some HSDirs when the time is up counts as published (tor retries the others).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all(self._done(sid) for sid in self.pending):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 1.0))
            return sorted(self.pending - self._uploaded)


@dataclass(frozen=True)
class OnionService:
    """An onion service to publish from a HiddenServiceDir: 127.0.0.1:`target_port` as `key`'s address."""

    target_port: int
    key: OnionKey
    name: str | None = None
    virtual_port: int = 80

    @property
    def url(self) -> str:
        return self.key.url + ("" if self.virtual_port == 80 else f":{self.virtual_port}")


class PrivateTorNetwork:
    """A private Tor network on 127.0.0.1 with v3 onion services; start it, use it, stop it.

    `authorities` relays, all directory authorities (plain relays only add start-up latency), plus one
    tor that hosts onion services (`add_onion_service`) and one client tor whose SOCKS port isolates
    streams by SOCKS username. Every node's torrc, data and notice log live under `workdir`.
    `align` starts the authorities within 1 s after a multiple of 5 s, so that their first vote
    sees every relay (phase 1 then takes 4.5-6 s instead of 4-13 s; the wait is at most 4 s).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        authorities: int = 4,
        align: bool = True,
        tor_binary: str | None = None,
        owner_pid: int | None = None,
    ) -> None:
        if authorities < MIN_AUTHORITIES:
            raise ValueError(
                f"a private network with onion services needs at least {MIN_AUTHORITIES} relays "
                f"(onion-service circuits are 4 hops), got authorities={authorities}"
            )
        self.workdir = Path(workdir).resolve()
        if any(ch.isspace() for ch in str(self.workdir)):
            raise ValueError(f"tor's Log option cannot take a path with spaces: {self.workdir}")
        self.authority_count = authorities
        self.align = align
        self.tor = find_tor(tor_binary)
        self.tor_gencert = find_tor_gencert(self.tor)
        # Tor exits by itself when this process dies (checked every few seconds), so a crashed test run
        # leaves nothing behind. The first controller from this pid takes ownership (TAKEOWNERSHIP), and
        # tor then exits when that connection closes: hence one controller per node, kept until stop().
        self.owner_pid = owner_pid if owner_pid is not None else os.getpid()
        self.authorities: list[TorNode] = []
        self.service: TorNode | None = None
        self.client: TorNode | None = None
        self.onions: dict[str, str] = {}  # name -> "http://<address>.onion"
        self.start_seconds: float | None = None
        self.phase_seconds: dict[str, float] = {}
        self.started_at: str | None = None
        self._lock = threading.Lock()
        self._stopped = False
        # Services published through the service tor's configuration (circuit ids exported), by
        # address. SETCONF replaces every HiddenService* line at once, so the whole list is re-sent.
        self._configured: dict[str, OnionService] = {}
        self._configured_lock = threading.Lock()

    # -- lifecycle --

    def start(self, timeout: float = 60.0) -> PrivateTorNetwork:
        """Generate keys, start the authorities, wait for a full consensus, start service and client.

        Returns once the client and the onion-service tor have bootstrapped to 100%. Raises
        TorNetworkError (with log tails) when a phase does not finish within the overall `timeout`;
        everything started so far is stopped first.
        """
        began = time.monotonic()
        deadline = began + timeout
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._make_authorities()
            self._phase("keys", began)
            if self.align:
                aligning = time.monotonic()
                self._align_to_voting_grid()
                self._phase("align", aligning)
            phase1 = time.monotonic()
            for node in self.authorities:
                self._launch(node)
            self._connect_all(self.authorities, deadline)
            self._await_consensus(deadline)
            self._phase("authorities", phase1)
            phase2 = time.monotonic()
            self.service, self.client = self._make_service(), self._make_client()
            for node in (self.service, self.client):
                self._launch(node)
            self._connect_all([self.service, self.client], deadline)
            self._await_bootstrap([self.service, self.client], deadline)
            self._phase("clients", phase2)
        except BaseException:
            self._stop_quietly()
            raise
        self.start_seconds = time.monotonic() - began
        log.info("private Tor network up in %.1f s (%s)", self.start_seconds, self.phase_seconds)
        return self

    def stop(self) -> None:
        """SIGTERM every tor, SIGKILL after 5 s, and raise TorNetworkError if any is still alive."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            nodes = self.nodes
            for node in nodes:
                # Closing the owning controller first makes tor exit cleanly by itself, and keeps stem's
                # reader thread from logging a closed socket over and over.
                if node.controller is not None:
                    node.controller.close()
                    node.controller = None
            for node in nodes:
                if node.process is not None and node.process.poll() is None:
                    node.process.terminate()
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for node in nodes:
                if node.process is None:
                    continue
                try:
                    node.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("tor %s (pid %d) ignored SIGTERM; killing it", node.name, node.process.pid)
                    node.process.kill()
                    node.process.wait(timeout=STOP_GRACE_SECONDS)
            alive = [n.name for n in nodes if n.process is not None and pid_alive(n.process.pid)]
            if alive:
                raise TorNetworkError(f"tor processes still alive after stop(): {', '.join(alive)}")

    def __enter__(self) -> PrivateTorNetwork:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def nodes(self) -> list[TorNode]:
        """Every node created so far: authorities, then the service and client tors."""
        return [*self.authorities, *(n for n in (self.service, self.client) if n is not None)]

    # -- what users of the network need --

    def dirauthority_lines(self) -> list[str]:
        """The DirAuthority values (text after the keyword) every tor joining this network must use."""
        return [node.dirauthority_line() for node in self.authorities]

    def joining_tor_config(
        self, data_directory: Path | str, socks_port: int, control_port: int | None = None
    ) -> TorConfig:
        """A stem `launch_tor_with_config` config for another client tor on this network."""
        return joining_tor_config(self.dirauthority_lines(), data_directory, socks_port, control_port)

    @property
    def client_socks_port(self) -> int:
        return int(_started(self.client).socks_port or 0)

    @property
    def client_control_port(self) -> int:
        return _started(self.client).control_port

    @property
    def client_cookie_path(self) -> Path:
        return _started(self.client).cookie_path

    @property
    def service_control_port(self) -> int:
        return _started(self.service).control_port

    def socks_proxy(self, username: str | None = None) -> str:
        """The client's proxy URL for requests; a username gets its own circuits (IsolateSOCKSAuth)."""
        return socks_proxy_url(self.client_socks_port, username)

    def add_onion_service(
        self,
        target_port: int,
        key: OnionKey | None = None,
        *,
        name: str | None = None,
        virtual_port: int = 80,
        timeout: float = 60.0,
        export_circuit_id: bool = False,
    ) -> str:
        """Publish 127.0.0.1:`target_port` as an onion service on port `virtual_port`; return its URL.

        With `key` the address is that key's (deterministic); without, a new one. Returns once the
        descriptor is uploaded to an HSDir. The service lasts until `remove_onion_service` or stop.
        With `export_circuit_id` every connection to the target starts with a HAProxy PROXY line
        naming the client's rendezvous circuit ("PROXY TCP6 fc00:dead:beef:4dad::<id> ::1 ..."); see
        `add_exported_onion_services`. Otherwise the service is an ADD_ONION one (detached, so it
        outlives the control connection).
        """
        if export_circuit_id:
            if key is None:
                # The same as ADD_ONION NEW: a fresh identity nobody can predict (the OS random source).
                key = onion_key_from_seed(os.urandom(32))
            return self.add_exported_onion_services(
                [OnionService(target_port, key, name, virtual_port)], timeout=timeout
            )[0]
        controller = _started(_started(self.service).controller)
        if key is None:
            key_type, key_content = "NEW", "ED25519-V3"
        else:
            key_type, key_content = add_onion_key_blob(key).split(":", 1)
        try:
            response = controller.create_ephemeral_hidden_service(
                {virtual_port: f"127.0.0.1:{target_port}"},
                key_type=key_type,
                key_content=key_content,
                discard_key=True,
                detached=True,
                await_publication=True,
                timeout=timeout,
            )
        except (stem.ControllerError, stem.Timeout) as exc:
            raise TorNetworkError(
                f"publishing an onion service for 127.0.0.1:{target_port} failed: {exc}\n{self.tail_logs()}"
            ) from exc
        address = f"{response.service_id}.onion"
        if key is not None and address != key.address:
            # A mismatch would mean our key expansion differs from tor's: the demo's addresses would lie.
            raise TorNetworkError(f"tor serves {address} for the key of {key.address}")
        url = f"http://{address}" + ("" if virtual_port == 80 else f":{virtual_port}")
        self.onions[self._onion_name(name or address, url)] = url
        return url

    def add_exported_onion_services(
        self, services: Sequence[OnionService], timeout: float = 60.0
    ) -> list[str]:
        """Publish onion services whose connections carry the client's circuit id; return their URLs.

        ADD_ONION cannot export circuit ids, so each key is written into a HiddenServiceDir under the
        service tor's data directory and every such service is (re)configured with one SETCONF
        (HiddenServiceDir, HiddenServicePort, HiddenServiceExportCircuitID haproxy). Returns once tor
        reports each new descriptor uploaded to every HSDir it was sent to (see `DescriptorUploads`);
        on failure the new services are withdrawn and TorNetworkError carries the log tails. Publish
        many at once: it costs one wait.
        """
        controller = _started(_started(self.service).controller)
        uploads = DescriptorUploads(service.key.service_id for service in services)
        if len(uploads.pending) != len(services):
            raise ValueError("the same onion key appears twice in one call")
        # Listen before configuring: the first upload can follow SETCONF within milliseconds.
        controller.add_event_listener(uploads.on_event, EventType.HS_DESC)
        try:
            with self._configured_lock:
                # Tor cannot serve one key twice: a configured copy of an ADD_ONION service fails to
                # register (a tor "Bug" warning) and its descriptor never comes; refuse it here instead.
                ephemeral = set(controller.list_ephemeral_hidden_services([], detached=True))
                taken = [
                    s.key.address
                    for s in services
                    if s.key.address in self._configured or s.key.service_id in ephemeral
                ]
                if taken:
                    raise TorNetworkError(f"onion services already published: {', '.join(taken)}")
                root = _private_dir(_started(self.service).datadir / "onions")
                for service in services:
                    write_hidden_service_dir(root / service.key.service_id, service.key)
                    self._configured[service.key.address] = service
                try:
                    self._send_service_config(controller)
                except stem.ControllerError as exc:
                    self._withdraw_configured(controller, services)
                    raise TorNetworkError(f"tor refused the onion service configuration: {exc}") from exc
            missing = uploads.wait(timeout)
        finally:
            controller.remove_event_listener(uploads.on_event)
        if missing:
            with self._configured_lock:
                self._withdraw_configured(controller, services)
            raise TorNetworkError(
                f"no descriptor uploaded within {timeout:.0f} s for {', '.join(missing)}\n{self.tail_logs()}"
            )
        urls = []
        for service in services:
            self.onions[self._onion_name(service.name or service.key.address, service.url)] = service.url
            urls.append(service.url)
        return urls

    def _send_service_config(self, controller: Controller) -> None:
        """SETCONF every configured service (caller holds `_configured_lock`); none: reset them all."""
        if not self._configured:
            # Resetting HiddenServiceDir resets the whole group of HiddenService* lines.
            controller.reset_conf("HiddenServiceDir")
            return
        root = _started(self.service).datadir / "onions"
        options: list[tuple[str, str]] = []
        for service in self._configured.values():
            options += [
                ("HiddenServiceDir", str(root / service.key.service_id)),
                ("HiddenServicePort", f"{service.virtual_port} 127.0.0.1:{service.target_port}"),
                ("HiddenServiceExportCircuitID", "haproxy"),
            ]
        controller.set_options(options)

    def _withdraw_configured(self, controller: Controller, services: Iterable[OnionService]) -> None:
        """Drop services from the configuration and re-send it (caller holds `_configured_lock`)."""
        for service in services:
            self._configured.pop(service.key.address, None)
        with contextlib.suppress(stem.ControllerError):
            self._send_service_config(controller)
        for service in services:
            shutil.rmtree(
                _started(self.service).datadir / "onions" / service.key.service_id, ignore_errors=True
            )

    def _onion_name(self, name: str, url: str) -> str:
        """`name`, or `name#2`, `name#3`... when another service already goes by it: a market published
        twice on one network (friendly and hostile, in tests) keeps both entries."""
        candidate, n = name, 1
        while self.onions.get(candidate, url) != url:
            n += 1
            candidate = f"{name}#{n}"
        return candidate

    def remove_onion_service(self, url_or_address: str) -> None:
        """Withdraw an onion service added with `add_onion_service` (either kind)."""
        host = url_or_address.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        controller = _started(_started(self.service).controller)
        with self._configured_lock:
            service = self._configured.get(host)
            if service is not None:
                self._withdraw_configured(controller, [service])
        if service is None:
            controller.remove_ephemeral_hidden_service(host.removesuffix(".onion"))
        self.onions = {k: v for k, v in self.onions.items() if host not in v}

    def wait_reachable(self, url: str, timeout: float = 30.0, username: str = "dnm-tornet-wait") -> float:
        """Fetch `url` through the client tor (socks5h) until it answers 200; return the seconds taken."""
        return wait_reachable(url, self.client_socks_port, timeout=timeout, username=username)

    # -- introspection --

    def pids(self) -> dict[str, int]:
        """The pid of every tor process started, by node name."""
        return {n.name: n.process.pid for n in self.nodes if n.process is not None}

    def rss_bytes(self) -> int:
        """Total resident memory of the network's tor processes."""
        return sum(_rss_bytes(pid) for pid in self.pids().values())

    def tail_logs(self, lines: int = 15) -> str:
        """The last lines of every node's logs, for failure messages."""
        return "\n".join(t for t in (node.tail(lines) for node in self.nodes) if t)

    def state(self) -> dict[str, Any]:
        """What another process needs to use or stop this network (JSON-serialisable)."""
        client = _started(self.client)
        return {
            "version": STATE_VERSION,
            "workdir": str(self.workdir),
            "owner_pid": self.owner_pid,
            "pids": self.pids(),
            "socks_port": client.socks_port,
            "control_port": client.control_port,
            "cookie_path": str(client.cookie_path),
            "service_control_port": self.service_control_port,
            "dirauthority_lines": self.dirauthority_lines(),
            "onions": dict(self.onions),
            "started_at": self.started_at,
            "start_seconds": self.start_seconds,
        }

    def save_state(self, path: Path, extra: Mapping[str, Any] | None = None) -> None:
        """Write `state()` (and `extra` keys) to `path` atomically (a reader never sees half a file)."""
        _write_json_atomic(Path(path), {**self.state(), **(extra or {})})

    # -- phases --

    def _make_authorities(self) -> None:
        """Create the authorities' directories, ports and keys (in parallel: ~1 s each, mostly tor start)."""
        ports = free_ports(3 * self.authority_count)
        self.authorities = [
            TorNode(
                name=f"dnmauth{i}",
                role="authority",
                datadir=_private_dir(self.workdir / f"auth{i}"),
                or_port=ports[3 * i],
                dir_port=ports[3 * i + 1],
                control_port=ports[3 * i + 2],
            )
            for i in range(self.authority_count)
        ]
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.authority_count) as pool:
            list(pool.map(self._generate_authority_keys, self.authorities))

    def _generate_authority_keys(self, node: TorNode) -> None:
        keys = _private_dir(node.datadir / "keys")  # tor-gencert does not create it
        # The certificate is valid for 12 months; fresh keys per network avoid expiry surprises.
        self._run(
            [
                self.tor_gencert, "--create-identity-key", "-m", "12",
                "-a", f"127.0.0.1:{node.dir_port}",
                "-i", str(keys / "authority_identity_key"),
                "-s", str(keys / "authority_signing_key"),
                "-c", str(keys / "authority_certificate"),
                "--passphrase-fd", "0",
            ],
            stdin="\n",
        )  # fmt: skip
        for line in (keys / "authority_certificate").read_text().splitlines():
            if line.startswith("fingerprint "):
                node.v3ident = line.split()[1].upper()
        # The dummy DirAuthority keeps this throwaway tor away from the public authorities.
        output = self._run(
            [
                self.tor, "--ignore-missing-torrc", "-f", os.devnull, "--defaults-torrc", os.devnull,
                "--list-fingerprint", "--DataDirectory", str(node.datadir),
                "--ORPort", f"127.0.0.1:{node.or_port}",
                "--DirAuthority", "dummy 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff",
                "--Log", "err stderr",
            ]
        )  # fmt: skip
        last = [line for line in output.splitlines() if line.strip()][-1]
        node.fingerprint = "".join(last.split()[1:]).upper()
        if not node.v3ident or len(node.fingerprint) != 40:
            raise TorNetworkError(f"could not read the keys of {node.name}: {last!r}")

    def _run(self, argv: list[str], stdin: str | None = None) -> str:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TorNetworkError(f"{Path(argv[0]).name} did not finish in 60 s") from exc
        if done.returncode != 0:
            raise TorNetworkError(
                f"{Path(argv[0]).name} failed with status {done.returncode}: {done.stderr.strip()[-2000:]}"
            )
        return done.stdout

    def _align_to_voting_grid(self) -> None:
        """Unless within 1 s past a multiple of 5 s, sleep until just after the next one."""
        offset = time.time() % VOTING_GRID_SECONDS
        if offset > ALIGN_WINDOW_SECONDS:
            time.sleep(VOTING_GRID_SECONDS - offset + 0.05)

    def _make_service(self) -> TorNode:
        (control,) = free_ports(1)
        return TorNode("dnmservice", "service", _private_dir(self.workdir / "service"), control_port=control)

    def _make_client(self) -> TorNode:
        socks, control = free_ports(2)
        return TorNode(
            "dnmclient",
            "client",
            _private_dir(self.workdir / "client"),
            control_port=control,
            socks_port=socks,
        )

    def _node_config(self, node: TorNode) -> TorConfig:
        config: TorConfig = {
            "DataDirectory": str(node.datadir),
            "RunAsDaemon": "0",
            "ControlPort": f"127.0.0.1:{node.control_port}",
            "CookieAuthentication": "1",
            "ShutdownWaitLength": "0",  # stop in well under a second
            **network_options(self.dirauthority_lines()),
            # Log lines belong here: a --Log on the command line would replace all of them.
            "Log": [f"notice file {node.notice_log}", "warn stderr"],
            "SafeLogging": "0",
            "__OwningControllerProcess": str(self.owner_pid),
        }
        if node.role == "authority":
            config.update(
                {
                    "Nickname": node.name,
                    "Address": "127.0.0.1",
                    "AddressDisableIPv6": "1",
                    "ORPort": f"127.0.0.1:{node.or_port}",
                    "DirPort": f"127.0.0.1:{node.dir_port}",
                    "SocksPort": "0",
                    # No exits: onion services need none, and nothing can leave the machine.
                    "ExitRelay": "0",
                    "ExitPolicy": "reject *:*",
                    "ContactInfo": "dnm-archive@test.invalid",
                    "TestingDirAuthVoteExit": "*",
                    "TestingDirAuthVoteGuard": "*",
                    "TestingDirAuthVoteHSDir": "*",  # every relay an HSDir from the first consensus
                    "TestingMinExitFlagThreshold": "0",
                    # Every relay Stable and Fast in every consensus. Otherwise both flags follow medians of
                    # uptime and bandwidth and come and go (seen), narrowing the paths of onion-service
                    # circuits, which need both, in a network of four relays.
                    "AuthDirVoteStableGuaranteeMinUptime": "0",
                    "AuthDirVoteStableGuaranteeMTBF": "0",
                    "AuthDirFastGuarantee": "1",  # bytes; "0" would switch the guarantee off
                    "V3AuthNIntervalsValid": "2",
                    "AuthoritativeDirectory": "1",
                    "V3AuthoritativeDirectory": "1",
                    # First consensus 2-5 s after start, then one every 10 s.
                    "TestingV3AuthInitialVotingInterval": "5",
                    "TestingV3AuthInitialVoteDelay": "2",
                    "TestingV3AuthInitialDistDelay": "2",
                    "V3AuthVotingInterval": "10",
                    "V3AuthVoteDelay": "2",
                    "V3AuthDistDelay": "2",
                }
            )
        elif node.role == "client":
            config["SocksPort"] = f"127.0.0.1:{node.socks_port} IsolateSOCKSAuth KeepAliveIsolateSOCKSAuth"
        else:
            config["SocksPort"] = "0"
        return config

    def _launch(self, node: TorNode) -> None:
        node.torrc.write_text(render_torrc(self._node_config(node)))
        with node.output_log.open("wb") as out:
            node.process = subprocess.Popen(
                [self.tor, "-f", str(node.torrc), "--defaults-torrc", os.devnull],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        log.debug("started tor %s (pid %d)", node.name, node.process.pid)

    def _connect_all(self, nodes: Iterable[TorNode], deadline: float) -> None:
        """Open and authenticate each node's one long-lived controller (retrying until it listens)."""
        for node in nodes:
            while node.controller is None:
                self._check_alive(node)
                try:
                    controller = Controller.from_port(address="127.0.0.1", port=node.control_port)
                    controller.authenticate()
                    node.controller = controller
                except (stem.SocketError, stem.connection.AuthenticationFailure) as exc:
                    if time.monotonic() > deadline:
                        raise self._timeout(f"the control port of {node.name}", exc) from exc
                    time.sleep(0.05)

    def _await_consensus(self, deadline: float) -> None:
        """Wait until every authority's consensus lists every relay and holds every microdescriptor."""
        expected = len(self.authorities)
        pending = list(self.authorities)
        while pending:
            for node in list(pending):
                self._check_alive(node)
                controller = _started(node.controller)
                relays = _count_lines(controller.get_info("ns/all", ""), "r ")
                # Count ntor keys: each microdescriptor also has a legacy "onion-key" line.
                micro = _count_lines(controller.get_info("md/all", ""), "ntor-onion-key ")
                if relays >= expected and micro >= expected:
                    pending.remove(node)
            if pending:
                if time.monotonic() > deadline:
                    raise self._timeout(f"a consensus with all {expected} relays on {pending[0].name}")
                time.sleep(0.2)

    def _await_bootstrap(self, nodes: Sequence[TorNode], deadline: float) -> None:
        pending = list(nodes)
        while pending:
            for node in list(pending):
                self._check_alive(node)
                phase = _started(node.controller).get_info("status/bootstrap-phase", "")
                if "PROGRESS=100" in phase:
                    pending.remove(node)
            if pending:
                if time.monotonic() > deadline:
                    raise self._timeout(f"{pending[0].name} to bootstrap")
                time.sleep(0.1)

    def _check_alive(self, node: TorNode) -> None:
        if node.process is not None and node.process.poll() is not None:
            raise TorNetworkError(
                f"tor {node.name} exited with status {node.process.returncode} while the network was "
                f"starting\n{self.tail_logs()}"
            )

    def _timeout(self, what: str, cause: Exception | None = None) -> TorNetworkError:
        suffix = f" ({cause})" if cause else ""
        return TorNetworkError(f"gave up waiting for {what}{suffix}\n{self.tail_logs()}")

    def _phase(self, name: str, since: float) -> None:
        self.phase_seconds[name] = round(time.monotonic() - since, 2)

    def _stop_quietly(self) -> None:
        try:
            self.stop()
        except TorNetworkError as exc:
            log.error("%s", exc)


# --- helpers shared with processes that only have the state file --------------------------------


def socks_proxy_url(socks_port: int, username: str | None = None) -> str:
    """A socks5h proxy URL (tor resolves names, so .onion never reaches the local resolver)."""
    auth = f"{username}:x@" if username else ""
    return f"socks5h://{auth}127.0.0.1:{socks_port}"


def wait_reachable(
    url: str, socks_port: int, timeout: float = 30.0, username: str = "dnm-tornet-wait"
) -> float:
    """GET `url` through tor's SOCKS port until it answers 200; return the seconds it took."""
    proxy = socks_proxy_url(socks_port, username)
    per_request = max(10.0, min(30.0, timeout))  # timeout=0 probes once, still giving tor time to connect
    began = time.monotonic()
    last: str = "no attempt"
    while True:
        try:
            response = requests.get(url, proxies={"http": proxy, "https": proxy}, timeout=per_request)
            if response.status_code == 200:
                return time.monotonic() - began
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = str(exc)
        if time.monotonic() - began > timeout:
            raise TorNetworkError(f"{url} not reachable through tor within {timeout:.0f} s: {last}")
        time.sleep(0.25)


# SOCKS5 reply codes (RFC 1928 6) and tor's extended ones for onion services (tor's socks-extensions).
SOCKS_REPLIES = {
    1: "general failure",
    2: "not allowed",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
    0xF0: "onion service descriptor not found",
    0xF1: "onion service descriptor invalid",
    0xF2: "onion service introduction failed",
    0xF3: "onion service rendezvous failed",
    0xF4: "onion service missing client authorization",
    0xF5: "onion service wrong client authorization",
    0xF6: "onion address invalid",
    0xF7: "onion service introduction timed out",
}


def socks_connect(
    host: str, port: int, socks_port: int, *, username: str | None = None, timeout: float = 30.0
) -> socket.socket:
    """A TCP stream to host:port through tor's SOCKS5 port (tor resolves the name); the caller closes it.

    A `username` picks the circuit (IsolateSOCKSAuth), as the crawler's identities do. Raises
    TorNetworkError naming the SOCKS reply when tor cannot connect.
    """
    sock = socket.create_connection(("127.0.0.1", socks_port), timeout=timeout)
    try:
        sock.sendall(b"\x05\x01" + (b"\x02" if username else b"\x00"))
        method = _recv_exact(sock, 2)[1]
        if method == 0x02 and username:
            user = username.encode()
            sock.sendall(b"\x01" + bytes([len(user)]) + user + b"\x01x")
            if _recv_exact(sock, 2)[1] != 0:
                raise TorNetworkError(f"tor's SOCKS port refused the credentials of {username!r}")
        elif method != 0x00:
            raise TorNetworkError(f"tor's SOCKS port offers no usable authentication (method {method})")
        name = host.encode("idna")
        sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + port.to_bytes(2, "big"))
        _, reply, _, address_type = _recv_exact(sock, 4)
        if reply != 0:
            reason = SOCKS_REPLIES.get(reply, f"reply {reply}")
            raise TorNetworkError(f"tor could not connect to {host}:{port}: {reason}")
        bound = {1: 4, 4: 16}.get(address_type) or _recv_exact(sock, 1)[0]
        _recv_exact(sock, bound + 2)
    except BaseException:
        sock.close()
        raise
    return sock


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise TorNetworkError("tor's SOCKS port closed the connection mid-handshake")
        data += chunk
    return data


def wait_connectable(
    url: str, socks_port: int, timeout: float = 30.0, username: str = "dnm-tornet-wait"
) -> float:
    """Open (and close) a TCP stream to `url` through tor until one succeeds; return the seconds taken.

    Tor answers a SOCKS CONNECT to an onion only once the service has connected to its target, so
    this proves the service reachable without an HTTP request (which a hostile market would count).
    """
    parts = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = parts.partition(":")
    began = time.monotonic()
    while True:
        try:
            socks_connect(
                host, int(port or 80), socks_port, username=username, timeout=max(10.0, timeout)
            ).close()
            return time.monotonic() - began
        except (OSError, TorNetworkError) as exc:
            last = str(exc)
        if time.monotonic() - began > timeout:
            raise TorNetworkError(f"{url} not reachable through tor within {timeout:.0f} s: {last}")
        time.sleep(0.25)


@dataclass(frozen=True)
class TorNetworkState:
    """A running network as seen from its state file: how to reach it and which processes it owns."""

    workdir: Path
    owner_pid: int
    pids: dict[str, int]
    socks_port: int
    control_port: int
    cookie_path: Path
    service_control_port: int
    dirauthority_lines: list[str]
    onions: dict[str, str] = field(default_factory=dict)
    started_at: str | None = None
    start_seconds: float | None = None
    # Written by `up` in hostile mode: market -> mirror URLs (index 0 the primary), market -> clone URL.
    mirrors: dict[str, list[str]] = field(default_factory=dict)
    phishing: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TorNetworkState:
        if data.get("version") != STATE_VERSION:
            raise TorNetworkError(f"unsupported tornet state version {data.get('version')!r}")
        return cls(
            workdir=Path(data["workdir"]),
            owner_pid=int(data["owner_pid"]),
            pids={k: int(v) for k, v in data["pids"].items()},
            socks_port=int(data["socks_port"]),
            control_port=int(data["control_port"]),
            cookie_path=Path(data["cookie_path"]),
            service_control_port=int(data["service_control_port"]),
            dirauthority_lines=list(data["dirauthority_lines"]),
            onions=dict(data.get("onions") or {}),
            started_at=data.get("started_at"),
            start_seconds=data.get("start_seconds"),
            mirrors={k: list(v) for k, v in (data.get("mirrors") or {}).items()},
            phishing=dict(data.get("phishing") or {}),
        )

    def socks_proxy(self, username: str | None = None) -> str:
        return socks_proxy_url(self.socks_port, username)

    def joining_tor_config(
        self, data_directory: Path | str, socks_port: int, control_port: int | None = None
    ) -> TorConfig:
        return joining_tor_config(self.dirauthority_lines, data_directory, socks_port, control_port)


def load_state(path: Path) -> TorNetworkState:
    """Read a state file written by `save_state` (or by `up`)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise TorNetworkError(f"no private Tor network state at {path}: is it up?") from exc
    except json.JSONDecodeError as exc:
        raise TorNetworkError(f"{path} is not a tornet state file: {exc}") from exc
    return TorNetworkState.from_dict(data)


# --- the demo over Tor --------------------------------------------------------------------------


@dataclass
class DemoOnions:
    """Demo markets served on loopback and published as onion services; stop() withdraws them.

    `urls` maps each market to its primary address (the one in the profiles). In hostile mode
    `mirrors` lists every mirror's address (index 0 the primary) and `phishing` the clone's.
    """

    network: PrivateTorNetwork
    urls: dict[str, str]
    servers: list[DemoServer]
    mirrors: dict[str, list[str]] = field(default_factory=dict)
    phishing: dict[str, str] = field(default_factory=dict)

    def all_urls(self) -> list[str]:
        """Every published address, each once."""
        found = [
            *self.urls.values(),
            *(u for urls in self.mirrors.values() for u in urls),
            *self.phishing.values(),
        ]
        return list(dict.fromkeys(found))

    def stop(self) -> None:
        for url in self.all_urls():
            # A network already stopped has withdrawn its services anyway.
            with contextlib.suppress(stem.ControllerError, TorNetworkError):
                self.network.remove_onion_service(url)
        for server in self.servers:
            server.stop()

    def __enter__(self) -> DemoOnions:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_demo_over_tor(
    network: PrivateTorNetwork,
    markets: Sequence[str] | None = None,
    *,
    day: int = 1,
    seed: int = 1,
    key_seed: int = 1,
    wait: bool = True,
    scale: str = "small",
    hostile: bool = False,
    hostile_set: Mapping[str, Any] | None = None,
) -> DemoOnions:
    """Serve each demo market on 127.0.0.1:0 and publish it at its deterministic onion address.

    The address of a market is `onion_key_for(market, key_seed).address`, the same in every run.
    With `hostile`, each market runs its skin's hostile preset (`hostile_set` overrides keys) and
    every port is published with circuit ids exported to the server: the mirrors at
    `onion_key_for(market)` and `onion_key_for(f"{market}-mirror{i}")`, the phishing clone at
    `onion_key_for(f"{market}-phishing")`; `/mirrors` then lists those onion URLs. With `wait`,
    returns only once each page loads through the client tor (hostile: once each mirror up at the
    start and the clone accept a connection, so the wait spends none of the markets' requests).
    """
    from demo.world import MARKETS

    chosen = list(markets if markets is not None else MARKETS)
    onions = DemoOnions(network, {}, [])
    try:
        spec = _DemoSpec(day, seed, key_seed, wait, scale)
        if hostile:
            _serve_hostile(network, chosen, onions, spec, dict(hostile_set or {}))
        else:
            _serve_friendly(network, chosen, onions, spec)
    except BaseException:
        onions.stop()
        raise
    return onions


@dataclass(frozen=True)
class _DemoSpec:
    """What every demo market of one `serve_demo_over_tor` call shares."""

    day: int
    seed: int
    key_seed: int
    wait: bool
    scale: str


def _serve_friendly(
    network: PrivateTorNetwork, chosen: list[str], onions: DemoOnions, spec: _DemoSpec
) -> None:
    from demo.server import DemoServer  # the transport does not need the demo otherwise

    servers = {
        market: DemoServer(market, spec.day, seed=spec.seed, scale=spec.scale).start() for market in chosen
    }
    onions.servers.extend(servers.values())
    # Publishing takes ~2 s per service, nearly all of it waiting on tor: do them together.
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(chosen))) as pool:
        urls = pool.map(
            lambda m: network.add_onion_service(servers[m].port, onion_key_for(m, spec.key_seed), name=m),
            chosen,
        )
        onions.urls.update(zip(chosen, urls, strict=True))
        for market, url in onions.urls.items():
            servers[market].set_public_urls({"mirror0": url})  # what the signed /mirrors list names
        if spec.wait:
            list(pool.map(network.wait_reachable, onions.urls.values()))


def onion_label(market: str, port_key: str) -> str:
    """The onion-key label of a market's port: the market for "mirror0", else "<market>-<port key>"."""
    return market if port_key == "mirror0" else f"{market}-{port_key}"


def _serve_hostile(
    network: PrivateTorNetwork,
    chosen: list[str],
    onions: DemoOnions,
    spec: _DemoSpec,
    hostile_set: dict[str, Any],
) -> None:
    from demo.server import DemoServer
    from demo.skins import hostility_for

    hostilities = {market: hostility_for(market).with_overrides(**hostile_set) for market in chosen}
    servers = {}
    for market in chosen:
        server = DemoServer(
            market,
            spec.day,
            seed=spec.seed,
            scale=spec.scale,
            hostility=hostilities[market],
            proxy_protocol=True,
        )
        onions.servers.append(server)
        servers[market] = server.start()
    services = [
        OnionService(
            port, onion_key_for(onion_label(market, key), spec.key_seed), name=onion_label(market, key)
        )
        for market, server in servers.items()
        for key, port in server.ports.items()
    ]
    # One SETCONF and one wait for every port of every market.
    urls = dict(zip((s.name for s in services), network.add_exported_onion_services(services), strict=True))
    expected_up: list[str] = []
    for market, server in servers.items():
        public = {key: urls[onion_label(market, key)] for key in server.ports}
        server.set_public_urls(public)
        mirror_keys = sorted((k for k in public if k.startswith("mirror")), key=lambda k: int(k[6:]))
        onions.urls[market] = public["mirror0"]
        onions.mirrors[market] = [public[k] for k in mirror_keys]
        if "phishing" in public:
            onions.phishing[market] = public["phishing"]
            expected_up.append(public["phishing"])
        expected_up += [public[k] for k in mirror_keys if not _down_at_start(hostilities[market], int(k[6:]))]
    if spec.wait and expected_up:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(expected_up)) as pool:
            list(pool.map(lambda url: wait_connectable(url, network.client_socks_port), expected_up))


def _down_at_start(hostility: Hostility, mirror: int) -> bool:
    """True if the mirror's down window covers the market's first request (numbered 1)."""
    window = hostility.mirror_down.get(mirror)
    return window is not None and window[0] <= 1 and (window[1] == -1 or window[1] > 1)


# --- up / down / status: the network in a background process ------------------------------------


def up(
    state_file: Path,
    workdir: Path,
    *,
    markets: Sequence[str] | None = None,
    day: int = 1,
    seed: int = 1,
    timeout: float = 120.0,
    hostile: bool = False,
    hostile_set: Mapping[str, Any] | None = None,
) -> TorNetworkState:
    """Start the network and the demo markets as onions in a background process; return its state.

    `hostile` and `hostile_set` are those of `serve_demo_over_tor`; the state then also lists every
    market's mirrors and phishing clone. The background process writes `state_file` once every onion
    answers, and keeps running until `down(state_file)`. Its output goes to `workdir/tornet.log`.
    Raises TorNetworkError if a network from this state file is still running, or if the start fails
    (with the log tail).
    """
    state_file, workdir = Path(state_file).resolve(), Path(workdir).resolve()
    find_tor_gencert(find_tor())  # fail here, with the install hint, rather than in the background
    current = status(state_file)
    if current["running"]:
        raise TorNetworkError(f"a private Tor network is already running from {state_file}: run down first")
    if current.get("owner_alive") or any(current.get("alive", {}).values()):
        down(state_file)  # half-dead leftovers of an earlier run
    state_file.unlink(missing_ok=True)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    output = workdir / "tornet.log"
    argv = [
        sys.executable, "-m", "transport.tornet", "--state-file", str(state_file), "--workdir", str(workdir),
        "--day", str(day), "--seed", str(seed),
    ]  # fmt: skip
    if markets is not None:
        argv += ["--markets", ",".join(markets)]
    if hostile:
        argv.append("--hostile")
    if hostile_set:
        from demo.hostile.config import format_override

        for key, value in hostile_set.items():
            argv += ["--hostile-set", format_override(key, value)]
    # The background process must import this package even when it is not installed.
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with output.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not state_file.exists():
        if process.poll() is not None:
            raise TorNetworkError(
                f"the tornet background process exited with status {process.returncode}:\n"
                f"{_tail_file(output, 40)}"
            )
        if time.monotonic() > deadline:
            process.terminate()
            raise TorNetworkError(
                f"the private Tor network was not up within {timeout:.0f} s:\n{_tail_file(output, 40)}"
            )
        time.sleep(0.1)
    return load_state(state_file)


def down(state_file: Path, timeout: float = 15.0) -> dict[str, Any]:
    """Stop the network described by `state_file` and delete the file; say what was stopped.

    Asks the background process to stop (SIGTERM), then SIGTERMs and, after 5 s, SIGKILLs any tor
    of that network still running. Only pids whose command line names this network's workdir (or the
    background process) are signalled, so a recycled pid is never hit. Raises TorNetworkError when
    a process survives.
    """
    state_file = Path(state_file)
    if not state_file.exists():
        return {"stopped": False, "reason": f"no state file at {state_file}"}
    state = load_state(state_file)
    owner = state.owner_pid if _pid_matches(state.owner_pid, "transport.tornet") else None
    tors = [pid for pid in state.pids.values() if _pid_matches(pid, str(state.workdir))]
    if owner is not None:
        _signal(owner, signal.SIGTERM)
        _wait_gone([owner], timeout)
    survivors = [pid for pid in (owner, *tors) if pid is not None and pid_alive(pid)]
    for pid in survivors:
        _signal(pid, signal.SIGTERM)
    if survivors and not _wait_gone(survivors, STOP_GRACE_SECONDS):
        for pid in survivors:
            _signal(pid, signal.SIGKILL)
        _wait_gone(survivors, STOP_GRACE_SECONDS)
    alive = [pid for pid in (owner, *tors) if pid is not None and pid_alive(pid)]
    if alive:
        raise TorNetworkError(f"processes of the private Tor network still alive: {alive}")
    state_file.unlink(missing_ok=True)
    return {"stopped": True, "pids": [pid for pid in (owner, *tors) if pid is not None]}


def status(state_file: Path, *, probe: bool = False) -> dict[str, Any]:
    """The state of the network behind `state_file`, whether its processes live, and (with `probe`)
    whether each onion answers through the client tor."""
    state_file = Path(state_file)
    if not state_file.exists():
        return {"running": False, "state_file": str(state_file), "reason": "no state file"}
    state = load_state(state_file)
    alive = {name: _pid_matches(pid, str(state.workdir)) for name, pid in state.pids.items()}
    owner_alive = _pid_matches(state.owner_pid, "transport.tornet")
    report: dict[str, Any] = {
        "running": owner_alive and all(alive.values()),
        "state_file": str(state_file),
        "owner_pid": state.owner_pid,
        "owner_alive": owner_alive,
        "alive": alive,
        "socks_port": state.socks_port,
        "control_port": state.control_port,
        "cookie_path": str(state.cookie_path),
        "onions": state.onions,
        "dirauthority_lines": state.dirauthority_lines,
        "started_at": state.started_at,
        "start_seconds": state.start_seconds,
        "mirrors": state.mirrors,
        "phishing": state.phishing,
    }
    if probe:
        report["reachable"] = {}
        for name, url in state.onions.items():
            try:
                wait_reachable(url, state.socks_port, timeout=0)
                report["reachable"][name] = True
            except TorNetworkError:
                report["reachable"][name] = False
    return report


def _serve_main(argv: Sequence[str] | None = None) -> int:
    """The background process behind `up`: run the network and the demo onions until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m transport.tornet", description=_serve_main.__doc__)
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--markets", help="comma-separated (default: every demo market)")
    parser.add_argument("--day", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--hostile", action="store_true", help="each market's hostile preset, circuit ids exported"
    )
    parser.add_argument(
        "--hostile-set", action="append", default=[], metavar="KEY=YAML", help="override one hostility key"
    )
    args = parser.parse_args(argv)
    from demo.hostile.config import parse_overrides

    hostile_set = parse_overrides(args.hostile_set)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("stem").setLevel(logging.WARNING)  # stem logs every control message at debug
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopping.set())
    markets = args.markets.split(",") if args.markets else None
    network = PrivateTorNetwork(args.workdir / "tor")
    with (
        network,
        serve_demo_over_tor(
            network, markets, day=args.day, seed=args.seed, hostile=args.hostile, hostile_set=hostile_set
        ) as demo,
    ):
        network.save_state(args.state_file, {"mirrors": demo.mirrors, "phishing": demo.phishing})
        for market, url in demo.urls.items():
            log.info("%s day %d: %s", market, args.day, url)
        for market, urls in demo.mirrors.items():
            log.info("%s mirrors: %s; phishing clone: %s", market, " ".join(urls), demo.phishing.get(market))
        log.info("up in %.1f s; state in %s", network.start_seconds or 0.0, args.state_file)
        stopping.wait()
    log.info("stopped")
    return 0


# --- process helpers ----------------------------------------------------------------------------


def _started(value: T | None) -> T:
    """`value`, which exists only once the network is started."""
    if value is None:
        raise TorNetworkError("the private Tor network is not started")
    return value


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)  # tor refuses a DataDirectory others can read
    return path


def _count_lines(text: str, prefix: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith(prefix))


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def pid_alive(pid: int) -> bool:
    """True when `pid` runs and is not a zombie (a dead child not yet reaped still has a pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _pid_matches(pid: int, needle: str) -> bool:
    """True when `pid` is alive and its command line mentions `needle` (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return needle in cmdline


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect `pid` if it is our exited child (up() in this process started it)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        for pid in pids:
            _reap(pid)
        if not any(pid_alive(pid) for pid in pids):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(_serve_main())
