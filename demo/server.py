"""Serving the demo over real sockets: a market's mirrors (and phishing clone) on threaded servers.

One `DemoServer` runs one market-day: one app answering on `hostility.mirrors` ports (so sessions
and gate state are shared across mirrors), plus a second app on one more port for the phishing
clone. The request handler keeps connections alive (each TCP connection is a circuit on plain
loopback), reads Tor's HAProxy PROXY header when asked to (the circuit id of an onion service
client), tells the app the mirror and circuit through the WSGI environ, and carries out the
transport faults the app asks for (demo.hostile.network: drop, reset, truncate).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from io import BufferedReader
from types import TracebackType
from typing import Any

from flask import Flask
from werkzeug.exceptions import ClientDisconnected, InternalServerError
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

from demo.app import create_app
from demo.hostile.config import Hostility
from demo.hostile.network import CIRCUIT, MIRROR, TRANSPORT, Transport, connection_closed
from demo.world import MARKETS

log = logging.getLogger(__name__)

PROXY_PREFIX = b"PROXY "
PROXY_LINE_MAX = 107  # the longest PROXY v1 line, CRLF included (HAProxy proxy-protocol spec, 2.1)
# HiddenServiceExportCircuitID haproxy puts the global circuit id in the last 32 bits of this prefix.
TOR_CIRCUIT_NET = ipaddress.IPv6Network("fc00:dead:beef:4dad::/64")
KEEPALIVE_SECONDS = 60.0  # an idle kept-alive connection is closed after this long, as nginx does
PHISHING = "phishing"


class ProxyHeaderError(ValueError):
    """A connection began with a malformed PROXY line; the connection is closed unanswered."""


def parse_proxy_line(line: bytes) -> str | None:
    """The circuit named by a PROXY v1 line: Tor's global circuit id, "conn:<ip>:<port>" for another
    source, None for "PROXY UNKNOWN" (the connection's own address then stands)."""
    if not line.endswith(b"\r\n") or len(line) > PROXY_LINE_MAX:
        raise ProxyHeaderError(f"PROXY line not terminated by CRLF within {PROXY_LINE_MAX} bytes: {line!r}")
    parts = line[:-2].decode("ascii", "replace").split(" ")
    if parts[:2] == ["PROXY", "UNKNOWN"]:
        return None
    if len(parts) != 6 or parts[0] != "PROXY" or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"not a PROXY v1 TCP4/TCP6 line: {line!r}")
    try:
        source = ipaddress.ip_address(parts[2])
        port = int(parts[4])
    except ValueError as exc:
        raise ProxyHeaderError(f"bad source address or port in PROXY line {line!r}") from exc
    if isinstance(source, ipaddress.IPv6Address) and source in TOR_CIRCUIT_NET:
        return str(int(source) & 0xFFFFFFFF)
    return f"conn:{source}:{port}"


def read_proxy_header(rfile: BufferedReader) -> str | None:
    """Consume a PROXY line if the connection starts with one; the circuit it names, or None.

    Tor writes the line in one piece before any client byte, so one peek shows whether it is there.
    """
    head = rfile.peek(len(PROXY_PREFIX))[: len(PROXY_PREFIX)]
    if not head or not PROXY_PREFIX.startswith(head):
        return None
    return parse_proxy_line(rfile.readline(PROXY_LINE_MAX + 1))


