"""Exporting an evidence package (`dnm evidence export`): a selection of the archive, signed and timestamped.

The steps, each failing the export rather than producing a weaker package:

1. the rows of the selection (a vendor, a listing, a market, a crawl, a time range) in the export schema
   (dnm.export), and for each row the fetch it came from and the WARC record holding that page's bytes;
2. `dnm archive verify` on every crawl involved: a capture changed inside the archive is found before
   anything leaves it (dnm.archive_check);
3. the records copied byte for byte (gzip member by member, as the raw store's hash chain places them)
   into one WARC per source file, with each file's warcinfo, each response's request record and the
   fetch-log records of later nights and the network-path record each crawl wrote at capture (transport,
   tor version and SOCKS port, name resolution, isolation, clock and its NTP state); plus a WARC of
   what the crawl rows add (hosts fetched, mirror at the end, status); all in a deterministic WACZ;
4. the rows as JSON Lines and CSV, each with its record's id, file, date, URI and payload SHA-256; the
   provenance file; the custody log (capture, verification, export; head bound into bag-info); the HTML
   report; VERIFY.md and verify.sh;
5. the BagIt bag; the Ed25519 signature over tagmanifest-sha256.txt; the RFC 3161 token over the
   signature, verified against the pinned TSA root before it is kept;
6. the whole package verified as a court expert would (evidence.verify) with the pinned values; only then
   is it moved from its hidden working folder to its name. No key, no TSA, or any failure: no package.

Re-exporting the same selection gives the same captures, rows and provenance, byte for byte (the WACZ's
creation time is the selection's last capture, not the export's); custody log, report and bag-info carry
the export's own time.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import platform
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from dnm import __version__
from dnm.archive_check import ChainError, verified_chain
from dnm.export import ExportFilter, export_rows
from dnm.rawstore import FETCH_LOG_TYPE, NETWORK_PATH_URI, Sha256WARCWriter, warc_date
from evidence import package as layout
from evidence.bag import make_bag
from evidence.custody import CustodyLog
from evidence.keys import fingerprint, load_private_key, public_pem, sign
from evidence.report import certification, render_report, verify_instructions, verify_script, write_pdf
from evidence.timestamp import check_time, fetch_timestamp, verify_timestamp
from evidence.wacz import write_wacz
from models import Crawl, Market, Page, Payload, Url

NETWORK_WARC = "crawl-facts.warc.gz"
# Record ids of the network-path records are derived from what they describe, so re-exports match.
NETWORK_NAMESPACE = uuid.UUID("6d1f3c1e-2f4b-4a8e-9c1d-5b7a3e2f9a10")
DEPENDENCIES = ("scrapy", "warcio", "sqlalchemy", "stem", "bagit", "rfc3161-client", "cryptography")


class EvidenceError(Exception):
    """An export that cannot be made; no package was written."""


@dataclass(frozen=True)
class Selection:
    """What the package is about; every field optional, at least one given."""

    market: str | None = None
    vendor: str | None = None
    listing: str | None = None
    crawl_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> str:
        """One line naming the selection, as written into bag-info and the report."""
        parts = [
            f"{name}={value.isoformat() if isinstance(value, datetime) else value}"
            for name, value in (
                ("market", self.market), ("vendor", self.vendor), ("listing", self.listing),
                ("crawl", self.crawl_id), ("since", self.since), ("until", self.until),
            )
            if value is not None
        ]  # fmt: skip
        return " ".join(parts)

    def kinds(self) -> tuple[str, ...]:
        return ("listings", "feedback") if self.listing else layout.KINDS

    def filter(self) -> ExportFilter:
        return ExportFilter(
            market=self.market, crawl_id=self.crawl_id, since=self.since, until=self.until,
            vendor=self.vendor, listing=self.listing,
        )  # fmt: skip


@dataclass(frozen=True)
class Signer:
    """Who signs and who timestamps: the operator's key file and a TSA with its pinned root."""

    key: Path
    tsa_url: str
    tsa_root_pem: bytes
    tsa_cert_pem: bytes | None = None
    timeout: float = 30.0


@dataclass
class _Fetch:
    """A fetch a row came from, and the record holding its page's bytes."""

    crawl_id: int
    url: str
    fetched_at: datetime
    sha256: str
    warc_file: str
    record_id: str


