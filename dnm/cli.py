"""The `dnm` command: crawl markets, export the archive, and run the demo market."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from rich.console import Console

from transport.errors import TorError

# 4: the crawl is complete, but raised a drift alarm against the market's last good crawl (dnm.drift).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_DRIFT = 0, 1, 2, 3, 4
TORNET_STATE = Path("var/tornet/state.json")


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 1 (or its own)."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def _reader(database: str | None) -> Any:
    """The archive opened read-only for a query command (models.db.open_reader), or a CliError why not."""
    from models.db import ArchiveNotReadable, open_reader

    try:
        return open_reader(database)
    except ArchiveNotReadable as exc:
        raise CliError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args) or EXIT_OK)
    except CliError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return exc.status
    except TorError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]tor error:[/] {exc}", highlight=False)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dnm", description="Archive dark-web marketplaces over Tor for research and evidence."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    crawl = commands.add_parser(
        "crawl", help="crawl one or more markets into the archive and print a summary"
    )
    crawl.add_argument(
        "markets", nargs="+", metavar="MARKET", help="market profile name(s) in config/markets/"
    )
    crawl.add_argument(
        "--mirror",
        action="append",
        help="a mirror base URL, checked before the profile's (one market only; repeatable, in order)",
    )
    _add_crawl_options(crawl)
    crawl.set_defaults(handler=cmd_crawl)

    export = commands.add_parser("export", help="export archived snapshots as JSON Lines, CSV or Parquet")
    export.add_argument("kind", choices=("listings", "vendors", "feedback"))
    export.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl")
    export.add_argument("--market", help="only this market")
    export.add_argument("--vendor", help="only this vendor (the market's vendor id or the name shown)")
    export.add_argument("--category", help="listings in this category (a name at any level of the path)")
    export.add_argument("--ships-to", help="listings shipping to this ISO code or region token (DE, EU, WW)")
    export.add_argument("--crawl", type=int, help="only this crawl id")
    export.add_argument("--since", type=_timestamp, help="observed at or after (ISO date or time, UTC)")
    export.add_argument("--until", type=_timestamp, help="observed before (ISO date or time, UTC)")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")
    export.add_argument(
        "--csv-raw",
        action="store_true",
        help="CSV cells exactly as archived: no apostrophe before a text starting with = + - @ (by default "
        "guarded, so a spreadsheet shows a market's text rather than running it as a formula)",
    )
    export.add_argument("--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)")
    export.set_defaults(handler=cmd_export)

    browse = commands.add_parser(
        "browse", help="open a SQLite archive in Datasette (read-only, on loopback), tables described"
    )
    browse.add_argument(
        "--database", help="archive URL or file (default: $DNM_DATABASE_URL or var/archive.sqlite)"
    )
    browse.add_argument("--port", type=int, default=8001)
    browse.set_defaults(handler=cmd_browse)

    summary = commands.add_parser("summary", help="print the summary of a crawl (default: the latest)")
    summary.add_argument("--crawl", type=int)
    summary.add_argument("--database")
    summary.set_defaults(handler=cmd_summary)

    tornet = commands.add_parser(
        "tornet", help="a private Tor network on loopback serving the demo markets as onion services"
    )
    tornet_commands = tornet.add_subparsers(title="tornet commands", metavar="COMMAND")
    for name, handler, text in (
        ("up", cmd_tornet_up, "start the network and the demo onions in the background"),
        ("down", cmd_tornet_down, "stop every process of the network"),
        ("status", cmd_tornet_status, "say whether the network runs, and where"),
    ):
        command = tornet_commands.add_parser(name, help=text)
        command.add_argument("--state", type=Path, default=TORNET_STATE, help="state file (%(default)s)")
        command.set_defaults(handler=handler)
        if name == "up":
            command.add_argument("--workdir", type=Path, default=TORNET_STATE.parent, help="keys, data, logs")
            command.add_argument("--day", type=int, default=1, help="demo day the markets show")
            _add_hostile_options(command)

    demo = commands.add_parser("demo", help="the demo marketplace: serve it, dump its ground truth, crawl it")
    demo_commands = demo.add_subparsers(title="demo commands", metavar="COMMAND")
    serve = demo_commands.add_parser(
        "serve", help="serve demo markets over HTTP on loopback until interrupted"
    )
    serve.add_argument("--market", action="append", help="market to serve (repeatable; default: all)")
    serve.add_argument("--day", type=int, default=1)
    serve.add_argument("--seed", type=int, default=1)
    serve.add_argument("--scale", default="small")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--layout-change-day",
        type=int,
        metavar="N",
        help="from day N on, serve the markets' redesigned listing and vendor pages (same data; shipping "
        "terms and vendor facts move out of where the profiles look): for testing drift alarms",
    )
    serve.add_argument(
        "--port", type=int, default=8401, help="port of the first market; the next ones follow"
    )
    _add_hostile_options(serve)
    serve.set_defaults(handler=cmd_demo_serve)
    accounts = demo_commands.add_parser(
        "accounts", help="print the demo markets' accounts as a crawler secrets file (TOML)"
    )
    accounts.add_argument("--market", action="append", help="market (repeatable; default: all)")
    accounts.add_argument("--seed", type=int, default=1)
    accounts.set_defaults(handler=cmd_demo_accounts)
    truth = demo_commands.add_parser(
        "truth", help="write the demo market's ground truth for a day as JSON Lines"
    )
    truth.add_argument("--market", required=True)
    truth.add_argument("--day", type=int, required=True)
    truth.add_argument(
        "--kind", default="listings", choices=("listings", "vendors", "feedback", "categories")
    )
    truth.add_argument("--seed", type=int, default=1)
    truth.add_argument("--scale", default="small")
    truth.add_argument("--output", "-o", type=Path)
    truth.set_defaults(handler=cmd_demo_truth)
    run = demo_commands.add_parser("run", help="serve the demo markets and crawl them all into the archive")
    run.add_argument("--day", type=int, default=1)
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--scale", default="small")
    _add_hostile_options(run)
    _add_crawl_options(run)
    run.set_defaults(handler=cmd_demo_run)
    _add_db_commands(commands)
    _add_reparse_command(commands)
    _add_archive_commands(commands)
    _add_evidence_commands(commands)
    _add_report_command(commands)
    _add_status_command(commands)
    from dnm.cli_schedule import add_schedule_commands  # here: it imports this module's CliError

    add_schedule_commands(commands)
    from dnm.cli_cluster import add_cluster_commands  # here: it imports this module's CliError

    add_cluster_commands(commands)
    return parser


def _add_hostile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hostile",
        action="store_true",
        help="turn on each market's hostile preset: gates, captchas, logins, faults (docs/hostile-demo.md)",
    )
    parser.add_argument(
        "--hostile-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set one hostility key, the value read as YAML (e.g. queue_seconds=2, maintenance_at=[150], "
        "'mirror_down={0: [200, -1]}'); repeatable; without --hostile, on top of the friendly market",
    )


def _add_crawl_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)")
    parser.add_argument(
        "--transport",
        choices=("tor", "direct"),
        help="tor (default) or direct, for hosts named with --allow-host",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a host that may be fetched without Tor",
    )
    parser.add_argument(
        "--accounts", metavar="FILE", help="secrets file of market accounts (default: $DNM_ACCOUNTS_FILE)"
    )
    parser.add_argument(
        "--captcha-solver",
        metavar="NAME",
        help="human (default: a local web page), demo (demo markets only), none, or package.module:Class",
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a Scrapy setting")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs instead)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log at INFO level")
    tor = parser.add_argument_group("tor (by default the crawl launches a dedicated tor)")
    tor.add_argument(
        "--tor-attach",
        metavar="SOCKS:CONTROL",
        help="use a running tor instead, e.g. the system tor: --tor-attach 9050:9051",
    )
    tor.add_argument(
        "--tor-network",
        metavar="STATE",
        type=Path,
        help="launch the crawl's tor into the private Tor network of `dnm tornet up` (tests, demo)",
    )


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _overrides(args: argparse.Namespace, progress: bool) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--set takes NAME=VALUE, not {item!r}", EXIT_USAGE)
        overrides[name] = value
    if args.database:
        overrides["DNM_DATABASE_URL"] = args.database
    if getattr(args, "accounts", None):
        overrides["DNM_ACCOUNTS_FILE"] = args.accounts
    if getattr(args, "captcha_solver", None):
        overrides["DNM_CAPTCHA_SOLVER"] = args.captcha_solver
    if args.transport:
        overrides["DNM_TRANSPORT"] = args.transport
    if args.allow_host:
        overrides["DNM_ALLOWED_HOSTS"] = list(args.allow_host)
    if getattr(args, "tor_attach", None):
        socks, _, control = args.tor_attach.partition(":")
        if not (socks.isdigit() and control.isdigit()):
            raise CliError(f"--tor-attach takes SOCKS_PORT:CONTROL_PORT, not {args.tor_attach!r}", EXIT_USAGE)
        overrides.update(DNM_TOR_MODE="attach", DNM_TOR_SOCKS_PORT=int(socks))
        overrides["DNM_TOR_CONTROL_PORT"] = int(control)
    if getattr(args, "tor_network", None):
        from transport.tornet import load_state, network_options

        overrides["DNM_TOR_EXTRA_CONFIG"] = network_options(load_state(args.tor_network).dirauthority_lines)
    overrides.setdefault("LOG_LEVEL", "INFO" if args.verbose else ("WARNING" if progress else "INFO"))
    return overrides


def _crawl_and_summarize(jobs: list[Any], overrides: dict[str, Any], progress: bool) -> int:
    from dnm.crawler import run_crawlers

    finals = run_crawlers(jobs, overrides, progress=progress)
    status = summarize_crawls(jobs, [stats.get("dnm/crawl_id") for stats in finals], overrides)
    # A crawl stopped by its disk (full, over quota, past the file size limit) is an error, said last.
    stopped = [f"{job.market}: {stats['dnm/stopped']}" for job, stats in zip(jobs, finals, strict=True)
               if stats.get("dnm/stopped")]  # fmt: skip
    if stopped:
        raise CliError(
            "; ".join(stopped) + ". What was stored before is kept; free space (or raise the limit) and "
            "crawl again (a crawl row left `running` is closed as interrupted by the market's next crawl)"
        )
    return status


def _check_writable(overrides: dict[str, Any]) -> None:
    """Refuse a crawl, before it starts, that could not write its archive, raw captures or lock."""
    import tempfile

    from sqlalchemy.engine import make_url

    from dnm.crawler import crawl_settings
    from dnm.rawstore import raw_dir
    from dnm.schedule.lock import lock_dir
    from models.db import database_url

    settings = crawl_settings(overrides)
    url = make_url(database_url(settings.get("DNM_DATABASE_URL")))
    places = [("raw capture", raw_dir(settings.get("DNM_RAW_DIR")), "--set DNM_RAW_DIR=DIR")]
    archive = None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        archive = Path(url.database)
        places.insert(0, ("archive", archive.parent, "--database"))
    if settings.getbool("DNM_SCHEDULE_LOCK"):
        locks = lock_dir(settings.get("DNM_SCHEDULE_LOCK_DIR"))
        places.append(("crawl lock", locks, "DNM_SCHEDULE_LOCK_DIR"))
    for what, directory, option in places:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as exc:
            raise CliError(
                f"cannot write to the {what} directory {directory.absolute()} ({exc.strerror or exc}): "
                f"make it writable by this user, or give another with {option}"
            ) from None
    if archive is not None and archive.exists() and not os.access(archive, os.W_OK):
        raise CliError(f"the archive {archive.absolute()} is read-only for this user: make it writable, or "
                       "give another archive with --database")  # fmt: skip


def summarize_crawls(jobs: list[Any], crawl_ids: list[int | None], overrides: dict[str, Any]) -> int:
    """Print each crawl's summary; returns the exit status they make together (failed, partial, drift)."""
    from dnm.summary import render, summarize
    from models.db import open_engine

    engine = open_engine(overrides.get("DNM_DATABASE_URL"))
    # Into a log or a cron mail, a wide table: rich would fold long reasons at 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    status = EXIT_OK
    for job, crawl_id in zip(jobs, crawl_ids, strict=True):
        if crawl_id is None:
            console.print(f"[bold red]crawl of {job.market} did not start[/] (see the log above)")
            status = EXIT_FAILED
            continue
        summary = summarize(engine, crawl_id)
        render(summary, console)
        if summary.status == "failed":
            status = EXIT_FAILED
        elif summary.status != "complete" and status in (EXIT_OK, EXIT_DRIFT):
            status = EXIT_PARTIAL
        elif summary.drift_alarms and status == EXIT_OK:
            status = EXIT_DRIFT
    return status


