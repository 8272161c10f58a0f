"""The raw capture store: every captured page as WARC/1.1 records with SHA-256 digests, one file per crawl.

Layout: `<DNM_RAW_DIR>/<market>/<crawl_id>-<UTC timestamp>.warc.gz`, gzip-compressed record by record
(each record its own gzip member, so a reader can seek to any record). The file opens with a
`warcinfo` record (tool, profile, settings, transport, tor and warcio versions); then, for each page,
a `response` record (status line, headers and body, as Scrapy delivered them) and its `request`
record (method, target and headers; never a request body). Identical payloads are stored once:
- a payload already written by this crawl gets a `revisit` record (profile identical-payload-digest)
  referring to the response record in the same file, and its request record;
- a payload an earlier crawl stored (a page unchanged since) gets one line in the crawl's *fetch log*:
  `metadata` records (Content-Type `application/x-ndjson`, target `urn:x-dnm:fetch-log:<crawl>:<n>`),
  one JSON object per fetch (uri, date, method, status, payload_digest, refers_to, refers_to_file),
  written every LOG_CHUNK fetches and at close. A revisit record and its request record cost about
  1 KB compressed (record ids and digests do not compress); a log line costs about 60 bytes, which is
  what lets a night that finds the market unchanged add a few percent of the first night's bytes.
  The log's response headers are not kept (they are the stored record's, but for the Date).

Tamper evidence: next to each WARC file, `<file>.chain.jsonl` holds one line per record, in order:
its byte offset and length in the file, the SHA-256 of its gzip member, its id and type, and `prev`,
the SHA-256 of the previous line (64 zeros for the first). The crawl row keeps the chain's head (the
SHA-256 of the last line) and length in its stats (`dnm/warc/chain_head`, `dnm/warc/chain_records`), so
a record changed, removed, reordered or appended inside the store is found by `dnm archive verify`
(dnm.archive_check) even when the chain file is rewritten to match.

Secrets never enter the file: request `Cookie`, `Authorization` and `Proxy-Authorization` and
response `Set-Cookie` values are replaced by `[redacted]`, and request bodies (login forms) are not
stored at all. warcio writes SHA-1 digests; `Sha256WARCWriter` makes them `sha256:` (base32, as
warcio writes and checks them). Reading (`read_records`, `RecordReader`) checks every digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from io import BytesIO
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date, iso_date_to_datetime
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from dnm.items import Headers, HttpExchange, PageItem

WARC_VERSION = "WARC/1.1"
REDACTED = "[redacted]"
# Credentials and session identifiers: their values are replaced, their presence is kept.
SECRET_REQUEST_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
SECRET_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
# The store holds the body Scrapy delivered (decoded, unchunked); headers that describe another form
# of it are kept under this prefix (pywb's convention), so that readers do not decode twice.
ORIGINAL_PREFIX = "X-Archive-Orig-"
WIRE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


def warcio_version() -> str:
    return version("warcio")


class Sha256WARCWriter(WARCWriter):
    """warcio's writer with `sha256:` block and payload digests instead of its hard-coded SHA-1."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")


def sha256_digest(body: bytes) -> str:
    """A WARC digest value for `body`: `sha256:` and the base32 digest, as warcio writes it."""
    return "sha256:" + base64.b32encode(hashlib.sha256(body).digest()).decode("ascii")


def digest_hex(value: str) -> str:
    """The hex form of a WARC `sha256:` digest (base32, base16 or hex spelled)."""
    algorithm, _, encoded = value.partition(":")
    if algorithm.lower() != "sha256":
        raise ValueError(f"not a sha256 digest: {value!r}")
    if len(encoded) == 64:
        return encoded.lower()
    return base64.b32decode(encoded.upper()).hex()


def warc_date(moment: datetime) -> str:
    """A WARC-Date with microseconds (WARC/1.1), so the capture time survives exactly."""
    return datetime_to_iso_date(moment.astimezone(UTC).replace(tzinfo=None), use_micros=True)


def parse_warc_date(value: str) -> datetime:
    return iso_date_to_datetime(value).replace(tzinfo=UTC)


def redact(headers: Headers, secret: frozenset[str]) -> list[tuple[str, str]]:
    """Headers with the values of secret ones replaced by `[redacted]`."""
    return [(name, REDACTED if name.lower() in secret else value) for name, value in headers]