def call_app(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to completion: status, headers and the whole body (demo pages are small)."""
    started: list[tuple[str, list[tuple[str, str]]]] = []
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [(status, headers)]
        return chunks.append

    result: Iterable[bytes] = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status, headers = started[0]
    return status, headers, b"".join(chunks)


class DemoRequestHandler(WSGIRequestHandler):
    """Keep-alive WSGI handler: circuits and mirrors into the environ, transport faults carried out."""

    server: MirrorServer
    protocol_version = "HTTP/1.1"
    timeout = KEEPALIVE_SECONDS

    def setup(self) -> None:
        super().setup()
        self.circuit = f"conn:{self.client_address[0]}:{self.client_address[1]}"
        self.circuit_from_proxy = False
        self.server.track(self.connection)

    def handle(self) -> None:
        """Read the PROXY header (if the server expects one), then serve requests until the end."""
        if self.server.proxy_protocol:
            try:
                circuit = read_proxy_header(self.rfile)
            except (ProxyHeaderError, ConnectionError, TimeoutError) as exc:
                log.debug("closing %s: %s", self.client_address, exc)
                return
            if circuit is not None:
                self.circuit, self.circuit_from_proxy = circuit, True
        super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)
            if not self.circuit_from_proxy:
                connection_closed(self.server.app, self.circuit)

    def run_wsgi(self) -> None:
        """Answer one request: run the app, then send its answer or carry out the transport it asks for."""
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        environ[CIRCUIT] = self.circuit
        environ[MIRROR] = self.server.mirror
        body_in = self._bound_input(environ)
        try:
            status, headers, body = call_app(self.server.app, environ)
        except Exception:
            log.exception("error on request %s %s", self.command, self.path)
            status, headers, body = call_app(InternalServerError(), environ)
            self.close_connection = True
        if body_in is None or not self._drain(body_in):
            self.close_connection = True
        self._answer(environ, status, headers, body)

    def _bound_input(self, environ: dict[str, Any]) -> LimitedStream | None:
        """Limit the request body to its Content-Length so the next request line stays readable.

        None for a chunked body: the connection is closed after it rather than parsed further.
        """
        if environ.get("wsgi.input_terminated"):
            return None
        try:
            length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
        except ValueError:
            length = 0
            environ["CONTENT_LENGTH"] = "0"
            self.close_connection = True
        stream = LimitedStream(self.rfile, length)
        environ["wsgi.input"] = stream
        return stream

    @staticmethod
    def _drain(stream: LimitedStream) -> bool:
        """Read what the app left of the body; False if the client went away before sending it."""
        try:
            stream.exhaust()
        except ClientDisconnected:
            return False
        return True

    def _answer(
        self, environ: dict[str, Any], status: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        transport = environ.get(TRANSPORT)
        if transport == Transport.DROP:
            self.close_connection = True
            return
        if transport == Transport.RESET:
            self._reset()
            return
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        if transport == Transport.TRUNCATE or self.request_version != "HTTP/1.1":
            self.close_connection = True
        if any(n.lower() == "connection" and "close" in v.lower() for n, v in headers):
            self.close_connection = True
        # No body goes out for these; a HEAD answer keeps the app's Content-Length of the page.
        head_only = environ["REQUEST_METHOD"] == "HEAD" or code in (204, 304)
        self.send_response(code, reason)
        for name, value in headers:
            lowered = name.lower()
            if lowered in ("connection", "transfer-encoding", "keep-alive"):
                continue
            if lowered == "content-length" and not head_only:
                continue  # the length of what is actually sent, below
            self.send_header(name, value)
        if not head_only:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if head_only:
            return
        self.wfile.write(body[: len(body) // 2] if transport == Transport.TRUNCATE else body)

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER 0 makes close send RST; nothing has been written."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The real close happens once rfile/wfile are closed in finish(), before any FIN could be sent.
        self.connection.close()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Drop access-log lines (they would flood test and crawl output)."""

    def log(self, type: str, message: str, *args: Any) -> None:
        """Send werkzeug's own messages (errors) to this module's logger at debug level."""
        log.debug("%s: %s", type, message % args)


class MirrorServer(ThreadedWSGIServer):
    """One listening port of a market: which mirror it is, whether it expects PROXY headers."""

    def __init__(self, host: str, port: int, app: Flask, mirror: str, proxy_protocol: bool) -> None:
        self.mirror, self.proxy_protocol = mirror, proxy_protocol
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        try:
            super().__init__(host, port, app, handler=DemoRequestHandler)
        except SystemExit as exc:  # werkzeug exits on a bind error; a library caller needs an exception
            raise OSError(f"cannot listen on {host}:{port} for {mirror}: see the message above") from exc

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection, so `close_connections` can end it."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a connection that has ended."""
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """End every open (kept-alive) connection, so nothing is answered once the server stopped."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)


class DemoServer:
    """A market-day served by threaded werkzeug servers in background threads: its mirrors and its clone.

    Use as a context manager; every URL is set as soon as the object exists, since the sockets are
    bound in the constructor (port 0 picks free ports; a fixed port gives the mirrors consecutive
    ports from it, the phishing clone the next one).
    """

    def __init__(
        self,
        market: str,
        day: int,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hostility: Hostility | None = None,
        proxy_protocol: bool = False,
        **opts: Any,
    ) -> None:
        self.market, self.day, self.seed = market, day, seed
        self.hostility = hostility
        self.app = create_app(market, day, seed=seed, hostility=hostility, **opts)
        self.phishing_app: Flask | None = None
        mirrors = hostility.mirrors if hostility is not None else 1
        if mirrors < 1:
            raise ValueError(f"a market needs at least one mirror, got mirrors={mirrors}")
        apps: list[tuple[str, Flask]] = [(f"mirror{i}", self.app) for i in range(mirrors)]
        if hostility is not None and hostility.phishing:
            self.phishing_app = create_app(market, day, seed=seed, hostility=hostility, phishing=True, **opts)
            apps.append((PHISHING, self.phishing_app))
        self._servers: dict[str, MirrorServer] = {}
        try:
            for i, (key, app) in enumerate(apps):
                self._servers[key] = MirrorServer(host, port + i if port else 0, app, key, proxy_protocol)
        except BaseException:
            for server in self._servers.values():
                server.server_close()
            raise
        self._threads: list[threading.Thread] = []
        self.set_public_urls(self.local_urls)

    @property
    def host(self) -> str:
        """Bound address."""
        return str(self._servers["mirror0"].server_address[0])

    @property
    def port(self) -> int:
        """Bound port of the primary mirror."""
        return self.ports["mirror0"]

    @property
    def ports(self) -> dict[str, int]:
        """Bound port per key: "mirror0", "mirror1", ..., and "phishing" when the clone runs."""
        return {key: int(server.server_port) for key, server in self._servers.items()}

    @property
    def local_urls(self) -> dict[str, str]:
        """Loopback base URL per key, as in `ports`."""
        return {key: f"http://{self.host}:{port}" for key, port in self.ports.items()}

    @property
    def url(self) -> str:
        """Base URL of the primary mirror without a trailing slash, e.g. "http://127.0.0.1:54321"."""
        return self.local_urls["mirror0"]

    @property
    def mirror_urls(self) -> list[str]:
        """Base URLs of the mirrors, index 0 the primary."""
        return [url for key, url in self.local_urls.items() if key != PHISHING]

    @property
    def phishing_url(self) -> str | None:
        """Base URL of the phishing clone, or None when it does not run."""
        return self.local_urls.get(PHISHING)

    def set_public_urls(self, mapping: Mapping[str, str]) -> None:
        """Set the addresses `/mirrors` lists (onion URLs over Tor), keyed like `ports`."""
        public = dict(mapping)
        for app in (self.app, self.phishing_app):
            if app is not None:
                app.extensions["public_urls"] = public

    def start(self) -> DemoServer:
        """Start serving every port, each in a daemon thread."""
        if not self._threads:
            for key, server in self._servers.items():
                # A short poll interval keeps shutdown (and so test teardown) quick.
                thread = threading.Thread(
                    target=server.serve_forever,
                    args=(0.05,),
                    name=f"demo-{self.market}-{key}-{server.server_port}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving, end open connections, close the sockets and wait for the threads."""
        if self._threads:
            for server in self._servers.values():
                server.shutdown()
            for thread in self._threads:
                thread.join(timeout=10)
            self._threads = []
        for server in self._servers.values():
            server.close_connections()
            server.server_close()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(
    market: str | None = None,
    day: int = 0,
    seed: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    markets: Sequence[str] | None = None,
    hostility: Hostility | Mapping[str, Hostility] | None = None,
    **opts: Any,
) -> None:
    """Serve one market, or several on consecutive ports, in the foreground until interrupted (CLI).

    `market` serves one market; `markets` serves each listed one (None for all) starting at
    `port`, each taking as many ports as it has mirrors (and its phishing clone). Port 0 gives
    every port a free one. `hostility` is one setting for all, or one per market.
    """
    chosen = [market] if market is not None else list(markets or MARKETS)
    servers: list[DemoServer] = []
    next_port = port
    try:
        for name in chosen:
            chosen_hostility = hostility.get(name) if isinstance(hostility, Mapping) else hostility
            server = DemoServer(
                name, day, seed=seed, host=host, port=next_port, hostility=chosen_hostility, **opts
            )
            servers.append(server.start())
            if next_port:
                next_port += len(server.ports)
            for key, url in server.local_urls.items():
                label = "" if key == "mirror0" and len(server.ports) == 1 else f" {key}"
                print(f"{name}{label} day {day} seed {seed}: {url}", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop()
