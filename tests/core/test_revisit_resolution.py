"""Re-parsing follows a revisit record to the record holding its payload in another WARC file, found
through the payloads table by the digest the revisit carries (dnm.reparse; revision 0006 indexes payloads
by file, not by record id). Archives made before revision 0004 point pages at such revisits.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from dnm.items import PageItem
from dnm.rawstore import RawStore, StoredPayload, read_records, warc_date
from dnm.reparse import ReparseError, _Resolver
from models import Payload
from models.db import open_engine
from tests.conftest import archive_url

BODY = b"<html>listing 7, price 100</html>"
INFO = {"software": "test"}


def two_files(raw: Path) -> tuple[str, str, str, str]:
    """Crawl 1's file holds the response; crawl 2's a revisit of it (as before revision 0004, when a
    later crawl wrote revisits, not fetch-log lines). Returns (file 1, its record, file 2, the revisit)."""
    item = PageItem("http://m.onion/listing/7", "listing", 200, BODY, "", datetime(2026, 1, 1, tzinfo=UTC))
    first = RawStore(raw, "m", 1, INFO)
    stored = first.write(item)
    first.close()
    second = RawStore(raw, "m", 2, INFO)
    second.payloads[stored.payload_sha256] = StoredPayload(
        stored.warc_file, stored.record_id, item.url, warc_date(item.fetched_at)
    )
    assert second.write(item).revisit
    second.close()
    revisit = next(r for r in read_records(raw / second.warc_file) if r.kind == "revisit")
    assert revisit.refers_to == stored.record_id
    return stored.warc_file, stored.record_id, second.warc_file, revisit.record_id


def test_a_revisit_is_followed_to_another_file_by_its_payload_digest(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    first_file, first_record, second_file, revisit = two_files(raw)
    engine = open_engine(archive_url(tmp_path))
    try:
        with Session(engine) as session, session.begin():
            session.add(
                Payload(sha256=hashlib.sha256(BODY).hexdigest(), size=len(BODY), warc_file=first_file,
                        warc_record_id=first_record)
            )  # fmt: skip
        record = _Resolver(engine, raw).record(second_file, revisit)
        assert record.body == BODY and record.record_id == revisit
    finally:
        engine.dispose()


def test_a_revisit_whose_payload_the_archive_does_not_hold_is_an_error(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _, _, second_file, revisit = two_files(raw)
    engine = open_engine(archive_url(tmp_path))
    try:
        with pytest.raises(ReparseError, match="revisit"):
            _Resolver(engine, raw).record(second_file, revisit)
    finally:
        engine.dispose()
