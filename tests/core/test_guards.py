"""The transport and media guards: what may leave, and what is never downloaded."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest, NotConfigured, StopDownload
from scrapy.http import Headers
from scrapy.utils.test import get_crawler

from dnm.middlewares.guard import TransportGuardMiddleware, TransportRefused
from dnm.middlewares.media import MediaGuardMiddleware, is_media_url, is_text_type
from transport.onion_keys import onion_key_for

ONION_HOST = onion_key_for("guard-test").address
ONION = f"http://{ONION_HOST}/listing/1"
TOR = "socks5h://hollowmere.anonymous.0:x@127.0.0.1:9999"


def guard(**settings: object) -> TransportGuardMiddleware:
    crawler = get_crawler(settings_dict=settings)
    crawler.stats.open_spider()  # type: ignore[union-attr]
    return TransportGuardMiddleware.from_crawler(crawler)


def test_tor_transport_lets_only_onions_out_and_only_through_tor() -> None:
    middleware = guard(DNM_TRANSPORT="tor", DNM_TOR_SOCKS_PORT=9999)
    assert middleware.process_request(Request(ONION, meta={"proxy": TOR})) is None
    refused = [
        Request("http://example.com/", meta={"proxy": TOR}),  # clearnet, even through Tor
        Request("http://93.184.216.34/", meta={"proxy": TOR}),  # a plain IP
        Request("http://127.0.0.1:8401/", meta={"proxy": TOR}),
        Request(ONION.replace(ONION_HOST[:4], "aaaa"), meta={"proxy": TOR}),  # checksum broken
        Request(ONION),  # no proxy: it would leave directly
        Request(ONION, meta={"proxy": TOR.replace("socks5h", "socks5")}),  # local name resolution
        Request(ONION, meta={"proxy": TOR.replace("9999", "9050")}),  # someone else's Tor
        # A userinfo with "/" or "#" moves the proxy's host once unquoted: it must not pass.
        Request(ONION, meta={"proxy": "socks5h://market/x#0:x@127.0.0.1:9999"}),
    ]
    for request in refused:
        with pytest.raises(TransportRefused):
            middleware.process_request(request)
    assert middleware.stats.get_value("dnm/guard/refused") == len(refused)  # type: ignore[union-attr]
    assert middleware.stats.get_value("dnm/guard/refused/example.com") == 1  # type: ignore[union-attr]


def test_direct_transport_needs_the_host_named() -> None:
    middleware = guard(DNM_TRANSPORT="direct", DNM_ALLOWED_HOSTS=["127.0.0.1"])
    assert middleware.process_request(Request("http://127.0.0.1:8401/")) is None
    with pytest.raises(TransportRefused):
        middleware.process_request(Request("http://localhost:8401/"))
    with pytest.raises(TransportRefused):  # an onion without Tor would be a DNS leak
        middleware.process_request(Request(ONION))
    with pytest.raises(TransportRefused):  # an allowed host still may not go through a proxy
        middleware.process_request(Request("http://127.0.0.1:8401/", meta={"proxy": TOR}))


def test_unknown_transport_is_refused_at_start() -> None:
    with pytest.raises(NotConfigured, match="DNM_TRANSPORT"):
        guard(DNM_TRANSPORT="vpn")


def test_media_is_neither_requested_nor_downloaded() -> None:
    crawler = get_crawler(settings_dict={})
    crawler.stats.open_spider()  # type: ignore[union-attr]
    middleware = MediaGuardMiddleware.from_crawler(crawler)
    with pytest.raises(IgnoreRequest):
        middleware.process_request(Request("http://x.onion/img/product.JPG?size=2"))
    assert middleware.process_request(Request("http://x.onion/listing/1")) is None
    with pytest.raises(StopDownload):
        middleware.headers_received(
            Headers({"Content-Type": "image/png"}), 0, Request("http://x.onion/a"), None
        )
    middleware.headers_received(
        Headers({"Content-Type": "text/html; charset=utf-8"}), 0, Request("http://x.onion/"), None
    )
    assert crawler.stats.get_value("dnm/media/refused") == 1  # type: ignore[union-attr]
    assert crawler.stats.get_value("dnm/media/stopped") == 1  # type: ignore[union-attr]


def test_media_guard_can_be_switched_off() -> None:
    with pytest.raises(NotConfigured):
        MediaGuardMiddleware.from_crawler(get_crawler(settings_dict={"DNM_FETCH_MEDIA": True}))


@pytest.mark.parametrize(
    ("url", "media"),
    [("/a.png", True), ("/b.webm", True), ("/c.zip", True), ("/listing/1", False), ("/png", False)],
)
def test_media_urls(url: str, media: bool) -> None:
    assert is_media_url("http://x.onion" + url) is media


@pytest.mark.parametrize(
    ("content_type", "text"),
    [("text/html", True), ("application/xhtml+xml", True), ("", True), ("image/jpeg", False),
     ("application/octet-stream", False), ("video/mp4", False)],
)  # fmt: skip
def test_text_types(content_type: str, text: bool) -> None:
    assert is_text_type(content_type) is text
