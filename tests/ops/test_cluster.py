"""Distributed crawls on the real Redis: leases, hand-offs, two workers into one archive, a worker killed.

The archive is the suite's backend (DNM_TEST_DATABASE): the PostgreSQL pass is the scale-out setup the
issue names (Redis + PostgreSQL); the SQLite pass shows the single writer needs nothing more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from scrapy import Request, Spider
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from demo.server import DemoServer
from demo.truth import truth
from dnm.cluster.handoff import from_wire, to_wire
from dnm.cluster.queue import LEASE, LeasedPriorityQueue
from dnm.cluster.shared import SharedCrawl, active_crawl
from dnm.cluster.writer import merged_mirrors
from dnm.export import ExportFilter, export_rows
from dnm.items import HttpExchange, PageItem
from models import ListingSnapshot, Page, VendorSnapshot
from models.db import open_engine
from tests.conftest import POSTGRES, archive_url, latest_crawl, require_redis, run_dnm, spawn_dnm
from tests.groundtruth import compare_feedback, compare_listings, compare_vendors

MARKET = "hollowmere"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(require_redis())
    yield connection
    connection.close()


@pytest.fixture
def shared(client: redis.Redis) -> Iterator[SharedCrawl]:
    crawl = SharedCrawl(client, "unit-test-market", 7, worker_ttl=0.5)
    yield crawl
    keys = list(client.scan_iter(match=f"{crawl.prefix}:*"))
    if keys:
        client.delete(*keys)


class _Spider(Spider):
    name = "unit"

    def parse(self, response: Any) -> None:  # callbacks must be spider methods to be serialized
        pass


def _queue(shared: SharedCrawl, worker: str) -> LeasedPriorityQueue:
    spider = _Spider()
    spider.shared, spider.worker_id = shared, worker  # type: ignore[attr-defined]
    return LeasedPriorityQueue(shared.client, spider, shared.requests)


def _page(url: str = "http://market.example/listing/1") -> PageItem:
    body = b"<html>listing</html>"
    import hashlib
    from datetime import UTC, datetime

    return PageItem(
        url=url,
        page_type="listing",
        status=200,
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        fetched_at=datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
        http=HttpExchange(
            request_headers=(("Cookie", "session=SECRET-SESSION"), ("Accept", "text/html")),
            response_headers=(("Set-Cookie", "session=SECRET-SESSION"), ("Content-Type", "text/html")),
        ),
    )


# -- the queue's leases and hand-offs ----------------------------------------------------------------


def test_a_popped_request_is_leased_until_its_pages_are_delivered(shared: SharedCrawl) -> None:
    shared.join("w1", {})
    queue = _queue(shared, "w1")
    queue.push(Request("http://market.example/a", priority=1))
    queue.push(Request("http://market.example/b"))
    request = queue.pop()
    assert request is not None and request.url == "http://market.example/a"  # priority first
    assert len(queue) == 1 and shared.client.hlen(shared.leases("w1")) == 1
    assert shared.progress().leased == 1
    shared.deliver("w1", request.meta[LEASE], [to_wire(_page())])
    assert shared.client.hlen(shared.leases("w1")) == 0
    assert shared.client.llen(shared.key("items")) == 1 and shared.handed() == 1


def test_a_continuing_request_takes_over_the_lease(shared: SharedCrawl) -> None:
    queue = _queue(shared, "w1")
    queue.push(Request("http://market.example/listing/5"))
    request = queue.pop()
    assert request is not None
    hop = request.replace(url="http://market.example/verify?next=/listing/5")  # a redirect or a retry
    queue.push(hop)
    assert shared.client.hlen(shared.leases("w1")) == 0 and len(queue) == 1
    again = queue.pop()
    assert again is not None and again.url.endswith("/verify?next=/listing/5")
    assert again.meta[LEASE] != request.meta[LEASE]


def test_a_request_is_queued_and_marked_seen_in_one_step(shared: SharedCrawl) -> None:
    queue = _queue(shared, "w1")
    seen = (shared.dupefilter, "fingerprint-of-a")
    assert queue.push(Request("http://market.example/a"), unseen=seen)
    assert not queue.push(Request("http://market.example/a"), unseen=seen)  # a duplicate: not queued
    assert len(queue) == 1 and shared.client.sismember(shared.dupefilter, "fingerprint-of-a")


def test_a_silent_workers_leases_go_back_to_the_queue(shared: SharedCrawl) -> None:
    shared.join("w1", {})
    shared.join("w2", {})
    queue = _queue(shared, "w1")
    for n in range(3):
        queue.push(Request(f"http://market.example/{n}", priority=n))
    taken = [queue.pop(), queue.pop()]
    assert all(taken) and len(queue) == 1
    time.sleep(0.3)
    shared.beat("w2", {})  # w2 goes on beating; w1 stops (SIGKILL)
    time.sleep(0.4)
    progress = shared.progress()  # whoever looks first puts them back
    assert progress.reaped == {"w1": 2} and shared.lost_workers() == ["w1"]
    assert shared.reap() == {}  # once
    assert progress.queued == 3 and progress.leased == 0 and progress.live_workers == ["w2"]
    # Put back exactly: the best request comes out first again, leased to the next worker.
    request = _queue(shared, "w2").pop()
    assert request is not None and request.url == "http://market.example/2"


def test_progress_says_when_work_is_left(shared: SharedCrawl) -> None:
    assert shared.progress().work_left  # not seeded yet
    shared.mark_seeded()
    assert not shared.progress().work_left
    shared.deliver("w1", None, [to_wire(_page())])
    assert shared.progress().work_left  # a page to file
    wire = shared.take_item()
    assert wire is not None and shared.progress().work_left  # being filed
    shared.filed(wire)
    assert not shared.progress().work_left


def test_a_second_crawl_of_a_market_is_refused_while_one_is_active(client: redis.Redis) -> None:
    from dnm.cluster.shared import ClusterError

    first = SharedCrawl(client, "unit-test-market", 1)
    first.publish()
    try:
        with pytest.raises(ClusterError, match="still in progress"):
            SharedCrawl(client, "unit-test-market", 2).publish()
        found = active_crawl(client, "unit-test-market")
        assert found is not None and found.address == first.address
    finally:
        first.close()
    assert active_crawl(client, "unit-test-market") is None


# -- the wire between workers and the writer --------------------------------------------------------


def test_a_handed_over_page_keeps_its_capture_and_loses_its_session() -> None:
    page = _page()
    wire = to_wire(page)
    assert b"SECRET-SESSION" not in wire
    back = from_wire(wire)
    assert (back.url, back.body, back.sha256, back.fetched_at) == (
        page.url,
        page.body,
        page.sha256,
        page.fetched_at,
    )
    assert back.http is not None and ("Accept", "text/html") in back.http.request_headers
    assert ("Cookie", "[redacted]") in back.http.request_headers


@pytest.mark.parametrize(
    "wire",
    [b"not json", b'{"v": 99}', b'{"v": 1, "url": "x"}'],
)
def test_a_broken_hand_off_is_refused_clearly(wire: bytes) -> None:
    with pytest.raises(ValueError, match=r"hand-off|handed-over"):
        from_wire(wire)


def test_a_tampered_body_is_refused() -> None:
    message = json.loads(to_wire(_page()))
    message["body"] = "PGh0bWw+b3RoZXI8L2h0bWw+"
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        from_wire(json.dumps(message).encode())


def test_mirror_reports_of_workers_are_merged() -> None:
    one = [
        {"url": "http://a", "source": "profile", "state": "trusted", "ok": 3, "failed": 0, "refused": None}
    ]
    two = [
        {"url": "http://a", "source": "profile", "state": "down", "ok": 1, "failed": 5, "refused": None},
        {
            "url": "http://b",
            "source": "signed list",
            "state": "unverified",
            "ok": 0,
            "failed": 0,
            "refused": None,
        },
    ]
    merged = {m["url"]: m for m in merged_mirrors([one, two])}
    assert merged["http://a"]["state"] == "down" and merged["http://a"]["ok"] == 4
    assert merged["http://a"]["failed"] == 5 and merged["http://b"]["state"] == "unverified"


# -- real distributed crawls ------------------------------------------------------------------------


def _cluster_args(mirror: str, url: str, *extra: str) -> list[str]:
    return [
        MARKET, "--mirror", mirror, "--transport", "direct", "--allow-host", "127.0.0.1", "--no-progress",
        "--redis", url, *extra,
    ]  # fmt: skip


def _export(url: str, crawl_id: int, kind: str) -> list[dict[str, Any]]:
    engine = open_engine(url)
    try:
        return list(export_rows(engine, kind, ExportFilter(market=MARKET, crawl_id=crawl_id)))
    finally:
        engine.dispose()


def _assert_equals_truth(url: str, crawl_id: int) -> None:
    for kind, compare in (
        ("listings", compare_listings),
        ("vendors", compare_vendors),
        ("feedback", compare_feedback),
    ):
        assert compare(_export(url, crawl_id, kind), truth(MARKET, 1, kind=kind)) == [], kind


def _assert_no_duplicate_snapshots(url: str, crawl_id: int) -> None:
    engine = open_engine(url)
    try:
        with Session(engine) as session:
            for model, key in (
                (ListingSnapshot, ListingSnapshot.listing_id),
                (VendorSnapshot, VendorSnapshot.vendor_id),
            ):
                repeated = session.execute(
                    select(key, func.count())
                    .where(model.crawl_id == crawl_id)
                    .group_by(key)
                    .having(func.count() > 1)
                ).all()
                assert repeated == [], model.__name__
            # Every content page once: no URL fetched and filed twice in the crawl.
            pages = session.execute(
                select(Page.url, func.count())
                .where(
                    Page.crawl_id == crawl_id,
                    Page.page_type.in_(["listing", "vendor", "category", "feedback"]),
                )
                .group_by(Page.url)
                .having(func.count() > 1)
            ).all()
            assert pages == []
    finally:
        engine.dispose()


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[str]:
    url = archive_url(tmp_path)
    yield url
    POSTGRES.drop(url)


def _finish(process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{log.name} did not finish:\n{log.read_text()[-3000:]}") from None


def test_two_workers_crawl_into_an_archive_equal_to_the_truth(archive: str, tmp_path: Path) -> None:
    url = require_redis()
    with DemoServer(MARKET, 1) as server:
        args = _cluster_args(server.url, url)
        writer = spawn_dnm("cluster", "crawl", *args, "--database", archive, log=tmp_path / "writer.log")
        workers = [
            spawn_dnm(
                "cluster", "worker", *args, "--set", f"DNM_CLUSTER_WORKER_ID=w{n}", log=tmp_path / f"w{n}.log"
            )
            for n in (1, 2)
        ]
        assert _finish(writer, tmp_path / "writer.log") == 0, (tmp_path / "writer.log").read_text()[-3000:]
        for n, worker in enumerate(workers, 1):
            assert _finish(worker, tmp_path / f"w{n}.log") == 0, (tmp_path / f"w{n}.log").read_text()[-3000:]
    crawl = latest_crawl(open_engine(archive), MARKET)
    assert crawl.status == "complete", crawl.status_reason
    stats = crawl.stats or {}
    shares = {worker: report["handed_over"] for worker, report in stats["dnm/cluster/workers"].items()}
    assert set(shares) == {"w1", "w2"} and all(shares.values()), shares  # both did part of the work
    assert sum(shares.values()) == stats["dnm/stored/pages"]
    assert stats["dnm/cluster/lost_workers"] == []
    _assert_equals_truth(archive, crawl.id)
    _assert_no_duplicate_snapshots(archive, crawl.id)
    # Every page of every worker has its raw capture in the crawl's one WARC file.
    engine = open_engine(archive)
    with Session(engine) as session:
        files = set(session.scalars(select(Page.warc_file).where(Page.crawl_id == crawl.id)))
    engine.dispose()
    assert len(files) == 1 and None not in files
    assert active_crawl(redis.Redis.from_url(url), MARKET) is None  # Redis forgot the crawl


def test_a_worker_killed_mid_crawl_loses_nothing(archive: str, tmp_path: Path) -> None:
    url = require_redis()
    client = redis.Redis.from_url(url)
    # Slow enough to kill a worker with requests in flight: 0.1 s a response, 2 at a time per worker.
    with DemoServer(MARKET, 1, latency=0.1) as server:
        args = _cluster_args(server.url, url, "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=2")
        quick = ("--set", "DNM_CLUSTER_WORKER_TTL=3", "--set", "DNM_CLUSTER_HEARTBEAT=0.5")
        writer = spawn_dnm(
            "cluster", "crawl", *args, *quick, "--database", archive, log=tmp_path / "writer.log"
        )
        victim = spawn_dnm("cluster", "worker", *args, *quick, "--set", "DNM_CLUSTER_WORKER_ID=victim",
                           log=tmp_path / "victim.log")  # fmt: skip
        survivor = spawn_dnm("cluster", "worker", *args, *quick, "--set", "DNM_CLUSTER_WORKER_ID=survivor",
                             log=tmp_path / "survivor.log")  # fmt: skip
        deadline = time.monotonic() + 60
        shared = None
        while time.monotonic() < deadline:
            shared = active_crawl(client, MARKET)
            if shared is not None and shared.handed() >= 60 and client.hlen(shared.leases("victim")):
                break
            time.sleep(0.05)
        assert shared is not None, (tmp_path / "victim.log").read_text()[-3000:]
        in_flight = client.hlen(shared.leases("victim"))
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        assert in_flight > 0
        assert _finish(writer, tmp_path / "writer.log") == 0, (tmp_path / "writer.log").read_text()[-3000:]
        assert _finish(survivor, tmp_path / "survivor.log") == 0
    crawl = latest_crawl(open_engine(archive), MARKET)
    assert crawl.status == "complete", crawl.status_reason
    stats = crawl.stats or {}
    assert stats["dnm/cluster/lost_workers"] == ["victim"]
    assert stats["dnm/cluster/workers"]["victim"]["finish_reason"] == "lost"
    assert stats["dnm/cluster/workers"]["survivor"]["finish_reason"] == "finished"
    _assert_equals_truth(archive, crawl.id)
    _assert_no_duplicate_snapshots(archive, crawl.id)


def test_stop_closes_the_crawl_as_partial_and_keeps_what_was_filed(archive: str, tmp_path: Path) -> None:
    url = require_redis()
    client = redis.Redis.from_url(url)
    with DemoServer(MARKET, 1, latency=0.2) as server:
        args = _cluster_args(server.url, url, "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=1")
        quick = ("--set", "DNM_CLUSTER_HEARTBEAT=0.5")
        writer = spawn_dnm(
            "cluster", "crawl", *args, *quick, "--database", archive, log=tmp_path / "writer.log"
        )
        worker = spawn_dnm("cluster", "worker", *args, *quick, log=tmp_path / "worker.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shared = active_crawl(client, MARKET)
            if shared is not None and shared.handed() >= 10:
                break
            time.sleep(0.05)
        stopped = run_dnm("cluster", "stop", MARKET, "--redis", url)
        assert stopped.returncode == 0 and "stop asked" in stopped.stdout
        assert _finish(worker, tmp_path / "worker.log") == 0
        assert _finish(writer, tmp_path / "writer.log") == 3, (tmp_path / "writer.log").read_text()[-3000:]
    assert "worker of crawl" in (tmp_path / "worker.log").read_text()
    crawl = latest_crawl(open_engine(archive), MARKET)
    assert crawl.status == "partial" and "stopped" in (crawl.status_reason or "")
    stats = crawl.stats or {}
    assert stats["dnm/stored/pages"] >= 10  # what was fetched before the stop is archived
    assert active_crawl(client, MARKET) is None


def test_reset_closes_a_crawl_whose_writer_died(archive: str, tmp_path: Path) -> None:
    url = require_redis()
    client = redis.Redis.from_url(url)
    with DemoServer(MARKET, 1) as server:
        writer = spawn_dnm("cluster", "crawl", *_cluster_args(server.url, url), "--database", archive,
                           log=tmp_path / "writer.log")  # fmt: skip
        deadline = time.monotonic() + 60
        while active_crawl(client, MARKET) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        again = run_dnm("cluster", "crawl", *_cluster_args(server.url, url), "--database", archive)
        assert again.returncode == 1 and "still in progress" in again.stderr
        reset = run_dnm("cluster", "reset", MARKET, "--redis", url, "--database", archive)
        assert reset.returncode == 0, reset.stderr
    crawl = latest_crawl(open_engine(archive), MARKET)
    assert crawl.status == "partial" and "reset" in (crawl.status_reason or "")
    assert active_crawl(client, MARKET) is None


def test_a_worker_without_a_crawl_or_redis_says_so(tmp_path: Path) -> None:
    url = require_redis()
    lonely = run_dnm("cluster", "worker", *_cluster_args("http://127.0.0.1:9", url, "--join-timeout", "1"))
    assert lonely.returncode == 1 and "no distributed crawl of hollowmere" in lonely.stderr
    dead = run_dnm("cluster", "status", MARKET, "--redis", "redis://:hunter2@127.0.0.1:9/0")
    assert dead.returncode == 1 and "does not answer" in dead.stderr
    assert "hunter2" not in dead.stderr
