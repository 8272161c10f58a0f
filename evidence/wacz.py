"""The WACZ layer of an evidence package: a deterministic WACZ 1.1.1 writer and a strict checker.

A WACZ is a zip: `archive/<name>.warc.gz` (stored, not deflated: the WARC is already gzip, record by
record, and replay reads records at their offsets), `indexes/index.cdx` (a CDXJ line per response,
revisit and metadata record), `pages/pages.jsonl`, `datapackage.json` (every other member with its
SHA-256 and size) and `datapackage-digest.json` (the SHA-256 of datapackage.json). `write_wacz` gives the
same bytes for the same inputs: fixed member order, zip times from `created`, fixed permissions.

`check_wacz` is stricter than py-wacz's validator: path-exact listing both ways (an unlisted member
without a dot, nested paths), the digest file required, zip-slip and duplicate names refused, WARCs
stored and one gzip member per record (a WARC recompressed as one stream, or truncated, fails), every
record's block digest (and payload digest) present as SHA-256 and checked, and the index equal to the one
the WARCs give. What this layer cannot catch: someone who changes a payload and recomputes every inner
hash (record digests, datapackage, digest file) gets a WACZ that passes, and WARC record digests do not
cover the WARC headers (date, URL). Only the package signature, over hashes of the whole .wacz, catches
those.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord

from dnm.rawstore import parse_warc_date

WACZ_VERSION = "1.1.1"
DATAPACKAGE = "datapackage.json"
DIGEST = "datapackage-digest.json"
INDEX = "indexes/index.cdx"
PAGES = "pages/pages.jsonl"
PAGES_FORMAT = "json-pages-1.0"
WARC_DIR = "archive/"
WARC_SUFFIX = ".warc.gz"
INDEXED_TYPES = frozenset({"response", "revisit", "metadata"})
RESERVED_KEYS = frozenset({"profile", "wacz_version", "title", "created", "software", "resources"})
CHUNK = 1 << 16
FILE_MODE = 0o100644 << 16  # a regular file, rw-r--r--, whoever writes the zip
UNIX = 3  # ZipInfo.create_system, fixed so the bytes do not depend on the writing platform
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
ZipTime = tuple[int, int, int, int, int, int]


class WaczError(ValueError):
    """A WACZ that fails a check: `member` (a zip member, or `zip`) and the problem."""

    def __init__(self, member: str, problem: str) -> None:
        super().__init__(f"{member}: {problem}")
        self.member, self.problem = member, problem


@dataclass(frozen=True)
class WaczInfo:
    """What a checked WACZ holds."""

    title: str
    created: str
    software: str
    datapackage_sha256: str  # hex: the value an outer manifest or signature binds
    warcs: tuple[str, ...]  # member paths
    records: int
    indexed: int
    pages: int


@dataclass(frozen=True)
class WarcScan:
    """A WARC read through: every record's (offset, length), its CDXJ lines, and the file's SHA-256."""

    records: list[tuple[int, int]]
    index: list[str]
    sha256: str


# -- writing -------------------------------------------------------------------------------------------


def write_wacz(
    path: Path,
    warc_files: list[tuple[str, Path]],
    pages: list[dict[str, Any]],
    *,
    title: str,
    created: datetime,
    software: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a WACZ of `warc_files` ((name under archive/, source file)) and `pages` ({url, ts, title?});
    `extra` adds top-level datapackage.json fields. The source WARCs are read through (every digest
    checked) before anything is written; the file appears only once complete."""
    if created.tzinfo is None:
        raise ValueError("created must have a time zone")
    if not warc_files:
        raise ValueError("a WACZ needs at least one WARC file")
    if clash := RESERVED_KEYS & set(extra or {}):
        raise ValueError(f"extra may not set {sorted(clash)}")
    members = [WARC_DIR + name for name, _ in warc_files]
    for member in members:
        if problem := name_problem(member) or _warc_name_problem(member):
            raise ValueError(f"WARC name {member!r}: {problem}")
    if len(set(members)) != len(members):
        raise ValueError(f"duplicate WARC names in {members}")
    sources = sorted(warc_files)
    scans = [
        scan_warc(WARC_DIR + name, name, lambda source=source: source.open("rb")) for name, source in sources
    ]
    index = _index_bytes(line for scan in scans for line in scan.index)
    pages_bytes = _pages_bytes(title, pages)
    stamp = _zip_time(created)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            resources = [
                _copy_stored(archive, WARC_DIR + name, source, scan.sha256, stamp)
                for (name, source), scan in zip(sources, scans, strict=True)
            ]
            resources += [
                _write_deflated(archive, member, data, stamp)
                for member, data in ((INDEX, index), (PAGES, pages_bytes))
            ]
            package = {
                "profile": "data-package",
                "wacz_version": WACZ_VERSION,
                "title": title,
                "created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "software": software,
                **(extra or {}),
                "resources": sorted(resources, key=lambda resource: resource["path"]),
            }
            package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode("utf-8")
            _write_deflated(archive, DATAPACKAGE, package_bytes, stamp)
            digest = {"path": DATAPACKAGE, "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
            _write_deflated(archive, DIGEST, json.dumps(digest, indent=2).encode("utf-8"), stamp)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _zip_time(created: datetime) -> ZipTime:
    """`created` in UTC as a zip timestamp (zip times start in 1980)."""
    moment = max(created.astimezone(UTC), datetime(1980, 1, 1, tzinfo=UTC))
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def _zip_info(member: str, stamp: ZipTime, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(member, date_time=stamp)
    info.compress_type = compress
    info.create_system = UNIX
    info.external_attr = FILE_MODE
    return info


def _resource(member: str, sha256_hex: str, size: int) -> dict[str, Any]:
    return {"name": member, "path": member, "hash": f"sha256:{sha256_hex}", "bytes": size}


def _write_deflated(archive: zipfile.ZipFile, member: str, data: bytes, stamp: ZipTime) -> dict[str, Any]:
    archive.writestr(_zip_info(member, stamp, zipfile.ZIP_DEFLATED), data, compresslevel=9)
    return _resource(member, hashlib.sha256(data).hexdigest(), len(data))


def _copy_stored(
    archive: zipfile.ZipFile, member: str, source: Path, scanned_sha256: str, stamp: ZipTime
) -> dict[str, Any]:
    """Copy a WARC in uncompressed; it must still be the file that was scanned."""
    info = _zip_info(member, stamp, zipfile.ZIP_STORED)
    info.file_size = source.stat().st_size  # lets zipfile choose zip64 for a large WARC up front
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as stream, archive.open(info, "w") as target:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
    if digest.hexdigest() != scanned_sha256:
        raise ValueError(f"{source} changed while it was being exported")
    return _resource(member, scanned_sha256, size)


def _pages_bytes(title: str, pages: list[dict[str, Any]]) -> bytes:
    lines = [{"format": PAGES_FORMAT, "id": "pages", "title": title}]
    for page in pages:
        line = dict(page)
        if isinstance(line.get("ts"), datetime):
            line["ts"] = line["ts"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not (isinstance(line.get("url"), str) and isinstance(line.get("ts"), str)):
            raise ValueError(f"a page needs a url and a ts: {page!r}")
        lines.append(line)
    return b"".join(_compact(line) + b"\n" for line in lines)


def _compact(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _index_bytes(lines: Iterator[str]) -> bytes:
    """CDXJ sorted as replay tools binary-search it (by urlkey, then timestamp)."""
    return "".join(line + "\n" for line in sorted(lines)).encode("utf-8")


# -- reading a WARC: gzip framing, records and digests, index lines ----------------------------------


def scan_warc(member: str, filename: str, open_stream: Callable[[], IO[bytes]]) -> WarcScan:
    """Read a WARC twice: its gzip members, then its records with every digest checked. Each record must
    be exactly one gzip member. `filename` is the name the index gives (the path under archive/)."""
    with _reading(member), open_stream() as stream:
        members, sha256_hex = _gzip_members(member, stream)
    records: list[tuple[int, int]] = []
    index: list[str] = []
    with _reading(member), open_stream() as stream:
        iterator = ArchiveIterator(stream, check_digests="raise")
        try:
            for record in iterator:
                while record.raw_stream.read(CHUNK):  # reading the block through checks its digests
                    pass
                offset, length = iterator.get_record_offset(), iterator.get_record_length()
                _require_digests(member, offset, record)
                records.append((offset, length))
                if record.rec_type in INDEXED_TYPES:
                    index.append(_cdx_line(member, record, filename, offset, length))
        except WaczError:
            raise
        except Exception as error:  # warcio, gzip and zip errors alike: any failure to read is a failure
            offset = sum(records[-1]) if records else 0
            where = f" at offset {offset}" if offset in {start for start, _ in members} else ""
            problem = " ".join(str(error).split()) or type(error).__name__
            raise WaczError(member, f"WARC record {len(records) + 1}{where}: {problem}") from None
        if iterator.err_count:
            raise WaczError(member, f"WARC has {iterator.err_count} record(s) whose Content-Length is wrong")
    if not records:
        raise WaczError(member, "WARC holds no record")
    if records != members:  # warcio mostly fails first; this states the invariant replay relies on
        if len(members) < len(records):
            problem = "several records share a gzip member (not a record-per-member WARC: recompressed?)"
        else:
            problem = "gzip members do not match records one to one"
        raise WaczError(member, f"{problem}: {len(members)} gzip members, {len(records)} records")
    return WarcScan(records, index, sha256_hex)


def _gzip_members(member: str, stream: IO[bytes]) -> tuple[list[tuple[int, int]], str]:
    """(offset, length) of every gzip member of a stream, and the stream's SHA-256; a corrupt member
    or one cut short raises. The inflated bytes are discarded (at most CHUNK at a time in memory)."""
    members: list[tuple[int, int]] = []
    digest = hashlib.sha256()
    position = start = 0
    inflater: Any = None
    data = b""
    try:
        while True:
            if not data:
                data = stream.read(CHUNK)
                digest.update(data)
                if not data:
                    break
            if inflater is None:
                inflater, start = zlib.decompressobj(wbits=31), position
            inflater.decompress(data, CHUNK)
            rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            position += len(data) - len(rest)
            data = rest
            if inflater.eof:
                members.append((start, position - start))
                inflater = None
        if inflater is not None:
            while not inflater.eof and inflater.decompress(b"", CHUNK):
                pass  # output zlib held back for want of room
            if not inflater.eof:
                raise WaczError(member, f"gzip member at offset {start} is cut short: the WARC is truncated")
            members.append((start, position - start))
    except zlib.error as error:
        raise WaczError(member, f"gzip member at offset {start} is corrupt ({error})") from None
    return members, digest.hexdigest()


def _require_digests(member: str, offset: int, record: ArcWarcRecord) -> None:
    """warcio checks only the digests a record declares: a record without one would go unchecked."""
    headers = record.rec_headers
    needed = ["WARC-Block-Digest"] + (
        ["WARC-Payload-Digest"] if record.rec_type in ("response", "revisit") else []
    )
    for name in needed:
        value = headers.get_header(name) or ""
        if not value.lower().startswith("sha256:"):
            raise WaczError(
                member,
                f"{record.rec_type or 'untyped'} record at offset {offset}: no SHA-256 {name} ({value!r})",
            )


def _cdx_line(member: str, record: ArcWarcRecord, filename: str, offset: int, length: int) -> str:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    try:
        timestamp = parse_warc_date(headers.get_header("WARC-Date") or "").strftime("%Y%m%d%H%M%S")
    except ValueError:
        timestamp = ""
    if not url or not timestamp:
        raise WaczError(
            member, f"{record.rec_type} record at offset {offset}: no target URI or no valid date"
        )
    fields = {
        "url": url,
        "digest": headers.get_header("WARC-Payload-Digest") or headers.get_header("WARC-Block-Digest"),
        "mime": _mime(record),
        "offset": str(offset),
        "length": str(length),
        "filename": filename,
    }
    if record.http_headers is not None and record.http_headers.get_statuscode():
        fields["status"] = record.http_headers.get_statuscode()
    return f"{urlkey(url)} {timestamp} {_compact(fields).decode('utf-8')}"


def _mime(record: ArcWarcRecord) -> str:
    if record.rec_type == "revisit":
        return "warc/revisit"
    if record.http_headers is not None:
        value = record.http_headers.get_header("Content-Type") or ""
    else:
        value = record.rec_headers.get_header("Content-Type") or ""
    return value.split(";", 1)[0].strip().lower() or "-"


def urlkey(url: str) -> str:
    """A SURT-style sort key: host labels reversed, no scheme (`onion,market)/listing/1`), lower case."""
    parts = urlsplit(url)
    if not parts.hostname:
        return url.lower().replace(" ", "%20")
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    host = ",".join(reversed(parts.hostname.split(".")))
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}){parts.path or '/'}{query}".lower().replace(" ", "%20")


# -- checking ------------------------------------------------------------------------------------------


def check_wacz(path: Path) -> WaczInfo:
    """Check a WACZ strictly (see the module docstring); raises WaczError naming the member and problem."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise WaczError("zip", f"not a readable zip file ({error})") from None
    with archive:
        members = _members(archive)
        package, package_sha256 = _datapackage(archive, members)
        resources = _resources(package)
        for name in sorted(members):
            if name not in resources and name not in (DATAPACKAGE, DIGEST):
                raise WaczError(name, "zip member not listed in datapackage.json resources")
        for name in sorted(resources):
            if name not in members:
                raise WaczError(name, "listed in datapackage.json resources but not in the zip")
        warcs = sorted(name for name in resources if name.startswith(WARC_DIR))
        for name in (INDEX, PAGES):
            if name not in resources:
                raise WaczError(name, "missing: a WACZ needs an index and a pages list")
        if not warcs:
            raise WaczError(WARC_DIR, "no WARC file in the WACZ")
        for name in warcs:
            if problem := _warc_name_problem(name):
                raise WaczError(name, problem)
            if members[name].compress_type != zipfile.ZIP_STORED:
                raise WaczError(
                    name, "WARC member is compressed in the zip; a WACZ stores WARCs (ZIP_STORED)"
                )
        for name, (sha256_hex, size) in sorted(resources.items()):
            _check_resource(archive, members[name], sha256_hex, size)
        scans = [
            scan_warc(name, name[len(WARC_DIR) :], lambda info=members[name]: archive.open(info))
            for name in warcs
        ]
        expected = _index_bytes(line for scan in scans for line in scan.index)
        actual = _read(archive, members[INDEX])
        if actual != expected:
            raise WaczError(INDEX, _index_problem(actual, expected))
        pages = _check_pages(_read(archive, members[PAGES]))
    return WaczInfo(
        title=str(package.get("title", "")),
        created=str(package.get("created", "")),
        software=str(package.get("software", "")),
        datapackage_sha256=package_sha256,
        warcs=tuple(warcs),
        records=sum(len(scan.records) for scan in scans),
        indexed=sum(len(scan.index) for scan in scans),
        pages=pages,
    )


def name_problem(name: str) -> str | None:
    """Why a member path is unsafe or ambiguous when extracted (zip-slip and the like), or None."""
    if "\\" in name:
        return "backslash in the name (a path separator on Windows: zip-slip)"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path (zip-slip)"
    if name.endswith("/"):
        return "directory entry (a WACZ lists files only)"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "empty, `.` or `..` path component (zip-slip)"
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return "control character in the name"
    return None


def _warc_name_problem(name: str) -> str | None:
    if not (name.startswith(WARC_DIR) and name.endswith(WARC_SUFFIX)):
        return f"archive/ holds only WARC files named *{WARC_SUFFIX}"
    return None


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Members by name, once every name is safe and unique (also ignoring case)."""
    members: dict[str, zipfile.ZipInfo] = {}
    folded: set[str] = set()
    for info in archive.infolist():
        name = info.filename
        if info.orig_filename != name:
            raise WaczError(repr(info.orig_filename), "member name holds a NUL byte or was rewritten")
        if problem := name_problem(name):
            raise WaczError(repr(name), problem)
        if name.casefold() in folded:
            raise WaczError(name, "duplicate member name (a second entry would shadow the first)")
        if info.flag_bits & 0x1:
            raise WaczError(name, "encrypted member")
        folded.add(name.casefold())
        members[name] = info
    return members


@contextmanager
def _reading(member: str) -> Iterator[None]:
    """Zip-level failures (bad CRC, header/directory disagreement, bad deflate data) as WaczError."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as error:
        raise WaczError(member, f"unreadable zip member ({error})") from None


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with _reading(info.filename):
        return archive.read(info)


def _json(member: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WaczError(member, f"not JSON ({error})") from None


def _datapackage(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> tuple[dict[str, Any], str]:
    """datapackage.json, once datapackage-digest.json vouches for its bytes; and its SHA-256 hex."""
    for name in (DIGEST, DATAPACKAGE):
        if name not in members:
            raise WaczError(name, "missing: the WACZ cannot vouch for its datapackage")
    digest = _json(DIGEST, _read(archive, members[DIGEST]))
    if not (isinstance(digest, dict) and set(digest) == {"path", "hash"} and digest["path"] == DATAPACKAGE):
        raise WaczError(DIGEST, f'must be exactly {{"path": "{DATAPACKAGE}", "hash": "sha256:<hex>"}}')
    data = _read(archive, members[DATAPACKAGE])
    actual = hashlib.sha256(data).hexdigest()
    if digest["hash"] != f"sha256:{actual}":
        raise WaczError(
            DIGEST, f"hash {digest['hash']!r} is not the SHA-256 of {DATAPACKAGE} (sha256:{actual})"
        )
    package = _json(DATAPACKAGE, data)
    if not isinstance(package, dict):
        raise WaczError(DATAPACKAGE, "not a JSON object")
    if package.get("profile") != "data-package" or package.get("wacz_version") != WACZ_VERSION:
        raise WaczError(DATAPACKAGE, f"profile/wacz_version are not data-package/{WACZ_VERSION}")
    return package, actual


def _resources(package: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """path -> (sha256 hex, bytes) of every resource, each well formed and listed once."""
    entries = package.get("resources")
    if not isinstance(entries, list) or not entries:
        raise WaczError(DATAPACKAGE, "no resources list")
    resources: dict[str, tuple[str, int]] = {}
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or (problem := name_problem(path)):
            raise WaczError(DATAPACKAGE, f"resource {entry!r}: bad path ({problem if path else 'none'})")
        digest, size = entry.get("hash"), entry.get("bytes")
        if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise WaczError(DATAPACKAGE, f"resource {path}: hash {digest!r} is not sha256:<hex>")
        if type(size) is not int or size < 0:
            raise WaczError(DATAPACKAGE, f"resource {path}: bytes {size!r} is not a size")
        if path in resources or path in (DATAPACKAGE, DIGEST):
            raise WaczError(DATAPACKAGE, f"resource {path} listed twice (or lists the datapackage itself)")
        resources[path] = (digest.removeprefix("sha256:"), size)
    return resources


def _check_resource(archive: zipfile.ZipFile, info: zipfile.ZipInfo, sha256_hex: str, size: int) -> None:
    digest, read = hashlib.sha256(), 0
    with _reading(info.filename), archive.open(info) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            read += len(chunk)
    if read != size:
        raise WaczError(info.filename, f"{read} bytes, datapackage.json says {size}")
    if digest.hexdigest() != sha256_hex:
        raise WaczError(info.filename, f"SHA-256 {digest.hexdigest()} is not datapackage.json's {sha256_hex}")


def _index_key(line: str) -> tuple[str, str] | None:
    """(filename, offset) a CDXJ line points at, or None if it is not `urlkey timestamp {json}`."""
    parts = line.split(" ", 2)
    try:
        fields = json.loads(parts[2]) if len(parts) == 3 else None
    except json.JSONDecodeError:
        return None
    if not isinstance(fields, dict):
        return None
    return str(fields.get("filename")), str(fields.get("offset"))


def _index_problem(actual: bytes, expected: bytes) -> str:
    """Which index line is wrong: pointing at no record, disagreeing with its record, or missing."""
    try:
        lines = actual.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return "index is not UTF-8"
    wanted = {_index_key(line): line for line in expected.decode("utf-8").splitlines()}
    seen = set()
    for number, line in enumerate(lines, start=1):
        key = _index_key(line)
        if key is None:
            return f"line {number} is not `urlkey timestamp {{json}}`"
        if key not in wanted:
            return f"line {number} points at no record (file {key[0]}, offset {key[1]})"
        if line != wanted[key]:
            return (
                f"line {number} disagrees with the record at {key[0]} offset {key[1]}: expected {wanted[key]}"
            )
        seen.add(key)
    if missing := [key for key in wanted if key not in seen]:
        return f"record at {missing[0][0]} offset {missing[0][1]} is not indexed"
    return "index lines are not sorted, repeated, or not newline-terminated"


def _check_pages(data: bytes) -> int:
    """The number of pages of a pages.jsonl whose header and lines are well formed."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise WaczError(PAGES, "not UTF-8") from None
    header = _json(PAGES, lines[0].encode()) if lines else None
    if not (isinstance(header, dict) and header.get("format") == PAGES_FORMAT):
        raise WaczError(PAGES, f"first line is not a {PAGES_FORMAT} header")
    for number, line in enumerate(lines[1:], start=2):
        page = _json(PAGES, line.encode())
        if not (
            isinstance(page, dict) and isinstance(page.get("url"), str) and isinstance(page.get("ts"), str)
        ):
            raise WaczError(PAGES, f"line {number} is not a page with a url and a ts")
    return len(lines) - 1
