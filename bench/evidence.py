"""The evidence benchmark (issue 6): a vendor's package of N captures exported and verified, against a floor.

`python -m bench.evidence [--captures 1000] [--backend sqlite|postgresql] [--rounds 3] [--workdir DIR]
[--json F] [--profile]`. Set-up, not timed: nights of `bench.synthetic_market` (2,000 listings, 100
vendors by default) crawled into an archive and a raw store as the capture and storage pipelines
do (an HTML body and HTTP exchange per page, RawStore then ArchiveWriter, the WARC file and hash chain in
the crawl row's stats), until one vendor's pages hold N distinct captures; `dnm archive verify` must pass;
an operator key and a local RFC 3161 TSA (tests/evidence/tsa.py). Timed: `export_package` of that vendor
and `verify_package` of the package, medians of --rounds, against floors measured in the same run on the
same bytes (copying and hashing the records once; reading and hashing the package once). Targets: export
< 10 s, verify < 5 s. Exit status: 0 both met, 1 one missed (a cProfile of it is printed), 2 a run failed
or the figures do not add up.
"""

from __future__ import annotations

import argparse
import cProfile
import email.utils
import hashlib
import importlib
import io
import json
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from warcio.archiveiterator import ArchiveIterator

from bench import REPO
from bench.archive_year import (
    POSTGRES_ADMIN_URL,
    BenchError,
    archive_bytes,
    fresh_archive,
    require_postgresql,
    say,
)
from bench.synthetic_market import MARKET, MarketShape, Night, SyntheticMarket, synthetic_profile
from dnm import __version__
from dnm.archive import ArchiveWriter, CapturedPage, CrawlSetup
from dnm.archive_check import verify_archive
from dnm.items import HttpExchange, PageItem
from dnm.profile import Profile
from dnm.rawstore import CHAIN_SUFFIX, RawStore, warcinfo_fields, warcio_version
from dnm.records import Record
from evidence import package as layout
from evidence.export import Selection, Signer, export_package
from evidence.keys import init_key
from evidence.verify import verify_package
from models.db import open_engine
from pipelines.capture import earlier_payloads

# Issue 6: "a package of a vendor with 1,000 captures exports in under 10 s and verifies in under 5 s".
EXPORT_TARGET_S = 10.0
VERIFY_TARGET_S = 5.0
EXIT_PASS, EXIT_MISSED, EXIT_ERROR = 0, 1, 2
CASE = "bench-evidence"
OPERATOR = "Benchmark operator"
BATCH = 500  # pages per write_pages call, as the storage pipeline batches them
MAX_NIGHTS = 365
CHUNK = 1 << 20
MB = 1_000_000
# The code whose speed is measured: a figure is of the commit plus any change to these in the tree.
MEASURED_CODE = ("evidence", "dnm", "models", "pipelines")
# The steps an export and a verification are timed by (module, function, what it does): each function is
# wrapped with a clock during the timed rounds. cProfile cannot give these figures: it inflates warcio's
# many small calls several times more than WeasyPrint's, so its shares misstate the steps' real costs.
# A function the module no longer has is skipped (evidence/ is refactored under this benchmark); a name
# starting with a space is a step inside the one above it, left out of the sum.
EXPORT_STEPS = (
    ("evidence.export", "_plan", "rows and their fetches read from the archive"),
    ("evidence.export", "_verify_sources", "`dnm archive verify` of every crawl involved"),
    ("evidence.export", "_copy_records", "records copied out of the raw store"),
    ("evidence.export", " verified_chain", "hash chains checked against the crawl rows"),
    ("evidence.export", "_network_warc", "network-path WARC"),
    ("evidence.export", "write_wacz", "WACZ written (every WARC read through)"),
    ("evidence.export", "_write_rows", "rows as JSON Lines and CSV"),
    ("evidence.export", "certification", "FRE 902 certification draft"),
    ("evidence.export", "render_report", "HTML report"),
    ("evidence.export", "write_pdf", "PDF/A report (WeasyPrint)"),
    ("evidence.export", "make_bag", "BagIt manifests (SHA-256 and SHA-512)"),
    ("evidence.export", "_sign", "Ed25519 signature and RFC 3161 token"),
    ("evidence.verify", "verify_package", "the package verified before it is kept"),
)
VERIFY_STEPS = (
    ("evidence.verify", "verify_bag", "bag: every manifest in full"),
    ("evidence.verify", "verify_signature", "signature"),
    ("evidence.verify", "verify_timestamp", "timestamp"),
    ("evidence.verify", "_captures", "captures: the WACZ checked, every record's digests"),
    ("evidence.verify", "_rows", "rows linked to their records"),
    ("evidence.verify", "verify_custody", "custody chain"),
    ("evidence.verify", "_provenance", "provenance"),
)


