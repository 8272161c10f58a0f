"""A barrier step that fails because its mirror stopped answering does not lose the page: the page is sent
again from the start, for the mirror middleware to take to a live mirror (dnm/middlewares/barriers.py).

The middleware runs on its own here: the demo market's wait page is the response it resolves, and an
engine whose every download fails as a dropped mirror fails (or with another cause) is what it fetches
the steps through. Deterministic, unlike the hostile crawl where a mirror may drop at any step.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy import Request
from scrapy.utils.test import get_crawler
from twisted.internet.error import ConnectionRefusedError as TwistedConnectionRefused

from demo.skins import hostility_for
from dnm.barriers import Kind, classify_barrier
from dnm.middlewares.barriers import RESTARTS, BarrierMiddleware
from dnm.profile import load_profile
from tests.core.test_barriers import BASE, as_scrapy
from tests.hostile_support import NETWORK_OFF, PAGE, app_with_clock

MARKET = "hollowmere"


class FailingEngine:
    """Every step download fails with `error`; counts them."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.downloads = 0

    async def download_async(self, request: Request) -> Any:
        self.downloads += 1
        raise self.error


def middleware(error: BaseException) -> tuple[BarrierMiddleware, FailingEngine]:
    crawler = get_crawler(settings_dict={"DNM_GATE_MAX_WAIT": 0, "DNM_CAPTCHA_SOLVER": "none"})
    crawler.spider = SimpleNamespace(profile=load_profile(MARKET))  # type: ignore[assignment]
    engine = FailingEngine(error)
    crawler.engine = engine  # type: ignore[assignment]
    return BarrierMiddleware(crawler), engine


def wait_page() -> Any:
    hostility = hostility_for(MARKET).with_overrides(**{**NETWORK_OFF, "wait_seconds": 1.0})
    app, _ = app_with_clock(MARKET, 0, 1, hostility)
    response = as_scrapy(app.test_client().get(PAGE[MARKET]), PAGE[MARKET])
    assert classify_barrier(load_profile(MARKET), response).kind is Kind.WAIT
    return response


def resolve(barriers: BarrierMiddleware, request: Request) -> Any:
    return asyncio.run(barriers.resolve(request, wait_page()))


def test_a_step_that_loses_its_mirror_sends_the_page_again() -> None:
    barriers, engine = middleware(TwistedConnectionRefused())
    request = Request(BASE + PAGE[MARKET], meta={"dnm_account": None})
    again = resolve(barriers, request)
    assert isinstance(again, Request)
    assert again.url == request.url and again.dont_filter and again.meta[RESTARTS] == 1
    assert engine.downloads == 1
    assert barriers.stats is not None and barriers.stats.get_value("dnm/barriers/restarted") == 1
    # The session gate the wait page took is free again for the pages behind it.
    assert all(not gate.lock.locked() for gate in barriers.gates.values())


def test_a_page_redirected_to_its_barrier_is_sent_again_for_itself() -> None:
    barriers, _ = middleware(TwistedConnectionRefused())
    gate = Request(BASE + "/gate?next=/listing/7", meta={"redirect_urls": [BASE + PAGE[MARKET]]})
    again = resolve(barriers, gate)
    assert isinstance(again, Request) and again.url == BASE + PAGE[MARKET]


def test_the_page_is_sent_again_a_bounded_number_of_times() -> None:
    barriers, _ = middleware(TwistedConnectionRefused())
    request = Request(BASE + PAGE[MARKET], meta={RESTARTS: barriers.max_restarts})
    with pytest.raises(TwistedConnectionRefused):
        resolve(barriers, request)


def test_a_step_failing_for_another_cause_fails_the_page() -> None:
    barriers, _ = middleware(ValueError("a bug, not a mirror"))
    with pytest.raises(ValueError):
        resolve(barriers, Request(BASE + PAGE[MARKET]))
    assert barriers.stats is not None and barriers.stats.get_value("dnm/barriers/restarted") is None
