"""Exporting the archive: rows in the documented export schema, written as JSON Lines, CSV or Parquet.

One row per snapshot (listings, vendors) or per feedback; filters by market, crawl, observation
time, vendor, category and shipping destination. The schema is the researcher's contract
(docs/data-dictionary.md) and the demo market's ground truth uses the same one.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import Engine, Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from models import (
    Category,
    Crawl,
    Feedback,
    Listing,
    ListingSnapshot,
    Market,
    PgpKey,
    ShippingRegion,
    Vendor,
    VendorSnapshot,
)

KINDS = ("listings", "vendors", "feedback")


@dataclass(frozen=True)
class ExportFilter:
    """Which rows to export; every field is optional."""

    market: str | None = None
    crawl_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    vendor: str | None = None  # the market's vendor id, or the vendor's name as shown (any case)
    category: str | None = None  # a category name at any level of the listing's path (any case)
    ships_to: str | None = None  # an ISO code or region token the listing ships to ("DE", "EU", "WW")
    listing: str | None = None  # the market's listing id (listings and their feedback)

    def keeps(self, row: dict[str, Any]) -> bool:
        """The filters that are checked on a built row (vendor, category, ships-to, listing)."""
        if self.listing is not None and str(row.get("listing_id")) != self.listing:
            return False
        if self.vendor and self.vendor.casefold() not in {
            str(row.get("vendor_id") or "").casefold(),
            str(row.get("vendor") or "").casefold(),
        }:
            return False
        if self.category and self.category.casefold() not in {
            str(c).casefold() for c in row.get("category", [])
        }:
            return False
        return not (
            self.ships_to and self.ships_to.upper() not in {str(c).upper() for c in row.get("ships_to", [])}
        )


def export_rows(engine: Engine, kind: str, filters: ExportFilter) -> Iterator[dict[str, Any]]:
    """Rows of one export kind, oldest observation first."""
    if kind not in KINDS:
        raise ValueError(f"unknown export kind {kind!r}; choose from {', '.join(KINDS)}")
    if kind != "listings" and (filters.category or filters.ships_to):
        raise ValueError("the category and ships-to filters apply to listings only")
    if kind == "vendors" and filters.listing is not None:
        raise ValueError("the listing filter applies to listings and feedback only")
    with Session(engine) as session:
        rows = {"listings": _listings, "vendors": _vendors, "feedback": _feedback}[kind](session, filters)
        yield from (row for row in rows if filters.keeps(row))


def _narrowed(query: Select[Any], filters: ExportFilter, vendor_columns: tuple[Any, ...]) -> Select[Any]:
    """The vendor, category and ships-to filters as SQL, so that a year of snapshots is not read to keep
    a few. They may keep more than the filters do (`ExportFilter.keeps` still decides on every row): SQL's
    lower() only matches Python's casefold() on ASCII, so other values are left to `keeps` alone."""
    if filters.vendor and filters.vendor.isascii():
        wanted = filters.vendor.lower()
        query = query.where(or_(*(func.lower(column) == wanted for column in vendor_columns)))
    if filters.category and filters.category.isascii():
        query = query.where(func.lower(Category.path_key).contains(filters.category.lower(), autoescape=True))
    if filters.listing is not None:
        query = query.where(Listing.listing_key == filters.listing)
    if filters.ships_to:
        query = query.where(
            select(ShippingRegion.id)
            .where(
                ShippingRegion.state_id == ListingSnapshot.state_id,
                ShippingRegion.role == "to",
                ShippingRegion.code == filters.ships_to.upper(),
            )
            .exists()
        )
    return query


def _snapshot_filters(query: Select[Any], snapshot: Any, filters: ExportFilter) -> Select[Any]:
    if filters.market:
        query = query.where(Market.slug == filters.market)
    if filters.crawl_id is not None:
        query = query.where(snapshot.crawl_id == filters.crawl_id)
    else:  # re-parses of old captures are exported when asked for by crawl id only
        query = query.where(snapshot.crawl_id.in_(select(Crawl.id).where(Crawl.reparse_of.is_(None))))
    if filters.since:
        query = query.where(snapshot.observed_at >= filters.since)
    if filters.until:
        query = query.where(snapshot.observed_at < filters.until)
    return query


def _listings(session: Session, filters: ExportFilter) -> Iterator[dict[str, Any]]:
    query = (
        select(ListingSnapshot, Listing, Market, Vendor, Category)
        .join(Listing, ListingSnapshot.listing_id == Listing.id)
        .join(Market, Listing.market_id == Market.id)
        .outerjoin(Vendor, ListingSnapshot.vendor_id == Vendor.id)
        .outerjoin(Category, ListingSnapshot.category_id == Category.id)
        .options(
            selectinload(ListingSnapshot.regions),
            selectinload(ListingSnapshot.shipping_options),
        )
        .order_by(ListingSnapshot.observed_at, ListingSnapshot.id)
    )
    query = _snapshot_filters(query, ListingSnapshot, filters)
    query = _narrowed(query, filters, (Vendor.vendor_key, Vendor.name, ListingSnapshot.vendor_name))
    for snap, listing, market, vendor, category in session.execute(query).yield_per(500):
        regions: dict[str, list[str]] = {"from": [], "to": [], "excluded": []}
        for region in snap.regions:
            regions[region.role].append(region.code)
        yield {
            "market": market.slug,
            "listing_id": listing.listing_key,
            "crawl_id": snap.crawl_id,
            "observed_at": _iso(snap.observed_at),
            "title": snap.title,
            "description": snap.description,
            "vendor": snap.vendor_name or (vendor.name if vendor else None),
            "vendor_id": vendor.vendor_key if vendor else None,
            "category": list(category.path) if category else [],
            "price_amount": _decimal(snap.price_amount),
            "price_currency": snap.price_currency,
            "price_unit": snap.price_unit,
            "price_shown": snap.price_shown,
            "ships_from": regions["from"],
            "ships_to": regions["to"],
            "ships_to_excluded": regions["excluded"],
            "escrow": snap.escrow,
            "stock": snap.stock,
            "shipping_options": [
                {
                    "name": option.name,
                    "price_amount": _decimal(option.price_amount),
                    "price_currency": option.price_currency,
                }
                for option in snap.shipping_options
            ],
            **_provenance(snap),
        }