def response_headers(http: HttpExchange, body: bytes) -> list[tuple[str, str]]:
    """The response headers as stored: secrets redacted, wire-form headers renamed, true Content-Length."""
    out: list[tuple[str, str]] = []
    for name, value in redact(http.response_headers, SECRET_RESPONSE_HEADERS):
        if name.lower() == "content-length" and value.strip() == str(len(body)):
            continue  # written again below
        out.append((ORIGINAL_PREFIX + name, value) if name.lower() in WIRE_HEADERS else (name, value))
    out.append(("Content-Length", str(len(body))))
    return out


def request_headers(http: HttpExchange) -> list[tuple[str, str]]:
    """The request headers as stored: secrets redacted; the length of a body not stored is renamed."""
    return [
        (ORIGINAL_PREFIX + name, value) if name.lower() == "content-length" else (name, value)
        for name, value in redact(http.request_headers, SECRET_REQUEST_HEADERS)
    ]


@dataclass(frozen=True)
class StoredPayload:
    """A record holding a full payload, which a revisit record or a fetch-log line may refer to."""

    warc_file: str
    record_id: str
    url: str | None = None
    date: str | None = None


@dataclass(frozen=True)
class StoredRecord:
    """Where a page's bytes are: the file (relative to the raw directory) and the response record holding
    its payload, and the payload digest. `revisit`: this fetch was written as a revisit record; `logged`:
    as a fetch-log line (the payload is in an earlier crawl's file)."""

    warc_file: str
    record_id: str
    payload_sha256: str
    revisit: bool = False
    logged: bool = False


# Finds a payload (by its hex SHA-256) stored by an earlier crawl, or None.
EarlierLookup = Callable[[str], StoredPayload | None]
# Fetch-log lines buffered before they are written as one metadata record: a crash loses at most these
# lines of the raw log (the pages table still has each fetch, and every payload is already stored).
LOG_CHUNK = 500
FETCH_LOG_TYPE = "application/x-ndjson"
FETCH_LOG_URI = "urn:x-dnm:fetch-log:"
# The crawl's network path (transport, tor, name resolution, isolation, clock), written after warcinfo.
NETWORK_PATH_URI = "urn:x-dnm:network-path:"


