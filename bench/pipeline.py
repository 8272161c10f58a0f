"""The pipeline benchmark: pages per second of `dnm crawl` against a bare spider, same pages, same run.

`python -m bench.pipeline [--market hollowmere] [--scale large] [--rounds 3] [--concurrency 16]
[--json out.json] [--profile out.pstats]`. It crawls the demo market once (unmeasured) to learn
its URLs, serves a pre-rendered copy of those pages from `bench.static_server`, then alternates
pipeline and bare runs (ABBA...) against it, each in a fresh process, and prints every round, the
medians and the ratio pipeline/bare against the target. Exit status: 0 when the target is met,
1 when it is missed, 2 when a run failed or its figures do not add up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import hotspots
from bench.capture import crawled_pages, render_pages
from bench.runs import BenchError, RunResult, database_url, run_bare, run_pipeline
from bench.static_server import StaticServer, save_pages
from demo.world import MARKETS, SCALES

TARGET = 0.85  # the bar: the full pipeline at >= 0.85x the bare spider
EXIT_PASS, EXIT_MISSED, EXIT_ERROR = 0, 1, 2
MIB = 1024 * 1024


@dataclass(frozen=True)
class Round:
    """One pipeline run and one bare run, in the order they ran."""

    number: int
    order: tuple[str, str]
    pipeline: RunResult
    bare: RunResult

    @property
    def ratio(self) -> float:
        return self.pipeline.pages_per_second / self.bare.pages_per_second


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--market", default="hollowmere", choices=MARKETS, help="demo market")
    parser.add_argument("--scale", default="large", choices=sorted(SCALES), help="demo scale")
    parser.add_argument("--day", type=int, default=1, help="demo day")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one pipeline and one bare run")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight (CONCURRENT_REQUESTS and per domain)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile", type=Path, help="after the rounds, profile one pipeline run with cProfile into this file"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep databases, logs and stats of every run here (default: a temp dir)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rounds < 1 or args.concurrency < 1:
        print("error: --rounds and --concurrency must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    try:
        return run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def say(message: str) -> None:
    """Progress lines go to stderr so that stdout holds the table only."""
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with ExitStack() as stack:
        if args.workdir:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dnm-bench-")))
        pages_file = capture(args, workdir)
        with StaticServer(pages_file) as server:
            say(f"static server (pid {server.pid}) at {server.url}")
            urls = [server.url + target for target in json.loads((workdir / "targets.json").read_text())]
            rounds = measure(args, workdir, server.url, urls)
            wall = time.monotonic() - started
            profiled: RunResult | None = None
            if args.profile:
                say(f"profiling one pipeline run into {args.profile}")
                profile_file = args.profile.resolve()
                profiled = run_pipeline(
                    workdir, "profile", args.market, server.url, args.concurrency, profile_file=profile_file
                )
    figures = summarize(args, rounds, len(urls), wall)
    print(table(args, rounds, figures))
    if profiled is not None:
        print(f"\nprofiled run: {profiled.pages_per_second:.1f} pages/s under cProfile")
        print(hotspots.report(args.profile))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        say(f"figures written to {args.json}")
    return EXIT_PASS if figures["pass"] else EXIT_MISSED


def capture(args: argparse.Namespace, workdir: Path) -> Path:
    """Crawl the demo once (unmeasured), render the crawled pages, save them for the static server."""
    from demo.server import DemoServer

    say(f"capturing {args.market} day {args.day} ({args.scale}) with one unmeasured pipeline crawl")
    with DemoServer(args.market, args.day, scale=args.scale) as demo:
        discovery = run_pipeline(workdir, "discovery", args.market, demo.url, args.concurrency)
    crawled = crawled_pages(database_url(workdir, "discovery"), int(discovery.stats["dnm/crawl_id"]))
    say(f"rendering {len(crawled)} pages")
    pages = render_pages(args.market, args.day, args.scale, crawled)
    pages_file = workdir / "pages.pickle"
    save_pages(pages, pages_file)
    (workdir / "targets.json").write_text(json.dumps([page.target for page in pages]))
    return pages_file


def measure(args: argparse.Namespace, workdir: Path, mirror: str, urls: list[str]) -> list[Round]:
    """The measured rounds, alternating which side goes first (ABBA...) so drift hits both alike."""
    rounds = []
    for number in range(1, args.rounds + 1):
        order = ("pipeline", "bare") if number % 2 else ("bare", "pipeline")
        results: dict[str, RunResult] = {}
        for mode in order:
            tag = f"r{number}-{mode}"
            if mode == "pipeline":
                results[mode] = run_pipeline(workdir, tag, args.market, mirror, args.concurrency)
            else:
                results[mode] = run_bare(workdir, tag, args.market, mirror, args.concurrency, urls)
            say(f"round {number} {mode}: {results[mode].pages_per_second:.1f} pages/s")
        pipeline, bare = results["pipeline"], results["bare"]
        # Same pages on both sides, or the ratio compares different work.
        if not pipeline.pages == bare.pages == len(urls):
            raise BenchError(
                f"round {number}: pipeline fetched {pipeline.pages} pages, bare {bare.pages}, "
                f"of {len(urls)} URLs; the static copy and the crawl disagree"
            )
        rounds.append(Round(number, order, pipeline, bare))
    return rounds


def summarize(args: argparse.Namespace, rounds: list[Round], pages: int, wall: float) -> dict[str, Any]:
    """Every figure of the run, as written to --json."""
    pipeline = statistics.median(r.pipeline.pages_per_second for r in rounds)
    bare = statistics.median(r.bare.pages_per_second for r in rounds)
    ratio = pipeline / bare
    return {
        "market": args.market,
        "scale": args.scale,
        "day": args.day,
        "concurrency": args.concurrency,
        "pages": pages,
        "rounds": [
            {
                "round": r.number,
                "order": list(r.order),
                "pipeline": r.pipeline.figures(),
                "bare": r.bare.figures(),
                "ratio": round(r.ratio, 4),
            }
            for r in rounds
        ],
        "median": {
            "pipeline_pages_per_s": round(pipeline, 2),
            "bare_pages_per_s": round(bare, 2),
            "pipeline_peak_rss_bytes": int(statistics.median(r.pipeline.peak_rss for r in rounds)),
            "bare_peak_rss_bytes": int(statistics.median(r.bare.peak_rss for r in rounds)),
        },
        "ratio": round(ratio, 4),
        "target": TARGET,
        "pass": ratio >= TARGET,
        "wall_s": round(wall, 1),
    }


COLUMNS = ("round", "order", "pipeline p/s", "bare p/s", "ratio", "pipeline CPU", "bare CPU",
           "pipeline RSS", "bare RSS")  # fmt: skip
WIDTHS = (7, 15, 14, 10, 7, 14, 10, 14, 10)


def _row(*cells: str) -> str:
    """Left-align the two label columns, right-align the figures."""
    return "".join(
        f"{cell:<{width}}" if i < 2 else f"{cell:>{width}}"
        for i, (cell, width) in enumerate(zip(cells, WIDTHS, strict=True))
    ).rstrip()


def _mib(size: int) -> str:
    return f"{size / MIB:.0f} MiB"


def table(args: argparse.Namespace, rounds: list[Round], figures: dict[str, Any]) -> str:
    """The plain-text report; CPU is the share of the window the crawl process was on the CPU."""
    median = figures["median"]
    lines = [
        f"dnm-archive pipeline benchmark: {args.market} day {args.day} ({args.scale}), "
        f"{figures['pages']} pages, concurrency {args.concurrency}",
        "",
        _row(*COLUMNS),
    ]
    for r in rounds:
        pipeline, bare = r.pipeline, r.bare
        speeds = (f"{pipeline.pages_per_second:.1f}", f"{bare.pages_per_second:.1f}", f"{r.ratio:.2f}")
        cpu = (f"{pipeline.busy:.0%}", f"{bare.busy:.0%}")
        rss = (_mib(pipeline.peak_rss), _mib(bare.peak_rss))
        lines.append(_row(str(r.number), ",".join(r.order), *speeds, *cpu, *rss))
    speeds = (
        f"{median['pipeline_pages_per_s']:.1f}",
        f"{median['bare_pages_per_s']:.1f}",
        f"{figures['ratio']:.2f}",
    )
    rss = (_mib(median["pipeline_peak_rss_bytes"]), _mib(median["bare_peak_rss_bytes"]))
    lines.append(_row("median", "", *speeds, "", "", *rss))
    verdict = "PASS" if figures["pass"] else "FAIL"
    lines += [
        "",
        f"ratio pipeline/bare (medians): {figures['ratio']:.2f}x, target >= {TARGET}x: {verdict}",
        f"wall time {figures['wall_s']:.0f} s",
    ]
    if not figures["pass"] and not args.profile:
        lines.append("to see where the pipeline's time goes: add --profile pipeline.pstats")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