def _vendors(session: Session, filters: ExportFilter) -> Iterator[dict[str, Any]]:
    query = (
        select(VendorSnapshot, Vendor, Market, PgpKey)
        .join(Vendor, VendorSnapshot.vendor_id == Vendor.id)
        .join(Market, Vendor.market_id == Market.id)
        .outerjoin(PgpKey, VendorSnapshot.pgp_key_id == PgpKey.id)
        .order_by(VendorSnapshot.observed_at, VendorSnapshot.id)
    )
    query = _snapshot_filters(query, VendorSnapshot, filters)
    query = _narrowed(query, filters, (Vendor.vendor_key, VendorSnapshot.name))
    for snap, vendor, market, key in session.execute(query).yield_per(500):
        yield {
            "market": market.slug,
            "vendor": snap.name,
            "vendor_id": vendor.vendor_key,
            "crawl_id": snap.crawl_id,
            "observed_at": _iso(snap.observed_at),
            "name_shown": snap.name_shown,
            "level": snap.level,
            "trust_level": snap.trust_level,
            "sales": snap.sales,
            "rating": _decimal(snap.rating),
            "joined_on": _iso(snap.joined_on),
            "last_seen_earliest": _iso(snap.last_seen_earliest),
            "last_seen_latest": _iso(snap.last_seen_latest),
            "status": snap.status,
            "pgp_fingerprint": key.fingerprint if key else None,
            "fingerprint_shown": snap.fingerprint_shown is not None,
            "feedback_count": snap.feedback_count,
            **_provenance(snap),
        }


def _feedback(session: Session, filters: ExportFilter) -> Iterator[dict[str, Any]]:
    query = (
        select(Feedback, Vendor, Market, Listing)
        .join(Vendor, Feedback.vendor_id == Vendor.id)
        .join(Market, Vendor.market_id == Market.id)
        .outerjoin(Listing, Feedback.listing_id == Listing.id)
        .order_by(Feedback.id)
    )
    query = _narrowed(query, filters, (Vendor.vendor_key, Vendor.name))
    if filters.market:
        query = query.where(Market.slug == filters.market)
    if filters.crawl_id is not None:
        # Feedback is stored once: a crawl saw those first seen at or before it and last seen at or after.
        query = query.where(
            Feedback.first_crawl_id <= filters.crawl_id, Feedback.last_crawl_id >= filters.crawl_id
        )
    if filters.since:
        query = query.where(Feedback.last_seen_at >= filters.since)
    if filters.until:
        query = query.where(Feedback.first_seen_at < filters.until)
    for feedback, vendor, market, listing in session.execute(query).yield_per(500):
        yield {
            "market": market.slug,
            "vendor": vendor.name,
            "vendor_id": vendor.vendor_key,
            "listing_id": listing.listing_key if listing else None,
            "rating": feedback.rating,
            "text": feedback.text,
            "buyer": feedback.buyer,
            "posted_at_earliest": _iso(feedback.posted_earliest),
            "posted_at_latest": _iso(feedback.posted_latest),
            "price_amount": _decimal(feedback.price_amount),
            "price_currency": feedback.price_currency,
            "first_crawl_id": feedback.first_crawl_id,
            "last_crawl_id": feedback.last_crawl_id,
            "first_seen_at": _iso(feedback.first_seen_at),
            "last_seen_at": _iso(feedback.last_seen_at),
            "sightings": feedback.sightings,
            "first_page_sha256": feedback.first_page_sha256,
        }


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """Write rows as JSON Lines; returns the count."""
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
        count += 1
    return count


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection: "=HYPERLINK(...)",
# "=cmd|' /C calc'!A0"); market text can start with anything. Plain numbers ("-3", "+5") are left alone.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def guard_formula(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, with a leading apostrophe (OWASP's advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str], *, guard_formulas: bool = True) -> int:
    """Write rows as CSV; list and object fields are JSON-encoded in their cell. Returns the count.

    CSV files are opened in spreadsheets, so by default a text cell starting with = + - @ (or a tab or
    carriage return) gets a leading apostrophe and is shown, not run (`guard_formulas=False` writes every
    cell exactly as archived). JSON Lines and Parquet are never altered: they are read by programs.
    """
    writer: csv.DictWriter[str] | None = None
    count = 0
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row))
            writer.writeheader()
        cells = {
            k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v for k, v in row.items()
        }
        writer.writerow({k: guard_formula(v) for k, v in cells.items()} if guard_formulas else cells)
        count += 1
    return count


def write_parquet(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    """Write rows as one Parquet table (lists stay lists, shipping options stay structs). Returns the count.

    Amounts stay decimal strings, as in the other formats: a float would change the shown value.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(list(rows))
    pq.write_table(table, out)
    return table.num_rows


WRITERS = {"jsonl": write_jsonl, "csv": write_csv}
BINARY_WRITERS = {"parquet": write_parquet}


def _provenance(snap: ListingSnapshot | VendorSnapshot) -> dict[str, Any]:
    """Where a snapshot came from: its page and the parser that read it."""
    return {"url": snap.url, "page_sha256": snap.page_sha256, "profile_version": snap.profile_version}


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _decimal(value: Decimal | None) -> str | None:
    return format(value, "f") if value is not None else None
