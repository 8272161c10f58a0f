"""Fixtures of the security tests: the private Tor network, as tests/tor uses it.

The fixture is tests/tor's own (the same function); a run of both directories in one session starts
the network once for each, which costs ~15 s and keeps each directory runnable on its own.
"""

from __future__ import annotations

from tests.tor.conftest import tor_network

__all__ = ["tor_network"]