# -- the archive -------------------------------------------------------------------------------------


@dataclass
class Archive:
    """What the set-up wrote: the archive, its raw store, and the vendor whose package is measured."""

    url: str
    raw: Path
    vendor: str
    vendor_listings: int  # the vendor's listings on the first night
    captures: int  # distinct bodies of the vendor's pages written: the captures its package must hold
    fetches: dict[str, int] = field(default_factory=dict)  # the vendor's pages written, by page type
    nights: int = 0
    pages: int = 0
    crawl_ids: list[int] = field(default_factory=list)
    warc_bytes: int = 0
    database_bytes: int = 0
    seconds: float = 0.0

    @property
    def selection(self) -> Selection:
        return Selection(market=MARKET, vendor=self.vendor)


def pick_vendor(market: SyntheticMarket, listings: int) -> tuple[str, int]:
    """The vendor whose listing count is closest to `listings` (ties: more listings, then name), among those
    whose name no other vendor shares in another case: the export selects a vendor by name, any case."""
    counts: dict[str, int] = {}
    for listing in market.listings.values():
        counts[listing.vendor.key] = counts.get(listing.vendor.key, 0) + 1
    folded: dict[str, int] = {}
    for vendor in market.vendors:
        folded[vendor.key.casefold()] = folded.get(vendor.key.casefold(), 0) + 1
    candidates = [key for key in counts if folded[key.casefold()] == 1]
    key = min(candidates, key=lambda k: (abs(counts[k] - listings), -counts[k], k))
    return key, counts[key]


def owned_by(vendor: str, page: CapturedPage, records: list[Record]) -> bool:
    """A page of the vendor: one of its listings, or its profile."""
    return page.page_type in ("listing", "vendor") and records[0].values.get("vendor_id") == vendor


def build_archive(
    url: str,
    raw: Path,
    shape: MarketShape,
    captures: int,
    vendor_listings: int,
    say: Callable[[str], None],
) -> Archive:
    """Crawl nights of the synthetic market into `url` and `raw` until the chosen vendor's pages hold
    `captures` distinct bodies. The last night stops taking that vendor's pages once the count is reached
    (as a crawl cut short would), so its package holds exactly `captures` captures."""
    market = SyntheticMarket(shape)
    vendor, listings = pick_vendor(market, vendor_listings)
    archive = Archive(url, raw, vendor, listings, 0)
    pages = PageRenderer(market)
    setup = CrawlSetup(
        tool_version=__version__,
        settings_sha256=hashlib.sha256(f"bench.evidence {shape!r}".encode()).hexdigest(),
        transport="tor",
        mirror=market.base_url,
        tor_version="0.4.8.13",
    )
    profile = synthetic_profile(shape)
    seen: set[str] = set()  # the vendor's page bodies written so far
    engine = open_engine(url)
    started = time.perf_counter()
    try:
        for night in market.nights(MAX_NIGHTS):
            crawl_id, written = _crawl(
                engine, raw, setup, profile, night, pages, vendor, seen, captures, archive.fetches
            )
            archive.nights += 1
            archive.pages += written
            archive.crawl_ids.append(crawl_id)
            say(
                f"night {night.number}{' (unchanged)' if night.unchanged else ''}: {written:,} pages, "
                f"vendor {vendor}'s captures {len(seen):,}/{captures:,}"
            )
            if len(seen) >= captures:
                break
        else:
            raise BenchError(
                f"vendor {vendor} has {len(seen)} captures after {MAX_NIGHTS} nights, {captures} asked"
            )
        archive.captures = len(seen)
        checks = verify_archive(engine, raw, market=MARKET)
        if len(checks) != archive.nights or not all(c.ok and c.records for c in checks):
            problems = [f"crawl {c.crawl_id}: {'; '.join(c.problems) or 'no records'}" for c in checks]
            raise BenchError(f"`dnm archive verify` fails on the benchmark's archive: {problems}")
        archive.database_bytes = archive_bytes(engine)
    finally:
        engine.dispose()
    archive.seconds = time.perf_counter() - started
    archive.warc_bytes = sum(path.stat().st_size for path in raw.rglob("*.warc.gz"))
    return archive