def cmd_crawl(args: argparse.Namespace) -> int:
    from dnm.crawler import CrawlJob
    from dnm.profile import ProfileError, load_profile

    if args.mirror and len(args.markets) > 1:
        raise CliError("--mirror applies to one market; crawl the others separately", EXIT_USAGE)
    for market in args.markets:
        try:
            load_profile(market)
        except ProfileError as exc:
            raise CliError(str(exc)) from exc
    progress = sys.stderr.isatty() and not args.no_progress
    jobs = [CrawlJob(market, ",".join(args.mirror) if args.mirror else None) for market in args.markets]
    overrides = _overrides(args, progress)
    _check_writable(overrides)
    # One crawl per market at a time, scheduled or not (dnm/schedule/lock.py): refused, exit 75, if taken.
    from dnm.schedule.lock import EXIT_LOCKED, MarketLocked, hold_market_locks

    try:
        locks = hold_market_locks(args.markets, overrides)
    except MarketLocked as exc:
        raise CliError(str(exc), EXIT_LOCKED) from exc
    with locks:
        return _crawl_and_summarize(jobs, overrides, progress)


def cmd_export(args: argparse.Namespace) -> int:
    from dnm.export import BINARY_WRITERS, WRITERS, ExportFilter, export_rows, write_csv

    # Usage errors first: they need no archive (which may not exist yet).
    if (args.category or args.ships_to) and args.kind != "listings":
        raise CliError("--category and --ships-to apply to listings only", EXIT_USAGE)
    if args.format in BINARY_WRITERS and not args.output:
        raise CliError(f"--format {args.format} writes a file: give --output", EXIT_USAGE)
    engine = _reader(args.database)
    filters = ExportFilter(
        market=args.market, crawl_id=args.crawl, since=args.since, until=args.until,
        vendor=args.vendor, category=args.category, ships_to=args.ships_to,
    )  # fmt: skip
    rows = export_rows(engine, args.kind, filters)
    if args.format in BINARY_WRITERS:
        with args.output.open("wb") as binary:
            count = BINARY_WRITERS[args.format](rows, binary)
        Console(stderr=True).print(f"{count} {args.kind} rows written to {args.output}")
        return EXIT_OK
    with ExitStack() as stack:
        out: IO[str] = (
            stack.enter_context(args.output.open("w", encoding="utf-8", newline=""))
            if args.output
            else sys.stdout
        )
        if args.format == "csv" and args.csv_raw:
            count = write_csv(rows, out, guard_formulas=False)
        else:
            count = WRITERS[args.format](rows, out)
    if args.output:
        Console(stderr=True).print(f"{count} {args.kind} rows written to {args.output}")
    return EXIT_OK