@dataclass
class _Plan:
    """What goes into the package, gathered from the archive before anything is written."""

    rows: dict[str, list[dict[str, Any]]]
    fetches: list[list[_Fetch]]  # per kind's rows, in row order (parallel to the rows)
    crawls: dict[int, dict[str, Any]] = field(default_factory=dict)


def export_package(
    engine: Engine,
    raw_directory: Path,
    selection: Selection,
    case_id: str,
    output: Path,
    signer: Signer,
    operator: str,
    now: datetime | None = None,
) -> Path:
    """Write the package for `selection` into `output`; returns its folder. Raises EvidenceError."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", case_id):
        raise EvidenceError(f"case id {case_id!r}: use letters, digits, '.', '_' and '-' (at most 64)")
    if not selection.describe():
        raise EvidenceError("select something: a market, vendor, listing, crawl or time range")
    created = (now or datetime.now(UTC)).astimezone(UTC)
    private_key = load_private_key(signer.key)  # no key, no package: fail before any work
    plan = _plan(engine, selection)
    name = f"{case_id}_{created.strftime('%Y%m%dT%H%M%S%fZ')}"
    output.mkdir(parents=True, exist_ok=True)
    work = output / f".{name}.partial"
    final = output / name
    if final.exists():
        raise EvidenceError(f"{final} exists already")
    shutil.rmtree(work, ignore_errors=True)
    try:
        _write_payload(work, engine, raw_directory, selection, case_id, plan, created, operator)
        head = _custody(work, plan, selection, case_id, created, operator, name)
        fp = fingerprint(private_key.public_key())
        make_bag(
            work,
            {
                layout.CASE: case_id,
                layout.CREATED: created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                layout.QUERY: selection.describe(),
                layout.CUSTODY_HEAD: head,
                layout.SIGNER: fp,
                "Contact-Name": operator,
                "Export-Tool": f"dnm-archive {__version__}",
                "Archive-Database": make_url(str(engine.url)).render_as_string(hide_password=True),
            },
        )
        _sign(work, private_key, signer, created)
        from evidence.verify import verify_package  # the export checks itself as a court expert would

        verify_package(work, fp, signer.tsa_root_pem, signer.tsa_cert_pem)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final


# -- gathering ---------------------------------------------------------------------------------------


def _plan(engine: Engine, selection: Selection) -> _Plan:
    rows = {kind: list(export_rows(engine, kind, selection.filter())) for kind in selection.kinds()}
    if not any(rows.values()):
        raise EvidenceError(f"the archive holds nothing for {selection.describe()}")
    plan = _Plan(rows, [])
    with Session(engine) as session:
        crawl_ids = {row["crawl_id"] for kind in ("listings", "vendors") for row in rows.get(kind, [])}
        crawl_ids |= {row["first_crawl_id"] for row in rows.get("feedback", [])}
        fetches = _fetches(session, crawl_ids)
        by_payload = {(f.crawl_id, f.sha256): f for f in fetches.values()}
        for kind in selection.kinds():
            found: list[_Fetch] = []
            for row in rows[kind]:
                if kind == "feedback":
                    fetch = by_payload.get((row["first_crawl_id"], row["first_page_sha256"]))
                else:
                    fetch = fetches.get((row["crawl_id"], row["url"], row["observed_at"]))
                if fetch is None:
                    raise EvidenceError(
                        f"a {kind} row of crawl {row.get('crawl_id') or row.get('first_crawl_id')} has no "
                        f"raw capture (crawled before the raw store, or its capture failed): "
                        f"{row.get('url', '')}"
                    )
                found.append(fetch)
            plan.fetches.append(found)
        # The crawls the rows name, and those whose files hold the records: both are part of the story.
        holders = {f.warc_file for group in plan.fetches for f in group}
        for crawl, slug in session.execute(
            select(Crawl, Market.slug).join(Market, Crawl.market_id == Market.id).order_by(Crawl.id)
        ):
            if crawl.id in crawl_ids or (crawl.stats or {}).get("dnm/warc/file") in holders:
                plan.crawls[crawl.id] = _crawl_facts(crawl, slug)
    return plan


def _fetches(session: Session, crawl_ids: Iterable[int]) -> dict[tuple[int, str, str], _Fetch]:
    """The archived fetches of these crawls, by (crawl, URL, fetch time as exported)."""
    found: dict[tuple[int, str, str], _Fetch] = {}
    query = (
        select(
            Page.crawl_id, Url.url, Page.fetched_at, Payload.sha256, Payload.warc_file, Payload.warc_record_id
        )
        .join(Url, Page.url_id == Url.id)
        .join(Payload, Page.payload_id == Payload.id)
        .where(Page.crawl_id.in_(list(crawl_ids)), Payload.warc_record_id.is_not(None))
    )
    for crawl_id, url, fetched_at, sha256, warc_file, record_id in session.execute(query):
        found[crawl_id, url, fetched_at.isoformat()] = _Fetch(
            crawl_id, url, fetched_at, sha256, warc_file, record_id
        )
    return found


def _crawl_facts(crawl: Crawl, market: str) -> dict[str, Any]:
    stats = crawl.stats or {}
    return {
        "crawl_id": crawl.id,
        "market": market,
        "started_at": crawl.started_at.isoformat(),
        "finished_at": crawl.finished_at.isoformat() if crawl.finished_at else None,
        "status": crawl.status,
        "transport": crawl.transport,
        "tor_version": crawl.tor_version,
        "mirror": crawl.mirror,
        "tool_version": crawl.tool_version,
        "profile_version": crawl.profile_version,
        "profile_sha256": crawl.profile_sha256,
        "settings_sha256": crawl.settings_sha256,
        "warc_file": stats.get("dnm/warc/file"),
        "warc_chain_head": stats.get("dnm/warc/chain_head"),
        "warc_chain_records": stats.get("dnm/warc/chain_records"),
    }


# -- writing the payload -------------------------------------------------------------------------------


def _write_payload(
    work: Path,
    engine: Engine,
    raw_directory: Path,
    selection: Selection,
    case_id: str,
    plan: _Plan,
    created: datetime,
    operator: str,
) -> None:
    data = work / "data"
    for folder in ("captures", "extracted", "provenance", "custody", "report"):
        (data / folder).mkdir(parents=True)
    scratch = work / ".warc"
    scratch.mkdir()
    warcs = _copy_records(raw_directory, plan, scratch)
    warcs.append((NETWORK_WARC, _network_warc(plan, scratch / NETWORK_WARC)))
    last_capture = max(f.fetched_at for group in plan.fetches for f in group)
    pages = sorted(
        {(f.url, warc_date(f.fetched_at)) for group in plan.fetches for f in group},
        key=lambda p: (p[1], p[0]),
    )
    write_wacz(
        work / layout.CAPTURES,
        warcs,
        [{"url": url, "ts": ts} for url, ts in pages],
        title=f"{case_id}: {selection.describe()}",
        created=last_capture,
        software=f"dnm-archive {__version__}",
        extra={"dnm_selection": selection.describe()},
    )
    shutil.rmtree(scratch)
    names = {
        warc_file: _member_name(warc_file) for warc_file in {f.warc_file for g in plan.fetches for f in g}
    }
    for kind, fetches in zip(plan.rows, plan.fetches, strict=True):
        linked = [
            {**row, **_link(fetch, names[fetch.warc_file])}
            for row, fetch in zip(plan.rows[kind], fetches, strict=True)
        ]
        _write_rows(data / "extracted", kind, linked)
    provenance = {
        "selection": selection.describe(),
        "tool": {"name": "dnm-archive", "version": __version__, "python": platform.python_version()},
        "dependencies": {name: _version(name) for name in DEPENDENCIES},
        "crawls": list(plan.crawls.values()),
        "rows": {kind: len(rows) for kind, rows in plan.rows.items()},
    }
    (work / layout.PROVENANCE).write_bytes(_json(provenance))
    (work / layout.VERIFY_MD).write_text(verify_instructions(), encoding="utf-8")
    (work / layout.VERIFY_SH).write_text(verify_script(), encoding="utf-8")


def _member_name(warc_file: str) -> str:
    """The name under archive/ of the WARC holding `warc_file`'s records: `<market>-<file name>`."""
    return warc_file.replace("/", "-")