class RawStore:
    """One crawl's WARC file: opened with its warcinfo record; per page a response (or revisit) plus its
    request record, or a fetch-log line; flushed after each record, closed at the end of the crawl."""

    def __init__(
        self,
        directory: Path,
        market: str,
        crawl_id: int,
        info: dict[str, str],
        earlier: EarlierLookup | None = None,
    ) -> None:
        self.directory = directory
        self.earlier = earlier
        self.crawl_id = crawl_id
        # Payloads this file holds, and payloads earlier crawls' files hold (looked up once each).
        self.payloads: dict[str, StoredPayload] = {}
        self.earlier_payloads: dict[str, StoredPayload | None] = {}
        self.records = 0
        self.revisits = 0
        self.logged = 0
        self.log: list[dict[str, Any]] = []
        self.log_records = 0
        self.final_size = 0
        # The write error that stopped the store (a full disk): nothing more is written after it.
        self.failed: OSError | None = None
        folder = directory / market
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        raw, self.name = _create_exclusive(folder, f"{crawl_id}-{stamp}", ".warc.gz")
        self.file = _MemberHasher(raw)
        self.chain = ChainWriter(folder / f"{self.name}{CHAIN_SUFFIX}")
        self.warc_file = f"{market}/{self.name}"
        self.writer = Sha256WARCWriter(self.file, gzip=True, warc_version=WARC_VERSION)
        self._write(self.writer.create_warcinfo_record(self.name, info))

    @property
    def bytes(self) -> int:
        """Compressed bytes written so far (the file's size once closed)."""
        return self.final_size if self.file.closed else self.file.tell()

    def close(self) -> None:
        """Write the buffered fetch log, sync the file and its chain to disk, close both."""
        if self.file.closed:
            return
        try:
            if self.failed is None:
                self.flush_log()
                os.fsync(self.file.fileno())
                os.fsync(self.chain.fileno())
        finally:
            self.final_size = self.file.tell()
            self.file.close()
            self.chain.close()

    def write_metadata(self, uri: str, content_type: str, body: bytes) -> str:
        """Write a `metadata` record (chained like every record); returns its record id."""
        record = self.writer.create_warc_record(
            uri,
            "metadata",
            payload=BytesIO(body),
            length=len(body),
            warc_content_type=content_type,
            warc_headers_dict={"WARC-Date": warc_date(datetime.now(UTC))},
        )
        self._write(record)
        self.file.flush()
        return str(record.rec_headers.get_header("WARC-Record-ID"))

    def flush_log(self) -> None:
        """Write the buffered fetch-log lines as one metadata record."""
        if not self.log:
            return
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in self.log).encode()
        self.log_records += 1
        self.write_metadata(f"{FETCH_LOG_URI}{self.crawl_id}:{self.log_records}", FETCH_LOG_TYPE, body)
        self.log = []

    def write(self, item: PageItem) -> StoredRecord:
        """Write a page's response (or revisit) and request records; returns where the page is."""
        http = item.http or HttpExchange()
        payload_hex = hashlib.sha256(item.body).hexdigest()
        date = warc_date(item.fetched_at)
        status = StatusAndHeaders(
            f"{item.status} {http.reason}".rstrip(), response_headers(http, item.body), protocol=http.protocol
        )
        original = self.payloads.get(payload_hex)
        earlier = None if original is not None else self._earlier(payload_hex)
        if earlier is not None:
            self.log.append(
                {
                    "uri": item.url,
                    "date": date,
                    "method": http.method,
                    "status": item.status,
                    "payload_digest": sha256_digest(item.body),
                    "refers_to": earlier.record_id,
                    "refers_to_file": earlier.warc_file,
                }
            )
            self.logged += 1
            if len(self.log) >= LOG_CHUNK:
                self.flush_log()
            return StoredRecord(earlier.warc_file, earlier.record_id, payload_hex, logged=True)
        if original is not None:
            assert original.url is not None and original.date is not None
            record = self.writer.create_revisit_record(
                item.url,
                sha256_digest(item.body),
                original.url,
                original.date,
                http_headers=status,
                warc_headers_dict={"WARC-Date": date, "WARC-Refers-To": original.record_id},
            )
        else:
            record = self.writer.create_warc_record(
                item.url,
                "response",
                payload=BytesIO(item.body),
                length=len(item.body),
                http_headers=status,
                warc_headers_dict={"WARC-Date": date},
            )
        record_id = record.rec_headers.get_header("WARC-Record-ID")
        self._write(record)
        self._write(self._request(item, http, date, record_id))
        self.file.flush()
        self.records += 1
        if original is not None:
            self.revisits += 1
            return StoredRecord(original.warc_file, original.record_id, payload_hex, revisit=True)
        self.payloads[payload_hex] = StoredPayload(self.warc_file, record_id, item.url, date)
        return StoredRecord(self.warc_file, record_id, payload_hex)

    def _write(self, record: ArcWarcRecord) -> None:
        """Write one record (one gzip member) and add it to the file's hash chain.

        A record is in the file once its chain line is: when either write fails (a full disk), both files
        are cut back to the last chained record and the store refuses further writes, so what is on disk
        stays a readable WARC file and its chain, and no page is linked to a record that is not there.
        """
        if self.failed is not None:
            raise RawStoreFailed(f"the raw store stopped at an earlier write error: {self.failed}")
        good = self.file.tell()
        try:
            offset = self.file.start_member()
            self.writer.write_record(record)
            length, member_sha256 = self.file.end_member()
            headers = record.rec_headers
            self.chain.add(
                offset, length, member_sha256, headers.get_header("WARC-Record-ID"), record.rec_type
            )
        except OSError as exc:
            self.failed = exc
            self.file.cut(good)
            self.chain.cut()
            raise

    def _earlier(self, payload_hex: str) -> StoredPayload | None:
        if self.earlier is None:
            return None
        if payload_hex not in self.earlier_payloads:
            found = self.earlier(payload_hex)
            # A log line must resolve: never refer to a file that is no longer in the store.
            if found is not None and not (self.directory / found.warc_file).is_file():
                found = None
            self.earlier_payloads[payload_hex] = found
        return self.earlier_payloads[payload_hex]

    def _request(self, item: PageItem, http: HttpExchange, date: str, concurrent_to: str) -> ArcWarcRecord:
        parts = urlsplit(item.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        line = StatusAndHeaders(
            f"{http.method} {target} {http.protocol}", request_headers(http), is_http_request=True
        )
        return self.writer.create_warc_record(
            item.url,
            "request",
            http_headers=line,
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": concurrent_to},
        )


class RawStoreFailed(OSError):
    """A write to a raw store that an earlier write error (a full disk) has stopped."""


def write_all(raw: IO[bytes], data: bytes) -> None:
    """Write all of `data` to an unbuffered file: a short write (a disk filling up) is continued, and its
    error raised, never silently dropped."""
    view = memoryview(data)
    while view:
        written = raw.write(view)
        if not written:
            raise OSError(f"could not write to {getattr(raw, 'name', 'a file')}: nothing written")
        view = view[written:]


class _MemberHasher:
    """The WARC file as the writer sees it: passes bytes through (unbuffered: each record reaches the
    kernel as it is written, so a killed crawl leaves every record it chained), counting and hashing
    each record's."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.offset = raw.tell()
        self.hasher = hashlib.sha256()
        # Tests only (DNM_TEST_KILL_AT="member:N", pipelines.capture): the process is killed halfway
        # through the next record's compressed body (its first write is the gzip header), leaving a gzip
        # member cut short at the end of the file.
        self.kill_mid_member = False

    def start_member(self) -> int:
        self.hasher = hashlib.sha256()
        return self.raw.tell()

    def end_member(self) -> tuple[int, str]:
        end = self.raw.tell()
        length, self.offset = end - self.offset, end
        return length, self.hasher.hexdigest()

    def write(self, data: bytes) -> int:
        if self.kill_mid_member and data and self.raw.tell() > self.offset:
            write_all(self.raw, bytes(data[: len(data) // 2]))
            os.kill(os.getpid(), signal.SIGKILL)
        self.hasher.update(data)
        write_all(self.raw, data)
        return len(data)

    def tell(self) -> int:
        return self.raw.tell()

    def fileno(self) -> int:
        return self.raw.fileno()

    def flush(self) -> None:
        self.raw.flush()

    def cut(self, size: int) -> None:
        """Drop what follows `size` (a record cut short by a write error); the next write goes there."""
        self.raw.truncate(size)
        self.raw.seek(size)
        self.offset = size

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return self.raw.closed


CHAIN_SUFFIX = ".chain.jsonl"
GENESIS = "0" * 64


class ChainWriter:
    """The hash chain of one WARC file: a line per record, each naming the SHA-256 of the line before."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Unbuffered: a line is on its way to the disk when `add` returns, before the page is committed.
        self.file = path.open("xb", buffering=0)
        self.head = GENESIS
        self.records = 0
        self.size = 0

    def add(self, offset: int, length: int, member_sha256: str, record_id: str, kind: str) -> None:
        line = {
            "n": self.records,
            "offset": offset,
            "length": length,
            "sha256": member_sha256,
            "record_id": record_id,
            "type": kind,
            "prev": self.head,
        }
        data = json.dumps(line, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        write_all(self.file, data)
        self.size += len(data)
        self.head = hashlib.sha256(data).hexdigest()
        self.records += 1

    def cut(self) -> None:
        """Drop a line cut short by a write error: the file ends with the last whole line."""
        self.file.truncate(self.size)
        self.file.seek(self.size)

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True)
class Sealed:
    """A WARC file of a crawl whose process died, closed afterwards (`seal_interrupted`)."""

    head: str  # the chain's head, for the crawl row
    records: int  # records kept: the longest run that is whole in the file and matches its chain line
    cut_bytes: int  # bytes after them, cut from the file (the record in flight when the process died)
    cut_lines: int  # chain lines dropped with them (cut short, or naming bytes that never reached the file)
    responses: frozenset[str]  # ids of the response records kept: the payloads the file holds


def seal_interrupted(path: Path, *, cut: bool = True) -> Sealed:
    """Close the WARC file a dead crawl process left open, as `RawStore.close` would have.

    A crawl killed while writing leaves at most one record cut short at the end of the file, or a chain
    line cut short (a write error). The records kept are the chained ones, in order, each whole in the
    file with the SHA-256 its chain line names; whatever follows the last of them is cut from the file
    and the chain, so the file reads as a WARC file again and its chain can go on the crawl row.
    """
    chain_path = path.with_name(path.name + CHAIN_SUFFIX)
    lines = chain_path.read_bytes().splitlines(keepends=True) if chain_path.is_file() else []
    head, end, chain_size, kept, responses = GENESIS, 0, 0, 0, set()
    with path.open("r+b" if cut else "rb") as warc:
        for number, raw in enumerate(lines):
            try:
                line = json.loads(raw) if raw.endswith(b"\n") else None
            except ValueError:
                line = None
            if (
                line is None
                or line.get("n") != number
                or line.get("prev") != head
                or line.get("offset") != end
            ):
                break
            warc.seek(end)
            member = warc.read(line["length"])
            if len(member) != line["length"] or hashlib.sha256(member).hexdigest() != line["sha256"]:
                break
            head, end, chain_size, kept = (
                hashlib.sha256(raw).hexdigest(),
                end + len(member),
                chain_size + len(raw),
                kept + 1,
            )
            if line.get("type") == "response":
                responses.add(line["record_id"])
        size = warc.seek(0, os.SEEK_END)
        if cut:
            if size != end:
                warc.truncate(end)
            os.fsync(warc.fileno())
    if cut and chain_path.is_file():
        with chain_path.open("r+b") as chain:
            chain.truncate(chain_size)
            os.fsync(chain.fileno())
    return Sealed(head, kept, size - end, len(lines) - kept, frozenset(responses))


def _create_exclusive(folder: Path, stem: str, suffix: str) -> tuple[IO[bytes], str]:
    """A new file that no other crawl writes to (two crawls may start in the same second)."""
    for attempt in range(1000):
        name = f"{stem}{f'-{attempt}' if attempt else ''}{suffix}"
        try:
            return open(folder / name, "xb", buffering=0), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free WARC file name for {stem} in {folder}")


# -- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRecord:
    """A response or revisit record read back: what re-parsing and verification need."""

    record_id: str
    kind: str  # "response" or "revisit"
    url: str
    date: datetime
    status: int
    headers: list[tuple[str, str]]
    payload_sha256: str  # hex
    body: bytes | None  # None for a revisit: the payload is in the record it refers to
    refers_to: str | None
    offset: int


def read_records(path: Path) -> Iterator[RawRecord]:
    """The response and revisit records of a WARC file, in order; raises on any digest mismatch."""
    with path.open("rb") as stream:
        iterator = ArchiveIterator(stream, check_digests="raise")
        for record in iterator:
            if record.rec_type not in ("response", "revisit"):
                _drain(record)
                continue
            yield _raw_record(record, iterator.get_record_offset)


def read_fetch_log(path: Path) -> Iterator[dict[str, Any]]:
    """The fetch-log lines of a WARC file, in order (digests checked as the records are read)."""
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream, check_digests="raise"):
            body = record.raw_stream.read()
            kind = record.rec_headers.get_header("Content-Type")
            if record.rec_type == "metadata" and kind == FETCH_LOG_TYPE:
                yield from (json.loads(line) for line in body.decode().splitlines() if line)