def cmd_browse(args: argparse.Namespace) -> int:
    """Serve the archive with Datasette and the metadata that describes its tables and views."""
    import json
    import tempfile

    from sqlalchemy.engine import make_url

    from dnm.datasette import metadata
    from models.db import database_url

    url = make_url(database_url(args.database))
    if url.get_backend_name() != "sqlite" or not url.database:
        raise CliError("dnm browse serves SQLite archives; for PostgreSQL use its own tools", EXIT_USAGE)
    _reader(str(url)).dispose()  # an archive at this version's schema, checked without writing to it
    from datasette.cli import cli as datasette

    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="dnm-datasette-") as meta:
        json.dump(metadata(url.database), meta)
        meta.flush()
        # In this process, not a child: stopping `dnm browse` stops the server.
        arguments = ["serve", "--immutable", url.database, "--metadata", meta.name,
                     "--host", "127.0.0.1", "--port", str(args.port)]  # fmt: skip
        datasette.main(args=arguments, prog_name="datasette", standalone_mode=False)
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from dnm.summary import render, summarize
    from models import Crawl

    engine = _reader(args.database)
    crawl_id = args.crawl
    if crawl_id is None:
        with Session(engine) as session:
            crawl_id = session.scalar(select(Crawl.id).order_by(Crawl.id.desc()).limit(1))
        if crawl_id is None:
            raise CliError("the archive holds no crawl yet")
    try:
        render(summarize(engine, crawl_id))
    except LookupError as exc:
        raise CliError(str(exc)) from exc
    return EXIT_OK


