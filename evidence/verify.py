"""Verifying an evidence package (`dnm evidence verify`): every layer, offline, against pinned values only.

Layers, in order (each names itself when it fails):

1. bag: BagIt full validation of every manifest and algorithm; no file the manifests do not list;
   `signature/` holds exactly the four expected files (evidence.bag);
2. signature: the shipped public key is the one the pinned fingerprint names, and it signed
   `tagmanifest-sha256.txt` (evidence.keys); bag-info's fingerprint must be the pinned one too;
3. timestamp: the RFC 3161 token covers the signature bytes and chains to the pinned TSA root; the
   export time in bag-info lies within the token's time, its accuracy and the export tolerance
   (evidence.timestamp);
4. captures: the WACZ, path-exact, every member hashed, every WARC record's SHA-256 digests (evidence.wacz);
   every capture is older than the timestamp;
5. rows: every extracted row's record is in the WACZ, a response whose payload digest is the row's page
   hash (the record may be of another URL or night that returned the same bytes: the row's own fetch is
   `fetched_url`/`fetched_at`); the CSV holds the same rows as the JSON Lines;
6. custody: the custody log's chain up to the head bound in bag-info (evidence.custody);
7. provenance: every crawl a row names is described.

Nothing inside the package is trusted on its own: the shipped key and TSA certificate are checked against
the pins before anything they vouch for is believed. No network is used.
"""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from dnm.rawstore import digest_hex, parse_warc_date
from evidence import package as layout
from evidence.bag import BagError, verify_bag
from evidence.custody import CustodyError, verify_custody
from evidence.keys import SignatureError, normalize_fingerprint, verify_signature
from evidence.timestamp import TimestampError, TimestampInfo, check_time, verify_timestamp
from evidence.wacz import WaczError, check_wacz


class VerificationError(Exception):
    """A package that fails verification: `layer` names the broken layer."""

    def __init__(self, layer: str, message: str) -> None:
        super().__init__(f"{layer}: {message}")
        self.layer = layer


@dataclass
class Verified:
    """What a package that passed is: its case, its time, and each layer's line of evidence."""

    case: str
    created: datetime
    timestamp: TimestampInfo
    passed: list[tuple[str, str]] = field(default_factory=list)


def verify_package(
    package: Path, signer_fingerprint: str, tsa_root_pem: bytes, tsa_cert_pem: bytes | None = None
) -> Verified:
    """Check every layer of `package`; raises VerificationError naming the first one that fails."""
    package = Path(package)
    if not package.is_dir():
        raise VerificationError("package", f"{package} is not a folder")
    passed: list[tuple[str, str]] = []
    try:
        info = verify_bag(package, signature_files=layout.SIGNATURE_FILES)
    except (BagError, ValueError) as exc:
        raise VerificationError("bag", str(exc)) from exc
    passed.append(("bag", "every file matches the SHA-256 and SHA-512 manifests; no unlisted file"))

    pin = _pin(signer_fingerprint)
    signed = (package / layout.SIGNED).read_bytes()
    signature = (package / layout.SIGNATURE).read_bytes()
    try:
        verify_signature((package / layout.SIGNER_KEY).read_bytes(), signature, signed, pin)
    except SignatureError as exc:
        raise VerificationError("signature", str(exc)) from exc
    if info.get(layout.SIGNER, "").lower() != pin:
        raise VerificationError(
            "signature", f"bag-info names signer {info.get(layout.SIGNER)}, not the pinned key"
        )
    passed.append(("signature", f"{layout.SIGNED} signed by the pinned key {pin}"))

    shipped_tsa = (package / layout.TSA_CERT).read_bytes() or None
    try:
        stamp = verify_timestamp(
            (package / layout.TIMESTAMP).read_bytes(), signature, tsa_root_pem, tsa_cert_pem or shipped_tsa
        )
    except TimestampError as exc:
        raise VerificationError("timestamp", str(exc)) from exc
    created = _created(info)
    try:
        check_time(stamp.gen_time, stamp.accuracy, created, timedelta(seconds=layout.TIME_TOLERANCE_SECONDS))
    except TimestampError as exc:
        raise VerificationError("timestamp", str(exc)) from exc
    passed.append(("timestamp", f"signature stamped at {stamp.gen_time.isoformat()} by {stamp.signer}"))

    records = _captures(package, stamp)
    passed.append(
        ("captures", f"{len(records)} WARC records, digests checked, all captured before the timestamp")
    )
    rows = _rows(package, records)
    passed.append(("rows", f"{rows} rows, each linked to its record and page hash"))
    try:
        events = verify_custody((package / layout.CUSTODY).read_bytes(), info.get(layout.CUSTODY_HEAD, ""))
    except (CustodyError, OSError) as exc:
        raise VerificationError("custody", str(exc)) from exc
    passed.append(("custody", f"{len(events)} events chained to the head bound in bag-info"))
    _provenance(package)
    passed.append(("provenance", "every crawl a row names is described"))
    return Verified(info.get(layout.CASE, ""), created, stamp, passed)


