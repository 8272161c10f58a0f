"""The market skins: one module per market look, looked up by market name."""

from __future__ import annotations

from demo.skins.base import Skin


def get_skin(market: str) -> Skin:
    """The skin that renders a market (imported lazily so `demo.world` users skip Flask views)."""
    if market == "hollowmere":
        from demo.skins import hollowmere

        return hollowmere.SKIN
    if market == "copperline":
        from demo.skins import copperline

        return copperline.SKIN
    raise ValueError(f"no skin for market {market!r}: use 'hollowmere' or 'copperline'")
