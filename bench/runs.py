"""Measured runs: one crawl per fresh subprocess, pipeline or bare, read back and checked.

The Twisted reactor cannot be restarted, so every crawl gets its own interpreter. Both sides are
configured from one `dnm crawl` command line: the pipeline side runs that command (`python -m
dnm.cli crawl ...`), and the bare side gets the overrides the CLI derives from it, so the two
differ only in the spider and in `ITEM_PIPELINES`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench import REPO
from bench.timing import EXTENSION_ORDER, EXTENSION_PATH
from models import Page
from models.db import open_engine

LOG_TAIL_LINES = 30


class BenchError(RuntimeError):
    """A run failed or its figures do not add up; the benchmark stops rather than print them."""


@dataclass(frozen=True)
class RunResult:
    """The figures of one crawl: pages fetched, the measured window, peak RSS, pages archived."""

    mode: str  # "pipeline" or "bare"
    pages: int  # response_received_count
    elapsed: float  # seconds from the first request to the last response or item
    peak_rss: int  # bytes, the crawl process's own high-water mark at spider close
    cpu: float  # CPU seconds the crawl process used in the measured window
    stored: int | None = None  # pipeline side: pages archived, by stat and by database row count
    stats: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.elapsed

    @property
    def busy(self) -> float:
        """Share of the window the crawl process spent on the CPU (1.0: CPU-bound)."""
        return self.cpu / self.elapsed

    def figures(self) -> dict[str, Any]:
        """The figures worth writing to --json."""
        return {
            "pages": self.pages,
            "elapsed_s": round(self.elapsed, 4),
            "pages_per_s": round(self.pages_per_second, 2),
            "cpu_s": round(self.cpu, 4),
            "cpu_busy": round(self.busy, 3),
            "peak_rss_bytes": self.peak_rss,
            # Scrapy's own figure, for comparison: sampled every 60 s and inherited from the parent.
            "scrapy_memusage_max_bytes": self.stats.get("memusage/max"),
            **({"stored": self.stored} if self.stored is not None else {}),
        }


def database_url(workdir: Path, tag: str) -> str:
    """The fresh SQLite archive of one run."""
    return f"sqlite:///{workdir / f'{tag}.sqlite'}"


def crawl_argv(market: str, mirror: str, database: str, concurrency: int, stats_file: Path) -> list[str]:
    """The `dnm crawl` arguments of one run, with the timing extension switched on."""
    host = urlsplit(mirror).hostname or "127.0.0.1"
    return [
        "crawl", market,
        "--mirror", mirror,
        "--transport", "direct",
        "--allow-host", host,
        "--database", database,
        "--no-progress",
        # One market is one download slot, so the per-domain cap is what bounds concurrency.
        "--set", f"CONCURRENT_REQUESTS={concurrency}",
        "--set", f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
        "--set", f"EXTENSIONS={json.dumps({EXTENSION_PATH: EXTENSION_ORDER})}",
        "--set", f"BENCH_STATS_FILE={stats_file}",
    ]  # fmt: skip


def cli_overrides(argv: list[str]) -> dict[str, Any]:
    """The Scrapy overrides `dnm crawl` derives from these arguments (so the bare side gets the same)."""
    from dnm.cli import _overrides, build_parser

    return _overrides(build_parser().parse_args(argv), False)


def _run(command: list[str], log: Path, what: str) -> int:
    with log.open("w") as out:
        returncode = subprocess.run(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT).returncode
    if returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        raise BenchError(f"{what} exited with status {returncode}; last lines of {log}:\n{tail}")
    return returncode


def _read_stats(stats_file: Path, log: Path, what: str) -> dict[str, Any]:
    if not stats_file.exists():
        raise BenchError(f"{what} wrote no stats (is bench.timing enabled?); see {log}")
    stats: dict[str, Any] = json.loads(stats_file.read_text())
    problems = []
    if stats.get("finish_reason") != "finished":
        problems.append(f"finish reason {stats.get('finish_reason')!r}")
    for name, value in sorted(stats.items()):
        if name.startswith("downloader/response_status_count/") and not name.endswith("/200"):
            problems.append(f"{value} response(s) with status {name.rsplit('/', 1)[1]}")
        elif name.startswith(("dnm/errors/", "dnm/storage/errors", "dnm/guard/refused", "log_count/ERROR")):
            problems.append(f"{name} = {value}")
    if "bench/elapsed" not in stats:
        problems.append("no request was timed")
    if problems:
        raise BenchError(f"{what} did not crawl cleanly: {'; '.join(problems)}; see {log}")
    return stats


def stored_pages(database: str, crawl_id: int) -> int:
    """Rows in the pages table for one crawl."""
    engine = open_engine(database, create=False)
    try:
        with Session(engine) as session:
            return int(
                session.scalar(select(func.count()).select_from(Page).where(Page.crawl_id == crawl_id)) or 0
            )
    finally:
        engine.dispose()


def run_pipeline(
    workdir: Path, tag: str, market: str, mirror: str, concurrency: int, *, profile_file: Path | None = None
) -> RunResult:
    """One full `dnm crawl` into a fresh SQLite file; checks every fetched page was archived."""
    database = database_url(workdir, tag)
    stats_file, log = workdir / f"{tag}.stats.json", workdir / f"{tag}.log"
    argv = crawl_argv(market, mirror, database, concurrency, stats_file)
    profiler = ["-m", "cProfile", "-o", str(profile_file)] if profile_file else []
    _run([sys.executable, *profiler, "-m", "dnm.cli", *argv], log, f"pipeline run {tag}")
    stats = _read_stats(stats_file, log, f"pipeline run {tag}")
    pages = int(stats.get("response_received_count", 0))
    by_stat = int(stats.get("dnm/stored/pages", 0))
    by_rows = stored_pages(database, int(stats["dnm/crawl_id"]))
    if not pages == by_stat == by_rows:
        raise BenchError(
            f"pipeline run {tag} fetched {pages} pages but stored {by_stat} (stat) / {by_rows} (rows); "
            f"see {log}"
        )
    return _result("pipeline", stats, by_rows)


def run_bare(
    workdir: Path, tag: str, market: str, mirror: str, concurrency: int, urls: list[str]
) -> RunResult:
    """One bare crawl of the URL list, configured from the same `dnm crawl` arguments."""
    stats_file, log = workdir / f"{tag}.stats.json", workdir / f"{tag}.log"
    database = database_url(workdir, tag)  # never opened: the bare side has no pipelines
    overrides = cli_overrides(crawl_argv(market, mirror, database, concurrency, stats_file))
    urls_file, overrides_file = workdir / "urls.txt", workdir / f"{tag}.overrides.json"
    urls_file.write_text("".join(f"{url}\n" for url in urls))
    overrides_file.write_text(json.dumps(overrides))
    _run([sys.executable, "-m", "bench.bare", str(urls_file), str(overrides_file)], log, f"bare run {tag}")
    stats = _read_stats(stats_file, log, f"bare run {tag}")
    return _result("bare", stats, None)


def _result(mode: str, stats: dict[str, Any], stored: int | None) -> RunResult:
    return RunResult(
        mode=mode,
        pages=int(stats.get("response_received_count", 0)),
        elapsed=float(stats["bench/elapsed"]),
        peak_rss=int(stats.get("bench/peak_rss", 0)),
        cpu=float(stats.get("bench/cpu", 0.0)),
        stored=stored,
        stats=stats,
    )
