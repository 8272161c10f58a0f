"""Ground truth: the records a perfect parser would extract from one market-day, in the export schema.

Built from the same day view the pages render (`World.day`), never from the HTML, so tests can
hold pages and truth against each other. crawl_id, observed_at and page_sha256 belong to a real
crawl and are null here; listings carry an extra `malformed` flag for pages served truncated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from demo import clock, faults, money
from demo.regions import codes
from demo.world import MARKETS, MarketDay, Scale, world_for

KINDS = ("listings", "vendors", "feedback", "categories")


def collapse(text: str) -> str:
    """Whitespace runs to single spaces, stripped: the schema's rule for titles and texts."""
    return " ".join(text.split())


def _amount(value: Decimal | None) -> str | None:
    """A shown amount as a plain decimal string ("30", "52.50")."""
    return None if value is None else format(value, "f")


def listings(md: MarketDay, malformed: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """One record per visible listing, newest first."""
    out = []
    for lv in md.listings:
        item = lv.listing
        out.append(
            {
                "market": md.market,
                "listing_id": item.id,
                "crawl_id": None,
                "observed_at": None,
                "title": collapse(item.title),
                "description": collapse(item.description),
                "vendor": lv.vendor.vendor.name,
                "vendor_id": lv.vendor.id,
                "category": list(item.category),
                "price_amount": money.plain(lv.price),
                "price_currency": item.currency,
                "price_unit": item.unit,
                "ships_from": codes(item.ships_from),
                "ships_to": codes(item.ships_to),
                "ships_to_excluded": codes(item.excluded),
                "escrow": item.escrow,
                "stock": lv.stock,
                "shipping_options": [
                    {"name": o.name, "price_amount": money.plain(o.price), "price_currency": item.currency}
                    for o in item.shipping
                ],
                "page_sha256": None,
                "malformed": item.id in malformed,
            }
        )
    return out


def vendors(md: MarketDay) -> list[dict[str, Any]]:
    """One record per vendor page (banned vendors keep theirs), in join order."""
    out = []
    for vv in md.vendors:
        v = vv.vendor
        seen = clock.iso(vv.last_seen)
        out.append(
            {
                "market": md.market,
                "vendor": v.name,
                "vendor_id": v.id,
                "crawl_id": None,
                "observed_at": None,
                "level": vv.level,
                "trust_level": vv.trust_level,
                "sales": vv.sales,
                "rating": None if vv.rating is None else str(vv.rating),
                "joined_on": v.joined_at.date().isoformat(),
                "last_seen_earliest": seen,
                "last_seen_latest": seen,
                "status": vv.status,
                "pgp_fingerprint": v.key.fingerprint if v.key else None,
                "fingerprint_shown": bool(v.key and v.shows_fingerprint),
                "feedback_count": len(vv.feedback),
                "page_sha256": None,
            }
        )
    return out


def feedback(md: MarketDay) -> list[dict[str, Any]]:
    """Every feedback row on every feedback page, per vendor newest first."""
    out = []
    for vv in md.vendors:
        for fv in vv.feedback:
            posted = clock.iso(fv.feedback.posted_at)
            out.append(
                {
                    "market": md.market,
                    "vendor": vv.vendor.name,
                    "vendor_id": vv.id,
                    "listing_id": fv.listing_id,
                    "rating": fv.feedback.rating,
                    "text": collapse(fv.feedback.text),
                    "buyer": fv.feedback.buyer,
                    "posted_at_earliest": posted,
                    "posted_at_latest": posted,
                    "price_amount": _amount(fv.price_amount),
                    "price_currency": fv.price_currency,
                    "crawl_id": None,
                    "observed_at": None,
                }
            )
    return out


def categories(md: MarketDay) -> list[dict[str, Any]]:
    """Every category in tree order with the count shown beside it."""
    return [
        {
            "market": md.market,
            "category": list(c.category.path),
            "category_id": c.id,
            "listing_count": c.count,
        }
        for c in md.categories
    ]


def truth(
    market: str,
    day: int,
    seed: int = 1,
    scale: str | dict[str, Any] | Scale = "small",
    kind: str = "listings",
    malformed_rate: float = 0.0,
) -> list[dict[str, Any]]:
    """Ground-truth records of one kind for (seed, market, day)."""
    if market not in MARKETS:
        raise ValueError(f"unknown market {market!r}: use one of {MARKETS}")
    md = world_for(seed, scale).day(market, day)
    if kind == "listings":
        return listings(md, faults.malformed_ids(md, malformed_rate))
    if kind == "vendors":
        return vendors(md)
    if kind == "feedback":
        return feedback(md)
    if kind == "categories":
        return categories(md)
    raise ValueError(f"unknown truth kind {kind!r}: use one of {KINDS}")


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[str] | str | Path) -> int:
    """Write records as JSON Lines (UTF-8, keys in schema order); returns the number written."""
    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8") as fh:
            return write_jsonl(records, fh)
    n = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        n += 1
    return n


def dump(
    directory: str | Path,
    market: str,
    day: int,
    seed: int = 1,
    scale: str | dict[str, Any] | Scale = "small",
    malformed_rate: float = 0.0,
) -> dict[str, Path]:
    """Write all four kinds as <market>-day<day>-<kind>.jsonl into a directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in KINDS:
        path = directory / f"{market}-day{day}-{kind}.jsonl"
        write_jsonl(truth(market, day, seed, scale, kind, malformed_rate), path)
        paths[kind] = path
    return paths