def cmd_demo_serve(args: argparse.Namespace) -> int:
    from demo.server import serve_forever

    hostility = _demo_hostility(args) if args.hostile or args.hostile_set else None
    markets = args.market or None
    serve_forever(
        markets=markets,
        day=args.day,
        seed=args.seed,
        scale=args.scale,
        host=args.host,
        port=args.port,
        hostility=hostility,
        layout_change_day=args.layout_change_day,
    )
    return EXIT_OK


def parse_hostile_sets(pairs: Sequence[str]) -> dict[str, Any]:
    """`--hostile-set key=value` pairs as keyword overrides, each value parsed with yaml.safe_load."""
    from demo.hostile.config import parse_overrides

    try:
        return parse_overrides(list(pairs))
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _demo_hostility(args: argparse.Namespace) -> dict[str, Any]:
    """Each served market's Hostility: its preset (--hostile) or the friendly one, plus --hostile-set keys."""
    from demo.hostile.config import Hostility
    from demo.skins import hostility_for
    from demo.world import MARKETS

    overrides = parse_hostile_sets(args.hostile_set)
    chosen: dict[str, Any] = {}
    for market in args.market or MARKETS:
        try:
            base = hostility_for(market) if args.hostile else Hostility()
            chosen[market] = base.with_overrides(**overrides)
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from exc
    return chosen


def cmd_demo_accounts(args: argparse.Namespace) -> int:
    """Print the demo markets' accounts in the crawler's secrets-file format."""
    from demo.hostile.accounts import secrets_toml
    from demo.world import MARKETS

    unknown = sorted(set(args.market or ()) - set(MARKETS))
    if unknown:
        raise CliError(f"unknown demo market(s) {unknown}: use {list(MARKETS)}", EXIT_USAGE)
    sys.stdout.write(secrets_toml(args.seed, args.market or MARKETS))
    return EXIT_OK


def cmd_demo_truth(args: argparse.Namespace) -> int:
    from demo.truth import truth
    from dnm.export import write_jsonl

    rows = truth(args.market, args.day, seed=args.seed, scale=args.scale, kind=args.kind)
    with ExitStack() as stack:
        out: IO[str] = (
            stack.enter_context(args.output.open("w", encoding="utf-8")) if args.output else sys.stdout
        )
        write_jsonl(rows, out)
    return EXIT_OK


