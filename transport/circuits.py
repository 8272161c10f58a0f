"""Circuits and Tor health during a crawl: isolation identities, renewal, and restarting a dead tor.

An identity is a market plus an account ("hollowmere.anonymous"); Tor gives each distinct SOCKS
username its own circuits (IsolateSOCKSAuth). Renewing an identity's circuit bumps a generation
suffix ("hollowmere.anonymous.2"): a new username, so a new circuit at once, without waiting for
NEWNYM's rate limit; NEWNYM is sent too when Tor allows it, to drop the old circuits. Identities use
only URL-safe characters, because they travel as the userinfo of a socks5h:// proxy URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import defaultdict
from typing import Any

import stem
from stem import Signal

from transport.errors import TorError
from transport.process import TorInstance

logger = logging.getLogger(__name__)


def url_safe(name: str) -> str:
    """`name` with only letters, digits, "_" and "-"; a short hash keeps altered names distinct."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if safe == name:
        return name
    return f"{safe}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


class CircuitManager:
    """Keeps the identities of one crawl, renews their circuits, and restarts Tor when it dies."""

    def __init__(self, tor: TorInstance, stats: Any, *, renew_after_timeouts: int = 3, max_restarts: int = 3):
        self.tor = tor
        self.stats = stats
        self.renew_after_timeouts = renew_after_timeouts
        self.max_restarts = max_restarts
        self.generations: dict[str, int] = defaultdict(int)
        self.timeouts: dict[str, int] = defaultdict(int)
        self.restarts = 0
        self._restart: asyncio.Task[bool] | None = None

    @staticmethod
    def base(market: str, account: str | None = None) -> str:
        return f"{url_safe(market)}.{url_safe(account or 'anonymous')}"

    def identity(self, market: str, account: str | None = None, lane: int = 0) -> str:
        """The SOCKS username for a market and account (and lane), at its current generation.

        Lanes spread an anonymous crawl of one market over several circuits (`DNM_TOR_LANES`).
        """
        base = self.base(market, account) + (f"-{lane}" if lane else "")
        return f"{base}.{self.generations[base]}"

    def note_success(self, identity: str) -> None:
        self.timeouts[identity.rsplit(".", 1)[0]] = 0

    def note_timeout(self, identity: str) -> bool:
        """Count a timeout; True when the identity has had enough in a row to deserve a new circuit."""
        base = identity.rsplit(".", 1)[0]
        self.timeouts[base] += 1
        if self.timeouts[base] >= self.renew_after_timeouts:
            self.timeouts[base] = 0
            return True
        return False

    def renew(self, identity: str, reason: str) -> str:
        """Give the identity a new circuit; returns its new SOCKS username."""
        base = identity.rsplit(".", 1)[0]
        self.generations[base] += 1
        self.stats.inc_value("dnm/tor/circuits_renewed")
        self.stats.inc_value(f"dnm/tor/circuits_renewed/{reason}")
        logger.info("new circuit for %s (%s)", base, reason)
        self.newnym()
        return f"{base}.{self.generations[base]}"

    def newnym(self) -> bool:
        """Send NEWNYM if Tor's rate limit allows it now; True if sent."""
        try:
            with self.tor.controller() as controller:
                if not controller.is_newnym_available():
                    self.stats.inc_value("dnm/tor/newnym_rate_limited")
                    return False
                controller.signal(Signal.NEWNYM)
        except (TorError, stem.ControllerError) as exc:
            logger.warning("NEWNYM failed: %s", exc)
            return False
        self.stats.inc_value("dnm/tor/newnym")
        return True

    async def ensure_tor(self) -> bool:
        """After a connection failure: True if Tor is (again) usable, restarting it when it died.

        Every failure that arrives while a check or restart is under way waits for that same one,
        so a dead Tor is restarted once, not once per failed request. Gives up (False) after
        `max_restarts`.
        """
        if self._restart is None or self._restart.done():
            self._restart = asyncio.ensure_future(self._check_and_restart())
        return await asyncio.shield(self._restart)

    async def _check_and_restart(self) -> bool:
        if await asyncio.to_thread(self.tor.is_alive):
            return True
        return await self._do_restart()

    async def _do_restart(self) -> bool:
        if self.restarts >= self.max_restarts:
            return False
        self.restarts += 1
        self.stats.inc_value("dnm/tor/restarts")
        what = "restarting" if self.tor.launched else "waiting for"
        logger.warning("tor stopped answering on 127.0.0.1:%s; %s it", self.tor.socks_port, what)
        try:
            await asyncio.to_thread(self.tor.restart)
        except TorError as exc:
            logger.error("tor could not be brought back: %s", exc)
            return False
        logger.warning("tor is back (restart %d)", self.restarts)
        return True
