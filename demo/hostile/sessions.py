"""Server-side login sessions of the demo market: sid -> user, age, requests served, verified flag.

A session ends after `ttl` seconds or `max_requests` requests (0 = no limit); the request after
that is treated as logged out. Session ids are drawn from the market's seeded stream, not the OS,
so a demo run is reproducible. Thread-safe: the demo server answers requests on many threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from demo.rng import rng


@dataclass
class Session:
    """One logged-in visitor."""

    sid: str
    username: str
    created: float
    requests: int = 0  # requests served so far
    verified: bool = True  # False until the post-login anti-phishing captcha is solved


class Sessions:
    """The market's live sessions, plus how many times each user has logged in."""

    def __init__(
        self,
        seed: int,
        market: str,
        ttl: float = 0.0,
        max_requests: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seed, self.market = seed, market
        self.ttl, self.max_requests, self.clock = ttl, max_requests, clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._logins: dict[str, int] = {}
        self._count = 0

    def login_number(self, username: str) -> int:
        """Count one more login of `username` and return its number (1 for the first)."""
        with self._lock:
            self._logins[username] = self._logins.get(username, 0) + 1
            return self._logins[username]

    def create(self, username: str, verified: bool = True) -> Session:
        """Open a session for a user."""
        with self._lock:
            self._count += 1
            sid = rng(self.seed, self.market, "sid", self._count).randbytes(16).hex()
            session = Session(sid, username, self.clock(), verified=verified)
            self._sessions[sid] = session
            self._expire_locked()
        return session

    def _expired(self, session: Session, now: float) -> bool:
        if self.ttl and now - session.created >= self.ttl:
            return True
        return bool(self.max_requests) and session.requests >= self.max_requests

    def _expire_locked(self) -> None:
        now = self.clock()
        for sid in [sid for sid, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[sid]

    def get(self, sid: str | None) -> Session | None:
        """The live session with this id (without counting a request), or None."""
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and self._expired(session, self.clock()):
                del self._sessions[sid]
                return None
            return session

    def serve(self, sid: str | None) -> Session | None:
        """The live session with this id, counting one request served on it; None if there is none."""
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if self._expired(session, self.clock()):
                del self._sessions[sid]
                return None
            session.requests += 1
            return session

    def verify(self, sid: str) -> None:
        """Mark a session's anti-phishing captcha as solved."""
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None:
                session.verified = True
