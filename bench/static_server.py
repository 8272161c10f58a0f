"""The static server: serves pre-rendered pages over HTTP/1.1 keep-alive, in a process of its own.

The demo app renders every page with Flask and Jinja on the same two cores as the crawler, which
would dominate both sides of the benchmark and flatten the ratio. This server answers from bytes
built once at startup, so a request costs little more than a socket write. Unknown paths get 404.

Run as `python -m bench.static_server PAGES_FILE [--host H] [--port P]`: it prints its port on the
first line of standard output and serves until terminated. `StaticServer` launches it that way.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import select
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType

from bench import REPO

# A request head larger than this is not a crawler's: the connection is closed instead of buffering.
MAX_HEAD = 64 * 1024
STARTUP_TIMEOUT = 10.0  # seconds to load the pages and report the port
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class StaticPage:
    """One page as the server will send it; `target` is the request target, path plus query."""

    target: str
    status: int
    content_type: str
    body: bytes


class StaticServerError(RuntimeError):
    """The static server process could not be started or died."""


def save_pages(pages: Iterable[StaticPage], path: Path) -> None:
    """Write pages to a file the server process loads at startup."""
    with path.open("wb") as out:
        pickle.dump(list(pages), out, protocol=pickle.HIGHEST_PROTOCOL)


def load_pages(path: Path) -> list[StaticPage]:
    """Read the pages `save_pages` wrote (our own file, so unpickling it is safe)."""
    with path.open("rb") as source:
        pages: list[StaticPage] = pickle.load(source)
    return pages


def _head(status: int, content_type: str, length: int) -> bytes:
    """A status line and headers, without the blank line that ends them (Connection may follow)."""
    reason = HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
    ).encode("latin-1")


NOT_FOUND_BODY = b"<html><body><h1>404 Not Found</h1></body></html>\n"
NOT_FOUND = (_head(404, "text/html; charset=utf-8", len(NOT_FOUND_BODY)), NOT_FOUND_BODY)


def build_responses(pages: Iterable[StaticPage]) -> dict[bytes, tuple[bytes, bytes]]:
    """Request target -> (head, body), built once so serving a request allocates almost nothing."""
    return {
        page.target.encode("latin-1"): (_head(page.status, page.content_type, len(page.body)), page.body)
        for page in pages
    }


class PageProtocol(asyncio.Protocol):
    """One client connection: parses request heads and answers each from the prebuilt responses."""

    def __init__(self, responses: dict[bytes, tuple[bytes, bytes]]) -> None:
        self.responses = responses
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        # Pipelined requests are answered in order, one head at a time.
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self.transport.close()
                return
            head = self.buffer[:end]
            method, target, keep_alive, body_length = parse_head(head)
            if len(self.buffer) < end + 4 + body_length:
                return  # a request body still on its way; crawlers send none, but stay correct
            self.buffer = self.buffer[end + 4 + body_length :]
            self.respond(method, target, keep_alive)

    def respond(self, method: bytes, target: bytes, keep_alive: bool) -> None:
        """Write the page for `target` (404 if unknown); close afterwards unless kept alive."""
        assert self.transport is not None
        head, body = self.responses.get(target, NOT_FOUND)
        ending = b"\r\n" if keep_alive else b"Connection: close\r\n\r\n"
        self.transport.writelines((head, ending) if method == b"HEAD" else (head, ending, body))
        if not keep_alive:
            self.transport.close()


def parse_head(head: bytes) -> tuple[bytes, bytes, bool, int]:
    """Method, origin-form target, whether to keep the connection, and the request body's length."""
    request_line, _, header_block = head.partition(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3:
        return b"GET", b"", False, 0  # unparseable: answer 404 and close
    method, target, version = parts
    if target.startswith((b"http://", b"https://")):
        # absolute-form, as sent to a proxy: keep the path and query only
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    connection = b""
    body_length = 0
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"connection":
            connection = value.strip().lower()
        elif name == b"content-length" and value.strip().isdigit():
            body_length = int(value.strip())
    keep_alive = connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
    return method, target, keep_alive, body_length


async def serve(pages: Sequence[StaticPage], host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Start serving the pages; the caller reads the port from the returned server's socket."""
    responses = build_responses(pages)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: PageProtocol(responses), host, port)


async def _main(pages_file: Path, host: str, port: int) -> None:
    server = await serve(load_pages(pages_file), host, port)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("pages_file", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_main(args.pages_file, args.host, args.port))


class StaticServer:
    """Runs `python -m bench.static_server` in a child process; use as a context manager for `url`."""

    def __init__(self, pages_file: Path, host: str = "127.0.0.1") -> None:
        self.pages_file = pages_file
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server process id, while it runs."""
        return self._process.pid if self._process else None

    def start(self) -> StaticServer:
        """Start the process and wait for it to report its port."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.static_server", str(self.pages_file), "--host", self.host],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], STARTUP_TIMEOUT)
        line = self._process.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            self.stop()
            raise StaticServerError(
                f"the static server did not report its port (got {line!r}); see its error output above"
            )
        self.port = int(line)
        return self

    def stop(self) -> None:
        """Terminate the server process (ours, by pid) and wait for it."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
