"""Fixtures over the private Tor network: the network (started once per session) and the demo onions.

Without tor the network tests are skipped with the install hint, except under CI=true, where a
missing tor fails them: CI must not silently stop testing the Tor path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from demo.truth import MARKETS
from tests.tor.support import FIGURES, require_tor
from transport.tornet import PrivateTorNetwork, pid_alive, serve_demo_over_tor


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: starts a second private Tor network (~15 s); deselect with -m 'not slow'"
    )


@pytest.fixture(scope="session")
def tor_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateTorNetwork]:
    """A running private Tor network (4 authorities, onion-service tor, client tor) for the session.

    Teardown stops it and fails if any of its tor processes is still alive.
    """
    require_tor()
    network = PrivateTorNetwork(tmp_path_factory.mktemp("tornet"))
    network.start(timeout=90)
    FIGURES["network start"] = f"{network.start_seconds:.1f} s {network.phase_seconds}"
    FIGURES["network RSS after start"] = f"{network.rss_bytes() / 2**20:.0f} MiB"
    pids = network.pids()
    try:
        yield network
    finally:
        FIGURES["network RSS at the end"] = f"{network.rss_bytes() / 2**20:.0f} MiB"
        network.stop()
        survivors = [name for name, pid in pids.items() if pid_alive(pid)]
        assert not survivors, f"tor processes left after stop(): {survivors}"


@pytest.fixture(scope="session")
def demo_onions(tor_network: PrivateTorNetwork) -> Iterator[dict[str, str]]:
    """{market: "http://<deterministic address>.onion"} for every demo market on day 1."""
    began = time.monotonic()
    with serve_demo_over_tor(tor_network, MARKETS, day=1) as onions:
        FIGURES["demo onions published and fetched once"] = (
            f"{time.monotonic() - began:.1f} s for {len(onions.urls)} markets"
        )
        yield dict(onions.urls)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the measured figures of the private Tor network, when it ran."""
    if FIGURES:
        terminalreporter.section("private Tor network")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
