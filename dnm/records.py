"""The record kinds a profile can extract and the fields of each; profiles are checked against them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# field name -> what it holds after normalization; docs/profiles.md documents the same table.
RECORD_FIELDS: dict[str, dict[str, str]] = {
    "listing": {
        "listing_id": "the market's id for the listing (required)",
        "title": "listing title (required)",
        "description": "description text",
        "vendor": "vendor name as shown (decorations are stripped by `vendor_name`)",
        "vendor_id": "the market's id for the vendor",
        "category": "category path, root first (a list)",
        "prices": "every price shown (normalizer `prices`); the primary one is chosen by `price_prefer`",
        "stock": "units in stock, null for unlimited (normalizer `stock`)",
        "escrow": "true for escrow, false for finalize-early",
        "ships_from": "origin regions (normalizer `regions`)",
        "ships_to": "destination regions with exclusions (normalizer `regions`)",
        "ships_to_excluded": "regions excluded, where a market lists them apart (normalizer `regions`)",
        "shipping_options": "repeated: name, price",
    },
    "vendor": {
        "vendor_id": "the market's id for the vendor (required)",
        "name": "vendor name (required; normalizer `vendor_name` strips decorations)",
        "level": "vendor level",
        "trust_level": "trust level",
        "sales": "number of sales shown",
        "rating": "average rating shown",
        "joined_on": "join date (normalizer `date`)",
        "last_seen": "last seen, absolute or relative (normalizer `when`)",
        "status": "active | vacation | banned (normalizer `choice`)",
        "feedback_count": "total feedback shown",
        "pgp_key": "armoured OpenPGP public key block",
        "fingerprint": "fingerprint printed on the page (normalizer `fingerprint`)",
    },
    "feedback": {
        "vendor_id": "the market's id for the vendor the feedback is about (required)",
        "listing_id": "the listing it was left on",
        "rating": "rating (1-5)",
        "text": "feedback text (required)",
        "buyer": "buyer name as shown (usually masked)",
        "posted": "when it was posted, absolute or relative (normalizer `when`)",
        "price": "approximate price shown with it (normalizer `price`)",
    },
    "category": {
        "path": "category path, root first (required, a list)",
        "category_id": "the market's id for the category",
        "listing_count": "number of listings the market says the category holds",
    },
}

SHIPPING_OPTION_FIELDS = {"name": "option name", "price": "option price (normalizer `price`)"}

# The normalizer a field gets when its profile rule names none: the profile only says otherwise
# where a market needs it (e.g. `choice` with a map for escrow wording).
DEFAULT_NORMALIZERS: dict[str, dict[str, str]] = {
    "listing": {
        "title": "text",
        "description": "text",
        "vendor": "vendor_name",
        "prices": "prices",
        "stock": "stock",
        "escrow": "bool",
        "ships_from": "regions",
        "ships_to": "regions",
        "ships_to_excluded": "regions",
    },
    "vendor": {
        "name": "vendor_name",
        "level": "int",
        "trust_level": "int",
        "sales": "int",
        "rating": "decimal",
        "joined_on": "date",
        "last_seen": "when",
        "feedback_count": "int",
        "fingerprint": "fingerprint",
    },
    "feedback": {"rating": "int", "text": "text", "posted": "when", "price": "price"},
    "category": {"listing_count": "int"},
    "shipping_option": {"name": "text", "price": "price"},
}

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "listing": ("listing_id", "title"),
    "vendor": ("vendor_id", "name"),
    "feedback": ("vendor_id", "text"),
    "category": ("path",),
}


@dataclass
class Record:
    """One extracted record of a page: its kind, values after normalization, and what went wrong.

    `shown` keeps the strings the page displayed for each field, so that the archive can store
    "USD 1,234.50" next to Decimal("1234.50") and a later parser can be checked against it.
    """

    kind: str
    values: dict[str, Any] = field(default_factory=dict)
    shown: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # Fields that must have a value for the record to be stored: the kind's own plus the profile's.
    required: tuple[str, ...] = ()

    @property
    def storable(self) -> bool:
        """A record is stored only when every required field was read; a partial one would mislead."""
        return all(self.values.get(name) not in (None, "", []) for name in self.required)
