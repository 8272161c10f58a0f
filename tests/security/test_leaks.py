"""No leaks: a real crawl over the private Tor network, watched from inside the crawl and at the market.

The crawl runs with an audit hook (tests/security/audit/sitecustomize.py, PEP 578) that records
every socket connect, send-to, bind, name lookup and subprocess of the `dnm` process. The demo
market is published as an onion service and records the headers of every request it receives.
Proven here:
- the crawl process connects to nothing but its own tor's SOCKS and control ports on 127.0.0.1
  (and the archive's PostgreSQL when that is the backend; libpq's own socket is below Python's audit
  hooks, so a PostgreSQL archive's connection is not seen either way);
- no name is looked up locally except loopback ones, and never an onion name (socks5h: tor resolves);
- the only program started is tor;
- every request carries Tor Browser 128's headers, in its order, and nothing naming the tool.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

from demo.server import DemoServer
from models import Page
from models.db import open_engine
from tests.conftest import RAW_DIR, DnmResult, archive_url, latest_crawl, run_dnm
from transport.onion_keys import onion_key_for
from transport.tornet import PrivateTorNetwork

AUDIT_DIR = Path(__file__).resolve().parent / "audit"
MARKET = "hollowmere"
LOOPBACK_NAMES = {"127.0.0.1", "::1", "localhost", None}

# What Tor Browser 13.5/14 (Firefox 128 ESR, "safer" settings untouched) sends for a page navigation
# over HTTP/1.1, in its order. Referer, Cookie and, on a form post, Content-Type, Content-Length and
# Origin take their places in this order when present.
TOR_BROWSER_ORDER = (
    "Host",
    "User-Agent",
    "Accept",
    "Accept-Language",
    "Accept-Encoding",
    "Content-Type",
    "Content-Length",
    "Origin",
    "Referer",
    "Connection",
    "Cookie",
    "Upgrade-Insecure-Requests",
    "Sec-Fetch-Dest",
    "Sec-Fetch-Mode",
    "Sec-Fetch-Site",
    "Sec-Fetch-User",
    "Priority",
)
TOR_BROWSER_VALUES = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Connection": "keep-alive",
    "Upgrade-Insecure-Requests": "1",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-User": "?1",
    "Priority": "u=0, i",
}
ALWAYS = set(TOR_BROWSER_VALUES) | {"Host", "Sec-Fetch-Site"}
OPTIONAL = {"Referer", "Cookie", "Content-Type", "Content-Length", "Origin"}
IDENTIFYING = re.compile(r"scrapy|python|httpx|dnm|archive|crawl|bot\b|spider", re.IGNORECASE)


@dataclass
class LeakCrawl:
    result: DnmResult
    database: str
    onion: str
    socks_port: int
    control_port: int
    events: list[dict[str, Any]]
    requests: list[list[tuple[str, str]]]  # the headers of each request the market received, in order


def wire_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """A request's headers as the client sent them (werkzeug keeps their order in the environ)."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key
        else:
            continue
        headers.append(("-".join(part.capitalize() for part in name.split("_")), value))
    return headers


def torrc_ports(torrc: Path) -> tuple[int, int]:
    """The SOCKS and control ports of a torrc the crawl wrote for the tor it launched."""
    text = torrc.read_text()
    socks = re.search(r"^SocksPort 127\.0\.0\.1:(\d+)", text, re.MULTILINE)
    control = re.search(r"^ControlPort 127\.0\.0\.1:(\d+)", text, re.MULTILINE)
    assert socks and control, text
    return int(socks.group(1)), int(control.group(1))


