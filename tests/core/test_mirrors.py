"""A market's mirrors during a crawl: the pool's failover, the mirror middleware, and the signed-list check.

The signed lists and keys are the demo market's own (demo/mirrors.py): the staff key pinned in the
profile, and the phishing clone's look-alike key with the same user id.
"""

from __future__ import annotations

import logging
from datetime import datetime
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.exceptions import DownloadConnectionRefusedError, DownloadTimeoutError
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from demo import clock
from demo.app import create_app
from demo.hostile.config import Hostility
from demo.mirrors import market_key, phisher_key, signed_mirror_list
from dnm import signals as dnm_signals
from dnm.middlewares.guard import TransportRefused
from dnm.middlewares.mirrors import MAX_REQUEUES, MirrorMiddleware
from dnm.mirrors import Mirror, MirrorPool, MirrorRefused, base_url, check_signed_list, urls_in
from dnm.profile import load_profile

A, B, C = "http://aaaa.onion", "http://bbbb.onion", "http://cccc.onion"
MARKETS = ("hollowmere", "copperline")


def pool(*, failures: int = 3, require_trust: bool = False) -> MirrorPool:
    return MirrorPool(
        [(A, "profile"), (B, "signed list"), (C, "signed list")],
        failures_to_down=failures,
        require_trust=require_trust,
    )


def fail(mirrors: MirrorPool, host: str, times: int) -> list[bool]:
    return [mirrors.note_failure(host) for _ in range(times)]


# -- the pool ------------------------------------------------------------------------------------


def test_urls_are_kept_as_base_urls_once() -> None:
    mirrors = MirrorPool([("HTTP://AAAA.onion/", "profile"), (A + "/x?y=1", "command line"), (B, "profile")])
    assert [m.url for m in mirrors.mirrors] == [A, B]
    assert mirrors.mirrors[0].source == "profile" and mirrors.canonical == A
    assert mirrors.find("AAAA.ONION") is mirrors.mirrors[0] and mirrors.find("zzzz.onion") is None
    assert base_url("http://Host.onion:8080/a/b?c#d") == "http://host.onion:8080"
    with pytest.raises(ValueError, match="at least one mirror"):
        MirrorPool([])


def test_rewrite_and_canonicalize() -> None:
    mirrors = pool()
    assert mirrors.current() is mirrors.mirrors[0]
    assert mirrors.rewrite(A + "/listing/1?x=2#f") == A + "/listing/1?x=2#f"  # already on the current one
    assert mirrors.rewrite(B + "/listing/1?x=2#f") == A + "/listing/1?x=2#f"
    assert mirrors.rewrite("http://elsewhere.onion/listing/1") == "http://elsewhere.onion/listing/1"
    for url in (A + "/vendor/v?p=2", B + "/vendor/v?p=2", C + "/vendor/v?p=2"):
        assert mirrors.canonicalize(url) == A + "/vendor/v?p=2"
    assert mirrors.canonicalize("http://elsewhere.onion/v") == "http://elsewhere.onion/v"


def test_failover_after_failures_in_a_row(caplog: pytest.LogCaptureFixture) -> None:
    mirrors = pool(failures=3)
    with caplog.at_level(logging.WARNING, logger="dnm.mirrors"):
        assert fail(mirrors, "aaaa.onion", 2) == [False, False]
        mirrors.note_ok("aaaa.onion", sent_at=0.0)  # a success clears the run
        assert fail(mirrors, "aaaa.onion", 2) == [False, False]
        assert mirrors.current() is mirrors.mirrors[0]
        assert fail(mirrors, "aaaa.onion", 2) == [True, False]  # the third in a row marks it down, once
    first = mirrors.mirrors[0]
    assert first.down and first.state == "down" and first.failed == 6
    assert "now using http://bbbb.onion" in caplog.text
    assert mirrors.current() is mirrors.mirrors[1]
    assert mirrors.rewrite(A + "/c/1") == B + "/c/1"
    # Pages keep their canonical address whatever mirror serves them.
    assert mirrors.canonicalize(B + "/c/1") == A + "/c/1"
    assert fail(mirrors, "bbbb.onion", 3)[-1] is True
    assert mirrors.current() is mirrors.mirrors[2]
    assert not fail(mirrors, "elsewhere.onion", 5)[-1]  # not a mirror: nothing to count


