"""The WACZ layer: a deterministic writer whose output passes the strict checker and replays by its index,
and the checker failing each tampering that py-wacz lets through, naming the member and the problem.
Also what the WACZ layer cannot do: a payload (or WARC header) change with every inner hash recomputed
passes it, and only the package signature catches that."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from dnm.items import HttpExchange, PageItem
from dnm.rawstore import RawStore, sha256_digest
from evidence.wacz import DATAPACKAGE, DIGEST, INDEX, PAGES, WaczError, check_wacz, scan_warc, write_wacz

CREATED = datetime(2026, 2, 3, 4, 5, 6, 789012, UTC)
FETCHED = datetime(2026, 1, 2, 3, 4, 5, 678901, UTC)
WARC = "archive/crawl-7.warc.gz"
HTML = HttpExchange(reason="OK", response_headers=(("Content-Type", "text/html; charset=utf-8"),))


@pytest.fixture
def warc(tmp_path: Path) -> Path:
    """A raw-store WARC: warcinfo, three responses with their requests, a revisit, and a metadata record."""
    store = RawStore(tmp_path / "raw", "m", 7, {"software": "test"})
    for number, body in enumerate([b"<html>price 100</html>", b"<html>two</html>", b"<html>three</html>"]):
        store.write(
            PageItem(f"http://m.onion/listing/{number}", "listing", 200, body, "", FETCHED, http=HTML)
        )
    store.write(PageItem("http://m.onion/again", "listing", 200, b"<html>two</html>", "", FETCHED, http=HTML))
    note = b'{"circuit":"$A,$B,$C"}\n'
    when = {"WARC-Date": "2026-01-02T03:04:06.000000Z"}
    store.writer.write_record(
        store.writer.create_warc_record(
            "urn:x-dnm:circuit:7", "metadata", payload=io.BytesIO(note), length=len(note),
            warc_content_type="application/json", warc_headers_dict=when,
        )
    )  # fmt: skip
    store.close()
    return tmp_path / "raw" / store.warc_file


PAGES_IN = [
    {"url": "http://m.onion/listing/0", "ts": FETCHED, "title": "Listing 0"},
    {"url": "http://m.onion/listing/1", "ts": "2026-01-02T03:04:05.678901Z"},
]


def write(path: Path, warcs: list[tuple[str, Path]]) -> Path:
    write_wacz(path, warcs, PAGES_IN, title="vendor v1", created=CREATED, software="dnm-archive test")
    return path


@pytest.fixture
def wacz(tmp_path: Path, warc: Path) -> Path:
    return write(tmp_path / "clean.wacz", [("crawl-7.warc.gz", warc)])


def test_a_written_wacz_checks_and_replays_by_its_index(wacz: Path) -> None:
    info = check_wacz(wacz)
    assert (info.title, info.created, info.software) == (
        "vendor v1",
        "2026-02-03T04:05:06.789012Z",
        "dnm-archive test",
    )
    assert info.warcs == (WARC,) and info.records == 10 and info.indexed == 5 and info.pages == 2
    with zipfile.ZipFile(wacz) as archive:
        assert [i.filename for i in archive.infolist()] == [WARC, INDEX, PAGES, DATAPACKAGE, DIGEST]
        assert archive.getinfo(WARC).compress_type == zipfile.ZIP_STORED
        assert {i.date_time for i in archive.infolist()} == {(2026, 2, 3, 4, 5, 6)}
        package_bytes = archive.read(DATAPACKAGE)
        package = json.loads(package_bytes)
        digest = json.loads(archive.read(DIGEST))
        warc_bytes = archive.read(WARC)
        index = archive.read(INDEX).decode().splitlines()
        pages = [json.loads(line) for line in archive.read(PAGES).decode().splitlines()]
    assert digest == {"path": DATAPACKAGE, "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
    assert info.datapackage_sha256 == hashlib.sha256(package_bytes).hexdigest()
    assert package["wacz_version"] == "1.1.1" and package["profile"] == "data-package"
    assert [r["path"] for r in package["resources"]] == [WARC, INDEX, PAGES]
    assert package["resources"][0]["hash"] == "sha256:" + hashlib.sha256(warc_bytes).hexdigest()
    assert package["resources"][0]["bytes"] == len(warc_bytes)
    assert pages[0] == {"format": "json-pages-1.0", "id": "pages", "title": "vendor v1"}
    assert pages[1] == {
        "url": "http://m.onion/listing/0",
        "ts": "2026-01-02T03:04:05.678901Z",
        "title": "Listing 0",
    }
    # Every index line leads, by offset and length alone, to the record it names.
    assert index == sorted(index) and len(index) == 5
    kinds = []
    for line in index:
        key, timestamp, raw = line.split(" ", 2)
        fields = json.loads(raw)
        assert fields["filename"] == "crawl-7.warc.gz"
        start, length = int(fields["offset"]), int(fields["length"])
        record = next(
            iter(ArchiveIterator(io.BytesIO(warc_bytes[start : start + length]), check_digests="raise"))
        )
        assert record.rec_headers.get_header("WARC-Target-URI") == fields["url"]
        assert fields["digest"] == record.rec_headers.get_header("WARC-Payload-Digest")
        kinds.append((record.rec_type, fields["mime"], fields.get("status")))
        if fields["url"].startswith("http"):
            assert key.startswith("onion,m)/") and timestamp == "20260102030405"
    assert sorted(kinds) == [
        ("metadata", "application/json", None),
        *[("response", "text/html", "200")] * 3,
        ("revisit", "warc/revisit", "200"),
    ]


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path, warc: Path) -> None:
    first = write(tmp_path / "a.wacz", [("crawl-7.warc.gz", warc)])
    os.utime(warc, (0, 0))  # the source's mtime must not leak into the zip
    second = write(tmp_path / "b.wacz", [("crawl-7.warc.gz", warc)])
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.glob(".*partial"))


def test_a_nested_warc_path_is_legitimate(tmp_path: Path, warc: Path) -> None:
    """py-wacz's validator rejects this (it keys on the last two path components)."""
    nested = write(tmp_path / "nested.wacz", [("sub/dir/crawl-7.warc.gz", warc), ("crawl-7.warc.gz", warc)])
    info = check_wacz(nested)
    assert info.warcs == ("archive/crawl-7.warc.gz", "archive/sub/dir/crawl-7.warc.gz") and info.indexed == 10


