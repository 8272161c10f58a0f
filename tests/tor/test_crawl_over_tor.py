"""Crawling the demo markets as onion services over the private Tor network: the whole Tor path, for real."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stem.control import Controller

from demo.truth import MARKETS, truth
from dnm.export import ExportFilter, export_rows
from models import Crawl, Page
from models.db import open_engine
from tests.conftest import archive_url, latest_crawl, run_dnm
from tests.groundtruth import compare_feedback, compare_listings, compare_vendors
from tests.tor.support import require_tor
from transport.tornet import PrivateTorNetwork

ROOT = Path(__file__).resolve().parents[2]
COMPARE = {"listings": compare_listings, "vendors": compare_vendors, "feedback": compare_feedback}


@pytest.fixture(scope="module")
def network_state(tor_network: PrivateTorNetwork, demo_onions: dict[str, str], tmp_path_factory) -> Path:
    """The network's state file, as `dnm tornet up` writes it, for `dnm crawl --tor-network`."""
    path = tmp_path_factory.mktemp("state") / "state.json"
    tor_network.save_state(path)
    return path


@pytest.fixture(scope="module")
def tor_archive(network_state: Path, tmp_path_factory) -> tuple[str, object]:
    """Both demo markets crawled over Tor (the crawl launches its own tor into the network)."""
    url = archive_url(tmp_path_factory.mktemp("tor-archive"))
    result = run_dnm(
        "crawl", *MARKETS, "--tor-network", str(network_state), "--database", url, "--no-progress"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return url, result


@pytest.mark.parametrize("kind", COMPARE)
@pytest.mark.parametrize("market", MARKETS)
def test_ground_truth_over_tor(tor_archive, demo_onions: dict[str, str], market: str, kind: str) -> None:
    url, _ = tor_archive
    engine = open_engine(url)
    crawl = latest_crawl(engine, market)
    exported = list(export_rows(engine, kind, ExportFilter(crawl_id=crawl.id)))
    assert COMPARE[kind](exported, truth(market, 1, kind=kind)) == []
    assert crawl.status == "complete"
    assert crawl.transport == "tor" and crawl.tor_version and crawl.tor_version.startswith("0.4.")
    assert crawl.mirror == demo_onions[market]  # the profile's deterministic onion address
    assert crawl.stats and crawl.stats["dnm/tor/requests"] >= crawl.stats["response_received_count"]
    assert not any(key.startswith("dnm/guard/refused") for key in crawl.stats)


def test_summary_says_it_went_over_tor(tor_archive) -> None:
    _, result = tor_archive
    for market in MARKETS:
        assert f"of {market}: complete" in result.stdout
    assert len(re.findall(r"│ transport +│ tor 0\.4\.", result.stdout)) == len(MARKETS)
    assert "tor: bootstrapped 100%" in result.stderr


def test_markets_get_separate_circuits(tor_network: PrivateTorNetwork, demo_onions, tmp_path: Path) -> None:
    """Attached to the network's client tor, each market's isolation identity uses its own circuits."""
    url = archive_url(tmp_path)
    attach = f"{tor_network.client_socks_port}:{tor_network.client_control_port}"
    result = run_dnm("crawl", *MARKETS, "--tor-attach", attach, "--database", url, "--no-progress",
                     "--set", "CLOSESPIDER_PAGECOUNT=20")  # fmt: skip
    assert result.returncode in (0, 3), result.stderr[-3000:]
    with Controller.from_port(port=tor_network.client_control_port) as controller:
        controller.authenticate()
        circuits: dict[str, set[str]] = {}
        for circuit in controller.get_circuits():
            if circuit.socks_username:
                circuits.setdefault(circuit.socks_username, set()).add(circuit.id)
    ours = {user: ids for user, ids in circuits.items() if user.endswith(".anonymous.0")}
    assert set(ours) == {f"{market}.anonymous.0" for market in MARKETS}, circuits
    hollowmere, copperline = (ours[f"{market}.anonymous.0"] for market in MARKETS)
    assert hollowmere.isdisjoint(copperline)


def crawl_and_kill_its_tor(
    state: Path, tmp_path: Path, *settings: str
) -> tuple[subprocess.Popen[str], str, int]:
    """Start a slow crawl of hollowmere over Tor and SIGKILL the crawl's tor once 40 pages are in."""
    url = archive_url(tmp_path)
    tor_dir = tmp_path / "crawler-tor"
    command = [
        sys.executable, "-m", "dnm.cli", "crawl", "hollowmere", "--tor-network", str(state),
        "--database", url, "--no-progress", "--set", f"DNM_TOR_DATA_DIR={tor_dir}",
        "--set", "CONCURRENT_REQUESTS=2", "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=2",
        *(part for setting in settings for part in ("--set", setting)),
    ]  # fmt: skip
    crawl = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    engine = open_engine(url)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and crawl.poll() is None:
            with Session(engine) as session:
                pages = session.scalar(select(func.count()).select_from(Page)) or 0
            if pages >= 40 and (tor_dir / "tor.pid").exists():
                killed = int((tor_dir / "tor.pid").read_text())
                os.kill(killed, signal.SIGKILL)
                return crawl, url, killed
            time.sleep(0.2)
    except BaseException:
        crawl.kill()
        raise
    crawl.kill()
    raise AssertionError("the crawl ended before its tor could be killed")


def finish(crawl: subprocess.Popen[str], timeout: float = 300) -> str:
    try:
        return crawl.communicate(timeout=timeout)[1]
    finally:
        crawl.kill()  # never leave a hung crawl behind a failed assertion


def test_killed_tor_is_restarted_and_nothing_is_lost(network_state: Path, tmp_path: Path) -> None:
    crawl, url, _ = crawl_and_kill_its_tor(network_state, tmp_path)
    stderr = finish(crawl)
    assert crawl.returncode == 0, stderr[-3000:]
    engine = open_engine(url)
    row = latest_crawl(engine, "hollowmere")
    assert row.status == "complete" and row.stats is not None
    assert row.stats["dnm/tor/restarts"] >= 1
    exported = list(export_rows(engine, "listings", ExportFilter(crawl_id=row.id)))
    assert compare_listings(exported, truth("hollowmere", 1, kind="listings")) == []
    assert not (tmp_path / "crawler-tor" / "tor.pid").exists()  # the restarted tor was stopped with the crawl
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Crawl)) == 1


