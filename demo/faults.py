"""Permanent faults: listing pages served malformed, the same on every fetch.

Transient and hostile behaviours (gates, CAPTCHAs, sessions, faults that a retry gets past) live in
`demo/hostile/`. Which pages are malformed is a pure function of (seed, market, day, listing id,
rate): the truth marks exactly those listings `"malformed": true`.
"""

from __future__ import annotations

from flask import Flask, Response, g

from demo.rng import rng
from demo.skins.base import state
from demo.world import MarketDay


def check_rate(rate: float) -> float:
    """Validate a probability given on the command line or in a test."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"malformed_rate must be between 0.0 and 1.0, got {rate}")
    return rate


def malformed_ids(md: MarketDay, rate: float) -> frozenset[str]:
    """Ids of the listings whose pages are served truncated on this market-day."""
    if check_rate(rate) == 0.0:
        return frozenset()
    return frozenset(
        lv.id for lv in md.listings if rng(md.seed, md.market, "malformed", md.day, lv.id).random() < rate
    )


def truncate(body: bytes, marker: bytes) -> bytes:
    """Cut a page right before the marker, as a dropped connection or broken template would."""
    cut = body.find(marker)
    return body if cut < 0 else body[:cut]


def _serve_malformed(response: Response) -> Response:
    """After-request hook: truncate the listing page if its listing is in the malformed set."""
    listing_id = g.get("demo_listing_id")
    demo = state()
    if listing_id is not None and listing_id in demo.malformed and response.status_code == 200:
        response.set_data(truncate(response.get_data(), demo.skin.malformed_marker))
    return response


def install(app: Flask) -> None:
    """Register the fault hooks on an app."""
    app.after_request(_serve_malformed)
