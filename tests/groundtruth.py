"""Comparing an archive export with the demo market's ground truth, field by field.

Shared by every test that crawls the demo market (plain HTTP, over Tor, hostile mode, distributed):
the archive is right when each listing, vendor and feedback the market showed on that day was
archived with exactly the values a perfect parser would read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

# Provenance fields the truth cannot know; the export must fill them.
PROVENANCE = ("crawl_id", "observed_at", "page_sha256")
LISTING_FIELDS = (
    "title", "description", "vendor", "vendor_id", "category", "price_amount", "price_currency",
    "price_unit", "ships_from", "ships_to", "ships_to_excluded", "escrow", "stock", "shipping_options",
)  # fmt: skip
VENDOR_FIELDS = (
    "vendor", "level", "trust_level", "sales", "rating", "joined_on", "status", "pgp_fingerprint",
    "fingerprint_shown", "feedback_count",
)  # fmt: skip


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _normal(field: str, value: Any) -> Any:
    """Values compared by meaning, not spelling: decimals by value."""
    if field in ("price_amount", "rating"):
        return _decimal(value)
    if field == "shipping_options":
        return [(o["name"], _decimal(o["price_amount"]), o["price_currency"]) for o in value]
    return value


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def compare_listings(exported: list[dict[str, Any]], truth: list[dict[str, Any]]) -> list[str]:
    """Differences between exported listing rows and truth rows (empty when they agree).

    Listings the market served malformed are expected to be missing (their pages are counted errors).
    """
    malformed = {row["listing_id"] for row in truth if row.get("malformed")}
    return _compare_snapshots("listing", LISTING_FIELDS, exported, truth, may_miss=malformed)


def compare_vendors(exported: list[dict[str, Any]], truth: list[dict[str, Any]]) -> list[str]:
    """Differences between exported vendor rows and truth rows; last-seen must contain the true instant."""
    problems = _compare_snapshots("vendor", VENDOR_FIELDS, exported, truth)
    wanted = {row["vendor_id"]: row for row in truth}
    for got in exported:
        if got["vendor_id"] in wanted:
            label = f"vendor {got['vendor_id']}.last_seen"
            problems.extend(_span(label, got, wanted[got["vendor_id"]], "last_seen"))
    return problems


def _compare_snapshots(
    kind: str,
    fields: tuple[str, ...],
    exported: list[dict[str, Any]],
    truth: list[dict[str, Any]],
    may_miss: Collection[str] = (),
) -> list[str]:
    key = f"{kind}_id"
    problems: list[str] = []
    by_id = {row[key]: row for row in exported}
    if len(by_id) != len(exported):
        problems.append(f"duplicate {kind} snapshots: {len(exported)} rows for {len(by_id)} {kind}s")
    wanted = {row[key]: row for row in truth if row[key] not in may_miss}
    for entity in sorted(wanted.keys() - by_id.keys()):
        problems.append(f"{kind} {entity}: missing from the archive")
    for entity in sorted(by_id.keys() - {row[key] for row in truth}):
        problems.append(f"{kind} {entity}: archived but not on the market")
    for entity in sorted(wanted.keys() & by_id.keys()):
        got, want = by_id[entity], wanted[entity]
        problems.extend(_provenance(f"{kind} {entity}", got))
        for field in fields:
            if _normal(field, got.get(field)) != _normal(field, want.get(field)):
                problems.append(_mismatch(f"{kind} {entity}.{field}", got.get(field), want.get(field)))
    return problems


def compare_feedback(exported: list[dict[str, Any]], truth: list[dict[str, Any]]) -> list[str]:
    """Feedback as a multiset by identity; each archived window must contain the true posting time.

    The listing link is checked apart: a page stops linking a feedback's listing once the listing
    is gone, and the archive rightly keeps the link an earlier crawl saw.
    """
    problems: list[str] = []

    def identity(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["vendor_id"], row["buyer"], row["rating"], row["text"],
                _decimal(row["price_amount"]), row["price_currency"])  # fmt: skip

    got_by: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in exported:
        got_by.setdefault(identity(row), []).append(row)
    want_counts = Counter(identity(row) for row in truth)
    got_counts = Counter({key: len(rows) for key, rows in got_by.items()})
    for key, count in sorted((want_counts - got_counts).items(), key=repr):
        problems.append(f"feedback missing ({count}x): {key}")
    for key, count in sorted((got_counts - want_counts).items(), key=repr):
        problems.append(f"feedback not on the market ({count}x): {key}")
    for want in truth:
        candidates = got_by.get(identity(want), [])
        if candidates and not any(
            not _span("", got, want, "posted_at")
            and (want["listing_id"] is None or got["listing_id"] == want["listing_id"])
            for got in candidates
        ):
            problems.append(
                f"feedback {identity(want)}: no archived row on listing {want['listing_id']} "
                f"whose window holds {want['posted_at_earliest']}"
            )
    return problems


def _span(label: str, got: dict[str, Any], want: dict[str, Any], field: str) -> list[str]:
    earliest, latest = got.get(f"{field}_earliest"), got.get(f"{field}_latest")
    true_earliest, true_latest = want.get(f"{field}_earliest"), want.get(f"{field}_latest")
    if true_earliest is None:
        return [] if earliest is None else [f"{label}: archived {earliest}..{latest}, market showed none"]
    if earliest is None or latest is None:
        return [f"{label}: not archived, true value {true_earliest}"]
    if not (_when(earliest) <= _when(true_earliest) and _when(true_latest) <= _when(latest)):
        return [f"{label}: archived window {earliest}..{latest} does not hold {true_earliest}"]
    return []


def _mismatch(label: str, archived: Any, shown: Any) -> str:
    return f"{label}: archived {archived!r}, market showed {shown!r}"


def _provenance(label: str, row: dict[str, Any]) -> list[str]:
    return [f"{label}: export lacks {field}" for field in PROVENANCE if not row.get(field)]
