"""The market skins: one module per market look, looked up by market name."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from demo.skins.base import Skin

if TYPE_CHECKING:
    from demo.hostile.config import Hostility

SKINS = ("hollowmere", "copperline")


def _skin_module(market: str) -> ModuleType:
    # Imported lazily so `demo.world` users skip the Flask views.
    if market not in SKINS:
        raise ValueError(f"no skin for market {market!r}: use 'hollowmere' or 'copperline'")
    return importlib.import_module(f"demo.skins.{market}")


def get_skin(market: str) -> Skin:
    """The skin that renders a market."""
    return _skin_module(market).SKIN


def hostility_for(market: str) -> Hostility:
    """The market's hostile preset (`HOSTILITY` in its skin module): what `--hostile` turns on."""
    return _skin_module(market).HOSTILITY
