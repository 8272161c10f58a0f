"""The hostile demo markets as onion services on the private Tor network: the issue's "done when", for real.

Every hostile behaviour of each skin's preset is on (10% transient faults, killed circuits seen per
real Tor circuit through the onion service's exported circuit ids, three mirrors and a phishing clone
per market). Each market is crawled over Tor with the demo CAPTCHA solver and the demo accounts; the
export must equal the ground truth exactly and the crawl must be complete.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.hostile.accounts import secrets_toml
from demo.truth import MARKETS, truth
from dnm.export import ExportFilter, export_rows
from models.db import open_engine
from tests.conftest import DnmResult, archive_url, latest_crawl, run_dnm
from tests.groundtruth import compare_feedback, compare_listings, compare_vendors
from tests.tor.support import FIGURES
from transport.tornet import DemoOnions, PrivateTorNetwork, serve_demo_over_tor

COMPARE = {"listings": compare_listings, "vendors": compare_vendors, "feedback": compare_feedback}


@pytest.fixture(scope="module")
def hostile_onions(tor_network: PrivateTorNetwork) -> Iterator[DemoOnions]:
    # key_seed 2: the friendly demo onions of the session hold the profiles' own addresses.
    with serve_demo_over_tor(tor_network, MARKETS, day=1, hostile=True, key_seed=2) as onions:
        yield onions


@pytest.fixture(scope="module")
def hostile_tor_archive(
    tor_network: PrivateTorNetwork, hostile_onions: DemoOnions, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, DnmResult], Path]:
    directory = tmp_path_factory.mktemp("hostile-tor")
    state = directory / "state.json"
    tor_network.save_state(state)
    accounts = directory / "accounts.toml"
    accounts.write_text(secrets_toml(1, MARKETS))
    os.chmod(accounts, 0o600)
    url = archive_url(directory)
    results = {}
    for market in MARKETS:
        # Copperline is first offered its phishing clone, as if found on a forum: it must be refused.
        offered = ([hostile_onions.phishing[market]] if market == "copperline" else []) + [
            hostile_onions.mirrors[market][0]
        ]
        began = time.monotonic()
        results[market] = run_dnm(
            "crawl", market, *(a for m in offered for a in ("--mirror", m)), "--tor-network", str(state),
            "--database", url, "--accounts", str(accounts), "--captcha-solver", "demo", "--no-progress",
            timeout=600,
        )  # fmt: skip
        FIGURES[f"hostile crawl of {market} over Tor"] = f"{time.monotonic() - began:.1f} s"
    return url, results, accounts


@pytest.mark.parametrize("kind", COMPARE)
@pytest.mark.parametrize("market", MARKETS)
def test_hostile_ground_truth_over_tor(hostile_tor_archive, market: str, kind: str) -> None:
    url, results, _ = hostile_tor_archive
    assert results[market].returncode == 0, results[market].stdout[-4000:] + results[market].stderr[-4000:]
    engine = open_engine(url)
    crawl = latest_crawl(engine, market)
    exported = list(export_rows(engine, kind, ExportFilter(crawl_id=crawl.id)))
    assert COMPARE[kind](exported, truth(market, 1, kind=kind)) == []
    assert crawl.status == "complete" and crawl.transport == "tor"


@pytest.mark.parametrize("market", MARKETS)
def test_killed_circuits_were_renewed_through_tor(hostile_tor_archive, market: str) -> None:
    url, _, _ = hostile_tor_archive
    stats = latest_crawl(open_engine(url), market).stats or {}
    assert stats.get("dnm/barriers/killed", 0) > 0
    assert stats.get("dnm/tor/circuits_renewed/killed_path", 0) > 0
    for barrier in ("captcha", "login", "queue", "maintenance"):
        assert stats.get(f"dnm/barriers/{barrier}", 0) > 0, barrier
    assert not any(key.startswith("dnm/barriers/unpassed") for key in stats)


def test_phishing_onion_refused_over_tor(hostile_tor_archive, hostile_onions: DemoOnions) -> None:
    url, results, _ = hostile_tor_archive
    mirrors = latest_crawl(open_engine(url), "copperline").stats["dnm/mirrors"]
    clone = next(m for m in mirrors if m["url"] == hostile_onions.phishing["copperline"])
    assert clone["state"] == "refused" and "the profile pins" in clone["refused"]
    assert hostile_onions.phishing["copperline"] in results["copperline"].stdout


def test_dead_primary_mirror_left_over_tor(hostile_tor_archive, hostile_onions: DemoOnions) -> None:
    """Hollowmere's primary dies after 200 requests; the crawl goes on through its other onions."""
    url, _, _ = hostile_tor_archive
    mirrors = {m["url"]: m for m in latest_crawl(open_engine(url), "hollowmere").stats["dnm/mirrors"]}
    primary, *others = hostile_onions.mirrors["hollowmere"]
    assert mirrors[primary]["state"] == "down"
    assert sum(mirrors[m]["ok"] for m in others if m in mirrors) > 0


def test_state_file_is_private(hostile_tor_archive) -> None:
    # The accounts file the crawl read stays as private as it was written.
    _, _, accounts = hostile_tor_archive
    assert accounts.stat().st_mode & 0o777 == 0o600