@pytest.fixture(scope="module")
def leak_crawl(
    tor_network: PrivateTorNetwork, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LeakCrawl]:
    """hollowmere published as an onion of its own and crawled over Tor by an audited `dnm crawl`."""
    directory = tmp_path_factory.mktemp("leaks")
    database = archive_url(directory)
    received: list[list[tuple[str, str]]] = []
    with DemoServer(MARKET, 1) as server:
        app = server.app.wsgi_app

        def record(environ: dict[str, Any], start_response: Any) -> Any:
            received.append(wire_headers(environ))
            return app(environ, start_response)

        server.app.wsgi_app = record  # type: ignore[method-assign]
        onion = tor_network.add_onion_service(server.port, onion_key_for(f"{MARKET}-leaks"), name="leaks")
        try:
            server.set_public_urls({"mirror0": onion})  # the signed mirror list names it
            tor_network.wait_reachable(onion)
            received.clear()  # the wait's own fetch is not the crawler's
            state = directory / "state.json"
            tor_network.save_state(state)
            audit = directory / "audit.jsonl"
            tor_dir = directory / "tor"
            env = {
                "PYTHONPATH": os.pathsep.join(filter(None, [str(AUDIT_DIR), os.environ.get("PYTHONPATH")])),
                "DNM_AUDIT_LOG": str(audit),
            }
            result = run_dnm(
                "crawl", MARKET, "--mirror", onion, "--tor-network", str(state), "--database", database,
                "--no-progress", "--set", f"DNM_TOR_DATA_DIR={tor_dir}", "--set", "CLOSESPIDER_PAGECOUNT=60",
                env=env,
            )  # fmt: skip
        finally:
            tor_network.remove_onion_service(onion)
    events = [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []
    socks, control = torrc_ports(tor_dir / "torrc")
    yield LeakCrawl(result, database, onion, socks, control, events, received)


def test_the_crawl_went_over_tor_and_was_audited(leak_crawl: LeakCrawl) -> None:
    assert leak_crawl.result.returncode in (0, 3), leak_crawl.result.stderr[-3000:]
    crawl = latest_crawl(open_engine(leak_crawl.database), MARKET)
    assert crawl.transport == "tor" and crawl.mirror == leak_crawl.onion
    assert (crawl.stats or {}).get("dnm/stored/content_pages", 0) >= 20
    # The hook saw the crawl's traffic: without this the assertions below would pass on an empty log.
    connects = [e for e in leak_crawl.events if e["event"] == "socket.connect"]
    assert any(e["address"] == ["127.0.0.1", leak_crawl.socks_port] for e in connects), connects[:20]
    assert len(leak_crawl.requests) >= 20


def allowed_endpoints(crawl: LeakCrawl) -> set[tuple[str, int]]:
    allowed = {("127.0.0.1", crawl.socks_port), ("127.0.0.1", crawl.control_port)}
    url = make_url(crawl.database)
    if url.get_backend_name() == "postgresql":
        allowed.add((url.host or "127.0.0.1", url.port or 5432))
    return allowed


def test_nothing_connects_but_to_the_crawls_tor(leak_crawl: LeakCrawl) -> None:
    allowed = allowed_endpoints(leak_crawl)
    stray = []
    for event in leak_crawl.events:
        if event["event"] not in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            continue
        address = event["address"]
        if event["family"] in ("AF_INET", "AF_INET6") and (address[0], address[1]) in allowed:
            continue
        stray.append(event)
    assert stray == [], f"the crawl process reached something other than its tor: {stray[:10]}"


def test_no_name_is_resolved_locally(leak_crawl: LeakCrawl) -> None:
    lookups = [e for e in leak_crawl.events if e["event"].startswith(("socket.get", "socket.gethost"))]
    onion_lookups = [e for e in lookups if ".onion" in json.dumps(e["args"])]
    assert onion_lookups == [], onion_lookups[:5]
    names = {
        e["args"][0] if e["event"] != "socket.getnameinfo" else e["args"][0][0]
        for e in lookups
        if e["event"] in ("socket.getaddrinfo", "socket.gethostbyname", "socket.getnameinfo")
    }
    assert names <= LOOPBACK_NAMES, f"names looked up outside tor: {names - LOOPBACK_NAMES}"
    assert not [e for e in lookups if e["event"] == "socket.gethostbyaddr"]  # reverse lookups go out too


# Programs the crawl process starts besides tor, none of which opens a network connection: `uname -p`
# and `file` (Python's platform module), `timedatectl` (whether the clock is NTP-synchronised, asked
# over D-Bus on the machine).
LOCAL_PROGRAMS = {"uname", "file", "timedatectl"}


def test_the_only_networked_program_started_is_tor(leak_crawl: LeakCrawl) -> None:
    started = {Path(str(e["executable"])).name for e in leak_crawl.events if e["event"] == "subprocess.Popen"}
    assert "tor" in started
    assert started - {"tor"} <= LOCAL_PROGRAMS, started


def test_every_request_carries_tor_browsers_headers(leak_crawl: LeakCrawl) -> None:
    assert leak_crawl.requests
    for headers in leak_crawl.requests:
        names = [name for name, _ in headers]
        assert len(names) == len(set(names)), headers
        assert ALWAYS <= set(names) <= ALWAYS | OPTIONAL, headers
        got = dict(headers)
        for name, value in TOR_BROWSER_VALUES.items():
            assert got[name] == value, (name, got[name])
        assert got["Host"] == leak_crawl.onion.removeprefix("http://")
        assert got["Sec-Fetch-Site"] == ("same-origin" if "Referer" in got else "none")
        if "Referer" in got:
            assert got["Referer"].startswith(leak_crawl.onion + "/")  # never a link from elsewhere
        order = [TOR_BROWSER_ORDER.index(name) for name in names]
        assert order == sorted(order), f"not Tor Browser's header order: {names}"
        assert not [h for h in headers if h[0] != "Cookie" and IDENTIFYING.search(h[1])], headers


def test_the_raw_captures_keep_the_same_headers(leak_crawl: LeakCrawl) -> None:
    """The WARC request records keep what the crawler sent: Tor Browser's headers, nothing of the tool's."""
    engine = open_engine(leak_crawl.database)
    crawl = latest_crawl(engine, MARKET)
    with Session(engine) as session:
        files = set(session.scalars(select(Page.warc_file).where(Page.crawl_id == crawl.id)))
    records = []
    for name in files - {None}:
        with (Path(RAW_DIR) / str(name)).open("rb") as stream:
            records += [r.http_headers for r in ArchiveIterator(stream) if r.rec_type == "request"]
    assert records
    for http in records:
        assert http.get_header("User-Agent") == TOR_BROWSER_VALUES["User-Agent"]
        assert http.get_header("Sec-Fetch-Mode") == "navigate"
        assert not [h for h in http.headers if h[0] != "Cookie" and IDENTIFYING.search(h[1])], http.headers
