"""Normalizers: turn the strings market pages show into clean values (numbers, prices, regions,
times, vendor names, PGP fingerprints).

Each normalizer raises ``NormalizationError`` (a ``ValueError``) and nothing else on bad input, so
callers can count a bad field and continue. ``NORMALIZERS`` names them for market profiles and
``normalize`` calls one by name with context.
"""

from dnm.normalize.choice import choice
from dnm.normalize.dates import TimeSpan, parse_date, parse_instant, parse_when
from dnm.normalize.errors import NormalizationError
from dnm.normalize.names import clean_vendor_name
from dnm.normalize.pgp import extract_key_blocks, fingerprint, normalize_fingerprint
from dnm.normalize.prices import Price, parse_price, parse_prices
from dnm.normalize.regions import REGION_CODES, Regions, parse_regions, parse_route, region_code
from dnm.normalize.registry import NORMALIZERS, normalize
from dnm.normalize.text import clean_text, parse_bool, parse_decimal, parse_int, parse_stock

__all__ = [
    "NORMALIZERS",
    "REGION_CODES",
    "NormalizationError",
    "Price",
    "Regions",
    "TimeSpan",
    "choice",
    "clean_text",
    "clean_vendor_name",
    "extract_key_blocks",
    "fingerprint",
    "normalize",
    "normalize_fingerprint",
    "parse_bool",
    "parse_date",
    "parse_decimal",
    "parse_instant",
    "parse_int",
    "parse_price",
    "parse_prices",
    "parse_regions",
    "parse_route",
    "parse_stock",
    "parse_when",
    "region_code",
]
