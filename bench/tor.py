"""Tor throughput benchmark: the demo crawl over the private Tor network against the same crawl direct.

Run on demand (`make bench-tor` or `python -m bench.tor`), never in CI. In one run it starts the
private Tor network (reporting its start time and memory), serves one demo market on loopback and
publishes it as an onion service, then crawls it, each crawl a fresh `dnm crawl` process with a fresh
archive: direct over HTTP (the baseline), over Tor with 1 isolation identity, and over Tor with 4
(`DNM_TOR_LANES`). Rounds alternate the order. It prints pages per second and the ratios
tor/direct. Target: 4 identities at >= 0.5x direct.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from demo.world import MARKETS
from models import Crawl
from models.db import open_engine
from transport.tornet import PrivateTorNetwork, serve_demo_over_tor

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.5


@dataclass
class Run:
    """One measured crawl."""

    mode: str
    pages: int
    seconds: float

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds


def crawl(mode: str, market: str, mirror: str, state: Path, workdir: Path, concurrency: int) -> Run:
    """Run one `dnm crawl` in a fresh process and read its pages and spider time from the archive."""
    database = workdir / f"{mode}-{time.monotonic_ns()}.sqlite"
    common = [
        "--database", f"sqlite:///{database}", "--no-progress",
        "--set", f"CONCURRENT_REQUESTS={concurrency}",
        "--set", f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
    ]  # fmt: skip
    if mode == "direct":
        transport = ["--mirror", mirror, "--transport", "direct", "--allow-host", "127.0.0.1"]
    else:
        lanes = mode.removeprefix("tor-")
        transport = ["--tor-network", str(state), "--set", f"DNM_TOR_LANES={lanes}"]
    command = [sys.executable, "-m", "dnm.cli", "crawl", market, *transport, *common]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"{mode} crawl failed ({result.returncode}):\n{result.stderr[-3000:]}")
    engine = open_engine(f"sqlite:///{database}")
    with Session(engine) as session:
        row = session.scalars(select(Crawl)).one()
        stats = row.stats or {}
    engine.dispose()
    return Run(mode, int(stats["response_received_count"]), float(stats["elapsed_time_seconds"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--market", default="hollowmere", choices=MARKETS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    modes = ["direct", "tor-1", "tor-4"]
    with tempfile.TemporaryDirectory(prefix="dnm-bench-tor-") as tmp:
        workdir = Path(tmp)
        began = time.monotonic()
        with PrivateTorNetwork(workdir / "net") as network:
            start_seconds = time.monotonic() - began
            rss_after_start = network.rss_bytes()
            with serve_demo_over_tor(network, [args.market]) as onions:
                state = workdir / "state.json"
                network.save_state(state)
                mirror = onions.servers[0].url
                runs: list[Run] = []
                for round_number in range(args.rounds):
                    order = modes if round_number % 2 == 0 else list(reversed(modes))
                    for mode in order:
                        run = crawl(mode, args.market, mirror, state, workdir, args.concurrency)
                        runs.append(run)
                        figures = f"{run.pages} pages, {run.pages_per_second:.1f} p/s"
                        print(f"round {round_number + 1} {mode}: {figures}", file=sys.stderr)
            rss_at_end = network.rss_bytes()
    medians = {m: statistics.median(r.pages_per_second for r in runs if r.mode == m) for m in modes}
    ratios = {m: medians[m] / medians["direct"] for m in ("tor-1", "tor-4")}
    print(f"dnm-archive Tor benchmark: {args.market}, concurrency {args.concurrency}, {args.rounds} rounds")
    print(f"private network start: {start_seconds:.1f} s; RSS {rss_after_start / 2**20:.0f} MiB after start, "
          f"{rss_at_end / 2**20:.0f} MiB after the crawls")  # fmt: skip
    print(f"{'mode':<8}{'pages':>7}{'median p/s':>12}{'ratio':>8}")
    for mode in modes:
        pages = next(r.pages for r in runs if r.mode == mode)
        ratio = "" if mode == "direct" else f"{ratios[mode]:.2f}x"
        print(f"{mode:<8}{pages:>7}{medians[mode]:>12.1f}{ratio:>8}")
    verdict = "PASS" if ratios["tor-4"] >= TARGET else "FAIL"
    print(f"tor with 4 identities / direct: {ratios['tor-4']:.2f}x, target >= {TARGET}x: {verdict}")
    if args.json:
        args.json.write_text(json.dumps({
            "start_seconds": start_seconds, "rss_after_start": rss_after_start, "rss_at_end": rss_at_end,
            "runs": [vars(r) for r in runs], "medians": medians, "ratios": ratios,
        }, indent=2))  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
