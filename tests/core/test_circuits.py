"""Isolation identities, circuit renewal and restarting a dead Tor, without a Tor."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from transport.circuits import CircuitManager, url_safe
from transport.errors import TorBootstrapError, TorControlError
from transport.middleware import socks_proxy_url


class FakeTor:
    """Stands in for a TorInstance: dies, restarts slowly, counts restarts."""

    launched = True
    socks_port = 9999

    def __init__(self, alive: bool = True, restart_fails: bool = False) -> None:
        self.alive = alive
        self.restart_fails = restart_fails
        self.restarts = 0
        self.lock = threading.Lock()

    def is_alive(self) -> bool:
        return self.alive

    def restart(self) -> None:
        with self.lock:
            self.restarts += 1
        time.sleep(0.2)
        if self.restart_fails:
            raise TorBootstrapError("stalled")
        self.alive = True

    def controller(self) -> None:
        raise TorControlError("no control port in this test")


def manager(tor: FakeTor, **kwargs: int) -> CircuitManager:
    stats = MemoryStatsCollector(get_crawler())
    return CircuitManager(tor, stats, **kwargs)  # type: ignore[arg-type]


def test_identities_are_url_safe_and_distinct() -> None:
    circuits = manager(FakeTor())
    assert circuits.identity("hollowmere") == "hollowmere.anonymous.0"
    assert circuits.identity("hollowmere", "buyer_1") == "hollowmere.buyer_1.0"
    assert circuits.identity("hollowmere", lane=3) == "hollowmere.anonymous-3.0"
    odd = circuits.identity("hollowmere", "a/b#c")
    assert url_safe("a/b#c") != url_safe("a_b_c") and odd.startswith("hollowmere.a_b_c_")
    for identity in (odd, circuits.identity("x y", "über")):
        assert socks_proxy_url(9050, identity).startswith(f"socks5h://{identity}:x@127.0.0.1:9050")
    with pytest.raises(ValueError, match="not URL-safe"):
        socks_proxy_url(9050, "a/b")


def test_a_run_of_timeouts_renews_that_identity_only() -> None:
    circuits = manager(FakeTor(), renew_after_timeouts=3)
    first = circuits.identity("hollowmere")
    assert [circuits.note_timeout(first) for _ in range(3)] == [False, False, True]
    assert circuits.renew(first, "timeouts") == "hollowmere.anonymous.1"
    assert circuits.identity("hollowmere") == "hollowmere.anonymous.1"
    assert circuits.identity("copperline") == "copperline.anonymous.0"
    assert circuits.stats.get_value("dnm/tor/circuits_renewed/timeouts") == 1
    circuits.note_timeout(circuits.identity("hollowmere"))
    circuits.note_success(circuits.identity("hollowmere"))  # a success breaks the run
    assert not circuits.note_timeout(circuits.identity("hollowmere"))


def test_concurrent_failures_share_one_restart() -> None:
    tor = FakeTor(alive=False)
    circuits = manager(tor)

    async def many() -> list[bool]:
        return await asyncio.gather(*(circuits.ensure_tor() for _ in range(20)))

    assert asyncio.run(many()) == [True] * 20
    assert tor.restarts == 1 and circuits.stats.get_value("dnm/tor/restarts") == 1


def test_restarts_are_bounded() -> None:
    tor = FakeTor(alive=False, restart_fails=True)
    circuits = manager(tor, max_restarts=2)
    results = [asyncio.run(circuits.ensure_tor()) for _ in range(4)]
    assert results == [False] * 4 and tor.restarts == 2