def _crawl(
    engine: Engine,
    raw: Path,
    setup: CrawlSetup,
    profile: Profile,
    night: Night,
    pages: PageRenderer,
    vendor: str,
    seen: set[str],
    captures: int,
    fetches: dict[str, int],
) -> tuple[int, int]:
    """One night as a crawl files it: each page to the raw store (pipelines.capture), then to the archive
    with the record holding its bytes (pipelines.storage); the crawl row closed with the raw store's
    stats. Returns the crawl id and the pages written."""
    writer = ArchiveWriter(engine, profile, setup)
    crawl_id = writer.begin()
    info = warcinfo_fields(
        software=f"dnm-archive/{__version__}",
        format="WARC File Format 1.1",
        conformsTo="https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        dnm_market=MARKET,
        dnm_crawl_id=crawl_id,
        dnm_profile_version=profile.parser_version,
        dnm_profile_sha256=profile.sha256,
        dnm_settings_sha256=setup.settings_sha256,
        dnm_transport=setup.transport,
        dnm_tor_version=setup.tor_version,
        dnm_warcio_version=warcio_version(),
        dnm_redacted="request Cookie, Authorization, Proxy-Authorization; response Set-Cookie; "
        "request bodies are not stored",
    )
    store = RawStore(raw, MARKET, crawl_id, info, earlier_payloads(engine))
    batch: list[tuple[CapturedPage, list[Record]]] = []
    written = 0
    for page, records in night.pages:
        body = pages.render(page, records)
        sha256 = hashlib.sha256(body).hexdigest()
        if owned_by(vendor, page, records):
            if len(seen) >= captures:
                continue  # the vendor's quota is reached: the rest of its pages are not fetched
            seen.add(sha256)
            fetches[page.page_type] = fetches.get(page.page_type, 0) + 1
        item = PageItem(
            page.url, page.page_type, page.status, body, sha256, page.fetched_at,
            server_time=page.server_time, http=exchange(page.url, body, page.fetched_at),
        )  # fmt: skip
        stored = store.write(item)
        captured = replace(
            page, sha256=sha256, size=len(body), warc_file=stored.warc_file,
            warc_record_id=stored.record_id, payload_sha256=stored.payload_sha256,
        )  # fmt: skip
        batch.append((captured, records))
        written += 1
        if len(batch) >= BATCH:
            writer.write_pages(batch)
            batch = []
    if batch:
        writer.write_pages(batch)
    store.close()
    writer.finish(
        "complete",
        None,
        {
            "dnm/stored/pages": written,
            "dnm/warc/records": store.records,
            "dnm/warc/revisits": store.revisits,
            "dnm/warc/logged": store.logged,
            "dnm/warc/bytes": store.bytes,
            "dnm/warc/file": store.warc_file,
            "dnm/warc/chain_head": store.chain.head,
            "dnm/warc/chain_records": store.chain.records,
        },
        mirror=setup.mirror,
    )
    return crawl_id, written


# -- pages as a market serves them ---------------------------------------------------------------------

STYLE = """
:root{--bg:#14161a;--fg:#d8dde3;--muted:#8a939e;--accent:#c9a227;--line:#2a2f36}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 Verdana,sans-serif}
header{display:flex;justify-content:space-between;align-items:center;padding:10px 24px;border-bottom:1px solid
var(--line)}header .logo{font-size:20px;color:var(--accent);letter-spacing:.08em}
nav{float:left;width:230px;padding:12px 18px;border-right:1px solid var(--line);min-height:100vh}
nav ul{list-style:none;margin:0;padding:0}nav li{margin:2px 0}nav a{color:var(--fg);text-decoration:none}
nav a:hover{color:var(--accent)}main{margin-left:250px;padding:18px 28px;max-width:980px}
table{border-collapse:collapse;width:100%;margin:10px 0 18px}th,td{border-bottom:1px solid var(--line);
padding:5px 8px;text-align:left;vertical-align:top}th{color:var(--muted);font-weight:normal;width:28%}
pre{white-space:pre-wrap;font-size:11px;background:#0d0f12;padding:8px;border:1px solid var(--line)}
.badge{display:inline-block;padding:1px 6px;border:1px solid var(--accent);color:var(--accent);font-size:11px}
footer{clear:both;padding:14px 24px;border-top:1px solid var(--line);color:var(--muted);font-size:12px}
"""