def test_all_down_uses_the_one_that_failed_least() -> None:
    mirrors = pool(failures=2)
    fail(mirrors, "aaaa.onion", 5)
    fail(mirrors, "bbbb.onion", 2)
    fail(mirrors, "cccc.onion", 3)
    assert all(m.down for m in mirrors.mirrors)
    assert mirrors.current() is mirrors.mirrors[1]


def test_stale_answers_do_not_revive_a_mirror() -> None:
    mirrors = pool(failures=2)
    fail(mirrors, "aaaa.onion", 2)
    first = mirrors.mirrors[0]
    assert first.down
    # An answer to a request sent before the mirror went down says nothing about now.
    mirrors.note_ok("aaaa.onion", sent_at=first.down_since - 1.0)
    assert first.down and first.ok == 1 and first.failures_in_row == 2
    assert mirrors.current() is mirrors.mirrors[1]
    # One sent after it went down does.
    mirrors.note_ok("aaaa.onion", sent_at=first.down_since + 0.001)
    assert not first.down and first.failures_in_row == 0 and first.state == "unverified"
    assert mirrors.current() is first


def test_refused_mirrors_are_never_used(caplog: pytest.LogCaptureFixture) -> None:
    mirrors = pool(failures=1)
    with caplog.at_level(logging.ERROR, logger="dnm.mirrors"):
        mirrors.refuse("aaaa.onion", "serves key X")
        mirrors.refuse("aaaa.onion", "another reason")  # the first reason stands
    assert mirrors.mirrors[0].refused == "serves key X" and len(caplog.records) == 1
    assert mirrors.current() is mirrors.mirrors[1]
    assert mirrors.rewrite(A + "/x") == B + "/x"
    fail(mirrors, "bbbb.onion", 1)
    fail(mirrors, "cccc.onion", 1)
    mirrors.note_ok("aaaa.onion", sent_at=1e12)
    assert mirrors.current() in mirrors.mirrors[1:]  # all the others are down: still never the refused one
    mirrors.refuse("bbbb.onion", "phishing")
    mirrors.refuse("cccc.onion", "phishing")
    assert mirrors.current() is None
    assert mirrors.rewrite(A + "/x") == A + "/x"
    report = {row["url"]: row for row in mirrors.report()}
    assert report[A]["state"] == "refused" and report[A]["refused"] == "serves key X"
    assert report[A]["ok"] == 1 and report[B]["failed"] == 1
    assert report[C]["source"] == "signed list"


def test_require_trust() -> None:
    mirrors = pool(require_trust=True)
    assert mirrors.current() is None and mirrors.rewrite(B + "/x") == B + "/x"
    mirrors.mirrors[2].trusted = True
    assert mirrors.current() is mirrors.mirrors[2] and mirrors.rewrite(A + "/x") == C + "/x"
    assert [m.state for m in mirrors.mirrors] == ["unverified", "unverified", "trusted"]
    assert pool(require_trust=False).current() is not None


# -- the middleware ------------------------------------------------------------------------------


def middleware(mirrors: MirrorPool | None) -> tuple[MirrorMiddleware, object]:
    crawler = get_crawler(settings_dict={})
    crawler.stats.open_spider()  # type: ignore[union-attr]
    crawler.spider = SimpleNamespace(mirrors=mirrors)  # type: ignore[assignment]
    return MirrorMiddleware.from_crawler(crawler), crawler


