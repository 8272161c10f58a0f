"""Serving the demo over real sockets: a background-thread server for tests and a foreground CLI one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from demo.app import create_app
from demo.world import MARKETS

log = logging.getLogger(__name__)


class QuietHandler(WSGIRequestHandler):
    """Request handler that keeps per-request lines out of test and crawl output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Drop access-log lines."""

    def log(self, type: str, message: str, *args: Any) -> None:
        """Send werkzeug's own messages (errors) to this module's logger at debug level."""
        log.debug("%s: %s", type, message % args)


class DemoServer:
    """A threaded werkzeug server for one market-day, running in a background thread.

    Use as a context manager; `url` is set as soon as the object exists, since the socket is bound
    in the constructor (port 0 picks a free port).
    """

    def __init__(
        self, market: str, day: int, seed: int = 1, host: str = "127.0.0.1", port: int = 0, **opts: Any
    ) -> None:
        self.market, self.day, self.seed = market, day, seed
        self.app = create_app(market, day, seed=seed, **opts)
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True, request_handler=QuietHandler
        )
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """Bound address."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """Bound port."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. "http://127.0.0.1:54321"."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> DemoServer:
        """Start serving in a daemon thread."""
        if self._thread is None:
            # A short poll interval keeps shutdown (and so test teardown) quick.
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name=f"demo-{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the thread."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

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
    **opts: Any,
) -> None:
    """Serve one market, or several on consecutive ports, in the foreground until interrupted (CLI).

    `market` serves one market; `markets` serves each listed one (None for all) starting at
    `port`. Port 0 gives every market a free port.
    """
    chosen = [market] if market is not None else list(markets or MARKETS)
    servers = []
    try:
        for i, name in enumerate(chosen):
            servers.append(
                DemoServer(name, day, seed=seed, host=host, port=port + i if port else 0, **opts).start()
            )
            print(f"{name} day {day} seed {seed}: {servers[-1].url}", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop()
