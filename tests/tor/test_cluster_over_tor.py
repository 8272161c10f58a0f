"""A distributed crawl over the private Tor network: two workers, each launching its own tor, one writer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from demo.truth import truth
from dnm.export import ExportFilter, export_rows
from models.db import open_engine
from tests.conftest import POSTGRES, archive_url, latest_crawl, require_redis, spawn_dnm
from tests.groundtruth import compare_feedback, compare_listings, compare_vendors
from transport.tornet import PrivateTorNetwork

MARKET = "copperline"


@pytest.fixture(scope="module")
def network_state(tor_network: PrivateTorNetwork, demo_onions: dict[str, str], tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("state") / "state.json"
    tor_network.save_state(path)
    return path


def test_two_workers_each_with_its_own_tor(network_state: Path, tmp_path: Path) -> None:
    redis_url = require_redis()
    archive = archive_url(tmp_path)
    common = [MARKET, "--tor-network", str(network_state), "--no-progress", "--redis", redis_url]
    logs = {name: tmp_path / f"{name}.log" for name in ("writer", "w1", "w2")}
    writer = spawn_dnm("cluster", "crawl", *common, "--database", archive, log=logs["writer"])
    workers = [
        spawn_dnm("cluster", "worker", *common, "--set", f"DNM_CLUSTER_WORKER_ID={name}", log=logs[name])
        for name in ("w1", "w2")
    ]
    try:
        for name, process in (("writer", writer), ("w1", workers[0]), ("w2", workers[1])):
            assert process.wait(timeout=300) == 0, logs[name].read_text()[-3000:]
    except subprocess.TimeoutExpired:
        for process in (writer, *workers):
            process.kill()
        raise
    engine = open_engine(archive)
    try:
        crawl = latest_crawl(engine, MARKET)
        assert crawl.status == "complete", crawl.status_reason
        assert crawl.transport == "tor"
        for kind, compare in (
            ("listings", compare_listings),
            ("vendors", compare_vendors),
            ("feedback", compare_feedback),
        ):
            exported = list(export_rows(engine, kind, ExportFilter(crawl_id=crawl.id)))
            assert compare(exported, truth(MARKET, 1, kind=kind)) == [], kind
        workers_seen = (crawl.stats or {})["dnm/cluster/workers"]
        paths = {name: json.loads(report["network_path"]) for name, report in workers_seen.items()}
        assert set(paths) == {"w1", "w2"} and all(report["handed_over"] for report in workers_seen.values())
        assert all(path["transport"] == "tor" and path["tor_launched_by_crawl"] for path in paths.values())
        # Each its own tor: two SOCKS ports, names resolved by Tor.
        assert paths["w1"]["tor_socks"] != paths["w2"]["tor_socks"]
        assert (crawl.stats or {})["dnm/tor/requests"] >= (crawl.stats or {})["response_received_count"]
    finally:
        engine.dispose()
        POSTGRES.drop(archive)