def _link(fetch: _Fetch, member: str) -> dict[str, Any]:
    return {
        "warc_filename": f"archive/{member}",
        "warc_record_id": fetch.record_id,
        "payload_sha256": fetch.sha256,
        "fetched_url": fetch.url,
        "fetched_at": fetch.fetched_at.isoformat(),
    }


def _copy_records(raw_directory: Path, plan: _Plan, scratch: Path) -> list[tuple[str, Path]]:
    """One WARC per source file: its warcinfo, the records the rows need (response and request), and the
    fetch-log records of the selection's later nights, copied byte for byte in their original order."""
    wanted: dict[str, set[str]] = {}
    for group in plan.fetches:
        for fetch in group:
            wanted.setdefault(fetch.warc_file, set()).add(fetch.record_id)
    # A row observed on a night that found the page unchanged: that night's file has its fetch-log line.
    logged: dict[str, set[tuple[str, str]]] = {}
    crawl_files = {c["crawl_id"]: c["warc_file"] for c in plan.crawls.values()}
    for group in plan.fetches:
        for fetch in group:
            own = crawl_files.get(fetch.crawl_id)
            if own and own != fetch.warc_file:
                logged.setdefault(own, set()).add((fetch.url, warc_date(fetch.fetched_at)))
    holders = {c["warc_file"]: c for c in plan.crawls.values() if c["warc_file"]}
    out: list[tuple[str, Path]] = []
    for warc_file in sorted(set(wanted) | set(logged)):
        source = raw_directory / warc_file
        facts = holders.get(warc_file)
        if facts is None:
            raise EvidenceError(f"{warc_file}: no crawl of the archive wrote it")
        try:
            # The chain as the crawl row vouches for it; each record copied must then hash as chained.
            chain = verified_chain(
                raw_directory,
                warc_file,
                {
                    "dnm/warc/chain_head": facts["warc_chain_head"],
                    "dnm/warc/chain_records": facts["warc_chain_records"],
                },
            )
        except ChainError as exc:
            raise EvidenceError(f"crawl {facts['crawl_id']}'s raw captures cannot be trusted: {exc}") from exc
        keep = {0}  # warcinfo
        for n, line in enumerate(chain):
            if line["record_id"] in wanted.get(warc_file, ()):
                keep.add(n)
                if n + 1 < len(chain) and chain[n + 1]["type"] == "request":
                    keep.add(n + 1)
        with source.open("rb") as stream:
            members = []
            for n, line in enumerate(chain):
                if n not in keep and line["type"] != "metadata":
                    continue  # only what goes into the package is read
                stream.seek(line["offset"])
                member = stream.read(line["length"])
                if hashlib.sha256(member).hexdigest() != line["sha256"]:
                    raise EvidenceError(
                        f"{warc_file} record {n} ({line['record_id']}) changed since capture: its bytes "
                        "are not those its hash chain recorded (run dnm archive verify)"
                    )
                if line["type"] == "metadata" and _kept_metadata(member, logged.get(warc_file, set())):
                    keep.add(n)
                if n in keep:
                    members.append(member)
        target = scratch / _member_name(warc_file)
        target.write_bytes(b"".join(members))
        out.append((_member_name(warc_file), target))
    return out