def test_middleware_moves_requests_and_fails_over() -> None:
    mirrors = pool(failures=2)
    mw, crawler = middleware(mirrors)
    stats = crawler.stats  # type: ignore[attr-defined]
    assert mw.process_request(Request(A + "/c/1")) is None
    moved = mw.process_request(Request(B + "/c/1"))
    assert isinstance(moved, Request) and moved.url == A + "/c/1" and moved.dont_filter
    fixed = Request(B + "/mirrors", meta={"dnm_mirror_fixed": True})
    assert mw.process_request(fixed) is None  # checking that one mirror: left alone
    request = Request(A + "/c/2")
    mw.process_request(request)
    # The first failure is an ordinary one: the retry middleware decides.
    assert mw.process_exception(request, DownloadTimeoutError()) is None
    requeued = mw.process_exception(request, DownloadConnectionRefusedError())
    assert isinstance(requeued, Request) and requeued.url == B + "/c/2"
    assert requeued.meta["dnm_mirror_requeued"] == 1
    assert stats.get_value("dnm/mirrors/down") == 1 and stats.get_value("dnm/mirrors/requeued") == 1
    # A page's own error (not the mirror's) is not counted against the mirror.
    assert mw.process_exception(Request(B + "/c/3"), ValueError("parse")) is None
    assert mirrors.mirrors[1].failures_in_row == 0
    # An answer counts for the mirror that gave it.
    sent = Request(B + "/c/2", meta={"dnm_mirror_sent": 0.0})
    assert mw.process_response(sent, HtmlResponse(B + "/c/2", body=b"<html></html>")) is not None
    assert mirrors.mirrors[1].ok == 1


def test_middleware_stops_requeueing() -> None:
    mirrors = pool(failures=1)
    mw, _ = middleware(mirrors)
    request = Request(A + "/c/1", meta={"dnm_mirror_requeued": MAX_REQUEUES})
    assert mw.process_exception(request, DownloadTimeoutError()) is None
    assert mirrors.mirrors[0].down  # counted all the same


def test_middleware_without_a_pool_and_refusal_signal() -> None:
    mw, _ = middleware(None)
    assert mw.process_request(Request(A)) is None
    assert mw.process_exception(Request(A), DownloadTimeoutError()) is None
    mirrors = pool()
    mw, crawler = middleware(mirrors)
    crawler.signals.send_catch_log(dnm_signals.mirror_refused, url=B + "/mirrors", reason="phishing")  # type: ignore[attr-defined]
    assert mirrors.mirrors[1].refused == "phishing"
    assert crawler.stats.get_value("dnm/mirrors/refused") == 1  # type: ignore[attr-defined]


def test_guard_refusals_are_not_mirror_failures() -> None:
    """A request the transport guard stopped never reached the mirror: it says nothing about it."""
    mirrors = pool(failures=1)
    mw, _ = middleware(mirrors)
    assert mw.process_exception(Request(A + "/x"), TransportRefused("not allowed")) is None
    assert not mirrors.mirrors[0].down and mirrors.mirrors[0].failed == 0


# -- signed mirror lists -------------------------------------------------------------------------

SEED = 1
WHEN = datetime(2026, 1, 4, 12, 0, tzinfo=clock.EPOCH.tzinfo)
LISTED = ["http://aaaa.onion", "http://bbbb.onion/", "http://127.0.0.1:8123"]


def pinned(market: str) -> str:
    rule = load_profile(market).mirror_list
    assert rule is not None
    return rule.fingerprint


@pytest.mark.parametrize("market", MARKETS)
def test_profile_pins_the_market_key(market: str) -> None:
    assert pinned(market) == market_key(SEED, market).fingerprint
    assert pinned(market) != phisher_key(SEED, market).fingerprint


@pytest.mark.parametrize("market", MARKETS)
def test_genuine_list_is_accepted(market: str) -> None:
    signed = signed_mirror_list(SEED, market, LISTED, WHEN)
    key = market_key(SEED, market).armored
    for url in LISTED:
        urls = check_signed_list(Mirror(base_url(url), "profile"), key, signed, pinned(market))
        assert urls == ["http://aaaa.onion", "http://bbbb.onion", "http://127.0.0.1:8123"]


@pytest.mark.parametrize("market", MARKETS)
def test_phisher_key_is_refused_with_both_fingerprints(market: str) -> None:
    signed = signed_mirror_list(SEED, market, LISTED, WHEN, phishing=True)
    phisher = phisher_key(SEED, market)
    with pytest.raises(MirrorRefused) as caught:
        check_signed_list(Mirror(A, "signed list"), phisher.armored, signed, pinned(market))
    assert phisher.fingerprint in str(caught.value) and pinned(market) in str(caught.value)


