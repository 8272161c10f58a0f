"""Shared fixtures for the demo-market tests: cached test clients per market-day."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from demo.app import create_app


@pytest.fixture(scope="session")
def client() -> Callable[..., FlaskClient]:
    """A function (market, day, **opts) -> Flask test client, cached for the session."""
    cache: dict[tuple[Any, ...], FlaskClient] = {}

    def get(market: str, day: int, **opts: Any) -> FlaskClient:
        key = (market, day, tuple(sorted(opts.items())))
        if key not in cache:
            cache[key] = create_app(market, day, **opts).test_client()
        return cache[key]

    return get