class PageRenderer:
    """The HTML a hollowmere-style market serves for a page: shared chrome (style, category menu, footer)
    around the strings the page shows. The body changes exactly when what the page shows changes."""

    def __init__(self, market: SyntheticMarket) -> None:
        menu = "".join(
            f"<li style='padding-left:{12 * (len(path) - 1)}px'><a href='/category/{_slug(path)}'>"
            f"{escape(path[-1])}</a></li>"
            for path in market.categories
        )
        self.head = (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title} - Synthetic "
            f"Market</title><style>{STYLE}</style></head><body><header><span class='logo'>SYNTHETIC</span>"
            "<span>Balance: 0.00000 BTC | <a href='/account'>Account</a> | <a href='/orders'>Orders</a> | "
            "<a href='/logout'>Logout</a></span></header>"
            f"<nav><h3>Categories</h3><ul>{menu}</ul></nav><main>"
        )
        self.foot = (
            "</main><footer>Synthetic Market - escrow on every order - never finalize early - "
            "PGP-encrypt your address - mirrors are listed at /mirrors, signed with the market key"
            "</footer></body></html>\n"
        )

    def render(self, page: CapturedPage, records: list[Record]) -> bytes:
        first = records[0].shown if records else {}
        title = str(first.get("title") or first.get("name") or first.get("category_id") or page.page_type)
        parts = [self.head.replace("{title}", escape(title)), f"<h1>{escape(title)}</h1>"]
        for record in records:
            parts.append(f"<section class='{record.kind}'><table>")
            for name, value in record.shown.items():
                parts.append(
                    f"<tr><th>{escape(name.replace('_', ' '))}</th><td>{_cell(name, value)}</td></tr>"
                )
            parts.append("</table></section>")
        parts.append(self.foot)
        return "".join(parts).encode()


def _cell(name: str, value: Any) -> str:
    if isinstance(value, list):
        return "<br>".join(_cell(name, item) for item in value)
    if isinstance(value, dict):
        return " - ".join(escape(str(v)) for v in value.values())
    text = escape(str(value))
    if name == "pgp_key":
        return f"<pre>{text}</pre>"
    return text.replace("\n", "<br>")


def _slug(path: tuple[str, ...]) -> str:
    return re.sub(r"[^a-z0-9]+", "-", " ".join(path).lower()).strip("-")


