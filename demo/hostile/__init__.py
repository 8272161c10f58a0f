"""The hostile demo market: gates, sessions, CAPTCHAs, rate limits, faults and mirrors (docs/hostile-demo.md).

`install` puts the defences on an app in the order a request meets them: the network-level ones
(mirror down, killed path, maintenance, faults), then the gates (wait page, queue and challenge,
login and sessions), then the mirror-list pages and the phishing clone's tampering.
"""

from __future__ import annotations

from flask import Flask

from demo.hostile.config import Hostility

__all__ = ["Hostility", "install"]


def install(app: Flask, hostility: Hostility, *, phishing: bool = False) -> None:
    """Register the hostile hooks on a demo app; `phishing` makes it the phishing clone."""
    from demo.hostile import gates, mirrors, network

    app.extensions["hostility"] = hostility
    if hostility.active:
        network.install(app, hostility)
    # Every market, friendly or not, publishes its signed mirror list: crawlers check it first.
    mirrors.install(app, hostility, phishing=phishing)
    if hostility.active:
        gates.install(app, hostility)
