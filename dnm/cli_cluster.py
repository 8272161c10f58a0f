"""The `dnm cluster` commands: a distributed crawl's writer and workers, its progress, stop and reset."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console

from dnm.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    CliError,
    _add_crawl_options,
    _overrides,
    summarize_crawls,
)


def add_cluster_commands(commands: Any) -> None:
    cluster = commands.add_parser(
        "cluster", help="crawl a market with several workers sharing Redis, into one archive (scale-out)"
    ).add_subparsers(title="cluster commands", metavar="COMMAND")

    crawl = cluster.add_parser(
        "crawl", help="open a distributed crawl of a market and file what its workers fetch; prints a summary"
    )
    _market_options(crawl)
    _add_crawl_options(crawl)
    crawl.set_defaults(handler=cmd_cluster_crawl)

    worker = cluster.add_parser(
        "worker", help="fetch for the market's distributed crawl (each worker launches its own tor)"
    )
    _market_options(worker)
    _add_crawl_options(worker)
    worker.add_argument(
        "--join-timeout",
        type=float,
        metavar="SECONDS",
        help="how long to wait for `dnm cluster crawl` to publish the crawl (default: 300)",
    )
    worker.set_defaults(handler=cmd_cluster_worker)

    for name, handler, text in (
        ("status", cmd_cluster_status, "where the market's distributed crawl stands"),
        ("stop", cmd_cluster_stop, "ask the workers and the writer to stop; the crawl closes as partial"),
    ):
        sub = cluster.add_parser(name, help=text)
        sub.add_argument("market", metavar="MARKET")
        _redis_option(sub)
        sub.set_defaults(handler=handler)

    reset = cluster.add_parser(
        "reset", help="forget a distributed crawl whose writer is gone; its crawl row closes as partial"
    )
    reset.add_argument("market", metavar="MARKET")
    reset.add_argument("--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)")
    _redis_option(reset)
    reset.set_defaults(handler=cmd_cluster_reset)


def _market_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("market", metavar="MARKET", help="market profile name in config/markets/")
    parser.add_argument(
        "--mirror", action="append", metavar="URL", help="a mirror to use first (repeatable, tried in order)"
    )
    _redis_option(parser)


def _redis_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", metavar="URL", help="Redis URL (default: $DNM_REDIS_URL, else loopback)")


def _redis(args: argparse.Namespace) -> str:
    from dnm.cluster.shared import redis_url

    return args.redis or redis_url({})


def _cluster_errors(run: Any) -> Any:
    """Run a command, turning a ClusterError into the CLI's clear error."""
    from dnm.cluster.shared import ClusterError

    try:
        return run()
    except ClusterError as exc:
        raise CliError(str(exc)) from exc


def _checked(args: argparse.Namespace) -> tuple[dict[str, Any], str | None]:
    from dnm.profile import ProfileError, load_profile

    try:
        load_profile(args.market)
    except ProfileError as exc:
        raise CliError(str(exc)) from exc
    progress = sys.stderr.isatty() and not args.no_progress
    return _overrides(args, progress), ",".join(args.mirror) if args.mirror else None


def cmd_cluster_crawl(args: argparse.Namespace) -> int:
    from dnm.cluster.run import run_writer
    from dnm.crawler import CrawlJob
    from dnm.schedule.lock import EXIT_LOCKED, MarketLocked, hold_market_locks

    overrides, mirror = _checked(args)
    try:
        locks = hold_market_locks([args.market], overrides)
    except MarketLocked as exc:
        raise CliError(str(exc), EXIT_LOCKED) from exc
    with locks:
        crawl_id = _cluster_errors(lambda: run_writer(args.market, mirror, overrides, _redis(args)))
    return summarize_crawls([CrawlJob(args.market, mirror)], [crawl_id], overrides)


def cmd_cluster_worker(args: argparse.Namespace) -> int:
    from dnm.cluster.run import run_worker

    overrides, mirror = _checked(args)
    timeout = args.join_timeout if args.join_timeout is not None else 300.0
    stats = _cluster_errors(lambda: run_worker(args.market, mirror, overrides, _redis(args), timeout))
    reason = stats.get("finish_reason", "did not start")
    Console(soft_wrap=True).print(
        f"worker of crawl {stats.get('dnm/cluster/crawl_id', '?')} of {args.market}: {reason}; "
        f"{stats.get('response_received_count', 0)} responses, "
        f"{stats.get('dnm/cluster/handed_over', 0)} pages handed to the writer, "
        f"{stats.get('dnm/cluster/released', 0)} requests left to the others",
        highlight=False,
    )
    if reason in ("finished", "stopped"):
        return EXIT_OK
    return EXIT_PARTIAL if stats else EXIT_FAILED


def cmd_cluster_status(args: argparse.Namespace) -> int:
    from dnm.cluster.run import crawl_progress

    found = _cluster_errors(lambda: crawl_progress(_redis(args), args.market))
    console = Console(soft_wrap=True)
    if found is None:
        console.print(f"no distributed crawl of {args.market} in progress", highlight=False)
        return EXIT_OK
    crawl_id, progress = found
    console.print(
        f"crawl {crawl_id} of {args.market}: {'seeded' if progress.seeded else 'not seeded yet'}, "
        f"{progress.queued} queued, {progress.leased} being fetched, {progress.handed_over} waiting for the "
        f"writer; {len(progress.live_workers)} live worker(s)"
        + (", stop asked" if progress.stop else "")
        + (", done" if progress.done else ""),
        highlight=False,
    )
    for worker in progress.live_workers:
        console.print(f"  worker {worker}", highlight=False)
    return EXIT_OK


def cmd_cluster_stop(args: argparse.Namespace) -> int:
    from dnm.cluster.run import stop

    crawl_id = _cluster_errors(lambda: stop(_redis(args), args.market))
    if crawl_id is None:
        raise CliError(f"no distributed crawl of {args.market} in progress")
    Console().print(f"stop asked for crawl {crawl_id} of {args.market}", highlight=False)
    return EXIT_OK


def cmd_cluster_reset(args: argparse.Namespace) -> int:
    from dnm.cluster.run import reset

    crawl_id = _cluster_errors(lambda: reset(_redis(args), args.market, args.database))
    if crawl_id is None:
        raise CliError(f"no distributed crawl of {args.market} in progress")
    Console().print(
        f"crawl {crawl_id} of {args.market} reset: forgotten in Redis, closed as partial in the archive",
        highlight=False,
    )
    return EXIT_OK
