"""Prices as markets print them: amount, currency, optional per-unit quantity.

``parse_prices`` finds every price in a string, in order of appearance. A price is a number with a
currency marker directly before or after it (a code "USD", a symbol "$"/"฿", a coin name "Bitcoin",
a sub-unit "mBTC"/"sats"), optionally followed by a per-unit quantity ("/112g", "/ 10 pills",
"per g"). Rules and decisions:

* When a marker sits between two numbers ("EUR 100 $108.25") it is read left to right: a marker
  before a number binds to it first, so a row of prices in one style reads as expected.
* A range "50.00 - 39000.00 EUR" or "$50 - 100" yields two prices with the shared currency and unit;
  both carry the whole range as ``shown``.
* "/Order" (flat price for the whole order) gives ``unit=None``, the same as no unit.
* Sub-units are converted to whole coins: "mBTC 1.2" is BTC 0.0012.
* A leading approximation marker ("~ $30", "≈ $30") is kept in ``shown`` but not flagged otherwise.
* Numbers use the grouping rules of ``numbers``; only non-breaking and thin spaces group thousands
  inside a price, since a plain space often separates two prices.
* A minus before a price is read as a separator: prices are never negative.
* Currency codes must be upper case, as markets print them, so words like "eur" in prose are not codes.

``parse_price`` returns one price, and with ``default_currency`` also reads "Free" and bare numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from dnm.normalize.currencies import NAMES, SYMBOLS, code_currency, is_crypto, is_currency_word
from dnm.normalize.errors import NormalizationError, require_text
from dnm.normalize.numbers import read_number
from dnm.normalize.text import clean_text, remove_invisible

Prefer = Literal["fiat", "crypto", "first"]

# The crypto tickers a Price.currency can hold; the pipeline uses it to pick the primary price.


@dataclass(frozen=True)
class Price:
    """One price: ``amount`` in whole units of ``currency`` (ISO 4217 or ticker), per ``unit`` if any.

    ``shown`` is the cleaned text the price was read from, e.g. "485.00 USD/112g".
    """

    amount: Decimal
    currency: str
    unit: str | None
    shown: str


_SYMBOL_ALTERNATIVES = "|".join(re.escape(s) for s in sorted(SYMBOLS, key=len, reverse=True))
_NAME_ALTERNATIVES = "|".join(n.replace(" ", r"\s+") for n in sorted(NAMES, key=len, reverse=True))
_TOKENS = re.compile(
    rf"""
      (?P<symbol>(?<![A-Za-z])(?:{_SYMBOL_ALTERNATIVES}))
    | (?<![A-Za-z])(?P<code>[mµμ]?[A-Z]{{3,4}})(?![A-Za-z])
    | (?i:\b(?P<name>{_NAME_ALTERNATIVES})\b)
    | (?<!\d)(?<!\d[.,])
      (?P<number>\d{{1,3}}(?:[.,'’\u00a0\u202f\u2009]\d{{3}})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)
      (?!\d)
    """,
    re.VERBOSE,
)
_PREFIX_GAP = re.compile(r"\s*(?:\+\s*)?")
_SUFFIX_GAP = re.compile(r"\s*")
_RANGE_GAP = re.compile(r"\s*(?:-|–|—|\bto\b)\s*")
_UNIT = re.compile(r"\s*(?:/|\bper\b)\s*(?P<unit>(?:\d+(?:[.,]\d+)?\s*)?(?P<word>[^\W\d_]+))(?!\w)")
_WHOLE_ORDER_UNITS = frozenset({"order", "orders"})
_APPROXIMATE = re.compile(r"(?:~|≈|\bapprox\.?|\bca\.)\s*$", re.I)
# Look only a few characters back for "~ ", so long texts are not rescanned for every price.
_APPROXIMATE_WINDOW = 16
_FREE = re.compile(r"\b(?:free|gratis|no charge)\b", re.I)
_WORD_AFTER = re.compile(r"\s*[^\W\d_]")

EXPECTED_PRICE = "an amount with a currency symbol or code, e.g. 'USD 1,234.50', '$50.96' or '0.0187 ฿'"


@dataclass(frozen=True)
class _Token:
    kind: Literal["currency", "number"]
    start: int
    end: int
    currency: str = ""
    exponent: int = 0
    text: str = ""


def parse_prices(text: str) -> list[Price]:
    """Find every price in ``text``, in order of appearance. Bare numbers are not prices."""
    # NBSP is kept: inside a number it groups thousands ("1 234,50 €").
    source = remove_invisible(require_text(text, "a price"))
    tokens = _tokenize(source)
    prices: list[Price] = []
    i = 0
    while i < len(tokens):
        found = _price_at(source, tokens, i)
        if found is None:
            i += 1
            continue
        new_prices, end = found
        prices.extend(new_prices)
        while i < len(tokens) and tokens[i].start < end:
            i += 1
    return prices


def choose_price(prices: list[Price], prefer: Prefer = "fiat") -> Price:
    """The first fiat (or crypto) price of those shown, else the first; `prefer="first"` takes the first."""
    if prefer == "first":
        return prices[0]
    want_crypto = prefer == "crypto"
    return next((p for p in prices if is_crypto(p.currency) == want_crypto), prices[0])


def parse_price(text: str, prefer: Prefer = "fiat", default_currency: str | None = None) -> Price:
    """Return one price from ``text``: the first fiat one (``prefer="fiat"``), the first crypto one
    (``"crypto"``), or the first one (``"first"``), falling back to the first price found.

    With ``default_currency`` (say the market's display currency) a text without any currency marker
    is still read: "Free"/"free shipping" is 0 and a text holding exactly one number ("27.41",
    "+0") is that amount. Without it such texts raise, because the currency would be a guess.
    """
    if prefer not in ("fiat", "crypto", "first"):
        raise NormalizationError("a price preference", prefer, "one of 'fiat', 'crypto', 'first'")
    prices = parse_prices(text)
    if prices:
        return choose_price(prices, prefer)
    if default_currency is None:
        hint = " (a free price names no currency: pass default_currency)" if _FREE.search(text) else ""
        raise NormalizationError("a price", text, EXPECTED_PRICE + hint)
    return _price_without_marker(text, _checked_code(default_currency))


def _checked_code(code: str) -> str:
    resolved = code_currency(code.upper()) if isinstance(code, str) else None
    if resolved is None or resolved[1] != 0:
        raise NormalizationError("a default currency", code, "an ISO 4217 code or crypto ticker, e.g. 'USD'")
    return resolved[0]


def _price_without_marker(text: str, currency: str) -> Price:
    """Read "Free" or a lone number as a price in ``currency``."""
    source = remove_invisible(text)
    numbers = [t for t in _tokenize(source) if t.kind == "number"]
    # "Economy - 14 days - Free": the number is the delivery time, "Free" is the price.
    if _FREE.search(source):
        return Price(Decimal(0), currency, None, clean_text(source))
    if len(numbers) != 1:
        raise NormalizationError("a price", text, "one amount, 'Free', or a currency symbol or code")
    number = numbers[0]
    unit, end = _unit_after(source, number.end)
    return Price(_amount(number, 0), currency, unit, clean_text(source[number.start : end]))


def _tokenize(source: str) -> list[_Token]:
    """Split ``source`` into currency markers and numbers; everything else is gap text."""
    tokens = []
    for match in _TOKENS.finditer(source):
        kind = match.lastgroup
        if kind == "number":
            tokens.append(_Token("number", match.start(), match.end(), text=match["number"]))
            continue
        resolved = _resolve_marker(kind, match[0])
        if resolved is not None:
            tokens.append(_Token("currency", match.start(), match.end(), *resolved))
    return tokens


def _resolve_marker(kind: str | None, marker: str) -> tuple[str, int] | None:
    if kind == "symbol":
        return SYMBOLS[marker], 0
    if kind == "code":
        return code_currency(marker)
    return NAMES[" ".join(marker.casefold().split())]


def _price_at(source: str, tokens: list[_Token], i: int) -> tuple[list[Price], int] | None:
    """Read the price (or range of two) starting at token ``i``; return the prices and where they end."""
    first = tokens[i]
    if first.kind == "currency" and _next_is(source, tokens, i, "number", _PREFIX_GAP):
        number = tokens[i + 1]
        if _is_range_tail(source, tokens, i + 1):
            return _range(source, first, [number, tokens[i + 2]], first.start, tokens[i + 2].end)
        return _range(source, first, [number], first.start, number.end)
    if first.kind != "number":
        return None
    if _next_is(source, tokens, i, "currency", _SUFFIX_GAP):
        return _range(source, tokens[i + 1], [first], first.start, tokens[i + 1].end)
    if _next_is(source, tokens, i, "number", _RANGE_GAP) and _next_is(
        source, tokens, i + 1, "currency", _SUFFIX_GAP
    ):
        return _range(source, tokens[i + 2], [first, tokens[i + 1]], first.start, tokens[i + 2].end)
    return None


def _next_is(source: str, tokens: list[_Token], i: int, kind: str, gap: re.Pattern[str]) -> bool:
    """Tell whether token ``i + 1`` exists, is of ``kind`` and is separated from ``i`` by ``gap``."""
    return (
        i + 1 < len(tokens)
        and tokens[i + 1].kind == kind
        and gap.fullmatch(source, tokens[i].end, tokens[i + 1].start) is not None
    )


def _is_range_tail(source: str, tokens: list[_Token], i: int) -> bool:
    """After a prefixed price at token ``i``: is "- 100" a bare upper bound sharing its currency?

    Not when that number has its own suffix currency, nor when a word follows it ("- 5 days").
    """
    if not _next_is(source, tokens, i, "number", _RANGE_GAP):
        return False
    tail = tokens[i + 1]
    return not _next_is(source, tokens, i + 1, "currency", _SUFFIX_GAP) and not (
        _WORD_AFTER.match(source, tail.end) and not _UNIT.match(source, tail.end)
    )


def _range(
    source: str, marker: _Token, numbers: list[_Token], start: int, end: int
) -> tuple[list[Price], int]:
    """Build one price per number (two for a range), sharing ``marker``'s currency and the unit after."""
    unit, end = _unit_after(source, end)
    approximate = _APPROXIMATE.search(source, max(0, start - _APPROXIMATE_WINDOW), start)
    if approximate is not None:
        start = approximate.start()
    shown = clean_text(source[start:end])
    return [Price(_amount(n, marker.exponent), marker.currency, unit, shown) for n in numbers], end


def _amount(number: _Token, exponent: int) -> Decimal:
    return read_number(number.text, "a price").scaleb(exponent)


def _unit_after(source: str, position: int) -> tuple[str | None, int]:
    """Read a per-unit quantity ("/112g", "/ 10 pills", "per g") at ``position``; "/Order" is no unit."""
    match = _UNIT.match(source, position)
    if match is None or is_currency_word(match["word"]):
        return None, position
    if match["word"].casefold() in _WHOLE_ORDER_UNITS:
        return None, match.end()
    return clean_text(match["unit"]), match.end()