def cmd_demo_run(args: argparse.Namespace) -> int:
    """Serve every demo market and crawl them: over a private Tor network, or direct on loopback."""
    from demo.truth import MARKETS
    from dnm.crawler import CrawlJob
    from models.db import database_url

    progress = sys.stderr.isatty() and not args.no_progress
    console = Console()
    tor_config: dict[str, Any] = {}
    args.market = None
    hostility = _demo_hostility(args) if args.hostile or args.hostile_set else {}
    with ExitStack() as stack:
        if hostility:
            _demo_credentials(stack, args)
        if args.transport == "direct":
            from demo.server import DemoServer

            mirrors = {
                market: stack.enter_context(
                    DemoServer(
                        market, args.day, seed=args.seed, scale=args.scale, hostility=hostility.get(market)
                    )
                ).url
                for market in MARKETS
            }
            hosts = sorted({urlsplit(url).hostname or "" for url in mirrors.values()})
            args.allow_host = [*args.allow_host, *hosts]
            where = "over plain HTTP on loopback (--transport direct)"
        else:
            mirrors, tor_config = _demo_onions(stack, args, console)
            where = "as onion services on a private Tor network on loopback"
        for market, url in mirrors.items():
            console.print(f"demo market [bold]{market}[/] (day {args.day}) at {url}", highlight=False)
        console.print(f"crawling {len(mirrors)} demo markets {where}")
        overrides = _overrides(args, progress)
        if tor_config:
            overrides["DNM_TOR_EXTRA_CONFIG"] = tor_config
        jobs = [CrawlJob(market, url) for market, url in mirrors.items()]
        status = _crawl_and_summarize(jobs, overrides, progress)
    archive = database_url(overrides.get("DNM_DATABASE_URL"))
    console.print(
        f"archive: {archive}\nnext: dnm export listings --database {archive} | head, "
        f"or open it with sqlite3 (docs/data-dictionary.md)"
    )
    return status


def _demo_credentials(stack: ExitStack, args: argparse.Namespace) -> None:
    """For a hostile demo run: the demo accounts in a private temporary secrets file, and the demo solver."""
    import os
    import tempfile

    from demo.hostile.accounts import secrets_toml
    from demo.world import MARKETS

    if not args.accounts:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dnm-demo-accounts-")))
        path = folder / "accounts.toml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(secrets_toml(args.seed, MARKETS))
        args.accounts = str(path)
    args.captcha_solver = args.captcha_solver or "demo"


def _demo_onions(
    stack: ExitStack, args: argparse.Namespace, console: Console
) -> tuple[dict[str, str], dict[str, Any]]:
    """Start a private Tor network for this run and publish the demo markets on it.

    Returns the markets' onion URLs and the torrc options the crawl's own tor needs to join it.
    """
    import tempfile
    import time

    from transport.tornet import PrivateTorNetwork, network_options, serve_demo_over_tor

    began = time.monotonic()
    console.print("starting a private Tor network on loopback (4 authorities, an onion-service tor)...")
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dnm-tornet-")))
    network = stack.enter_context(PrivateTorNetwork(workdir))  # starts it; stops it on exit
    onions = stack.enter_context(
        serve_demo_over_tor(
            network, day=args.day, seed=args.seed, scale=args.scale,
            hostile=args.hostile, hostile_set=parse_hostile_sets(args.hostile_set),
        )
    )  # fmt: skip
    console.print(f"private Tor network and demo onions ready in {time.monotonic() - began:.1f} s")
    return dict(onions.urls), network_options(network.dirauthority_lines())


def cmd_tornet_up(args: argparse.Namespace) -> int:
    from transport.tornet import up

    state = up(
        args.state,
        args.workdir,
        day=args.day,
        hostile=args.hostile,
        hostile_set=parse_hostile_sets(args.hostile_set),
    )
    console = Console()
    console.print(f"private Tor network up in {state.start_seconds or 0:.1f} s (state: {args.state})")
    console.print(f"client tor: socks 127.0.0.1:{state.socks_port}, control 127.0.0.1:{state.control_port}")
    for market, url in state.onions.items():
        console.print(f"  {market}: {url}")
    console.print(f"crawl: dnm crawl {' '.join(state.onions)} --tor-network {args.state}")
    return EXIT_OK


def cmd_tornet_down(args: argparse.Namespace) -> int:
    from transport.tornet import down

    report = down(args.state)
    Console().print(f"private Tor network down ({report})")
    return EXIT_OK


def cmd_tornet_status(args: argparse.Namespace) -> int:
    from transport.tornet import status

    report = status(args.state, probe=True)
    console = Console()
    if not report["running"]:
        console.print(f"not running ({report.get('reason') or report.get('alive')})")
        return EXIT_FAILED
    console.print(f"running since {report['started_at']}: socks 127.0.0.1:{report['socks_port']}")
    for market, url in report["onions"].items():
        reachable = "reachable" if report.get("reachable", {}).get(market) else "NOT reachable"
        console.print(f"  {market}: {url} ({reachable})")
    return EXIT_OK


# -- dnm db: the archive's schema revision (models/migrate.py, docs/postgresql.md) -------------------


def _add_db_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="the archive's schema: show its revision, bring it to the newest")
    db_commands = db.add_subparsers(title="db commands", metavar="COMMAND")
    for name, handler, text in (
        ("upgrade", cmd_db_upgrade, "bring the archive's schema to the newest revision (creates a new one)"),
        ("current", cmd_db_current, "print the archive's schema revision and the newest one"),
    ):
        command = db_commands.add_parser(name, help=text)
        command.add_argument(
            "--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)"
        )
        command.set_defaults(handler=handler)
    readonly = db_commands.add_parser(
        "readonly-role",
        help="create or update a PostgreSQL login role that can read the archive and change nothing",
    )
    readonly.add_argument("name", metavar="NAME", help="the role's name (lowercase letters, digits, _)")
    readonly.add_argument("--database", help="archive URL, as its owner (default: $DNM_DATABASE_URL)")
    readonly.add_argument(
        "--password-file", type=Path, help="a file (mode 0600) whose first line is the role's password"
    )
    readonly.set_defaults(handler=cmd_db_readonly_role)