def _pin(fingerprint: str) -> str:
    try:
        return normalize_fingerprint(fingerprint)
    except (SignatureError, ValueError) as exc:
        raise VerificationError("signature", f"pinned fingerprint: {exc}") from exc


def _created(info: dict[str, str]) -> datetime:
    value = info.get(layout.CREATED, "")
    try:
        created = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise VerificationError("bag", f"bag-info {layout.CREATED} {value!r} is not a UTC time") from None
    if created.tzinfo is None:
        raise VerificationError("bag", f"bag-info {layout.CREATED} {value!r} has no time zone")
    return created


@dataclass(frozen=True)
class _Record:
    kind: str
    payload_sha256: str | None


def _captures(package: Path, stamp: TimestampInfo) -> dict[tuple[str, str], _Record]:
    """The WACZ checked, and its records by (member, record id)."""
    path = package / layout.CAPTURES
    try:
        check_wacz(path)
    except (WaczError, OSError) as exc:
        raise VerificationError("captures", str(exc)) from exc
    latest = stamp.gen_time + (stamp.accuracy or timedelta(0)) + timedelta(seconds=1)
    records: dict[tuple[str, str], _Record] = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.startswith("archive/"):
                continue
            with archive.open(member) as stream:
                for record in ArchiveIterator(stream, check_digests="raise"):
                    headers = record.rec_headers
                    while record.raw_stream.read(1 << 16):
                        pass
                    when = parse_warc_date(headers.get_header("WARC-Date"))
                    if when > latest:
                        raise VerificationError(
                            "captures", f"{member}: a record dated {when.isoformat()} is after the timestamp"
                        )
                    digest = headers.get_header("WARC-Payload-Digest")
                    records[member, headers.get_header("WARC-Record-ID")] = _Record(
                        record.rec_type, digest_hex(digest) if digest else None
                    )
    return records


def _rows(package: Path, records: dict[tuple[str, str], _Record]) -> int:
    count = 0
    folder = package / layout.EXTRACTED
    for kind in layout.KINDS:
        jsonl = folder / f"{kind}.jsonl"
        if not jsonl.exists():
            continue
        rows = [json.loads(line) for line in jsonl.read_bytes().splitlines() if line.strip()]
        for number, row in enumerate(rows, 1):
            where = f"{kind}.jsonl row {number}"
            record = records.get((row.get("warc_filename", ""), row.get("warc_record_id", "")))
            if record is None:
                raise VerificationError(
                    "rows", f"{where}: record {row.get('warc_record_id')} is not in the captures"
                )
            if record.kind != "response":
                raise VerificationError(
                    "rows", f"{where}: record {row.get('warc_record_id')} is a {record.kind}"
                )
            page_hash = row.get("page_sha256") or row.get("first_page_sha256")
            if not (record.payload_sha256 == row.get("payload_sha256") == page_hash):
                raise VerificationError(
                    "rows",
                    f"{where}: page hash {page_hash} is not the record's payload {record.payload_sha256}",
                )
        with (folder / f"{kind}.csv").open(encoding="utf-8", newline="") as stream:
            table = list(csv.DictReader(stream))
        if len(table) != len(rows) or any(
            str(a.get("warc_record_id")) != b.get("warc_record_id") for a, b in zip(rows, table, strict=True)
        ):
            raise VerificationError("rows", f"{kind}.csv does not hold the rows of {kind}.jsonl")
        count += len(rows)
    if not count:
        raise VerificationError("rows", "the package holds no extracted row")
    return count


def _provenance(package: Path) -> None:
    try:
        described = {c["crawl_id"] for c in json.loads((package / layout.PROVENANCE).read_bytes())["crawls"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VerificationError("provenance", f"{layout.PROVENANCE}: {exc}") from exc
    for kind in layout.KINDS:
        jsonl = package / layout.EXTRACTED / f"{kind}.jsonl"
        if jsonl.exists():
            for line in jsonl.read_bytes().splitlines():
                row: dict[str, Any] = json.loads(line)
                crawl = row.get("crawl_id", row.get("first_crawl_id"))
                if crawl not in described:
                    raise VerificationError("provenance", f"crawl {crawl} of a {kind} row is not described")
