"""Human-in-the-loop CAPTCHA solver: a local web page (and optionally the terminal) where a person answers.

A stdlib HTTP server in a thread, bound to 127.0.0.1, lists the challenges waiting for an answer.
Every URL needs the random token the solver logs once ("CAPTCHA waiting: open http://127.0.0.1:PORT/?t=TOKEN"),
so other users of the machine cannot read or answer challenges, and the Host header must be the
loopback address (no DNS rebinding). Images are served from memory, never written to disk.
`solve` registers an asyncio future and awaits it; the server thread settles it with
`loop.call_soon_threadsafe`, so the event loop never blocks. Several challenges can wait at once.

Settings: `DNM_CAPTCHA_PORT` (0 = a free port), `DNM_CAPTCHA_TIMEOUT` (seconds, default 300),
`DNM_CAPTCHA_TERMINAL` (also ask on the terminal when stdin is a TTY, default False).
Stats: `dnm/captcha/human/answered`, `.../skipped`, `.../timeout`, `.../correct`, `.../wrong`.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import secrets
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, urlsplit

from dnm.captcha.base import (
    KIND_CLOCK,
    CaptchaChallenge,
    SolverConfigError,
    clock_answer,
    parse_clock_answer,
)
from dnm.captcha.page import (
    APP_CSS,
    APP_JS,
    SECURITY_HEADERS,
    ResultView,
    WaitingView,
    printable,
    render_page,
    sniff_image_type,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0
MAX_ANSWER_LENGTH = 64
MAX_FORM_BYTES = 4096
HOST = "127.0.0.1"


@dataclass
class _Waiting:
    """A challenge waiting for a person, and the future its `solve` awaits."""

    key: str
    challenge: CaptchaChallenge
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[tuple[str | None, str]]
    deadline: float  # time.monotonic()
    since: float  # time.time(), shown only


def _settle(future: asyncio.Future[tuple[str | None, str]], result: tuple[str | None, str]) -> None:
    # Runs on the solving loop; the future may already be done (timed out, cancelled).
    if not future.done():
        future.set_result(result)


class HumanSolver:
    """Asks a person through a local web page; `solve` returns their answer, or None (skip, timeout)."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        port: int = 0,
        terminal: bool = False,
        stats: StatsCollector | None = None,
        terminal_in: TextIO | None = None,
        terminal_out: TextIO | None = None,
    ) -> None:
        if timeout <= 0:
            raise SolverConfigError(
                f"DNM_CAPTCHA_TIMEOUT must be a positive number of seconds, not {timeout}"
            )
        if not 0 <= port <= 65535:
            raise SolverConfigError(f"DNM_CAPTCHA_PORT must be 0 (a free port) or 1-65535, not {port}")
        self.timeout = timeout
        self.port = port
        self.stats = stats
        # The token keeps other local users out; it is a secret, so it comes from `secrets`, not a seed.
        self.token = secrets.token_urlsafe(24)
        self._terminal = terminal
        self._terminal_in = terminal_in or sys.stdin
        self._terminal_out = terminal_out or sys.stderr
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiting: dict[str, _Waiting] = {}
        self._recent: deque[ResultView] = deque(maxlen=10)
        self._version = 0
        self._keys = itertools.count(1)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._announced = False
        self._closed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HumanSolver:
        """Build from settings and start the page server, so a busy port fails the crawl at its start."""
        settings = crawler.settings
        terminal = settings.getbool("DNM_CAPTCHA_TERMINAL", False)
        solver = cls(
            timeout=settings.getfloat("DNM_CAPTCHA_TIMEOUT", DEFAULT_TIMEOUT),
            port=settings.getint("DNM_CAPTCHA_PORT", 0),
            terminal=terminal and sys.stdin is not None and sys.stdin.isatty(),
            stats=crawler.stats,
        )
        solver.start()
        return solver

    # -- the server ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start the page server (once) and return the page's URL with its token."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the human CAPTCHA solver is closed")
            if self._server is None:
                try:
                    server = _Server((HOST, self.port), _Handler)
                except OSError as exc:
                    raise SolverConfigError(
                        f"cannot serve the CAPTCHA page on {HOST}:{self.port} ({exc.strerror}): "
                        "set DNM_CAPTCHA_PORT to a free port, or 0 to pick one"
                    ) from exc
                server.solver = self
                self._server = server
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.2},
                    name="dnm-captcha-page",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
                if self._terminal:
                    reader = threading.Thread(
                        target=self._terminal_loop, name="dnm-captcha-terminal", daemon=True
                    )
                    reader.start()  # not joined on close: it may sit in readline() until the next line
            return self.url

    @property
    def url(self) -> str:
        """The page's URL, token included (the server must be started)."""
        if self._server is None:
            raise RuntimeError("the CAPTCHA page server is not started: call start()")
        return f"http://{HOST}:{self._server.server_address[1]}/?t={self.token}"

    def check_token(self, token: str) -> bool:
        """True when `token` is this solver's (compared in constant time)."""
        return hmac.compare_digest(token.encode(), self.token.encode())

    # -- the solver contract ------------------------------------------------------------------

    async def solve(self, challenge: CaptchaChallenge) -> str | None:
        """Wait for a person's answer, up to DNM_CAPTCHA_TIMEOUT seconds; None on skip, timeout or close."""
        if self._closed:
            return None
        loop = asyncio.get_running_loop()
        url = self.start()
        future: asyncio.Future[tuple[str | None, str]] = loop.create_future()
        with self._lock:
            key = str(next(self._keys))
            self._waiting[key] = _Waiting(
                key, challenge, loop, future, time.monotonic() + self.timeout, time.time()
            )
            self._touch()
            announce = not self._announced
            self._announced = True
        if announce:
            logger.warning("CAPTCHA waiting: open %s", url)
        logger.info(
            "CAPTCHA from %s (%s, attempt %d) waits for a person, up to %.0f s",
            printable(challenge.market, 80), printable(challenge.kind, 20), challenge.attempt, self.timeout,
        )  # fmt: skip
        try:
            answer, how = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self._inc("timeout")
            logger.warning(
                "CAPTCHA from %s: no answer within %.0f s", printable(challenge.market, 80), self.timeout
            )
            return None
        finally:
            with self._lock:
                if self._waiting.pop(key, None) is not None:
                    self._touch()
        self._inc("answered" if answer is not None else "skipped" if how == "skip" else "closed")
        return answer

    def report(self, challenge: CaptchaChallenge, answer: str, correct: bool) -> None:
        """Count the verdict and show it on the page, so the person learns from wrong answers."""
        self._inc("correct" if correct else "wrong")
        with self._lock:
            self._recent.append(ResultView(challenge.market, challenge.kind, answer, correct))
            self._touch()

    def close(self) -> None:
        """Stop the page server; challenges still waiting get None."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting = list(self._waiting.values())
            self._waiting.clear()
            self._touch()
            server, self._server = self._server, None
        for entry in waiting:
            self._settle_threadsafe(entry, None, "closed")
        if server is not None:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- used by the page server and the terminal (other threads) --------------------------------

    def waiting(self) -> list[WaitingView]:
        """The challenges waiting now, oldest first."""
        now = time.monotonic()
        with self._lock:
            return [
                WaitingView(w.key, w.challenge, max(0.0, w.deadline - now), w.since)
                for w in self._waiting.values()
            ]

    def snapshot(self) -> tuple[int, list[WaitingView], list[ResultView]]:
        """Version, waiting challenges and recent verdicts, taken together for one page."""
        with self._lock:
            version, recent = self._version, list(self._recent)
        return version, self.waiting(), recent

    def version(self) -> int:
        """A number that changes whenever the list of waiting challenges or verdicts changes."""
        with self._lock:
            return self._version

    def image(self, key: str) -> tuple[bytes, str] | None:
        """The image of a waiting challenge and the type its bytes prove, or None."""
        with self._lock:
            entry = self._waiting.get(key)
        if entry is None or entry.challenge.image is None:
            return None
        mime = sniff_image_type(entry.challenge.image)
        return (entry.challenge.image, mime) if mime else None

    def answer(self, key: str, form: dict[str, str], how: str = "web") -> str:
        """Apply a submitted form to challenge `key`; returns the outcome ("answered", "skipped", ...)."""
        with self._lock:
            entry = self._waiting.get(key)
        if entry is None:
            return "gone"
        if form.get("action") == "skip":
            return "skipped" if self._resolve(key, None, "skip") else "gone"
        try:
            answer = self._read_answer(entry.challenge.kind, form)
        except ValueError:
            return "invalid"
        if not answer:
            return "empty"
        return "answered" if self._resolve(key, answer, how) else "gone"

    @staticmethod
    def _read_answer(kind: str, form: dict[str, str]) -> str:
        if kind == KIND_CLOCK:
            if "hour" in form or "minute" in form:
                hour, minute = form.get("hour", ""), form.get("minute", "")
                if not hour and not minute:
                    return ""
                return clock_answer(int(hour), int(minute))
            text = form.get("answer", "").strip()
            return parse_clock_answer(text) if text else ""
        text = form.get("answer", "").strip()
        if len(text) > MAX_ANSWER_LENGTH or not text.isprintable():
            raise ValueError("answer too long or not printable")
        return text

    def _resolve(self, key: str, answer: str | None, how: str) -> bool:
        with self._lock:
            entry = self._waiting.pop(key, None)
            if entry is None:
                return False
            self._touch()
        return self._settle_threadsafe(entry, answer, how)

    @staticmethod
    def _settle_threadsafe(entry: _Waiting, answer: str | None, how: str) -> bool:
        try:
            entry.loop.call_soon_threadsafe(_settle, entry.future, (answer, how))
        except RuntimeError:  # the solving loop is closed: nobody waits any more
            return False
        return True

    def _touch(self) -> None:
        # Called with the lock held.
        self._version += 1
        self._changed.notify_all()

    def _inc(self, outcome: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"dnm/captcha/human/{outcome}")

    # -- the terminal ---------------------------------------------------------------------------

    def _terminal_loop(self) -> None:
        """Ask about the oldest waiting challenge on the terminal; each line answers it (empty = skip)."""
        out = self._terminal_out
        while True:
            with self._lock:
                while not self._closed and not self._waiting:
                    self._changed.wait()
                if self._closed:
                    return
                entry = next(iter(self._waiting.values()))
                url = self.url
            challenge = entry.challenge
            hint = "H:MM" if challenge.kind == KIND_CLOCK else "the characters"
            prompt = f" ({printable(challenge.prompt, 200)})" if challenge.prompt.strip() else ""
            print(
                f"\nCAPTCHA from {printable(challenge.market, 80)}{prompt}, attempt {challenge.attempt}: "
                f"see the image at {url}\nType {hint} and Enter (empty line = skip): ",
                end="", file=out, flush=True,
            )  # fmt: skip
            line = self._terminal_in.readline()
            if not line:  # end of input: the web page stays
                return
            text = line.strip()
            form = {"action": "skip"} if not text else {"action": "answer", "answer": text}
            outcome = self.answer(entry.key, form, how="terminal")
            if outcome == "gone":
                print("That challenge was already answered or gave up.", file=out, flush=True)
            elif outcome == "invalid":
                print(f"Not a valid answer: type {hint}.", file=out, flush=True)


class _Server(ThreadingHTTPServer):
    """The page server; `solver` is set right after binding."""

    daemon_threads = True
    solver: HumanSolver


class _Handler(BaseHTTPRequestHandler):
    """Serves the page, its style and script, the images and the answer form; all behind the token."""

    server: _Server
    server_version = "dnm-captcha"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes request lines, token included, to stderr.
        return

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/favicon.ico":  # asked by browsers without the token; nothing to hide
            self._send(HTTPStatus.NO_CONTENT, "image/x-icon", b"")
            return
        path, query = self._authorised()
        if path is None:
            return
        solver = self.server.solver
        if path == "/":
            version, waiting, recent = solver.snapshot()
            page = render_page(solver.token, version, waiting, recent, query.get("m"))
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", page.encode())
        elif path == "/state":
            body = json.dumps({"version": solver.version(), "waiting": [w.key for w in solver.waiting()]})
            self._send(HTTPStatus.OK, "application/json", body.encode())
        elif path == "/app.css":
            self._send(HTTPStatus.OK, "text/css; charset=utf-8", APP_CSS.encode())
        elif path == "/app.js":
            self._send(HTTPStatus.OK, "text/javascript; charset=utf-8", APP_JS.encode())
        elif path.startswith("/image/"):
            image = solver.image(path.removeprefix("/image/"))
            if image is None:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"no such image\n")
            else:
                self._send(HTTPStatus.OK, image[1], image[0])
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    def do_POST(self) -> None:
        path, _ = self._authorised()
        if path is None:
            return
        if path != "/answer":
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_FORM_BYTES:
            self._send(HTTPStatus.BAD_REQUEST, "text/plain; charset=utf-8", b"bad form\n")
            return
        fields = parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
        form = {name: values[0] for name, values in fields.items()}
        outcome = self.server.solver.answer(form.get("id", ""), form)
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header("Location", f"/?t={self.server.solver.token}&m={outcome}")
        self.send_header("Content-Length", "0")
        self._security_headers()
        self.end_headers()

    def _authorised(self) -> tuple[str | None, dict[str, str]]:
        """The request's path and query if its Host and token are right; otherwise 403 sent, (None, {})."""
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        port = self.server.server_address[1]
        host_ok = self.headers.get("Host", "") in (f"{HOST}:{port}", f"localhost:{port}")
        if not host_ok or not self.server.solver.check_token(query.get("t", "")):
            self._send(
                HTTPStatus.FORBIDDEN,
                "text/plain; charset=utf-8",
                b"forbidden: open the URL the crawler logged\n",
            )
            return None, {}
        return parts.path, query

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._security_headers()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _security_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
