"""Page bodies found by the first 64 bits of their digest (revision 0007): the prefix, its index, the
uniqueness of digests without a unique index on SQLite, and bodies whose digests share a prefix."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dnm.archive import ArchiveWriter, CapturedPage, CrawlSetup, _DriverStatement
from dnm.profile import load_profile
from dnm.records import Record
from models import Page, Payload
from models.crawl import digest_prefix
from models.db import open_engine
from models.migrate import alembic_config, downgrade, upgrade

NOW = datetime(2026, 1, 2, 12, tzinfo=UTC)
SETUP = CrawlSetup(tool_version="test", settings_sha256="0" * 64, transport="direct")
# Two digests that share their first 64 bits (no real pair is known; the archive must not care), the
# first with its top bit set (a negative prefix).
SHARED = "f0e1d2c3b4a59687"
TWINS = (SHARED + "1" * 48, SHARED + "2" * 48)
DIGESTS = ("0" * 64, "7fffffffffffffff" + "a" * 48, "8000000000000000" + "b" * 48, *TWINS)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


def test_the_prefix_is_the_digests_first_64_bits_signed() -> None:
    assert digest_prefix("0" * 64) == 0
    assert digest_prefix("7fffffffffffffff" + "0" * 48) == 2**63 - 1
    assert digest_prefix("8000000000000000" + "0" * 48) == -(2**63)
    assert digest_prefix("f" * 64) == -1
    digest = hashlib.sha256(b"a page").hexdigest()
    assert digest_prefix(digest) == int.from_bytes(bytes.fromhex(digest)[:8], "big", signed=True)


def test_the_prefix_is_the_one_postgresql_computes(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's own cast is what revision 0007 fills old rows with there")
    with engine.connect() as connection:
        for digest in DIGESTS:
            cast = text("SELECT ('x' || left(:digest, 16))::bit(64)::bigint")
            assert connection.scalar(cast, {"digest": digest}) == digest_prefix(digest)


def test_a_payload_inserted_without_its_prefix_gets_it(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add(Payload(sha256=DIGESTS[2], size=1))
    with engine.begin() as connection:
        connection.execute(insert(Payload), [{"sha256": DIGESTS[1], "size": 2}])
        prefixes = dict(connection.execute(select(Payload.sha256, Payload.sha256_prefix)).all())
    assert prefixes == {DIGESTS[2]: -(2**63), DIGESTS[1]: 2**63 - 1}


def test_a_digest_is_held_once(engine: Engine) -> None:
    """A unique constraint on PostgreSQL, a trigger through the prefix index on SQLite."""
    with engine.begin() as connection:
        connection.execute(insert(Payload), [{"sha256": digest, "size": 1} for digest in DIGESTS])
    with pytest.raises(IntegrityError, match="payloads"), engine.begin() as connection:
        connection.execute(insert(Payload), {"sha256": TWINS[1], "size": 2})
    with engine.connect() as connection:
        assert connection.scalar(select(Payload.size).where(Payload.sha256 == TWINS[1])) == 1


def page(url: str, digest: str, at: datetime) -> CapturedPage:
    return CapturedPage(url, "category", 200, digest, 10, at, at, 0)


def crawl(engine: Engine, digests: dict[str, str], at: datetime) -> None:
    writer = ArchiveWriter(engine, load_profile("hollowmere"), SETUP)
    writer.begin()
    category = Record(kind="category", values={"path": ["Drugs"], "category_id": "drugs"})
    writer.write_pages([(page(url, digest, at), [category]) for url, digest in digests.items()])
    writer.finish("complete", None, {})


def payload_of_pages(engine: Engine) -> list[tuple[int, str, str]]:
    with Session(engine) as session:
        rows = session.execute(select(Page.crawl_id, Page.url, Page.sha256).order_by(Page.id)).all()
    return [tuple(row) for row in rows]


def test_bodies_whose_digests_share_a_prefix_stay_apart(engine: Engine) -> None:
    # Night 1 stores one twin; night 2 brings both (the stored one at another URL): the other twin is a
    # new body, not the stored one; night 3 finds both again (a new writer: nothing cached).
    crawl(engine, {"http://m/a": TWINS[0]}, NOW)
    crawl(engine, {"http://m/b": TWINS[1], "http://m/c": TWINS[0]}, NOW + timedelta(days=1))
    crawl(engine, {"http://m/a": TWINS[1], "http://m/b": TWINS[0]}, NOW + timedelta(days=2))
    with engine.connect() as connection:
        payloads = connection.execute(
            select(Payload.sha256, Payload.sha256_prefix).order_by(Payload.id)
        ).all()
    assert payloads == [(TWINS[0], digest_prefix(SHARED)), (TWINS[1], digest_prefix(SHARED))]
    pages = payload_of_pages(engine)
    assert [sha for _, _, sha in pages] == [TWINS[0], TWINS[1], TWINS[0], TWINS[1], TWINS[0]]


@pytest.mark.sqlite_only("SQLite's query plans: the index a lookup by digest goes through")
def test_lookups_by_digest_go_through_the_prefix_index(engine: Engine) -> None:
    crawl(engine, {"http://m/a": TWINS[0]}, NOW)
    # What the next crawl's writer asks of payloads (its lookups run on the driver's cursor).
    asked: list[tuple[str, Any]] = []
    fetch = _DriverStatement.fetch

    def noted(statement: _DriverStatement, connection: Any, *parameters: Any) -> Any:
        asked.append((statement.sql, parameters))
        return fetch(statement, connection, *parameters)

    with patch.object(_DriverStatement, "fetch", autospec=True, side_effect=noted):
        crawl(engine, {"http://m/a": TWINS[1], "http://m/b": DIGESTS[0]}, NOW + timedelta(days=1))
    lookups = [(sql, parameters) for sql, parameters in asked if "FROM payloads" in sql]
    # As the capture pipeline and re-parse look a digest up.
    by_digest = select(Payload.id).where(
        Payload.sha256_prefix == digest_prefix(TWINS[0]), Payload.sha256 == TWINS[0]
    )
    lookups.append((str(by_digest.compile(engine, compile_kwargs={"literal_binds": True})), ()))
    with engine.connect() as connection:
        for sql, parameters in lookups:
            plan = " ".join(
                row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
            )
            assert "INDEX ix_payloads_sha256_prefix" in plan, (sql, plan)
        triggers = connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").all()
    assert len(lookups) == 2
    assert triggers == [("payloads_sha256_unique",)]


def test_revision_0007_gives_old_payloads_their_prefix_and_goes_back(database_url: str) -> None:
    engine = open_engine(database_url, create=False)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection=connection), "0006")
            for number, digest in enumerate(DIGESTS, start=1):
                connection.execute(
                    text("INSERT INTO payloads (id, sha256, size) VALUES (:id, :sha, 1)"),
                    {"id": number, "sha": digest},
                )
        upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                select(Payload.sha256, Payload.sha256_prefix).order_by(Payload.id)
            ).all()
        assert rows == [(digest, digest_prefix(digest)) for digest in DIGESTS]
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert(Payload), {"sha256": DIGESTS[0], "size": 2})
        downgrade(engine, "0006")
        # Back at 0006 the digest is unique by its constraint again.
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                text("INSERT INTO payloads (sha256, size) VALUES (:sha, 2)"), {"sha": DIGESTS[0]}
            )
    finally:
        engine.dispose()


def test_a_body_archived_without_its_capture_gets_the_one_a_later_night_brings(engine: Engine) -> None:
    # Night 1 files a listing page whose raw capture failed; night 2 fetches the same bytes and captures
    # them. Night 2's writer knows the body from night 1's pages (it does not look it up): the payload
    # row still takes the capture, once, and a third night that brings it again changes nothing.
    listing = Record(kind="listing", values={"listing_id": "7", "title": "x", "vendor_id": "v1"})
    digest = hashlib.sha256(b"listing 7").hexdigest()
    captured = {"warc_file": "m/2.warc.gz", "warc_record_id": "<urn:uuid:2>"}
    for night, capture in enumerate(({}, captured, {**captured, "warc_file": "m/3.warc.gz"})):
        at = NOW + timedelta(days=night)
        writer = ArchiveWriter(engine, load_profile("hollowmere"), SETUP)
        writer.begin()
        fetched = replace(page("http://m/listing/7", digest, at), page_type="listing", **capture)
        writer.write_pages([(fetched, [listing])])
        writer.finish("complete", None, {})
        with engine.connect() as connection:
            stored = connection.execute(select(Payload.warc_file, Payload.warc_record_id)).all()
        assert stored == [(captured["warc_file"], captured["warc_record_id"])] if capture else [(None, None)]