@pytest.mark.parametrize("market", MARKETS)
def test_list_signed_by_another_key_is_refused(market: str) -> None:
    key = market_key(SEED, market).armored
    forged = signed_mirror_list(SEED, market, LISTED, WHEN, phishing=True)
    with pytest.raises(MirrorRefused, match="signature does not verify"):
        check_signed_list(Mirror(A, "profile"), key, forged, pinned(market))
    other_market = "copperline" if market == "hollowmere" else "hollowmere"
    with pytest.raises(MirrorRefused, match="signature does not verify"):
        check_signed_list(
            Mirror(A, "profile"), key, signed_mirror_list(SEED, other_market, LISTED, WHEN), pinned(market)
        )
    # The genuine list with one address changed.
    tampered = signed_mirror_list(SEED, market, LISTED, WHEN).replace("bbbb.onion", "evil.onion")
    with pytest.raises(MirrorRefused, match="signature does not verify"):
        check_signed_list(Mirror(A, "profile"), key, tampered, pinned(market))


@pytest.mark.parametrize("market", MARKETS)
def test_mirror_not_in_its_own_list_is_refused(market: str) -> None:
    signed = signed_mirror_list(SEED, market, LISTED, WHEN)
    with pytest.raises(MirrorRefused, match="not named in the market's own signed mirror list"):
        check_signed_list(Mirror(C, "command line"), market_key(SEED, market).armored, signed, pinned(market))


def test_empty_or_unreadable_key_or_list_is_refused() -> None:
    key = market_key(SEED, "hollowmere").armored
    signed = signed_mirror_list(SEED, "hollowmere", LISTED, WHEN)
    mirror, pin = Mirror(A, "profile"), pinned("hollowmere")
    with pytest.raises(MirrorRefused, match="serves no market key"):
        check_signed_list(mirror, "  \n", signed, pin)
    with pytest.raises(MirrorRefused, match="serves no signed mirror list"):
        check_signed_list(mirror, key, "\n", pin)
    with pytest.raises(MirrorRefused, match="serves an unreadable key"):
        check_signed_list(mirror, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64!\n", signed, pin)
    with pytest.raises(MirrorRefused, match="signature does not verify"):
        check_signed_list(mirror, key, "http://aaaa.onion\n", pin)  # not signed at all


@pytest.mark.parametrize("market", MARKETS)
def test_the_demo_pages_read_with_the_profile(market: str) -> None:
    """The list and key as the crawler reads them off the genuine market's pages and the clone's."""
    rule = load_profile(market).mirror_list
    assert rule is not None
    public = {
        "mirror0": "http://primary.onion",
        "mirror1": "http://second.onion",
        "phishing": "http://ph.onion",
    }

    def read(phishing: bool) -> tuple[str, str]:
        app = create_app(
            market, 3, seed=SEED, hostility=Hostility(mirrors=2, phishing=True), phishing=phishing
        )
        app.extensions["public_urls"] = public
        client = app.test_client()
        pages = {}
        for path in (rule.url, rule.key_url):
            answer = client.get(path)
            pages[path] = HtmlResponse("http://primary.onion" + path, body=answer.data, encoding="utf-8")
        signed = "".join(pages[rule.url].css(rule.signed).getall())
        key = "".join(pages[rule.key_url].css(rule.key).getall())
        return key, signed

    key, signed = read(phishing=False)
    mirror = Mirror("http://second.onion", "profile")
    assert check_signed_list(mirror, key, signed, rule.fingerprint) == ["http://primary.onion", mirror.url]
    key, signed = read(phishing=True)
    with pytest.raises(MirrorRefused, match=phisher_key(SEED, market).fingerprint):
        check_signed_list(Mirror("http://ph.onion", "signed list"), key, signed, rule.fingerprint)


def test_urls_in_text() -> None:
    text = "Mirrors:\nhttp://AAAA.onion/\nhttps://bbbb.onion:8443/path\nhttp://aaaa.onion\nbare cccc.onion\n"
    assert urls_in(text) == ["http://aaaa.onion", "https://bbbb.onion:8443"]
