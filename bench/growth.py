"""Storage growth benchmark: what a night that finds the market unchanged adds to the archive.

Issue 5 asks that storage grow with change, not with time: an unchanged second night adds at most 5% of
the first night's bytes, database plus raw store. This crawls a demo market twice on the same day (so
nothing changed) into one archive and one raw store, served both times on the same loopback port (a
real market's address does not change between nights; a new port would make every URL new), and
measures the archive after each night:

- SQLite: the file's size after a WAL checkpoint (the WAL folded in);
- PostgreSQL: the total size of the archive's tables, indexes and TOAST (`pg_total_relation_size`),
  which counts whole 8 KiB pages, so small archives look larger than they will be. After each night
  the archive is VACUUMed, as autovacuum would between two nightly crawls;
- raw store: the bytes of the WARC files each night wrote.

    python -m bench.growth [--market hollowmere] [--nights 3] [--database URL] [--workdir DIR] [--json F]

Prints every night, what each unchanged night added, and night 2's ratio against the 5% target (the
issue's figure); exit 0 when met, 1 when not, 2 when a crawl failed.

On PostgreSQL, night 2 pays once for MVCC: each crawl that sees a feedback updates its row (last seen,
sightings), and the first night's updates need new row versions (only partly in the room the table's
fillfactor leaves). VACUUM makes the old versions' space reusable, so from night 3 on an unchanged
night adds little: that figure is printed as the steady state.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from demo.server import DemoServer
from models.db import open_engine

TARGET = 0.05


@dataclass(frozen=True)
class NightBytes:
    """The archive's size after one night, and what that night's crawl wrote to the raw store."""

    database: int
    raw: int


@dataclass(frozen=True)
class Growth:
    """The nights of one market (all the same demo day), and what each after the first added."""

    market: str
    backend: str
    nights: list[NightBytes]

    @property
    def first_total(self) -> int:
        return self.nights[0].database + self.nights[0].raw

    def added(self, night: int) -> int:
        """Bytes night `night` (1-based, >= 2) added to the database and the raw store."""
        now, before = self.nights[night - 1], self.nights[night - 2]
        return now.database - before.database + now.raw

    def ratio(self, night: int = 2) -> float:
        return self.added(night) / self.first_total


def database_bytes(engine: Engine) -> int:
    """The bytes the archive holds on disk (see the module docstring for what each backend counts)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = engine.url.database
        assert path, "an in-memory SQLite archive has no size"
        return os.path.getsize(path)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM")
        return int(
            connection.execute(
                text(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
                )
            ).scalar_one()
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def crawl(database_url: str, market: str, mirror: str, raw: Path, sessions: Path) -> None:
    """One night: `dnm crawl` of the demo market over loopback, in its own process."""
    command = [
        sys.executable, "-m", "dnm.cli", "crawl", market, "--mirror", mirror, "--transport", "direct",
        "--allow-host", "127.0.0.1", "--database", database_url, "--no-progress",
        "--set", f"DNM_RAW_DIR={raw}",
    ]  # fmt: skip
    env = {**os.environ, "DNM_SESSION_DIR": str(sessions)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"crawl of {market} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def measure(database_url: str, workdir: Path, market: str = "hollowmere", nights: int = 2) -> Growth:
    """`nights` crawls of the same demo day into one archive; the bytes after each."""
    raw = workdir / "warc"
    port = free_port()
    engine = open_engine(database_url)
    figures: list[NightBytes] = []
    try:
        for night in range(1, nights + 1):
            before = {path: path.stat().st_size for path in raw.rglob("*.warc.gz")} if raw.exists() else {}
            with DemoServer(market, 1, port=port) as server:
                crawl(database_url, market, server.url, raw, workdir / f"sessions-{night}")
            written = sum(p.stat().st_size - before.get(p, 0) for p in raw.rglob("*.warc.gz"))
            figures.append(NightBytes(database_bytes(engine), written))
    finally:
        engine.dispose()
    return Growth(market, make_url(database_url).get_backend_name(), figures)


def report(growth: Growth) -> str:
    kib = 1024
    first = growth.nights[0]
    lines = [
        f"{growth.market} on {growth.backend}",
        f"{'':26}{'database':>11}{'raw store':>11}{'total':>11}{'of night 1':>12}",
        f"{'night 1':26}{first.database / kib:>10.1f}K{first.raw / kib:>10.1f}K"
        f"{growth.first_total / kib:>10.1f}K",
    ]
    for night in range(2, len(growth.nights) + 1):
        now, before = growth.nights[night - 1], growth.nights[night - 2]
        lines.append(
            f"{f'night {night} adds (unchanged)':26}{(now.database - before.database) / kib:>10.1f}K"
            f"{now.raw / kib:>10.1f}K{growth.added(night) / kib:>10.1f}K{growth.ratio(night):>12.2%}"
        )
    verdict = "PASS" if growth.ratio(2) <= TARGET else "MISS"
    lines.append(f"night 2: {growth.ratio(2):.2%} of night 1 (target <= {TARGET:.0%}): {verdict}")
    if len(growth.nights) > 2:
        lines.append(
            f"steady state (night {len(growth.nights)}): {growth.ratio(len(growth.nights)):.2%} of night 1"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.splitlines()[0])
    parser.add_argument("--market", default="hollowmere")
    parser.add_argument("--nights", type=int, default=3, help="crawls of the same day (>= 2; default 3)")
    parser.add_argument("--database", help="archive URL (default: a fresh SQLite file in the workdir)")
    parser.add_argument("--workdir", type=Path, help="archive and raw store (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dnm-growth-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        database = args.database or f"sqlite:///{workdir / 'archive.sqlite'}"
        try:
            growth = measure(database, workdir, args.market, max(2, args.nights))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 2
    print(report(growth))
    if args.json:
        ratios = {night: growth.ratio(night) for night in range(2, len(growth.nights) + 1)}
        figures = {**asdict(growth), "ratio_of_night_1": ratios, "target": TARGET}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if growth.ratio(2) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
