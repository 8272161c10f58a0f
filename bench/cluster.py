"""Scale-out benchmark: one worker against two on a demo market answering after a Tor-like delay.

Run on demand (`make bench-cluster` or `python -m bench.cluster`), never in CI. One demo market is served
on loopback with a delay before every response (300 ms by default, a round trip through Tor's circuits)
at a scale of about a thousand pages. Each round runs a distributed crawl (`dnm cluster crawl` with a
fresh PostgreSQL archive, Redis on loopback) with 1 worker and then with 2 (alternating the order), each
worker a `dnm cluster worker` process at the project's default concurrency. Measured from the archive:

- fetch rate: pages / (last fetch - first fetch), the workers' pages per second;
- end to end: pages / the writer's crawl duration, from the crawl row opening to it closing (includes
  starting the workers' processes and the last page filed).

Target: two workers at >= 1.8x the fetch rate of one. Exit status 0 when met, 1 when missed, 2 when a
crawl failed or was incomplete.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from demo.server import DemoServer
from demo.truth import MARKETS
from models import Crawl, Page
from models.db import open_engine

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.8
# About a thousand pages: long enough that starting processes is a small part of a crawl.
SCALE = {"vendors": 100, "listings": 700, "new_vendors": 10}
ADMIN_URL = os.environ.get("DNM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@dataclass
class Run:
    """One measured distributed crawl."""

    workers: int
    pages: int
    content_pages: int
    fetch_seconds: float
    crawl_seconds: float
    status: str

    @property
    def fetch_rate(self) -> float:
        return self.pages / self.fetch_seconds

    @property
    def end_to_end_rate(self) -> float:
        return self.pages / self.crawl_seconds


def fresh_database(name: str) -> str:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def crawl(workers: int, market: str, mirror: str, workdir: Path, redis: str) -> Run:
    """One distributed crawl with `workers` workers; its figures from the archive."""
    database = fresh_database(f"dnm_bench_cluster_{os.getpid()}")
    common = [
        market, "--mirror", mirror, "--transport", "direct", "--allow-host", "127.0.0.1", "--no-progress",
        "--redis", redis,
    ]  # fmt: skip
    env = {**os.environ, "DNM_RAW_DIR": str(workdir / "warc"), "DNM_SESSION_DIR": str(workdir / "sessions")}
    logs = workdir / f"logs-{workers}-{time.monotonic_ns()}"
    logs.mkdir()

    def spawn(name: str, *args: str) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("wb") as out:
            command = [sys.executable, "-m", "dnm.cli", "cluster", *args]
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    writer = spawn("writer", "crawl", *common, "--database", database)
    fleet = [spawn(f"worker{n}", "worker", *common) for n in range(workers)]
    status = writer.wait(timeout=1800)
    for worker in fleet:
        worker.wait(timeout=120)
    if status != 0:
        raise SystemExit(f"the {workers}-worker crawl failed ({status}); logs in {logs}")
    engine = open_engine(database)
    with Session(engine) as session:
        row = session.scalars(select(Crawl)).one()
        first, last, pages = session.execute(
            select(func.min(Page.fetched_at), func.max(Page.fetched_at), func.count()).where(
                Page.crawl_id == row.id
            )
        ).one()
        # Each worker checks the mirrors (two pages); the market's own pages are the same in every run.
        content = session.scalar(
            select(func.count()).where(Page.crawl_id == row.id, Page.page_type.not_like("mirrors:%"))
        )
        assert row.finished_at is not None
        took = (row.finished_at - row.started_at).total_seconds()
        result = Run(workers, pages, content, (last - first).total_seconds(), took, row.status)
    engine.dispose()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--market", default="hollowmere", choices=MARKETS)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds before every response")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--redis", default=os.environ.get("DNM_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="dnm-bench-cluster-") as tmp:
        workdir = Path(tmp)
        with DemoServer(args.market, 1, scale=SCALE, latency=args.latency) as server:
            for round_number in range(args.rounds):
                order = (1, 2) if round_number % 2 == 0 else (2, 1)
                for workers in order:
                    run = crawl(workers, args.market, server.url, workdir, args.redis)
                    runs.append(run)
                    print(
                        f"round {round_number + 1}, {workers} worker(s): {run.pages} pages, {run.status}, "
                        f"fetch {run.fetch_rate:.1f} p/s, end to end {run.end_to_end_rate:.1f} p/s",
                        file=sys.stderr,
                    )
    if any(run.status != "complete" for run in runs) or len({run.content_pages for run in runs}) != 1:
        print("a crawl was not complete, or the crawls disagree on the market's page count", file=sys.stderr)
        return 2
    fetch = {n: statistics.median(r.fetch_rate for r in runs if r.workers == n) for n in (1, 2)}
    whole = {n: statistics.median(r.end_to_end_rate for r in runs if r.workers == n) for n in (1, 2)}
    ratio, whole_ratio = fetch[2] / fetch[1], whole[2] / whole[1]
    print(
        f"dnm-archive scale-out benchmark: {args.market}, {runs[0].pages} pages, "
        f"{args.latency * 1000:.0f} ms "
        f"per response, {args.rounds} rounds, PostgreSQL archive, Redis queue"
    )
    print(f"{'workers':<9}{'fetch p/s':>11}{'end-to-end p/s':>16}")
    for n in (1, 2):
        print(f"{n:<9}{fetch[n]:>11.1f}{whole[n]:>16.1f}")
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(
        f"two workers / one: fetch {ratio:.2f}x (target >= {TARGET}x: {verdict}), "
        f"end to end {whole_ratio:.2f}x"
    )
    if args.json:
        args.json.write_text(json.dumps({
            "runs": [{**vars(r), "fetch": r.fetch_rate, "end_to_end": r.end_to_end_rate} for r in runs],
            "fetch": fetch, "end_to_end": whole, "ratio": ratio, "end_to_end_ratio": whole_ratio,
        }, indent=2))  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
