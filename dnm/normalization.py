"""Turning a page's raw records into typed values with the named normalizers, field by field.

A field that cannot be read is left empty and the reason is kept on the record (and counted by
the pipeline); a record whose required field cannot be read is not stored at all. Nothing here
raises on bad page content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dnm.extraction import RawRecord
from dnm.normalize import NormalizationError, normalize
from dnm.normalize.pgp import extract_key_blocks, fingerprint
from dnm.normalize.prices import Price, choose_price
from dnm.profile import FieldRule, PageRule, Profile, RecordRule
from dnm.records import DEFAULT_NORMALIZERS, REQUIRED_FIELDS, Record


@dataclass(frozen=True)
class Context:
    """What normalizers need to know about the page: its clock and the market's conventions."""

    now: datetime
    day_first: bool = True
    default_currency: str | None = None
    rounding: str = "floor"

    def kwargs(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "day_first": self.day_first,
            "default_currency": self.default_currency,
            "rounding": self.rounding,
        }


def context_for(profile: Profile, now: datetime) -> Context:
    """The normalization context of a page whose clock reads `now`."""
    return Context(
        now=now,
        day_first=profile.day_first,
        default_currency=profile.default_currency,
        rounding=profile.relative_rounding,
    )


def normalize_records(
    page: PageRule, raw_records: list[RawRecord], context: Context, profile: Profile
) -> list[Record]:
    """Typed records for a page's raw records, in the same order."""
    rules = {rule.kind: rule for rule in page.records}
    return [normalize_record(rules[raw.kind], raw, context, profile) for raw in raw_records]


def normalize_record(rule: RecordRule, raw: RawRecord, context: Context, profile: Profile) -> Record:
    """One raw record made typed; failures are listed in `errors`, never raised."""
    field_rules = {f.name: f for f in rule.fields}
    required = (*REQUIRED_FIELDS[raw.kind], *(f.name for f in rule.fields if f.required))
    record = Record(
        kind=raw.kind,
        shown=dict(raw.fields),
        errors=list(raw.errors),
        required=tuple(dict.fromkeys(required)),
    )
    for name, shown in raw.fields.items():
        field_rule = field_rules[name]
        if field_rule.each:
            continue  # repeated groups depend on other fields (currency); read them last
        try:
            record.values[name] = _normalize_field(raw.kind, field_rule, shown, context)
        except NormalizationError as exc:
            record.errors.append(f"{raw.kind}.{name}: {exc}")
    _derive(record, profile)
    for name, field_rule in field_rules.items():
        if field_rule.each and name in raw.fields:
            record.values[name] = _normalize_rows(field_rule, raw.fields[name], record, context)
    return record


def _normalize_field(kind: str, rule: FieldRule, shown: Any, context: Context) -> Any:
    if kind == "vendor" and rule.name == "pgp_key" and rule.normalize is None:
        return _read_key(shown)
    name = rule.normalize or DEFAULT_NORMALIZERS.get(kind, {}).get(rule.name)
    if name is None:
        return shown
    kwargs = {**context.kwargs(), **rule.args}
    if isinstance(shown, list):
        return [normalize(name, item, **kwargs) for item in shown]
    return normalize(name, shown, **kwargs)


def _read_key(shown: Any) -> dict[str, str]:
    text = "\n".join(shown) if isinstance(shown, list) else str(shown)
    blocks = extract_key_blocks(text)
    if not blocks:
        raise NormalizationError(
            "an OpenPGP public key", text, "an armoured '-----BEGIN PGP PUBLIC KEY BLOCK-----' block"
        )
    return {"armored": blocks[0], "fingerprint": fingerprint(blocks[0])}


def _derive(record: Record, profile: Profile) -> None:
    """Values that combine fields: the primary price of a listing, the names' cleaned forms."""
    if record.kind != "listing":
        return
    prices = record.values.get("prices")
    if isinstance(prices, Price):
        prices = record.values["prices"] = [prices]
    if prices:
        record.values["price"] = choose_price(prices, profile.price_prefer)


def _normalize_rows(rule: FieldRule, rows: Any, record: Record, context: Context) -> list[dict[str, Any]]:
    """Shipping options and the like: each row's fields, with the listing's currency as default."""
    price = record.values.get("price")
    row_context = context
    if isinstance(price, Price):
        row_context = Context(context.now, context.day_first, price.currency, context.rounding)
    out: list[dict[str, Any]] = []
    for index, row in enumerate(rows or []):
        values: dict[str, Any] = {"shown": row}
        for sub in rule.fields:
            if sub.name not in row:
                continue
            try:
                values[sub.name] = _normalize_field("shipping_option", sub, row[sub.name], row_context)
            except NormalizationError as exc:
                record.errors.append(f"{record.kind}.{rule.name}[{index}].{sub.name}: {exc}")
        out.append(values)
    return out