def cmd_db_readonly_role(args: argparse.Namespace) -> int:
    """Grant a researcher read-only access to a PostgreSQL archive (models/access.py)."""
    import stat

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from models.access import RoleError, grant_read_only

    password = None
    if args.password_file:
        try:
            mode = args.password_file.stat().st_mode
            if mode & 0o077:
                raise CliError(
                    f"{args.password_file} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
                    f"run: chmod 600 {args.password_file}"
                )
            password = args.password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise CliError(f"cannot read a password from {args.password_file}") from exc
    engine, shown = _db_engine(args)
    try:
        granted = grant_read_only(engine, args.name, password)
    except RoleError as exc:
        raise CliError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise CliError(f"{shown}: {str(exc.orig or exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()
    url = make_url(shown).set(username=args.name, password=None, drivername="postgresql")
    where = url.render_as_string(hide_password=False)
    print(f"role {args.name}: reads every table and view of {granted['schema']} in {granted['database']}, "
          f"writes nothing (tables {granted['owner']} creates later included)")  # fmt: skip
    print(f"connect: psql '{where}'   (password: {'the file given' if password else 'unchanged'})")
    tools = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    print(f"         dnm export listings --database '{tools}'")
    return EXIT_OK


def _db_engine(args: argparse.Namespace) -> tuple[Any, str]:
    """The archive's engine without touching its schema, and its URL as safe to print."""
    from sqlalchemy.engine import make_url

    from models.db import database_url, open_engine

    url = database_url(args.database)
    return open_engine(url, create=False), make_url(url).render_as_string(hide_password=True)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from models.migrate import upgrade

    engine, shown = _db_engine(args)
    try:
        before, after = upgrade(engine)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot open the archive {shown}: {exc.orig or exc}") from exc  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    if before == after:
        print(f"{shown}: already at {after} (head)")
    elif before is None:
        print(f"{shown}: created at {after} (head)")
    else:
        print(f"{shown}: upgraded from {before} to {after} (head)")
    return EXIT_OK


def cmd_db_current(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from models.migrate import current_revision, head_revision

    engine, shown = _db_engine(args)
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot open the archive {shown}: {exc.orig or exc}") from exc  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    head = head_revision()
    if current is None:
        print(f"{shown}: no revision (empty, or made before migrations): run dnm db upgrade")
    elif current == head:
        print(f"{shown}: {current} (head)")
    else:
        print(f"{shown}: {current}, behind the newest revision {head}: run dnm db upgrade")
    return EXIT_OK


# -- dnm reparse: a crawl read again from its raw captures (dnm/reparse.py, docs/raw-captures.md) ------


def _add_reparse_command(commands: Any) -> None:
    reparse = commands.add_parser(
        "reparse",
        help="read a crawl's raw captures (WARC) again with today's profile into a new crawl; no network",
    )
    reparse.add_argument("--crawl", type=int, required=True, help="the crawl id to re-parse")
    reparse.add_argument("--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)")
    reparse.add_argument(
        "--raw-dir", type=Path, help="the raw store (default: $DNM_RAW_DIR or var/warc, as the crawl had it)"
    )
    reparse.add_argument(
        "--profile-dir", type=Path, help="read with the profiles in this folder (default: config/markets/)"
    )
    reparse.set_defaults(handler=cmd_reparse)


def cmd_reparse(args: argparse.Namespace) -> int:
    from dnm.profile import ProfileError
    from dnm.rawstore import raw_dir
    from dnm.reparse import ReparseError, reparse
    from dnm.summary import render, summarize
    from models.db import open_engine

    engine = open_engine(args.database)
    try:
        result = reparse(
            engine, args.crawl, raw_dir(str(args.raw_dir) if args.raw_dir else None), args.profile_dir
        )
    except (ReparseError, ProfileError) as exc:
        raise CliError(str(exc)) from exc
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(
        f"crawl {result.reparse_of} re-parsed as crawl {result.crawl_id} with {result.parser_version}: "
        f"{result.pages} pages ({result.revisits} read from a record another fetch wrote), "
        f"{result.status}",
        highlight=False,
    )
    render(summarize(engine, result.crawl_id), console)
    if result.status == "failed":
        return EXIT_FAILED
    return EXIT_OK if result.status == "complete" else EXIT_PARTIAL


# -- dnm archive verify: the raw store checked against its hash chains (dnm/archive_check.py) -----------


def _add_archive_commands(commands: Any) -> None:
    archive = commands.add_parser("archive", help="check the archive itself")
    archive_commands = archive.add_subparsers(title="archive commands", metavar="COMMAND")
    verify = archive_commands.add_parser(
        "verify", help="check every crawl's raw captures against their hash chain, digests and the database"
    )
    verify.add_argument("--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)")
    verify.add_argument("--raw-dir", type=Path, help="the raw store (default: $DNM_RAW_DIR or var/warc)")
    verify.add_argument("--market", help="only this market")
    verify.add_argument("--crawl", type=int, help="only this crawl id")
    verify.set_defaults(handler=cmd_archive_verify)


def cmd_archive_verify(args: argparse.Namespace) -> int:
    from dnm.archive_check import verify_archive
    from dnm.rawstore import raw_dir
    from models.db import open_engine

    engine = open_engine(args.database)
    try:
        checks = verify_archive(
            engine,
            raw_dir(str(args.raw_dir) if args.raw_dir else None),
            market=args.market,
            crawl_id=args.crawl,
        )
    finally:
        engine.dispose()
    if not checks:
        raise CliError("no crawl matches: nothing to verify")
    for check in checks:
        verdict = "OK  " if check.ok else "FAIL"
        where = check.warc_file or "-"
        print(f"{verdict} crawl {check.crawl_id} ({check.market}) {where}: {check.records} records")
        for problem in check.problems:
            print(f"     {problem}")
        for note in check.notes:
            print(f"     note: {note}")
    failed = sum(not check.ok for check in checks)
    print(f"{len(checks) - failed} of {len(checks)} crawls intact" + (f", {failed} FAILED" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


# -- dnm keys / dnm evidence: court evidence packages (evidence/, docs/evidence.md) ------------------

DEFAULT_KEY = Path("var/keys/operator.key")


def _add_evidence_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="the operator's signing key for evidence packages")
    key_commands = keys.add_subparsers(title="keys commands", metavar="COMMAND")
    init = key_commands.add_parser(
        "init", help="create the Ed25519 signing key (mode 0600) and print its fingerprint"
    )
    init.add_argument("--key", type=Path, help=f"key file (default: $DNM_EVIDENCE_KEY or {DEFAULT_KEY})")
    init.set_defaults(handler=cmd_keys_init)

    evidence = commands.add_parser(
        "evidence", help="signed, timestamped evidence packages: export and verify"
    )
    evidence_commands = evidence.add_subparsers(title="evidence commands", metavar="COMMAND")
    export = evidence_commands.add_parser(
        "export", help="export a selection as a signed, timestamped BagIt package (fails closed)"
    )
    export.add_argument("--case", required=True, help="the case id (letters, digits, . _ -)")
    export.add_argument("--market", help="the market's slug")
    export.add_argument("--vendor", help="a vendor: the market's vendor id or the name shown")
    export.add_argument("--listing", help="a listing: the market's listing id")
    export.add_argument("--crawl", type=int, help="one crawl id")
    export.add_argument("--since", type=_timestamp, help="observed at or after (ISO date or time, UTC)")
    export.add_argument("--until", type=_timestamp, help="observed before (ISO date or time, UTC)")
    export.add_argument("--output", type=Path, default=Path("var/evidence"), help="where the package goes")
    export.add_argument("--key", type=Path, help=f"signing key (default: $DNM_EVIDENCE_KEY or {DEFAULT_KEY})")
    export.add_argument(
        "--tsa-url",
        help="the RFC 3161 time-stamping authority (default: $DNM_TSA_URL); the one request dnm makes "
        "outside Tor, to this host only, carrying a hash of the signature",
    )
    export.add_argument(
        "--tsa-cert", type=Path, required=True, help="the TSA's root certificate (PEM), pinned"
    )
    export.add_argument(
        "--tsa-chain", type=Path, help="the TSA's own certificate (PEM), when its tokens omit it"
    )
    export.add_argument("--operator", help="who exports, for the custody log (default: $USER)")
    export.add_argument("--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)")
    export.add_argument("--raw-dir", type=Path, help="the raw store (default: $DNM_RAW_DIR or var/warc)")
    export.set_defaults(handler=cmd_evidence_export)

    verify = evidence_commands.add_parser(
        "verify", help="verify a package offline against the pinned signer fingerprint and TSA certificate"
    )
    verify.add_argument("package", type=Path)
    verify.add_argument(
        "--signer-fingerprint", required=True, help="the signer's SHA-256 fingerprint, pinned"
    )
    verify.add_argument(
        "--tsa-cert", type=Path, required=True, help="the TSA's root certificate (PEM), pinned"
    )
    verify.set_defaults(handler=cmd_evidence_verify)


def _key_path(value: Path | None) -> Path:
    import os

    return value or Path(os.environ.get("DNM_EVIDENCE_KEY") or DEFAULT_KEY)


def cmd_keys_init(args: argparse.Namespace) -> int:
    from evidence.keys import SigningKeyError, display_fingerprint, init_key

    path = _key_path(args.key)
    try:
        fingerprint = init_key(path)
    except SigningKeyError as exc:
        raise CliError(str(exc)) from exc
    print(f"signing key written to {path} (mode 0600)")
    print(f"fingerprint (SHA-256): {fingerprint}")
    print(f"                       {display_fingerprint(fingerprint)}")
    print("publish this fingerprint out of band: verifiers pin it (dnm evidence verify --signer-fingerprint)")
    return EXIT_OK


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}") from exc


def cmd_evidence_export(args: argparse.Namespace) -> int:
    import getpass
    import os

    from dnm.rawstore import raw_dir
    from evidence.export import EvidenceError, Selection, Signer, export_package
    from evidence.keys import SigningKeyError
    from evidence.timestamp import TimestampError
    from evidence.verify import VerificationError
    from models.db import open_engine

    tsa_url = args.tsa_url or os.environ.get("DNM_TSA_URL")
    if not tsa_url:
        raise CliError(
            "no time-stamping authority: give --tsa-url or set DNM_TSA_URL (no timestamp, no package)"
        )
    signer = Signer(
        _key_path(args.key),
        tsa_url,
        _read(args.tsa_cert, "the TSA root certificate"),
        _read(args.tsa_chain, "the TSA certificate") if args.tsa_chain else None,
    )
    selection = Selection(args.market, args.vendor, args.listing, args.crawl, args.since, args.until)
    engine = open_engine(args.database)
    try:
        path = export_package(
            engine,
            raw_dir(str(args.raw_dir) if args.raw_dir else None),
            selection,
            args.case,
            args.output,
            signer,
            args.operator or os.environ.get("USER") or getpass.getuser(),
        )
    except (EvidenceError, SigningKeyError, TimestampError, VerificationError, ValueError) as exc:
        raise CliError(f"no package written: {exc}") from exc
    finally:
        engine.dispose()
    print(f"evidence package written to {path}")
    return EXIT_OK


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    from evidence.verify import VerificationError, verify_package

    try:
        verified = verify_package(
            args.package, args.signer_fingerprint, _read(args.tsa_cert, "the TSA root certificate")
        )
    except VerificationError as exc:
        print(f"FAIL {exc.layer}: {exc}")
        return EXIT_FAILED
    for layer, what in verified.passed:
        print(f"PASS {layer}: {what}")
    print(f"package of case {verified.case}, exported {verified.created.isoformat()}: VALID")
    return EXIT_OK


# -- dnm status: each market's last crawls, coverage and drift alarms (dnm/drift.py) -----------------


def _add_status_command(commands: Any) -> None:
    status = commands.add_parser(
        "status", help="per market: the last crawls, their coverage and drift alarms"
    )
    status.add_argument("--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)")
    status.add_argument("--last", type=int, default=5, help="crawls per market (default 5)")
    status.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0 when every market's latest crawl is complete with no alarm, else 4 (for a morning check)."""
    from dnm.drift import market_status

    engine = _reader(args.database)
    try:
        markets = market_status(engine, args.last)
    finally:
        engine.dispose()
    if not markets:
        print("the archive holds no crawl yet")
        return EXIT_OK
    worst = EXIT_OK
    for market, crawls in markets.items():
        print(market)
        for crawl in crawls:
            coverage = "-" if crawl.coverage is None else f"{crawl.coverage:.0%}"
            kind = f" (re-parse of {crawl.reparse_of})" if crawl.reparse_of else ""
            alarms = f"  DRIFT: {'; '.join(crawl.alarms)}" if crawl.alarms else ""
            line = (
                f"  crawl {crawl.crawl_id:>5}  {crawl.started_at}  {crawl.status:<8}  coverage {coverage:>5}"
            )
            print(f"{line}{kind}{alarms}")
        latest = next((c for c in crawls if c.reparse_of is None), None)
        if latest is not None and (latest.status != "complete" or latest.alarms):
            worst = EXIT_DRIFT
    return worst


# -- dnm report: the HTML market report (dnm/analytics/report.py, docs/analytics.md) ------------------


def _add_report_command(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="write a self-contained HTML report of one market: activity, prices, sales, identities"
    )
    report.add_argument("market", metavar="MARKET", help="the market's slug in the archive")
    report.add_argument("--database", help="archive URL (default: $DNM_DATABASE_URL or var/archive.sqlite)")
    report.add_argument(
        "--output", "-o", type=Path, help="HTML file to write (default: var/reports/MARKET.html)"
    )
    report.add_argument("--since", type=_timestamp, help="crawls started at or after (ISO date or time, UTC)")
    report.add_argument("--until", type=_timestamp, help="crawls started before (ISO date or time, UTC)")
    report.add_argument(
        "--feedback-rate",
        type=float,
        default=1.0,
        help="share of sales that leave feedback, in (0, 1]; sales = feedback / rate (default 1.0)",
    )
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from dnm.analytics.crawls import Period
    from dnm.analytics.report import build_report, write_report

    if not 0 < args.feedback_rate <= 1:
        raise CliError(f"--feedback-rate {args.feedback_rate} must be in (0, 1]", EXIT_USAGE)
    engine = _reader(args.database)
    try:
        report = build_report(
            engine, args.market, Period(args.since, args.until), feedback_rate=args.feedback_rate
        )
    finally:
        engine.dispose()
    output = write_report(report, args.output or Path("var/reports") / f"{args.market}.html")
    console = Console(stderr=True, soft_wrap=True)
    if report.empty:
        why = "no such market in the archive" if not report.market_known else "no usable crawl in the period"
        console.print(f"{output} written: {why}, the report says so", highlight=False)
    else:
        console.print(f"{output} written: {len(report.crawls)} crawls of {args.market}", highlight=False)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
