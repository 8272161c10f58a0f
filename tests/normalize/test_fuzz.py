"""Property tests: whatever a page holds, normalizers raise NormalizationError or return a value."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnm.normalize import NORMALIZERS, NormalizationError, clean_text, fingerprint, normalize, parse_prices

NOW = datetime(2026, 3, 14, 15, tzinfo=UTC)
CONTEXT = {"now": NOW, "day_first": True, "default_currency": "USD", "rounding": "floor", "map": {"x": True}}

# Fragments of real market strings, so random joins reach the deeper branches of each parser.
FRAGMENTS = [
    "USD",
    "EUR",
    "BTC",
    "mBTC",
    "XMR",
    "$",
    "€",
    "£",
    "฿",
    "A$",
    "US$",
    "Bitcoin",
    "sats",
    "12",
    "0",
    "1,234.50",
    "1.234,50",
    "0.000787",
    "99999999999999999999",
    "/",
    "g",
    "per",
    "Order",
    " - ",
    " to ",
    "~",
    "+",
    "−",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "|",
    ":",
    " ",
    "\xa0",
    "\u200b",
    "Worldwide",
    "except",
    "excl.",
    "Korea, Republic of",
    "NA",
    "(c)",
    "→",
    "⟶",
    "UK",
    "We DO NOT ship to:",
    "ago",
    "3d",
    "22h",
    "a",
    "an",
    "in",
    "left",
    "yesterday",
    "today",
    "just now",
    "2019-10-27",
    "28/06/2018",
    "31/02/2020",
    "Nov",
    "6,",
    "2019",
    "20:53:28",
    "12:00",
    "PM",
    "UTC",
    "+01:00",
    "CET",
    "Sold by",
    "Vendor:",
    "@",
    "★",
    "Lvl 5",
    "(1000)",
    "( 4.97 )",
    "100%",
    "Unlimited",
    "∞",
    "Quantity left:",
    "yes",
    "✔",
    "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    "-----END PGP PUBLIC KEY BLOCK-----",
    "mQINBF",
    "=twTO",
    "Version: GnuPG v2",
    "0x",
    "ABCD",
    "\n",
    "\r\n",
    "<br>",
    "&#43;",
]
market_text = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)
any_text = st.text(max_size=200) | market_text


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(sorted(NORMALIZERS)), text=any_text)
def test_normalizers_only_raise_normalization_error(name: str, text: str) -> None:
    with contextlib.suppress(NormalizationError):
        normalize(name, text, **CONTEXT)


@settings(deadline=None)
@given(name=st.sampled_from(sorted(NORMALIZERS)), value=st.none() | st.integers() | st.binary(max_size=10))
def test_non_text_values_raise_normalization_error(name: str, value: object) -> None:
    with contextlib.suppress(NormalizationError):
        normalize(name, value, **CONTEXT)


@settings(deadline=None)
@given(
    data=st.binary(max_size=400), checksum=st.booleans(), wrap=st.sampled_from(["\n", " ", "\r\n  ", "<br>"])
)
def test_fingerprint_of_random_armoured_bytes(data: bytes, checksum: bool, wrap: str) -> None:
    text = base64.b64encode(data).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    if checksum:
        lines.append("=" + base64.b64encode(data[:3].ljust(3, b"\0")).decode())
    armored = wrap.join(
        ["-----BEGIN PGP PUBLIC KEY BLOCK-----", "", *lines, "-----END PGP PUBLIC KEY BLOCK-----"]
    )
    try:
        result = fingerprint(armored)
    except NormalizationError:
        return
    assert len(result) in (40, 64)


@settings(deadline=None)
@given(text=st.text(alphabet="$€£฿0123456789.,-/ USDEURBTCg", max_size=60))
def test_prices_are_found_in_order_and_non_negative(text: str) -> None:
    prices = parse_prices(text)
    assert all(p.amount >= 0 and p.currency for p in prices)
    cleaned, cursor = clean_text(text), 0
    for price in dict.fromkeys(p.shown for p in prices):  # a range's two prices share one shown text
        found = cleaned.find(price, cursor)
        assert found >= cursor, (text, price)
        cursor = found + len(price)
