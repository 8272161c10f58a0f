"""Helpers of the Tor tests: skip-or-fail when tor is missing, and the figures shown in the summary."""

from __future__ import annotations

import os

import pytest

from transport.errors import TorNotInstalled
from transport.tornet import find_tor, find_tor_gencert

# Figures measured by the tests, printed in pytest's terminal summary (see docs/tornet.md).
FIGURES: dict[str, str] = {}


def require_tor() -> str:
    """The tor binary, or skip with the install hint; under CI=true a missing tor fails instead."""
    try:
        tor = find_tor()
        find_tor_gencert(tor)
    except TorNotInstalled as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true: the Tor tests must run, not skip)", pytrace=False)
        pytest.skip(str(exc))
    return tor
