"""The Flask app factory: one app serves one market's skin on one simulated day."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from jinja2 import StrictUndefined

from demo import faults, hostile, vocab
from demo.hostile.config import Hostility
from demo.skins import get_skin, noise
from demo.skins.base import DemoState, state
from demo.world import MARKETS, Scale, world_for

TEMPLATES = Path(__file__).parent / "templates"


def create_app(
    market: str,
    day: int,
    seed: int = 1,
    scale: str | dict[str, Any] | Scale = "small",
    malformed_rate: float = 0.0,
    hostility: Hostility | None = None,
    phishing: bool = False,
    layout_change_day: int | None = None,
    latency: float = 0.0,
) -> Flask:
    """Build the app for (seed, market, day); the same arguments always serve the same bytes.

    `hostility` turns on hostile behaviours (docs/hostile-demo.md); `phishing` makes this app the
    market's phishing clone (its own key, tampered vendor keys). `layout_change_day` redesigns the
    market's listing and vendor pages on every day >= it (None: never), as a real market's new
    layout breaks a profile's selectors; the data and the truth are the same either way. `latency` adds
    that many seconds before every response, as a round trip through Tor's circuits would (benchmarks).
    """
    if market not in MARKETS:
        raise ValueError(f"unknown market {market!r}: use one of {MARKETS}")
    md = world_for(seed, scale).day(market, day)
    skin = get_skin(market)

    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=None)
    # StrictUndefined turns a template typo into an error instead of a silently empty field.
    app.jinja_options = {
        **app.jinja_options,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "undefined": StrictUndefined,
    }
    redesigned = layout_change_day is not None and day >= layout_change_day
    app.extensions["demo"] = DemoState(md, skin, faults.malformed_ids(md, malformed_rate), redesigned)
    app.register_blueprint(skin.blueprint)

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        demo = state()
        return {
            "md": demo.md,
            "fmt": demo.skin.fmt,
            "urls": demo.skin.urls,
            "mirrors": demo.mirrors,
            "mirror_note": vocab.MIRROR_NOTE,
            "phishing": vocab.PHISHING_WARNING,
            "countries": noise.countries(),
            "redesigned": demo.redesigned,
        }

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return render_template(f"{state().skin.name}/404.html"), 404

    if latency > 0:

        @app.before_request
        def round_trip() -> None:
            time.sleep(latency)

    faults.install(app)
    hostile.install(app, hostility or Hostility(), phishing=phishing)
    return app
