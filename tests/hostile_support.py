"""What the tests of the hostile demo's gates share: a content page behind every gate, network faults
off, and a hand-driven clock for the gate state."""

from __future__ import annotations

from typing import Any

from flask import Flask

from demo.app import create_app
from demo.hostile.config import Hostility
from demo.hostile.gates import gate_state

PAGE = {"hollowmere": "/category/drugs", "copperline": "/c/100/1"}  # a content page behind every gate
# Network-level behaviours (faults, rate limit, maintenance, mirrors) are off unless a test turns one on,
# so that each page a test asks for is the page it gets.
NETWORK_OFF: dict[str, Any] = {
    "circuit_budget": 0,
    "maintenance_at": (),
    "fault_rate": 0.0,
    "mirrors": 1,
    "mirror_down": {},
    "phishing": False,
}


class Clock:
    """A hand-driven clock for the demo's gate state."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def app_with_clock(market: str, day: int, seed: int, hostility: Hostility) -> tuple[Flask, Clock]:
    """A demo app with the given hostility, its gates driven by a hand clock."""
    app = create_app(market, day, seed=seed, hostility=hostility)
    clock = Clock()
    gate_state(app).clock = clock
    return app, clock