def _raw_record(record: ArcWarcRecord, offset: Callable[[], int]) -> RawRecord:
    headers = record.rec_headers
    # Reading the block through is what checks the digests; only then may the offset be asked
    # (warcio skips to the record's end to tell it).
    body = record.raw_stream.read()
    http = record.http_headers
    digest = headers.get_header("WARC-Payload-Digest")
    if not digest:
        raise ValueError(f"WARC record {headers.get_header('WARC-Record-ID')} has no payload digest")
    return RawRecord(
        record_id=headers.get_header("WARC-Record-ID"),
        kind=record.rec_type,
        url=headers.get_header("WARC-Target-URI"),
        date=parse_warc_date(headers.get_header("WARC-Date")),
        status=int(http.get_statuscode()) if http else 0,
        headers=list(http.headers) if http else [],
        payload_sha256=digest_hex(digest),
        body=body if record.rec_type == "response" else None,
        refers_to=headers.get_header("WARC-Refers-To"),
        offset=offset(),
    )


def _drain(record: ArcWarcRecord) -> None:
    while record.raw_stream.read(1 << 16):
        pass


class RecordReader:
    """Random access to records by id across the raw store, for resolving revisits: each file is
    indexed (record id -> offset) once, then records are read by seeking to their gzip member."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.offsets: dict[str, dict[str, int]] = {}

    def index(self, warc_file: str) -> dict[str, int]:
        if warc_file not in self.offsets:
            self.offsets[warc_file] = {
                r.record_id: r.offset for r in read_records(self.directory / warc_file)
            }
        return self.offsets[warc_file]

    def read(self, warc_file: str, record_id: str) -> RawRecord:
        """One record of a file; raises LookupError when the file does not hold it."""
        offset = self.index(warc_file).get(record_id)
        if offset is None:
            raise LookupError(f"{warc_file} holds no record {record_id}")
        with (self.directory / warc_file).open("rb") as stream:
            stream.seek(offset)
            for record in ArchiveIterator(stream, check_digests="raise"):
                return _raw_record(record, lambda: offset)
        raise LookupError(f"{warc_file}: no record at offset {offset}")


def warcinfo_fields(**values: Any) -> dict[str, str]:
    """warcinfo fields in order; unknown values are written as `unknown` rather than left out."""
    return {
        name.replace("_", "-"): "unknown" if value is None else str(value) for name, value in values.items()
    }


def raw_dir(setting: str | None) -> Path:
    """The raw store's directory: the setting, else $DNM_RAW_DIR, else var/warc."""
    return Path(setting or os.environ.get("DNM_RAW_DIR") or "var/warc")
