"""Truth records: exact schema, types, and the JSON Lines writer and CLI."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from demo.regions import REGION_CODES
from demo.truth import KINDS, dump, truth, write_jsonl
from demo.world import MARKETS

SCHEMA = {
    "listings": [
        "market",
        "listing_id",
        "crawl_id",
        "observed_at",
        "title",
        "description",
        "vendor",
        "vendor_id",
        "category",
        "price_amount",
        "price_currency",
        "price_unit",
        "ships_from",
        "ships_to",
        "ships_to_excluded",
        "escrow",
        "stock",
        "shipping_options",
        "page_sha256",
        "malformed",
    ],
    "vendors": [
        "market",
        "vendor",
        "vendor_id",
        "crawl_id",
        "observed_at",
        "level",
        "trust_level",
        "sales",
        "rating",
        "joined_on",
        "last_seen_earliest",
        "last_seen_latest",
        "status",
        "pgp_fingerprint",
        "fingerprint_shown",
        "feedback_count",
        "page_sha256",
    ],
    "feedback": [
        "market",
        "vendor",
        "vendor_id",
        "listing_id",
        "rating",
        "text",
        "buyer",
        "posted_at_earliest",
        "posted_at_latest",
        "price_amount",
        "price_currency",
        "crawl_id",
        "observed_at",
    ],
    "categories": ["market", "category", "category_id", "listing_count"],
}
DECIMAL = re.compile(r"\d+(\.\d\d)?")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def is_place(code: str) -> bool:
    return code in REGION_CODES or re.fullmatch(r"[A-Z]{2}", code) is not None


@pytest.mark.parametrize("market", MARKETS)
def test_records_follow_the_export_schema(market: str) -> None:
    for kind in KINDS:
        records = truth(market, 5, kind=kind)
        assert records
        for r in records:
            assert list(r) == SCHEMA[kind]
            assert r["market"] == market
    for r in truth(market, 5):
        assert r["crawl_id"] is r["observed_at"] is r["page_sha256"] is None
        assert r["title"] == " ".join(r["title"].split()) and r["description"] == " ".join(
            r["description"].split()
        )
        assert re.fullmatch(r"\d+\.\d\d", r["price_amount"])
        assert r["price_currency"] in {"USD", "EUR", "GBP", "AUD", "CAD"}
        assert len(r["ships_from"]) == 1
        assert all(is_place(c) for c in r["ships_from"] + r["ships_to"] + r["ships_to_excluded"])
        assert len(set(r["ships_to"])) == len(r["ships_to"])
        assert isinstance(r["escrow"], bool) and (r["stock"] is None or r["stock"] > 0)
        for option in r["shipping_options"]:
            assert list(option) == ["name", "price_amount", "price_currency"]
            assert option["price_currency"] == r["price_currency"]
    for r in truth(market, 5, kind="vendors"):
        assert r["status"] in {"active", "vacation", "banned"}
        assert ISO.fullmatch(r["last_seen_earliest"]) and r["last_seen_earliest"] == r["last_seen_latest"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", r["joined_on"])
        assert r["rating"] is None or re.fullmatch(r"\d\.\d\d", r["rating"])
        assert r["pgp_fingerprint"] is None or re.fullmatch(r"[0-9A-F]{40}", r["pgp_fingerprint"])
        assert not (r["fingerprint_shown"] and r["pgp_fingerprint"] is None)
    for r in truth(market, 5, kind="feedback"):
        assert 1 <= r["rating"] <= 5 and ISO.fullmatch(r["posted_at_earliest"])
        assert r["price_amount"] is None or DECIMAL.fullmatch(r["price_amount"])
        assert (r["price_amount"] is None) == (r["price_currency"] is None)


def test_some_variety_is_exported() -> None:
    records = truth("hollowmere", 0) + truth("copperline", 0)
    units = {r["price_unit"] for r in records}
    assert {None, "g"} <= units and len(units) >= 3
    assert any(r["ships_to_excluded"] for r in records)
    assert any(r["stock"] is None for r in records) and any(r["stock"] for r in records)
    assert {r["escrow"] for r in records} == {True, False}
    assert any(float(r["price_amount"]) >= 1000 for r in records)
    assert any(o["price_amount"] == "0.00" for r in records for o in r["shipping_options"])
    levels = [v["level"] for v in truth("copperline", 0, kind="vendors")]
    assert None in levels or any(v["trust_level"] is None for v in truth("copperline", 0, kind="vendors"))


def test_jsonl_writer_and_dump(tmp_path: Path) -> None:
    buffer = io.StringIO()
    records = truth("hollowmere", 0, kind="categories")
    assert write_jsonl(records, buffer) == len(records)
    assert [json.loads(line) for line in buffer.getvalue().splitlines()] == records
    paths = dump(tmp_path, "copperline", 2)
    assert sorted(paths) == sorted(KINDS)
    loaded = [json.loads(x) for x in paths["feedback"].read_text(encoding="utf-8").splitlines()]
    assert loaded == truth("copperline", 2, kind="feedback")
