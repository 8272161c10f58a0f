"""Plain scalar fields: whitespace clean-up, integers, decimals, booleans and stock counts.

Every function takes the string a market shows and returns a clean value or raises
``NormalizationError``. Number grouping rules live in ``numbers``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from dnm.normalize.errors import NormalizationError, require_text
from dnm.normalize.numbers import read_number

# Invisible characters that markets and HTML editors sprinkle into text (often inside words to break
# scrapers' string matching). They are deleted, not turned into spaces: "Co\u200bcaine" is one word.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"))

# Hyphen-minus, Unicode minus (Hansa's "−3" feedback), en dash and figure dash all read as a minus.
_MINUSES = "-−–‒"

_TRUE = frozenset(
    {
        "yes",
        "y",
        "true",
        "t",
        "1",
        "on",
        "enabled",
        "enable",
        "allowed",
        "active",
        "available",
        "✔",
        "✓",
        "☑",
        "✅",
        "✔️",
    }
)
_FALSE = frozenset(
    {
        "no",
        "n",
        "false",
        "f",
        "0",
        "off",
        "disabled",
        "disable",
        "not allowed",
        "disallowed",
        "inactive",
        "unavailable",
        "✘",
        "✗",
        "✖",
        "☒",
        "❌",
        "×",
        "✖️",
    }
)

_UNLIMITED = re.compile(r"(?:unlimited|infinite|∞)(?:\s+(?:available|stock|in stock|left|quantity))?", re.I)
_SOLD_OUT = re.compile(r"(?:out of stock|sold out|none left|none)", re.I)
# Words around a stock count: "Quantity left: 1,200", "In stock: 5", "Only 3 left", "500 left", "5 pcs".
_STOCK_WORDS = re.compile(
    r"\b(?:quantity left|quantity|qty|in stock|stock|only|left|available|remaining|pcs|pieces|items|units)\b"
    r"|:",
    re.I,
)

EXPECTED_INT = "a whole number such as '1,234', '1 234', '−3', '+5' or '(1000)'"
EXPECTED_DECIMAL = "a number such as '1,234.50', '1.234,50', '4.97' or '−0.5'"


def clean_text(s: str) -> str:
    """Collapse every run of whitespace (incl. NBSP) to one space, drop zero-width characters, strip.

    All other characters are kept verbatim. Idempotent.
    """
    return " ".join(remove_invisible(require_text(s, "text")).split())


def remove_invisible(s: str) -> str:
    """Delete zero-width characters, keeping every other character (incl. NBSP) as it is."""
    return s.translate(_INVISIBLE)


def parse_int(s: str) -> int:
    """Read a whole number such as "1,234", "1 234", "1.234", "−3", "+5" or "(1000)".

    Parentheses are a badge around a count on markets ("HighSpeed (680)"), not an accounting negative,
    so "(1000)" is 1000. An integral decimal ("12.00") is accepted; "1.5" is not.
    """
    value = _read_signed(s, "an integer", EXPECTED_INT, integer=True)
    if value != value.to_integral_value():
        raise NormalizationError("an integer", s, EXPECTED_INT)
    return int(value)


def parse_decimal(s: str) -> Decimal:
    """Read a number such as "4.97", "( 4.97 )", "1,234.50" or "1.234,50", keeping the shown scale."""
    return _read_signed(s, "a decimal", EXPECTED_DECIMAL, integer=False)


def _read_signed(s: str, what: str, expected: str, *, integer: bool) -> Decimal:
    """Strip badge parentheses and a sign, then read the number with the shared grouping rules."""
    text = clean_text(require_text(s, what))
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    sign = text[0] if text and text[0] in _MINUSES + "+" else ""
    try:
        value = read_number(text[len(sign) :].lstrip(), what, integer=integer)
    except NormalizationError:
        raise NormalizationError(what, s, expected) from None
    # "−0" stays 0: Decimal keeps a negative zero otherwise.
    return -value if sign and sign != "+" and value else value


def parse_bool(s: str) -> bool:
    """Read yes/no, true/false, enabled/disabled, on/off, 1/0, ✔/✘ and similar flags."""
    key = clean_text(require_text(s, "a yes/no flag")).casefold().strip(".!")
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise NormalizationError("a yes/no flag", s, "one of yes/no, true/false, enabled/disabled, on/off, ✔/✘")


def parse_stock(s: str) -> int | None:
    """Read a stock count: "23 left", "Quantity left: 1,200", "In stock: 5" -> int; "Unlimited" -> None.

    ``None`` means the market shows no limit ("Unlimited", "Unlimited Available", "∞"). "Out of stock"
    and "Sold out" are 0.
    """
    text = clean_text(require_text(s, "a stock count"))
    bare = _STOCK_WORDS.sub(" ", text).strip()
    if _UNLIMITED.fullmatch(bare) or _UNLIMITED.fullmatch(text):
        return None
    if _SOLD_OUT.fullmatch(text):
        return 0
    try:
        count = parse_int(bare)
    except NormalizationError:
        raise NormalizationError(
            "a stock count", s, "a count such as '23 left' or 'In stock: 5', or 'Unlimited'"
        ) from None
    if count < 0:
        raise NormalizationError("a stock count", s, "a count of zero or more")
    return count
