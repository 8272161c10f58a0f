"""The raw capture store: WARC files of demo crawls validate with SHA-256 digests, every page row resolves
to the record holding its bytes, an unchanged second crawl is stored as fetch-log lines, and no secret
reaches the WARC bytes."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from demo.hostile.accounts import demo_accounts
from demo.server import DemoServer
from demo.skins import hostility_for
from dnm.items import HttpExchange, PageItem
from dnm.rawstore import (
    REDACTED,
    RawStore,
    RecordReader,
    StoredPayload,
    digest_hex,
    read_fetch_log,
    read_records,
    sha256_digest,
    warc_date,
)
from models import Crawl, Page
from models.db import open_engine
from tests.conftest import DnmResult, archive_url, crawl_demo, latest_crawl
from tests.test_hostile_crawl import LOOPBACK, write_accounts

MARKET = "hollowmere"


@dataclass
class RawArchive:
    url: str
    raw: Path
    sessions: Path
    crawls: list[int]
    results: list[DnmResult]

    def pages(self, crawl_id: int) -> list[Page]:
        with Session(open_engine(self.url)) as session:
            return list(session.scalars(select(Page).where(Page.crawl_id == crawl_id).order_by(Page.id)))

    def stats(self, crawl_id: int) -> dict[str, Any]:
        with Session(open_engine(self.url)) as session:
            crawl = session.get(Crawl, crawl_id)
            assert crawl is not None
            return crawl.stats or {}

    def warc_files(self, crawl_id: int) -> list[Path]:
        """The file the crawl wrote (pages unchanged since an earlier crawl point into that crawl's)."""
        return [self.raw / self.stats(crawl_id)["dnm/warc/file"]]


@pytest.fixture(scope="module")
def friendly(tmp_path_factory: pytest.TempPathFactory) -> RawArchive:
    """Two crawls of the same unchanged demo day into one archive and one raw store."""
    directory = tmp_path_factory.mktemp("raw-friendly")
    archive = RawArchive(archive_url(directory), directory / "warc", directory / "sessions", [], [])
    for _ in range(2):
        with DemoServer(MARKET, 1) as server:
            result = crawl_demo(archive.url, MARKET, server.url, "--set", f"DNM_RAW_DIR={archive.raw}")
        assert result.returncode == 0, result.stderr[-3000:]
        archive.results.append(result)
        archive.crawls.append(latest_crawl(open_engine(archive.url), MARKET).id)
    return archive


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> RawArchive:
    """A hostile crawl (logins, CAPTCHAs, expiring sessions), its cookie jars kept for inspection."""
    directory = tmp_path_factory.mktemp("raw-hostile")
    archive = RawArchive(archive_url(directory), directory / "warc", directory / "sessions", [], [])
    accounts = write_accounts(directory, (MARKET,))
    with DemoServer(MARKET, 1, hostility=hostility_for(MARKET).with_overrides(**LOOPBACK)) as server:
        result = crawl_demo(
            archive.url, MARKET, server.url, "--accounts", str(accounts), "--captcha-solver", "demo",
            "--set", f"DNM_RAW_DIR={archive.raw}", sessions=str(archive.sessions),
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    archive.results.append(result)
    archive.crawls.append(latest_crawl(open_engine(archive.url), MARKET).id)
    return archive


def unzipped(path: Path) -> bytes:
    with gzip.open(path) as stream:
        return stream.read()


def warc_check(path: Path) -> subprocess.CompletedProcess[str]:
    """`warcio check -v`: every record's digests recomputed and compared."""
    tool = Path(sys.executable).parent / "warcio"
    return subprocess.run([str(tool), "check", "-v", str(path)], capture_output=True, text=True, timeout=120)


def all_records(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            yield record.rec_type, dict(record.rec_headers.headers)
            record.raw_stream.read()


@pytest.mark.parametrize("which", ["friendly", "hostile"])
def test_each_crawl_has_one_warc_that_validates_with_sha256(
    which: str, request: pytest.FixtureRequest
) -> None:
    archive: RawArchive = request.getfixturevalue(which)
    for crawl_id in archive.crawls:
        files = archive.warc_files(crawl_id)
        assert len(files) == 1 and re.fullmatch(rf"{crawl_id}-\d{{8}}T\d{{6}}Z\.warc\.gz", files[0].name)
        assert files[0].parent.name == MARKET
        checked = warc_check(files[0])
        assert checked.returncode == 0, checked.stdout[-3000:]
        assert "digest pass" in checked.stdout and "failed" not in checked.stdout
        records = list(all_records(files[0]))
        kind, info = records[0]
        assert kind == "warcinfo" and info["WARC-Filename"] == files[0].name
        body = unzipped(files[0]).decode("utf-8", "replace")
        for field in ("software: dnm-archive/", "dnm-profile-version: hollowmere@", "dnm-profile-sha256: ",
                      "dnm-settings-sha256: ", "dnm-transport: direct", "dnm-tor-version: ",
                      "dnm-warcio-version: 1.8.1"):  # fmt: skip
            assert field in body, field
        for kind, headers in records[1:]:
            assert headers["WARC-Block-Digest"].startswith("sha256:")
            if kind in ("response", "revisit"):
                assert headers["WARC-Payload-Digest"].startswith("sha256:")
            assert kind in ("request", "response", "revisit", "metadata")
        stored = [kind for kind, _ in records if kind in ("response", "revisit")]
        assert len(stored) == sum(kind == "request" for kind, _ in records)
        # Every fetch is in the file: as a record, or as a line of the fetch log.
        logged = list(read_fetch_log(files[0]))
        assert len(stored) + len(logged) == len(archive.pages(crawl_id))


@pytest.mark.parametrize("which", ["friendly", "hostile"])
def test_every_page_row_resolves_to_its_record(which: str, request: pytest.FixtureRequest) -> None:
    archive: RawArchive = request.getfixturevalue(which)
    reader = RecordReader(archive.raw)
    first_fetch: dict[str, Page] = {}
    for crawl_id in archive.crawls:
        pages = archive.pages(crawl_id)
        assert pages and all(page.warc_record_id and page.payload_sha256 for page in pages)
        for page in pages:
            record = reader.read(page.warc_file, page.warc_record_id)  # type: ignore[arg-type]
            # A page points at the response record holding its bytes, never at a revisit.
            assert record.kind == "response" and record.body is not None
            assert record.payload_sha256 == page.payload_sha256 == page.sha256
            assert len(record.body) == page.size
            first = first_fetch.setdefault(page.sha256, page)
            if first is page:  # the fetch that brought the bytes wrote the record
                assert (record.url, record.date, record.status) == (page.url, page.fetched_at, page.status)
    if which == "hostile":
        kinds = {page.page_type for page in archive.pages(archive.crawls[0])}
        assert {"gate:captcha", "gate:login", "gate:queue"} <= kinds  # barrier pages are captured too


def test_an_unchanged_second_crawl_is_stored_as_fetch_log_lines(friendly: RawArchive) -> None:
    first, second = friendly.crawls
    known = {page.payload_sha256: page for page in friendly.pages(first)}
    (second_file,) = friendly.warc_files(second)
    log = {(line["uri"], line["date"]): line for line in read_fetch_log(second_file)}
    logged = 0
    for page in friendly.pages(second):
        original = known.get(page.payload_sha256)
        if original is None:
            continue  # a payload never stored before is stored in full, in this crawl's file
        line = log[page.url, warc_date(page.fetched_at)]
        assert line["refers_to"] == original.warc_record_id == page.warc_record_id
        assert line["refers_to_file"] == original.warc_file and line["status"] == page.status
        assert digest_hex(line["payload_digest"]) == page.sha256 and line["method"] == "GET"
        logged += 1
    stats = [friendly.stats(crawl_id) for crawl_id in (first, second)]
    # The demo day is unchanged: most pages are byte for byte the same as the night before.
    assert logged >= len(known) // 2 and stats[1]["dnm/warc/logged"] == logged == len(log)
    assert stats[0].get("dnm/warc/logged", 0) == 0
    assert stats[0]["dnm/warc/records"] == len(friendly.pages(first))
    assert stats[1]["dnm/warc/bytes"] == second_file.stat().st_size
    # A logged fetch costs tens of bytes, not the kilobyte of a revisit and request record.
    assert stats[1]["dnm/warc/bytes"] < stats[0]["dnm/warc/bytes"] / 5
    # Revisits (a payload this crawl already wrote, at another URL or fetched again) name what they repeat.
    for kind, headers in all_records(second_file):
        if kind == "revisit":
            assert headers["WARC-Profile"].endswith("/revisit/identical-payload-digest")
            assert headers["WARC-Refers-To-Target-URI"] and headers["WARC-Refers-To-Date"]


def test_no_cookie_password_or_session_id_in_the_warc(hostile: RawArchive) -> None:
    (path,) = hostile.warc_files(hostile.crawls[0])
    data = unzipped(path)
    for account in demo_accounts(1, MARKET):
        assert account.password.encode() not in data
    jars = list(hostile.sessions.rglob("*.json")) if hostile.sessions.exists() else []
    values = [c["value"] for jar in jars for c in json.loads(jar.read_text())["cookies"]]
    assert values  # the crawl kept its sessions' cookies: none of them is in the WARC
    for value in values:
        assert value.encode() not in data
    secret_lines = re.findall(rb"(?im)^(cookie|set-cookie|authorization|proxy-authorization): (.*?)\r$", data)
    assert any(name.lower() == b"cookie" for name, _ in secret_lines)  # logged-in requests carry one
    assert any(name.lower() == b"set-cookie" for name, _ in secret_lines)  # and logins set one
    assert {value for _, value in secret_lines} == {REDACTED.encode()}
    # Answers to login and CAPTCHA forms (POST) may be captured as barrier pages; no request body ever
    # is: each request record ends with its headers.
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "request":
                assert record.raw_stream.read() == b""


def test_the_store_redacts_and_digests_a_page_written_directly(tmp_path: Path) -> None:
    http = HttpExchange(
        method="POST",
        request_headers=(("Host", "m.onion"), ("Cookie", "sid=SECRET1"),
                         ("Authorization", "Basic U0VDUkVUMg=="), ("Content-Length", "31")),
        reason="OK",
        response_headers=(("Set-Cookie", "sid=SECRET3; HttpOnly"), ("Content-Type", "text/html"),
                          ("Content-Encoding", "gzip"), ("Content-Length", "12")),
    )  # fmt: skip
    body = b"<html>page</html>"
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, UTC)
    item = PageItem("http://m.onion/login", "gate:login", 200, body, "", when, http=http)
    store = RawStore(tmp_path, "m", 7, {"software": "test"})
    first, again = store.write(item), store.write(item)
    store.close()
    data = unzipped(tmp_path / first.warc_file)
    for secret in (b"SECRET1", b"U0VDUkVUMg", b"SECRET3"):
        assert secret not in data
    assert b"X-Archive-Orig-Content-Encoding: gzip" in data and b"Content-Length: 17\r\n" in data
    assert not first.revisit and again.revisit
    assert first.payload_sha256 == hashlib.sha256(body).hexdigest() == digest_hex(sha256_digest(body))
    records = list(read_records(tmp_path / first.warc_file))
    assert [r.kind for r in records] == ["response", "revisit"]
    assert records[0].body == body and records[0].date == item.fetched_at
    assert records[1].refers_to == first.record_id


def test_a_changed_payload_fails_the_digest_check(tmp_path: Path) -> None:
    item = PageItem("http://m.onion/x", "home", 200, b"<html>price 100</html>", "", datetime.now(UTC))
    store = RawStore(tmp_path, "m", 1, {"software": "test"})
    stored = store.write(item)
    store.close()
    plain = unzipped(tmp_path / stored.warc_file)
    tampered = tmp_path / "tampered.warc"
    tampered.write_bytes(plain.replace(b"price 100", b"price 900"))
    with pytest.raises(ArchiveLoadFailed, match="digest"):
        list(read_records(tampered))
    assert warc_check(tampered).returncode == 1


def test_a_payload_an_earlier_crawl_stored_is_a_fetch_log_line_that_resolves(tmp_path: Path) -> None:
    item = PageItem("http://m.onion/listing/1", "listing", 200, b"<html>same</html>", "", datetime.now(UTC))
    night1 = RawStore(tmp_path, "m", 1, {"software": "test"})
    stored = night1.write(item)
    night1.close()
    earlier = {stored.payload_sha256: StoredPayload(stored.warc_file, stored.record_id)}
    night2 = RawStore(tmp_path, "m", 2, {"software": "test"}, earlier.get)
    again = night2.write(item)
    night2.close()
    assert again.logged and (again.warc_file, again.record_id) == (stored.warc_file, stored.record_id)
    (line,) = read_fetch_log(tmp_path / night2.warc_file)
    assert line["refers_to"] == stored.record_id and line["refers_to_file"] == stored.warc_file
    assert RecordReader(tmp_path).read(line["refers_to_file"], line["refers_to"]).body == item.body
    assert warc_check(tmp_path / night2.warc_file).returncode == 0
    # A file gone from the store is never referred to: the payload is stored in full again.
    (tmp_path / stored.warc_file).unlink()
    night3 = RawStore(tmp_path, "m", 3, {"software": "test"}, earlier.get)
    third = night3.write(item)
    night3.close()
    assert not third.logged and third.warc_file == night3.warc_file
    assert [r.kind for r in read_records(tmp_path / night3.warc_file)] == ["response"]