def test_the_writer_refuses_names_and_sources_the_checker_would_refuse(tmp_path: Path, warc: Path) -> None:
    for name in ("../x.warc.gz", "x.warc", "a\\x.warc.gz"):
        with pytest.raises(ValueError, match="WARC name"):
            write(tmp_path / "x.wacz", [(name, warc)])
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(warc.read_bytes()[:-7])
    with pytest.raises(WaczError, match="truncated"):
        write(tmp_path / "x.wacz", [("broken.warc.gz", broken)])
    assert not list(tmp_path.glob("*.wacz")) and not list(tmp_path.glob(".*partial"))


# -- tampering -----------------------------------------------------------------------------------------

Members = list[tuple[str, bytes, int]]


def rebuild(source: Path, target: Path, change: Callable[[Members], Members], *, rehash: bool) -> Path:
    """Rewrite a WACZ with its members changed; `rehash` recomputes datapackage.json and its digest as a
    forger would (the index is left alone unless `change` rewrites it)."""
    with zipfile.ZipFile(source) as archive:
        members = [(i.filename, archive.read(i), i.compress_type) for i in archive.infolist()]
    members = change(members)
    if rehash:
        package = json.loads(next(data for name, data, _ in members if name == DATAPACKAGE))
        package["resources"] = [
            {
                "name": name,
                "path": name,
                "hash": "sha256:" + hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
            for name, data, _ in members
            if name not in (DATAPACKAGE, DIGEST)
        ]
        package_bytes = json.dumps(package, indent=2).encode()
        digest = json.dumps(
            {"path": DATAPACKAGE, "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
        )
        fresh = {DATAPACKAGE: package_bytes, DIGEST: digest.encode()}
        members = [(name, fresh.get(name, data), kind) for name, data, kind in members]
    with warnings.catch_warnings(), zipfile.ZipFile(target, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests write
        for name, data, kind in members:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=kind)
    return target


def replace(member: str, edit: Callable[[bytes], bytes]) -> Callable[[Members], Members]:
    return lambda members: [(n, edit(d) if n == member else d, k) for n, d, k in members]


def add(member: str, data: bytes = b"planted") -> Callable[[Members], Members]:
    return lambda members: [*members, (member, data, zipfile.ZIP_DEFLATED)]


def drop(member: str) -> Callable[[Members], Members]:
    return lambda members: [m for m in members if m[0] != member]


def gzip_members(warc: bytes) -> list[bytes]:
    """The gzip members of a record-per-member WARC, split at the offsets warcio reports."""
    iterator = ArchiveIterator(io.BytesIO(warc))
    spans = []
    for record in iterator:
        record.raw_stream.read()
        spans.append((iterator.get_record_offset(), iterator.get_record_length()))
    return [warc[start : start + length] for start, length in spans]


def edit_record(old: bytes, new: bytes, *, fix_digests: bool) -> Callable[[bytes], bytes]:
    """Change bytes inside the one record holding `old` (recompressing only its gzip member); with
    `fix_digests` also rewrite its block and payload digests as a forger would."""

    def apply(warc: bytes) -> bytes:
        out = []
        for member in gzip_members(warc):
            record = gzip.decompress(member)
            if old in record:
                changed = record.replace(old, new)
                if fix_digests:
                    head, block = changed.split(b"\r\n\r\n", 1)
                    block = block[: -len(b"\r\n\r\n")]
                    body = block.split(b"\r\n\r\n", 1)[1]
                    for name, value in ((b"WARC-Block-Digest", block), (b"WARC-Payload-Digest", body)):
                        head = re.sub(name + rb": \S+", name + b": " + sha256_digest(value).encode(), head)
                    changed = head + b"\r\n\r\n" + block + b"\r\n\r\n"
                member = gzip.compress(changed, mtime=0)
            out.append(member)
        return b"".join(out)

    return apply


def reindexed(members: Members) -> Members:
    """The index a forger regenerates from the (changed) WARC."""
    warc = next(data for name, data, _ in members if name == WARC)
    scan = scan_warc(WARC, "crawl-7.warc.gz", lambda: io.BytesIO(warc))
    index = "".join(line + "\n" for line in sorted(scan.index)).encode()
    return [(n, index if n == INDEX else d, k) for n, d, k in members]


def flip_in_record(number: int) -> Callable[[bytes], bytes]:
    """Flip one compressed byte in the middle of the gzip member of record `number` (same file size)."""

    def apply(warc: bytes) -> bytes:
        members = gzip_members(warc)
        at = sum(len(m) for m in members[:number]) + len(members[number]) // 2
        return warc[:at] + bytes([warc[at] ^ 0x55]) + warc[at + 1 :]

    return apply


def split_record(number: int) -> Callable[[bytes], bytes]:
    """Gzip the closing blank lines of record `number` as a member of their own (warcio reads them as a
    record with no type and no digest)."""

    def apply(warc: bytes) -> bytes:
        members = gzip_members(warc)
        record = gzip.decompress(members[number])
        halves = [gzip.compress(record[:-4], mtime=0), gzip.compress(record[-4:], mtime=0)]
        return b"".join([*members[:number], *halves, *members[number + 1 :]])

    return apply


PAYLOAD_EDIT = edit_record(b"price 100", b"price 900", fix_digests=False)
REQUEST_EDIT = edit_record(b"GET /listing/1 ", b"PUT /listing/1 ", fix_digests=False)


def shift_offset(index: bytes) -> bytes:
    return index.replace(b'"offset":"', b'"offset":"9', 1)


def wrong_status(index: bytes) -> bytes:
    return index.replace(b'"status":"200"', b'"status":"404"', 1)


def retitle(package: bytes) -> bytes:
    return package.replace(b"vendor v1", b"vendor v2")


def drop_first_line(data: bytes) -> bytes:
    return data.split(b"\n", 1)[1]


CASES: dict[str, tuple[Callable[[Members], Members], bool, str, str]] = {
    # name: (change, rehash datapackage, member named, problem)
    "unlisted member without a dot": (add("archive/NOTES"), False, "archive/NOTES", "not listed"),
    "listed non-WARC under archive/": (add("archive/NOTES"), True, "archive/NOTES", "only WARC files"),
    "listed resource missing": (drop(PAGES), False, PAGES, "listed in datapackage.json resources but not in"),
    "datapackage edited, digest not": (
        replace(DATAPACKAGE, retitle), False, DIGEST, "not the SHA-256",
    ),
    "digest file missing": (drop(DIGEST), False, DIGEST, "missing"),
    "datapackage missing": (drop(DATAPACKAGE), False, DATAPACKAGE, "missing"),
    "byte flipped in a WARC (same size), hashes kept": (
        replace(WARC, flip_in_record(1)), False, WARC, "is not datapackage.json's",
    ),
    "payload edit, datapackage rehashed": (
        replace(WARC, PAYLOAD_EDIT), True, WARC, "WARC record [0-9]+ at offset [0-9]+: block digest failed",
    ),
    "request record edited, datapackage rehashed": (
        replace(WARC, REQUEST_EDIT), True, WARC, "WARC record [0-9]+ at offset [0-9]+: block digest failed",
    ),
    "warcinfo record edited, datapackage rehashed": (
        replace(WARC, edit_record(b"software: test", b"software: tesx", fix_digests=False)), True, WARC,
        "WARC record 1 at offset 0: block digest failed",
    ),
    "metadata record edited, datapackage rehashed": (
        replace(WARC, edit_record(b"$A,$B,$C", b"$A,$B,$D", fix_digests=False)), True, WARC,
        "WARC record 10 at offset [0-9]+: block digest failed",
    ),
    "record digest header removed, datapackage rehashed": (
        replace(WARC, edit_record(b"WARC-Block-Digest:", b"WARC-Block-Xigest:", fix_digests=False)),
        True, WARC,
        "warcinfo record at offset 0: no SHA-256 WARC-Block-Digest",
    ),
    "compressed byte flipped, datapackage rehashed": (
        replace(WARC, flip_in_record(1)), True, WARC, "gzip member at offset .* is (corrupt|cut short)",
    ),
    "WARC truncated": (replace(WARC, lambda d: d[:-100]), False, WARC, "bytes, datapackage.json says"),
    "WARC truncated, datapackage rehashed": (replace(WARC, lambda d: d[:-100]), True, WARC, "truncated"),
    "WARC recompressed as one gzip stream": (
        replace(WARC, lambda d: gzip.compress(gzip.decompress(d), mtime=0)), True, WARC, "non-chunked gzip",
    ),
    "record's end split into its own gzip member, datapackage rehashed": (
        replace(WARC, split_record(1)), True, WARC, "untyped record at offset [0-9]+: no SHA-256",
    ),
    "WARC member deflated": (
        lambda ms: [(n, d, zipfile.ZIP_DEFLATED if n == WARC else k) for n, d, k in ms], False, WARC,
        "compressed in the zip",
    ),
    "duplicate member name": (add(PAGES, b'{"format":"json-pages-1.0"}\n'), False, PAGES, "duplicate member"),
    "duplicate name differing in case": (add(PAGES.upper()), False, PAGES.upper(), "duplicate member"),
    "index points at no record": (replace(INDEX, shift_offset), True, INDEX, "line 1 points at no record"),
    "index line dropped": (replace(INDEX, drop_first_line), True, INDEX, "offset .* is not indexed"),
    "index line disagrees with its record": (replace(INDEX, wrong_status), True, INDEX, "disagrees"),
    "pages header missing": (replace(PAGES, drop_first_line), True, PAGES, "header"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_tampered_wacz_fails_naming_the_member(wacz: Path, tmp_path: Path, case: str) -> None:
    change, rehash, member, problem = CASES[case]
    tampered = rebuild(wacz, tmp_path / "tampered.wacz", change, rehash=rehash)
    with pytest.raises(WaczError, match=problem) as caught:
        check_wacz(tampered)
    assert caught.value.member == member


ZIP_SLIP = [
    "../evil.sh",
    "/etc/cron.d/evil",
    "archive\\..\\evil",
    "archive/../../evil",
    "archive/./x",
    "C:/evil",
]


@pytest.mark.parametrize("name", ZIP_SLIP)
def test_zip_slip_names_fail_even_when_listed(wacz: Path, tmp_path: Path, name: str) -> None:
    tampered = rebuild(wacz, tmp_path / "slip.wacz", add(name), rehash=True)
    with pytest.raises(WaczError, match="zip-slip"):
        check_wacz(tampered)


def test_a_clean_rebuild_passes_so_the_tamper_cases_fail_for_their_own_reason(
    wacz: Path, tmp_path: Path
) -> None:
    rebuilt = rebuild(wacz, tmp_path / "rebuilt.wacz", lambda members: members, rehash=True)
    assert check_wacz(rebuilt).records == 10


@pytest.mark.parametrize(
    "forgery",
    [
        edit_record(b"price 100", b"price 900", fix_digests=True),
        # Headers are outside every record digest: capture time and URL change freely.
        edit_record(b"WARC-Date: 2026-01-02T03:04:05", b"WARC-Date: 2019-01-02T03:04:05", fix_digests=False),
        edit_record(b"WARC-Target-URI: http://m.onion/listing/0", b"WARC-Target-URI: http://x.onion/listing/0",
                    fix_digests=False),
    ],
    ids=["payload with record digests recomputed", "WARC-Date", "WARC-Target-URI"],
)  # fmt: skip
def test_a_forgery_with_every_inner_hash_recomputed_passes_the_wacz_layer(
    wacz: Path, tmp_path: Path, forgery: Callable[[bytes], bytes]
) -> None:
    """Do not rely on the WACZ layer alone: a forger who recomputes record digests, index, datapackage and
    digest file gets a WACZ that checks. Only the package signature (over the bag manifests, which hash
    the .wacz bytes) catches it; what changes is the file's SHA-256 and the datapackage hash."""
    forged = rebuild(
        wacz, tmp_path / "forged.wacz", lambda ms: reindexed(replace(WARC, forgery)(ms)), rehash=True
    )
    info = check_wacz(forged)  # passes: this is the documented limit of this layer
    assert info.records == 10
    assert info.datapackage_sha256 != check_wacz(wacz).datapackage_sha256
    assert hashlib.sha256(forged.read_bytes()).digest() != hashlib.sha256(wacz.read_bytes()).digest()


def test_a_datapackage_listing_an_unsafe_path_fails(wacz: Path, tmp_path: Path) -> None:
    def unsafe(members: Members) -> Members:
        package = json.loads(next(d for n, d, _ in members if n == DATAPACKAGE))
        package["resources"].append({"path": "../outside", "hash": "sha256:" + "0" * 64, "bytes": 0})
        package_bytes = json.dumps(package).encode()
        digest = {"path": DATAPACKAGE, "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
        fresh = {DATAPACKAGE: package_bytes, DIGEST: json.dumps(digest).encode()}
        return [(n, fresh.get(n, d), k) for n, d, k in members]

    tampered = rebuild(wacz, tmp_path / "unsafe.wacz", unsafe, rehash=False)
    with pytest.raises(WaczError, match=re.escape("bad path (empty, `.` or `..` path component")):
        check_wacz(tampered)


def test_a_file_that_is_not_a_zip_fails(tmp_path: Path) -> None:
    path = tmp_path / "x.wacz"
    path.write_bytes(b"not a zip")
    with pytest.raises(WaczError, match="zip: not a readable zip"):
        check_wacz(path)
