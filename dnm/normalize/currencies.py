"""Which strings name a currency: ISO 4217 codes (via pycountry), crypto tickers, symbols and coin names.

A currency marker resolves to a code plus a power of ten, so "mBTC" is (BTC, -3) and "sats" is
(BTC, -8): amounts are stored in whole coins.
"""

from __future__ import annotations

import pycountry

# Tickers markets accept; XBT is the ISO-style alias some exchanges print for bitcoin.
CRYPTO: frozenset[str] = frozenset({"BTC", "XMR", "LTC", "BCH", "ETH", "ZEC", "DASH", "DOGE", "USDT"})
_CRYPTO_ALIASES = {"XBT": "BTC"}

# ISO 4217 codes that are also English words shouted in all-caps titles ("TOP 10", "ALL 3 FOR..."),
# plus the "no currency"/"testing" codes. Reading them as Tongan pa'anga or Albanian lek would invent
# prices no market shows.
_WORDLIKE_FIAT = frozenset(
    {"ALL", "TOP", "CUP", "MOP", "PEN", "BOB", "GEL", "SOS", "TRY", "MAD", "NAD", "BAM", "XXX", "XTS"}
)
FIAT: frozenset[str] = frozenset(c.alpha_3 for c in pycountry.currencies) - _WORDLIKE_FIAT

# "฿" is the Thai baht sign, but markets (Dream) use it for bitcoin; no market prices in baht.
SYMBOLS: dict[str, str] = {
    "$": "USD",
    "US$": "USD",
    "A$": "AUD",
    "AU$": "AUD",
    "C$": "CAD",
    "CA$": "CAD",
    "NZ$": "NZD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₿": "BTC",
    "฿": "BTC",
    "Ƀ": "BTC",
    "ɱ": "XMR",
    "Ł": "LTC",
    "Ξ": "ETH",
}

# Lower-case coin names, with the power of ten of the unit they name.
NAMES: dict[str, tuple[str, int]] = {
    "bitcoin cash": ("BCH", 0),
    "bitcoin": ("BTC", 0),
    "bitcoins": ("BTC", 0),
    "monero": ("XMR", 0),
    "litecoin": ("LTC", 0),
    "litecoins": ("LTC", 0),
    "ethereum": ("ETH", 0),
    "zcash": ("ZEC", 0),
    "sat": ("BTC", -8),
    "sats": ("BTC", -8),
    "satoshi": ("BTC", -8),
    "satoshis": ("BTC", -8),
}

# Sub-unit prefixes in front of a crypto ticker: Dream's rate table shows "mBTC" and "mBCH".
_PREFIXES = {"m": -3, "µ": -6, "μ": -6}


def code_currency(code: str) -> tuple[str, int] | None:
    """Resolve an upper-case code, optionally with a sub-unit prefix ("mBTC"), to (code, exponent)."""
    exponent = 0
    if code[:1] in _PREFIXES:
        exponent, code = _PREFIXES[code[0]], code[1:]
    code = _CRYPTO_ALIASES.get(code, code)
    if code in CRYPTO:
        return code, exponent
    if code in FIAT and exponent == 0:
        return code, 0
    return None


def is_currency_word(word: str) -> bool:
    """Tell whether ``word`` names a currency by code, symbol or coin name."""
    return word in SYMBOLS or code_currency(word) is not None or word.casefold() in NAMES


def is_crypto(code: str) -> bool:
    """Tell whether a resolved currency code is a cryptocurrency."""
    return code in CRYPTO
