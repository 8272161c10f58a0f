"""Which hostile behaviours a demo market shows, and how strongly: one `Hostility` per skin.

Every behaviour is off in `Hostility()` (the friendly market of the foundation tests). Each skin
declares its own preset (`HOSTILITY` in demo/skins/<skin>.py); `--hostile` turns it on and
`--hostile-set key=value` overrides single keys, so one switch at a time can be tested.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class Hostility:
    """The hostile behaviours of one demo market (all off by default)."""

    # First contact: a meta-refresh "please wait N seconds" page (0 = off).
    wait_seconds: float = 0.0
    # EndGame-style gate: queue page for this long (0 = no queue), then a challenge.
    queue_seconds: float = 0.0
    # The gate's challenge: "clock" (answer = the time shown), "image" (text), or None (no gate captcha).
    gate_captcha: str | None = None
    gate_ttl: float = 600.0  # seconds a solved gate cookie stays valid; then back to the queue
    challenge_ttl: float = 60.0  # seconds to answer a challenge
    # Accounts: content needs a logged-in session.
    login_required: bool = False
    login_captcha: str | None = None  # "image" or "clock" on the login form, or None
    post_login_captcha: float = 0.0  # share of logins followed by an anti-phishing captcha page
    session_ttl: float = 0.0  # seconds a session lives (0 = forever)
    session_max_requests: int = 0  # requests a session serves before it expires (0 = unlimited)
    # Per-circuit rate limit: over `circuit_budget` requests in `circuit_window` seconds kills the circuit.
    circuit_budget: int = 0
    circuit_window: float = 60.0
    # Maintenance: starting at each of these global request numbers, the market is down this long.
    maintenance_at: tuple[int, ...] = ()
    maintenance_seconds: float = 2.0
    # Transient faults on GETs: 5xx, timeouts, truncated bodies and connection resets.
    fault_rate: float = 0.0
    fault_timeout: float = 8.0  # how long a "timeout" fault holds the request before answering 504
    # Mirrors: how many the market runs; mirror index -> (from, to) request numbers during which it is
    # down (to = -1: for good); whether a phishing clone runs beside them.
    mirrors: int = 1
    mirror_down: dict[int, tuple[int, int]] = field(default_factory=dict)
    phishing: bool = False

    def with_overrides(self, **overrides: Any) -> Hostility:
        """A copy with some keys changed; unknown keys are an error naming the known ones."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown hostility key(s) {sorted(unknown)}; known: {sorted(known)}")
        return dataclasses.replace(self, **overrides)

    @property
    def active(self) -> bool:
        """True if any behaviour is on."""
        return self != Hostility()


# The network-level hostility both demo skins run in their presets: the "10% fault rate",
# a circuit budget a crawl exceeds, one maintenance window, three mirrors and a phishing clone.
NETWORK_PRESET: dict[str, Any] = {
    "circuit_budget": 80,
    "circuit_window": 60.0,
    "maintenance_at": (150,),
    "maintenance_seconds": 2.0,
    "fault_rate": 0.1,
    "fault_timeout": 6.0,
    "mirrors": 3,
    "phishing": True,
}


def _frozen(value: Any) -> Any:
    """Lists as tuples, at any depth: a frozen config's values must be hashable."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    """Tuples as lists, at any depth, for YAML."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`key=<YAML>` pairs (as `--hostile-set` takes them) as keyword overrides; ValueError says why not."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--hostile-set wants KEY=VALUE, got {pair!r}")
        try:
            overrides[key.strip()] = _frozen(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise ValueError(f"--hostile-set {key}: the value is not valid YAML: {exc}") from exc
    return overrides


def format_override(key: str, value: Any) -> str:
    """One override as a `key=<YAML>` pair: the inverse of `parse_overrides`."""
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=10**6)
    return f"{key}={text.strip().removesuffix('...').strip()}"