def _kept_metadata(member: bytes, fetches: set[tuple[str, str]]) -> bool:
    """Whether a metadata record goes into the package: the crawl's network path (written at capture), or
    a fetch log holding any of the selection's fetches (url, WARC date)."""
    record = gzip.decompress(member)
    head, _, body = record.partition(b"\r\n\r\n")
    if f"WARC-Target-URI: {NETWORK_PATH_URI}".encode() in head:
        return True
    if f"Content-Type: {FETCH_LOG_TYPE}".encode() not in head or not fetches:
        return False
    for raw in body.splitlines():
        if raw.strip():
            line = json.loads(raw)
            if (line.get("uri"), line.get("date")) in fetches:
                return True
    return False


def _network_warc(plan: _Plan, path: Path) -> Path:
    """A metadata record per crawl with what the crawl row adds to its captures: the hosts its rows were
    fetched from, the mirror in use at the end, its status."""
    hosts: dict[int, set[str]] = {}
    for group in plan.fetches:
        for fetch in group:
            hosts.setdefault(fetch.crawl_id, set()).add(urlsplit(fetch.url).netloc)
    with path.open("wb") as out:
        writer = Sha256WARCWriter(out, gzip=True, warc_version="WARC/1.1")
        for crawl_id, facts in plan.crawls.items():
            body = _json(
                {
                    "crawl_id": crawl_id,
                    "market": facts["market"],
                    "transport": facts["transport"],
                    "tor_version": facts["tor_version"],
                    "hosts_fetched": sorted(hosts.get(crawl_id, ())),
                    "mirror_at_end": facts["mirror"],
                    "status": facts["status"],
                    "source": "the crawl row (crawls table), written when the crawl ended; the network path "
                    "as the crawl began is the crawl's own urn:x-dnm:network-path record",
                }
            )
            when = datetime.fromisoformat(facts["finished_at"] or facts["started_at"])
            record = writer.create_warc_record(
                f"urn:x-dnm:crawl-facts:{crawl_id}",
                "metadata",
                payload=io.BytesIO(body),
                length=len(body),
                warc_content_type="application/json",
                warc_headers_dict={
                    "WARC-Date": warc_date(when),
                    "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(NETWORK_NAMESPACE, _json(facts).decode())}>",
                },
            )
            writer.write_record(record)
    return path