def test_tor_that_cannot_come_back_ends_the_crawl_as_partial(network_state: Path, tmp_path: Path) -> None:
    crawl, url, _ = crawl_and_kill_its_tor(network_state, tmp_path, "DNM_TOR_MAX_RESTARTS=0")
    stderr = finish(crawl, timeout=120)
    assert crawl.returncode == 3, stderr[-3000:]  # partial, for cron
    row = latest_crawl(open_engine(url), "hollowmere")
    assert row.status == "partial" and row.status_reason and "tor_unavailable" in row.status_reason
    assert "tor is gone and could not be restarted" in stderr


LEAK_PROBE = """
import json, socket, sys
asked = []
real = socket.getaddrinfo
def recording(host, *args, **kwargs):
    asked.append(str(host))
    return real(host, *args, **kwargs)
socket.getaddrinfo = recording
from dnm.cli import main
status = main(sys.argv[1:])
print("RESOLVED=" + json.dumps(asked))
sys.exit(status)
"""


def test_onion_names_are_never_resolved_locally(
    tor_network: PrivateTorNetwork, demo_onions, tmp_path: Path
) -> None:
    url = archive_url(tmp_path)
    attach = f"{tor_network.client_socks_port}:{tor_network.client_control_port}"
    result = subprocess.run(
        [sys.executable, "-c", LEAK_PROBE, "crawl", "copperline", "--tor-attach", attach, "--database", url,
         "--no-progress", "--set", "CLOSESPIDER_PAGECOUNT=30"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode in (0, 3), result.stderr[-3000:]
    resolved = json.loads(result.stdout.rsplit("RESOLVED=", 1)[1].splitlines()[0])
    assert not [name for name in resolved if name.endswith(".onion")], resolved
    with Session(open_engine(url)) as session:
        assert (session.scalar(select(func.count()).select_from(Page)) or 0) >= 30


def test_missing_tor_binary_is_a_clear_error(tmp_path: Path) -> None:
    database = archive_url(tmp_path)
    result = run_dnm(
        "crawl", "hollowmere", "--database", database, "--no-progress",
        env={"DNM_TOR_BINARY": str(tmp_path / "no-tor-here")},
    )  # fmt: skip
    assert result.returncode == 1
    assert "tor not found" in result.stderr and "apt-get install tor" in result.stderr
    assert "Traceback" not in result.stderr


def test_stalled_bootstrap_is_a_clear_error(tmp_path: Path) -> None:
    require_tor()
    nowhere = "dead orport=1 no-v2 v3ident=" + "A" * 40 + " 127.0.0.1:1 " + "B" * 40
    extra = json.dumps({"TestingTorNetwork": "1", "DirAuthority": [nowhere], "UseDefaultFallbackDirs": "0"})
    began = time.monotonic()
    database = archive_url(tmp_path)
    result = run_dnm(
        "crawl", "hollowmere", "--database", database, "--no-progress",
        "--set", "DNM_TOR_BOOTSTRAP_TIMEOUT=6", "--set", f"DNM_TOR_EXTRA_CONFIG={extra}",
    )  # fmt: skip
    assert result.returncode == 1
    assert "did not bootstrap within 6 s" in result.stderr
    assert time.monotonic() - began < 60


def test_http_cache_and_autothrottle_work_over_tor(
    tor_network: PrivateTorNetwork, demo_onions, tmp_path: Path
) -> None:
    """Scrapy's own machinery still works through the httpx SOCKS handler: a second crawl hits the cache."""
    attach = f"{tor_network.client_socks_port}:{tor_network.client_control_port}"
    settings = [
        "--set", "HTTPCACHE_ENABLED=True", "--set", f"HTTPCACHE_DIR={tmp_path / 'cache'}",
        "--set", "AUTOTHROTTLE_ENABLED=True", "--set", "AUTOTHROTTLE_TARGET_CONCURRENCY=4",
    ]  # fmt: skip
    stats = []
    for run in ("first", "second"):
        url = archive_url(tmp_path, run)
        result = run_dnm(
            "crawl", "copperline", "--tor-attach", attach, "--database", url, "--no-progress", *settings
        )
        assert result.returncode == 0, result.stderr[-3000:]
        crawl = latest_crawl(open_engine(url), "copperline")
        assert crawl.status == "complete" and crawl.stats is not None
        stats.append(crawl.stats)
    first, second = stats
    assert first.get("httpcache/hit", 0) == 0 and first["httpcache/store"] == first["response_received_count"]
    assert second["httpcache/hit"] == second["response_received_count"] == first["response_received_count"]