def exchange(url: str, body: bytes, fetched_at: datetime) -> HttpExchange:
    """The HTTP a crawl over Tor exchanges for a page (the raw store redacts the cookies)."""
    host = url.split("/")[2]
    return HttpExchange(
        method="GET",
        request_headers=(
            ("Host", host),
            ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"),
            ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            ("Accept-Language", "en-US,en;q=0.5"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Referer", f"http://{host}/"),
            ("Cookie", "session=3f9c2e7a1b4d6e8f0a2c4e6b8d0f1a3c"),
        ),
        protocol="HTTP/1.1",
        reason="OK",
        response_headers=(
            ("Server", "nginx"),
            ("Date", email.utils.format_datetime(fetched_at, usegmt=True)),
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Encoding", "gzip"),
            ("Content-Length", str(len(body) // 3)),
            ("Cache-Control", "no-store, no-cache, must-revalidate"),
            ("X-Frame-Options", "DENY"),
            ("Set-Cookie", "session=3f9c2e7a1b4d6e8f0a2c4e6b8d0f1a3c; Path=/; HttpOnly"),
        ),
    )


# -- what a package holds ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageFacts:
    """A package's size and contents: the captures (response records its rows refer to) and its rows."""

    files: int
    bytes: int
    crawls: int  # crawls the provenance describes: their WARC files are what the export verifies first
    wacz_bytes: int
    warcs: int
    records: int
    captures: int
    rows: dict[str, int]
    unreferenced_rows: int  # rows whose record is not a response in the WACZ (verification would fail)


def package_facts(package: Path) -> PackageFacts:
    files = [path for path in package.rglob("*") if path.is_file()]
    responses: set[tuple[str, str]] = set()
    records = warcs = 0
    with zipfile.ZipFile(package / layout.CAPTURES) as wacz:
        for member in wacz.namelist():
            if not member.startswith("archive/"):
                continue
            warcs += 1
            with wacz.open(member) as stream:
                for record in ArchiveIterator(stream):
                    records += 1
                    if record.rec_type == "response":
                        responses.add((member, record.rec_headers.get_header("WARC-Record-ID")))
    rows: dict[str, int] = {}
    referenced: set[tuple[str, str]] = set()
    unreferenced = 0
    for kind in layout.KINDS:
        path = package / layout.EXTRACTED / f"{kind}.jsonl"
        lines = path.read_bytes().splitlines() if path.exists() else []
        rows[kind] = len(lines)
        for line in lines:
            row = json.loads(line)
            key = (row["warc_filename"], row["warc_record_id"])
            if key in responses:
                referenced.add(key)
            else:
                unreferenced += 1
    return PackageFacts(
        files=len(files),
        crawls=len(json.loads((package / layout.PROVENANCE).read_bytes())["crawls"]),
        bytes=sum(path.stat().st_size for path in files),
        wacz_bytes=(package / layout.CAPTURES).stat().st_size,
        warcs=warcs,
        records=records,
        captures=len(referenced),
        rows=rows,
        unreferenced_rows=unreferenced,
    )


# -- floors: the least any exporter or verifier must do with the same bytes ----------------------------


@dataclass(frozen=True)
class Span:
    """A record's bytes in the raw store: (file, offset, length)."""

    path: Path
    offset: int
    length: int


def copied_spans(package: Path, raw: Path) -> list[Span]:
    """Where in the raw store the records the package's WACZ copied sit (by their chain lines), in file
    order. Their lengths must add up to the WACZ's WARC members: the copy is byte for byte."""
    sources = {str(path.relative_to(raw)).replace("/", "-"): path for path in raw.rglob("*.warc.gz")}
    spans: list[Span] = []
    with zipfile.ZipFile(package / layout.CAPTURES) as wacz:
        for member in wacz.namelist():
            name = member.removeprefix("archive/")
            if not member.startswith("archive/") or name not in sources:
                continue  # the network-path WARC is written by the export, not copied
            with wacz.open(member) as stream:
                ids = {record.rec_headers.get_header("WARC-Record-ID") for record in ArchiveIterator(stream)}
            source = sources[name]
            chain = source.with_name(source.name + CHAIN_SUFFIX).read_bytes().splitlines()
            lines = [json.loads(line) for line in chain]
            picked = [Span(source, ln["offset"], ln["length"]) for ln in lines if ln["record_id"] in ids]
            if sum(span.length for span in picked) != wacz.getinfo(member).file_size:
                raise BenchError(f"{member} is not the byte-for-byte copy of its records in {source}")
            spans += picked
    return spans


def copy_floor(spans: list[Span], target: Path) -> float:
    """Seconds to copy the records' bytes out of the raw store into one file, hashing them once."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    with target.open("wb") as out:
        opened: dict[Path, Any] = {}
        try:
            for span in spans:
                stream = opened.get(span.path) or opened.setdefault(span.path, span.path.open("rb"))
                stream.seek(span.offset)
                data = stream.read(span.length)
                digest.update(data)
                out.write(data)
        finally:
            for stream in opened.values():
                stream.close()
    digest.hexdigest()
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def hash_floor(paths: list[Path]) -> float:
    """Seconds to read every file once, hashing it with SHA-256."""
    started = time.perf_counter()
    for path in paths:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
        digest.hexdigest()
    return time.perf_counter() - started


def package_files(package: Path) -> list[Path]:
    return sorted(path for path in package.rglob("*") if path.is_file())


def source_files(package: Path, raw: Path) -> list[Path]:
    """The WARC files (and their chains) of every crawl the package describes: what `dnm archive verify`
    reads before the export copies anything."""
    crawls = json.loads((package / layout.PROVENANCE).read_bytes())["crawls"]
    files = [raw / crawl["warc_file"] for crawl in crawls if crawl.get("warc_file")]
    return files + [path.with_name(path.name + CHAIN_SUFFIX) for path in files]


# -- measuring -----------------------------------------------------------------------------------------


@contextmanager
def stopwatch(steps: Sequence[tuple[str, str, str]]) -> Iterator[dict[str, float]]:
    """Seconds spent in each step's function (all its calls) while the block runs, for the functions the
    modules have. They are looked up by module attribute at call time (evidence.export imports
    verify_package when it runs it), so wrapping the attribute catches every call; the originals are put
    back afterwards."""
    spent: dict[str, float] = {}
    originals = []
    for module_name, step, _ in steps:
        module, name = importlib.import_module(module_name), step.strip()
        original = getattr(module, name, None)
        if original is None:
            continue
        spent[step] = 0.0

        def timed(*args: Any, __original: Any = original, __step: str = step, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                spent[__step] += time.perf_counter() - started

        setattr(module, name, timed)
        originals.append((module, name, original))
    try:
        yield spent
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


@dataclass(frozen=True)
class Round:
    """One timed export or verification: wall and CPU seconds (this process, every thread), and the
    seconds of each step. CPU well under wall means the machine was busy with something else."""

    wall: float
    cpu: float
    steps: dict[str, float]


@contextmanager
def timed_round(steps: Sequence[tuple[str, str, str]], rounds: list[Round]) -> Iterator[None]:
    """Time the block as one round, its steps with `stopwatch`, and append it to `rounds`."""
    with stopwatch(steps) as spent:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rounds.append(Round(wall, cpu, dict(spent)))


def typical(rounds: list[Round]) -> Round:
    """The median round by wall time (the lower of the two middle ones for an even count), whose steps
    add up to its own total."""
    return sorted(rounds, key=lambda r: r.wall)[(len(rounds) - 1) // 2]


@dataclass
class Figures:
    """Every round measured, and the floors measured next to each verification round (seconds)."""

    export: list[Round] = field(default_factory=list)
    verify: list[Round] = field(default_factory=list)
    copy_floor: list[float] = field(default_factory=list)
    hash_floor: list[float] = field(default_factory=list)
    sources_floor: list[float] = field(default_factory=list)

    @staticmethod
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


@dataclass
class Result:
    archive: Archive
    package: PackageFacts
    figures: Figures
    problems: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    code: str = field(default_factory=lambda: code_state())

    @property
    def export_s(self) -> float:
        return typical(self.figures.export).wall

    @property
    def verify_s(self) -> float:
        return typical(self.figures.verify).wall

    def targets(self) -> dict[str, bool]:
        return {"export": self.export_s < EXPORT_TARGET_S, "verify": self.verify_s < VERIFY_TARGET_S}

    def as_json(self) -> dict[str, Any]:
        f = self.figures
        export_floor, verify_floor = f.median(f.copy_floor), f.median(f.hash_floor)
        return {
            "archive": {k: v for k, v in asdict(self.archive).items() if k != "raw"}
            | {"raw": str(self.archive.raw)},
            "package": asdict(self.package),
            "seconds": {
                "export": [r.wall for r in f.export],
                "export_cpu": [r.cpu for r in f.export],
                "verify": [r.wall for r in f.verify],
                "verify_cpu": [r.cpu for r in f.verify],
                "copy_floor": f.copy_floor,
                "hash_floor": f.hash_floor,
                "sources_floor": f.sources_floor,
            },
            "steps": {"export": typical(f.export).steps, "verify": typical(f.verify).steps},
            "medians": {
                "export": self.export_s,
                "verify": self.verify_s,
                "export_floor": export_floor,
                "verify_floor": verify_floor,
                "sources_floor": f.median(f.sources_floor),
            },
            "ratios": {"export": self.export_s / export_floor, "verify": self.verify_s / verify_floor},
            "targets": {"export_s": EXPORT_TARGET_S, "verify_s": VERIFY_TARGET_S, "met": self.targets()},
            "problems": self.problems,
            "code": self.code,
        }


def code_state() -> str:
    """The commit measured, and the measured code's files changed since (figures follow the tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", *MEASURED_CODE], cwd=REPO, capture_output=True, text=True,
            check=True,
        ).stdout.split("\n")  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    dirty = sorted(line[3:] for line in changed if line.strip())
    return head + (f" with uncommitted changes to {', '.join(dirty)}" if dirty else "")


def measure(
    archive: Archive,
    signer: Signer,
    fingerprint: str,
    workdir: Path,
    rounds: int,
    profile: bool,
    say: Callable[[str], None],
) -> Result:
    """Export and verify `rounds` times, each against its floors measured next to it."""
    engine = open_engine(archive.url, create=False)
    figures = Figures()
    packages = workdir / "packages"
    shutil.rmtree(packages, ignore_errors=True)
    try:

        def export(output: Path) -> Path:
            return export_package(engine, archive.raw, archive.selection, CASE, output, signer, OPERATOR)

        first: Path | None = None
        for number in range(1, rounds + 1):
            with timed_round(EXPORT_STEPS, figures.export):
                package = export(packages / f"round-{number}")
            first = first or package
            say(
                f"round {number}: export {figures.export[-1].wall:.2f} s (CPU {figures.export[-1].cpu:.2f} s)"
            )
        assert first is not None
        facts = package_facts(first)
        spans = copied_spans(first, archive.raw)
        files, sources = package_files(first), source_files(first, archive.raw)
        for number in range(1, rounds + 1):
            with timed_round(VERIFY_STEPS, figures.verify):
                verify_package(first, fingerprint, signer.tsa_root_pem)
            figures.copy_floor.append(copy_floor(spans, workdir / "floor.warc.gz"))
            figures.hash_floor.append(hash_floor(files))
            figures.sources_floor.append(hash_floor(sources))
            say(
                f"round {number}: verify {figures.verify[-1].wall:.2f} s "
                f"(CPU {figures.verify[-1].cpu:.2f} s); floors: copy {figures.copy_floor[-1]:.3f} s, "
                f"package read {figures.hash_floor[-1]:.3f} s, sources read {figures.sources_floor[-1]:.3f} s"
            )
        result = Result(archive, facts, figures)
        result.problems = check(archive, facts)
        missed = {name for name, met in result.targets().items() if not met}
        if profile or missed:
            if profile or "export" in missed:
                say("profiling one export")
                result.profiles["export"] = profiled(
                    lambda: export(packages / "profiled"), workdir / "export.pstats"
                )
            if profile or "verify" in missed:
                say("profiling one verification")
                result.profiles["verify"] = profiled(
                    lambda: verify_package(first, fingerprint, signer.tsa_root_pem), workdir / "verify.pstats"
                )
        return result
    finally:
        engine.dispose()


def check(archive: Archive, facts: PackageFacts) -> list[str]:
    """How the package disagrees with what the set-up wrote (empty when the figures add up)."""
    problems = []
    if facts.captures != archive.captures:
        problems.append(
            f"the package holds {facts.captures:,} captures, the set-up wrote {archive.captures:,} for "
            f"vendor {archive.vendor}"
        )
    if facts.unreferenced_rows:
        problems.append(f"{facts.unreferenced_rows} rows refer to no response record in the package")
    for kind, page_type in (("listings", "listing"), ("vendors", "vendor")):
        if facts.rows.get(kind) != archive.fetches.get(page_type, 0):
            problems.append(
                f"{facts.rows.get(kind)} {kind} rows, the set-up fetched {archive.fetches.get(page_type, 0)} "
                f"{page_type} pages of the vendor (one row each)"
            )
    return problems


def profiled(run: Callable[[], object], dump: Path, top: int = 15) -> str:
    """Run once under cProfile; the top functions by cumulative time."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
    seconds = time.perf_counter() - started
    profiler.dump_stats(dump)
    stream = io.StringIO()
    pstats.Stats(str(dump), stream=stream).strip_dirs().sort_stats("cumulative").print_stats(top)
    table = stream.getvalue()
    table = table[table.find("   ncalls") :] if "   ncalls" in table else table
    heading = f"{seconds:.2f} s under cProfile (it inflates call-heavy code: read shares), dump in {dump}"
    return heading + "\n" + table.rstrip()


# -- the run -------------------------------------------------------------------------------------------


@contextmanager
def archive_database(backend: str, workdir: Path, admin_url: str) -> Iterator[str]:
    """A fresh archive: a SQLite file in `workdir` (kept), or a PostgreSQL database (dropped after)."""
    if backend == "sqlite":
        path = workdir / "evidence-bench.sqlite"
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    with fresh_archive("postgresql", workdir, admin_url) as url:
        yield url


def run(args: argparse.Namespace, say: Callable[[str], None]) -> Result:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BenchError(
            "openssl not found on PATH (the local TSA needs it): install Debian's openssl package"
        )
    from tests.evidence.tsa import LocalTSA  # the test TSA: a bench dependency, not a runtime one

    if args.backend == "postgresql":
        require_postgresql(args.postgres_url)
    shape = MarketShape(listings=args.listings, vendors=args.vendors, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="dnm-bench-evidence-") as scratch:
        workdir = args.workdir.resolve() if args.workdir else Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        raw = workdir / "warc"
        shutil.rmtree(raw, ignore_errors=True)
        key = workdir / "keys" / "operator.key"
        fingerprint = init_key(key, overwrite=key.exists())
        tsa_dir = workdir / "tsa"
        shutil.rmtree(tsa_dir, ignore_errors=True)
        tsa = LocalTSA(openssl, tsa_dir)
        tsa.start()
        try:
            with archive_database(args.backend, workdir, args.postgres_url) as url:
                say(f"set-up: {shape.describe()}, nights until one vendor has {args.captures:,} captures")
                archive = build_archive(url, raw, shape, args.captures, args.vendor_listings, say)
                signer = Signer(key, tsa.url, tsa.root_pem, tsa.cert_pem)
                return measure(archive, signer, fingerprint, workdir, args.rounds, args.profile, say)
        finally:
            tsa.stop()


def report(result: Result, backend: str) -> str:
    a, p, f = result.archive, result.package, result.figures
    export_floor, verify_floor = f.median(f.copy_floor), f.median(f.hash_floor)
    met = result.targets()
    lines = [
        f"evidence benchmark ({backend}): vendor {a.vendor} of market {MARKET}, {p.captures:,} captures "
        f"in its package ({a.captures:,} written); code {result.code}",
        f"archive: {a.nights} nights, {a.pages:,} pages, WARC {a.warc_bytes / MB:,.1f} MB, database "
        f"{a.database_bytes / MB:,.1f} MB (set-up {a.seconds:,.0f} s, not timed); the vendor had "
        f"{a.vendor_listings} listings on night 1",
        f"package: {p.bytes / MB:,.2f} MB in {p.files} files; WACZ {p.wacz_bytes / MB:,.2f} MB, "
        f"{p.warcs} WARCs, {p.records:,} records; rows: "
        + ", ".join(f"{count:,} {kind}" for kind, count in p.rows.items()),
        "",
        f"{'':<7} {'median':>9} {'CPU':>9}  {'rounds (wall)':<24} {'floor (same bytes)':<34} {'ratio':>7}  "
        "target",
        _line("export", f.export, export_floor, "copy + hash records", EXPORT_TARGET_S, met["export"]),
        _line("verify", f.verify, verify_floor, "read + hash package", VERIFY_TARGET_S, met["verify"]),
        f"sources: reading and hashing the whole WARC files of the {p.crawls} crawls described once takes "
        f"{f.median(f.sources_floor):.3f} s (the least `dnm archive verify` of those crawls reads)",
    ]
    lines += [f"FIGURES DO NOT ADD UP: {problem}" for problem in result.problems]
    lines += ["", "where the median export's time goes:"]
    lines += _steps(f.export, EXPORT_STEPS, "the key loaded, VERIFY.md, custody log, folders")
    lines += ["", "where the median verification's time goes:"]
    lines += _steps(f.verify, VERIFY_STEPS, "files read, export time checked")
    for name, text in result.profiles.items():
        lines += ["", f"== {name}, one run under cProfile ==", text]
    return "\n".join(lines)


def _steps(rounds: list[Round], steps: Sequence[tuple[str, str, str]], other: str) -> list[str]:
    """The median round's steps: seconds and share of that round each; the rest of it as `other`."""
    median = typical(rounds)
    lines = [
        f"  {median.steps[step]:7.2f} s {median.steps[step] / median.wall:6.1%}  {step}: {what}"
        for _, step, what in steps
        if step in median.steps
    ]
    rest = median.wall - sum(seconds for step, seconds in median.steps.items() if not step.startswith(" "))
    return [*lines, f"  {rest:7.2f} s {rest / median.wall:6.1%}  other: {other}"]


def _line(name: str, rounds: list[Round], floor: float, what: str, target: float, met: bool) -> str:
    median = typical(rounds)
    walls = " / ".join(f"{r.wall:.2f}" for r in rounds)
    floor_text = f"{floor:.3f} s ({what})"
    ratio = median.wall / floor if floor else float("inf")
    return (
        f"{name:<7} {median.wall:7.2f} s {median.cpu:7.2f} s  {walls:<24} {floor_text:<34} {ratio:6.0f}x  "
        f"< {target:g} s  {'PASS' if met else 'MISS'}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.evidence", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--captures", type=int, default=1000, help="captures in the vendor's package")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3, help="exports and verifications timed (median)")
    parser.add_argument("--workdir", type=Path, help="keep the archive, raw store and packages here")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--profile", action="store_true", help="profile one export and one verify anyway")
    parser.add_argument("--listings", type=int, default=2000, help="listings of the market on night 1")
    parser.add_argument("--vendors", type=int, default=100, help="vendors of the market on night 1")
    parser.add_argument(
        "--vendor-listings", type=int, default=40, help="the measured vendor: the one with about this many"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic market")
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL, help="PostgreSQL maintenance database")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.captures, args.rounds, args.listings, args.vendors, args.vendor_listings) < 1:
        print("error: every count must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    try:
        result = run(args, say)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(report(result, args.backend))
    if args.json:
        args.json.write_text(json.dumps(result.as_json(), indent=2, default=str) + "\n")
        say(f"figures written to {args.json}")
    if result.problems:
        return EXIT_ERROR
    return EXIT_PASS if all(result.targets().values()) else EXIT_MISSED


if __name__ == "__main__":
    sys.exit(main())
