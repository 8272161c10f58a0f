"""Reading one written number: which of ``.``, ``,``, space and apostrophe group thousands and which
marks decimals.

Markets render numbers in English ("9,478.97"), European ("1.234,50") and French ("1 234,50")
styles, often on the same site. The rules, applied to an unsigned token:

* a space (incl. NBSP/thin space) or apostrophe only ever groups thousands;
* with both ``.`` and ``,`` present, the last one is the decimal mark;
* a separator repeated ("1,234,567", "1.234.567") groups thousands;
* a lone ``,`` followed by exactly three digits after a 1-3 digit group not starting with 0
  ("1,234") groups thousands; any other lone ``,`` ("12,50", "0,123") is a decimal comma;
* a lone ``.`` is a decimal point ("1.234" is 1.234), except when an integer is wanted, where
  "1.234" can only mean 1234.

Grouped digits must come in threes after the first group, so "12,34,567" is rejected rather than guessed.
"""

from __future__ import annotations

import re
from decimal import Decimal

from dnm.normalize.errors import NormalizationError

# Characters that can only group thousands (never a decimal mark).
_SPACE_GROUPERS = " \u00a0\u202f\u2009'’"
_ALL_SEPARATORS = _SPACE_GROUPERS + ".,"
_GROUP_SPLIT = re.compile(f"[{re.escape(_ALL_SEPARATORS)}]")
_TOKEN = re.compile(f"[0-9{re.escape(_ALL_SEPARATORS)}]+")
_LEADING_GROUP = re.compile(r"[1-9]\d{0,2}")
# No market shows a 40-digit price; a cap keeps hostile input from building huge Decimals.
_MAX_TOKEN = 40

EXPECTED_NUMBER = "digits, optionally grouped by ',' '.' or spaces, with at most one decimal mark"


def read_number(token: str, what: str = "a number", *, integer: bool = False) -> Decimal:
    """Read an unsigned number token such as "1,234.50" or "1.234,50", keeping the shown scale."""
    if len(token) > _MAX_TOKEN or not _TOKEN.fullmatch(token) or not any(c.isdigit() for c in token):
        raise NormalizationError(what, token, EXPECTED_NUMBER)
    decimal_mark = _decimal_mark(token, integer=integer)
    if decimal_mark is None:
        whole, fraction = token, ""
    else:
        whole, fraction = token.rsplit(decimal_mark, 1)
        if not fraction.isdigit() or decimal_mark in whole:
            raise NormalizationError(what, token, EXPECTED_NUMBER)
    digits = _ungroup(whole, token, what)
    return Decimal(f"{digits or '0'}.{fraction}" if fraction else digits)


def _decimal_mark(token: str, *, integer: bool) -> str | None:
    """Decide which character (if any) is the decimal mark in ``token``."""
    dots, commas = token.count("."), token.count(",")
    if dots and commas:
        return "." if token.rfind(".") > token.rfind(",") else ","
    if dots + commas != 1:
        return None  # no mark at all, or one separator repeated: grouping
    mark = "." if dots else ","
    whole, fraction = token.split(mark)
    last_group = _GROUP_SPLIT.split(whole)[-1]
    grouped = len(fraction) == 3 and _LEADING_GROUP.fullmatch(last_group) is not None
    if grouped and (mark == "," or integer):
        return None
    return mark


def _ungroup(whole: str, token: str, what: str) -> str:
    """Remove thousands separators from the integer part, checking the groups are 1-3 then 3 digits."""
    groups = _GROUP_SPLIT.split(whole)
    leading_ok = 1 <= len(groups[0]) <= 3 and groups[0].isdigit()
    if len(groups) > 1 and not (leading_ok and all(len(g) == 3 and g.isdigit() for g in groups[1:])):
        raise NormalizationError(what, token, EXPECTED_NUMBER)
    return "".join(groups)
