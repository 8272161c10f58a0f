"""`dnm reparse`: a crawl rebuilt from its raw captures equals the original, a changed profile re-reads old
captures into new rows stamped with its version, and no network is used (the demo server is gone)."""

from __future__ import annotations

import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from demo.server import DemoServer
from demo.skins import hostility_for
from demo.truth import truth
from dnm.export import KINDS, ExportFilter, export_rows
from dnm.profile import load_profile
from dnm.reparse import ReparseError, reparse
from models import Crawl, ListingSnapshot, Page
from models.db import open_engine
from tests.conftest import archive_url, crawl_demo, latest_crawl, run_dnm
from tests.groundtruth import compare_listings
from tests.test_hostile_crawl import LOOPBACK, write_accounts

MARKET = "copperline"
# What a re-parse changes by design: the crawl it is filed under.
CRAWL_FIELDS = ("crawl_id", "first_crawl_id", "last_crawl_id")


@dataclass
class Captured:
    """An archive with one crawl of MARKET and its raw store; the demo server is stopped."""

    url: str
    raw: Path
    crawl_id: int

    def export(self, kind: str, crawl_id: int) -> list[dict[str, Any]]:
        rows = export_rows(open_engine(self.url), kind, ExportFilter(crawl_id=crawl_id))
        return [{k: v for k, v in row.items() if k not in CRAWL_FIELDS} for row in rows]

    def reparse(self, *extra: str) -> int:
        result = run_dnm(
            "reparse",
            "--crawl",
            str(self.crawl_id),
            "--database",
            self.url,
            "--raw-dir",
            str(self.raw),
            *extra,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        found = re.search(r"re-parsed as crawl (\d+)", result.stdout)
        assert found, result.stdout
        return int(found.group(1))


def captured(directory: Path, hostile: bool) -> Captured:
    url, raw = archive_url(directory), directory / "warc"
    extra: tuple[str, ...] = ("--set", f"DNM_RAW_DIR={raw}")
    hostility = None
    if hostile:
        hostility = hostility_for(MARKET).with_overrides(**LOOPBACK)
        accounts = write_accounts(directory, (MARKET,))
        extra += ("--accounts", str(accounts), "--captcha-solver", "demo")
    with DemoServer(MARKET, 1, hostility=hostility) as server:
        result = crawl_demo(url, MARKET, server.url, *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Captured(url, raw, latest_crawl(open_engine(url), MARKET).id)


@pytest.fixture(scope="module")
def friendly(tmp_path_factory: pytest.TempPathFactory) -> Captured:
    return captured(tmp_path_factory.mktemp("reparse-friendly"), hostile=False)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Captured:
    return captured(tmp_path_factory.mktemp("reparse-hostile"), hostile=True)


@pytest.mark.parametrize("which", ["friendly", "hostile"])
def test_reparse_rebuilds_the_crawls_exports_exactly(which: str, request: pytest.FixtureRequest) -> None:
    archive: Captured = request.getfixturevalue(which)
    new_id = archive.reparse()
    for kind in KINDS:
        original = archive.export(kind, archive.crawl_id)
        assert original, kind
        assert archive.export(kind, new_id) == original, kind
    with Session(open_engine(archive.url)) as session:
        old, new = session.get(Crawl, archive.crawl_id), session.get(Crawl, new_id)
        assert old is not None and new is not None
        assert new.reparse_of == archive.crawl_id and new.transport == "reparse" and old.reparse_of is None
        assert (
            (new.status, new.profile_version)
            == (old.status, old.profile_version)
            == ("complete", load_profile(MARKET).parser_version)
        )
        old_pages = session.execute(
            select(Page.url, Page.page_type, Page.sha256, Page.fetched_at, Page.warc_record_id)
            .where(Page.crawl_id == archive.crawl_id).order_by(Page.warc_record_id)
        ).all()  # fmt: skip
        new_pages = session.execute(
            select(Page.url, Page.page_type, Page.sha256, Page.fetched_at, Page.warc_record_id)
            .where(Page.crawl_id == new_id).order_by(Page.warc_record_id)
        ).all()  # fmt: skip
        # Same pages, same types, pointing at the same records; the original crawl's rows are untouched.
        assert new_pages == old_pages
    rows = list(export_rows(open_engine(archive.url), "listings", ExportFilter(crawl_id=new_id)))
    assert compare_listings(rows, truth(MARKET, 1, kind="listings")) == []


def test_a_changed_profile_reads_old_captures_into_new_rows(friendly: Captured, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (Path("config/markets") / f"{MARKET}.yaml").read_text()
    text, bumped = re.subn(r'(?m)^version: "?(\d+)"?$', 'version: "99"', text)
    assert bumped == 1
    # The title now keeps only its first word: a parser change the old rows must not see.
    text, changed = re.subn(
        r"(?m)^(\s+)title: \{css: ('[^']+')", r"\1title: {regex: '^(\\S+)', css: \2", text
    )
    assert changed == 1, "the profile's title rule changed shape; adapt this test"
    (profiles / f"{MARKET}.yaml").write_text(text)
    new_profile = load_profile(MARKET, profiles)
    assert new_profile.version == "99"

    before = friendly.export("listings", friendly.crawl_id)
    new_id = friendly.reparse("--profile-dir", str(profiles))
    after = friendly.export("listings", new_id)
    assert len(after) == len(before)
    old_by_id = {row["listing_id"]: row for row in before}
    for row in after:
        old = old_by_id[row["listing_id"]]
        assert row["profile_version"] == new_profile.parser_version != old["profile_version"]
        assert row["title"] == old["title"].split()[0]
        assert {k: v for k, v in row.items() if k not in ("title", "profile_version")} == {
            k: v for k, v in old.items() if k not in ("title", "profile_version")
        }
    # The original crawl's rows are as they were.
    assert friendly.export("listings", friendly.crawl_id) == before
    with Session(open_engine(friendly.url)) as session:
        versions = set(
            session.scalars(select(ListingSnapshot.profile_version).where(ListingSnapshot.crawl_id == new_id))
        )
        assert versions == {new_profile.parser_version}
        assert session.get(Crawl, new_id).profile_version == new_profile.parser_version  # type: ignore[union-attr]


def test_reparse_uses_no_network(friendly: Captured, monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, every socket connection but the archive database's is refused and recorded."""
    database = make_url(friendly.url)
    allowed = {(database.host, database.port or 5432)} if database.host else set()
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family == socket.AF_UNIX or (isinstance(address, tuple) and tuple(address[:2]) in allowed):
            return real_connect(self, address)
        attempts.append(address)
        raise OSError(f"network used during reparse: {address}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    engine = open_engine(friendly.url)
    result = reparse(engine, friendly.crawl_id, friendly.raw)
    assert attempts == []
    assert result.status == "complete" and result.pages > 0 and result.reparse_of == friendly.crawl_id


def test_reparse_of_a_crawl_without_captures_or_with_a_missing_file_is_an_error(
    friendly: Captured, tmp_path: Path
) -> None:
    engine = open_engine(friendly.url)
    with pytest.raises(ReparseError, match="no crawl 9999"):
        reparse(engine, 9999, friendly.raw)
    shutil.copytree(friendly.raw, tmp_path / "warc")
    for path in (tmp_path / "warc").rglob("*.warc.gz"):
        path.unlink()
    with pytest.raises(ReparseError, match="missing"):
        reparse(engine, friendly.crawl_id, tmp_path / "warc")
    printed = run_dnm(
        "reparse", "--crawl", "9999", "--database", friendly.url, "--raw-dir", str(friendly.raw)
    )
    assert printed.returncode == 1 and "no crawl 9999" in printed.stderr