def _write_rows(folder: Path, kind: str, rows: list[dict[str, Any]]) -> None:
    (folder / f"{kind}.jsonl").write_bytes(b"".join(_json(row) for row in rows))
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v
                    for k, v in row.items()
                }
            )
    (folder / f"{kind}.csv").write_text(text.getvalue(), encoding="utf-8")


def _custody(
    work: Path, plan: _Plan, selection: Selection, case_id: str, created: datetime, operator: str, name: str
) -> str:
    log = CustodyLog()
    for facts in plan.crawls.values():
        log.append(
            "captured",
            f"dnm-archive {facts['tool_version']} crawler",
            {
                "crawl_id": facts["crawl_id"],
                "market": facts["market"],
                "warc_file": facts["warc_file"],
                "warc_chain_head": facts["warc_chain_head"],
                "status": facts["status"],
            },
            at=datetime.fromisoformat(facts["finished_at"] or facts["started_at"]),
        )
    log.append(
        "verified",
        f"dnm-archive {__version__}",
        {"check": "dnm archive verify", "crawls": list(plan.crawls)},
        at=created,
    )
    log.append(
        "exported",
        operator,
        {"case": case_id, "selection": selection.describe(), "package": name,
         "rows": {kind: len(rows) for kind, rows in plan.rows.items()}},
        at=created,
    )  # fmt: skip
    (work / layout.CUSTODY).write_bytes(log.lines())
    (work / layout.CERTIFICATION).write_text(
        certification(case_id, selection.describe(), created, plan.crawls), encoding="utf-8"
    )
    html = render_report(work, case_id, selection.describe(), created, operator, plan.crawls, plan.rows)
    (work / layout.REPORT).write_text(html, encoding="utf-8")
    compact = render_report(
        work, case_id, selection.describe(), created, operator, plan.crawls, plan.rows, compact=True
    )
    write_pdf(compact, work / layout.REPORT_PDF, [work / layout.PROVENANCE])
    return log.head()


def _sign(work: Path, private_key: Any, signer: Signer, created: datetime) -> None:
    signed = (work / layout.SIGNED).read_bytes()
    signature = sign(private_key, signed)
    token = fetch_timestamp(signature, signer.tsa_url, timeout=signer.timeout)
    info = verify_timestamp(token, signature, signer.tsa_root_pem, signer.tsa_cert_pem)
    check_time(info.gen_time, info.accuracy, created, timedelta(seconds=layout.TIME_TOLERANCE_SECONDS))
    (work / "signature").mkdir()
    (work / layout.SIGNATURE).write_bytes(signature)
    (work / layout.TIMESTAMP).write_bytes(token)
    (work / layout.SIGNER_KEY).write_bytes(public_pem(private_key))
    (work / layout.TSA_CERT).write_bytes(signer.tsa_cert_pem or _embedded_certificates(token))


def _embedded_certificates(token: bytes) -> bytes:
    """The certificates a token carries, as PEM (the TSA's own, when it sends it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from rfc3161_client import decode_timestamp_response

    response = decode_timestamp_response(token)
    pems = [
        x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        for der in response.signed_data.certificates
    ]
    if not pems:
        raise EvidenceError("the TSA's token carries no certificate: give the TSA certificate (--tsa-chain)")
    return b"".join(pems)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
