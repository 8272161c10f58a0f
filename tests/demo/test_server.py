"""DemoServer: real sockets, threaded serving, clean shutdown."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from demo.server import DemoServer
from demo.truth import truth


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_serves_pages_over_a_socket_and_shuts_down() -> None:
    listing = truth("copperline", 1)[0]
    with DemoServer("copperline", 1) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert (server.market, server.day, server.seed) == ("copperline", 1, 1)
        status, body = fetch(server.url + "/")
        assert status == 200 and b"Server time: Friday, Jan 2, 2026 12:00:00 UTC" in body
        status, body = fetch(f"{server.url}/item?id={listing['listing_id']}")
        assert status == 200 and listing["title"].split()[0].encode() in body
        assert fetch(server.url + "/nope")[0] == 404
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(fetch, [server.url + "/"] * 16))
        assert {r[0] for r in results} == {200} and len({r[1] for r in results}) == 1
        url = server.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/", timeout=2)


def test_two_markets_side_by_side() -> None:
    with DemoServer("hollowmere", 0, seed=1) as a, DemoServer("copperline", 0, seed=1) as b:
        assert a.port != b.port
        assert b"Hollowmere" in fetch(a.url + "/login")[1]
        assert b"Copperline" in fetch(b.url + "/signin")[1]
