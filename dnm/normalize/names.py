"""Vendor names: the user name without the badges, counts and labels markets print around it.

Markets decorate names with sales counts "(1000)", ratings "( 4.97 )", "(100%)", "100%", levels
"Lvl 5" / "Vendor level 4", imported ratings "138 (5.0)", role tags "[Vendor]", stars "★" and
"@" handles, and prefix them with "Sold by" / "Vendor:" / "Seller:". Those are stripped from both ends;
the name itself keeps its case and inner punctuation ("pharma_kingdom", "Dr.Green", "Nordic-Leaf").
A trailing number only counts as a badge when separated by a space, so "john5" keeps its 5. Text after
a spaced dash or bar ("X - 160 sold since ...") is a caption, not part of the name.
"""

from __future__ import annotations

import re

from dnm.normalize.errors import NormalizationError, require_text
from dnm.normalize.text import clean_text

_PREFIX = re.compile(
    r"^(?:(?:sold|posted|offered|listed)\s+by|vendor|seller|user(?:name)?|by|from)\s*:?\s+"
    r"|^(?:vendor|seller|user(?:name)?)\s*:\s*",
    re.I,
)
_ORNAMENT = "★☆✪✩✯✰⭐✔✓☑•·|:~*♦♛♚👑🔥💎✅"
_LEADING = re.compile(rf"^(?:[@{_ORNAMENT}\s]+|\[[^\[\]]*\]\s*)")
_NUMBER = r"[+\-−]?\d+(?:[.,]\d+)?(?:\s*/\s*\d+(?:[.,]\d+)?)*\s*%?"
_TRAILING = re.compile(
    rf"""(?:
          \s*\([^()]*\)                       # (1000), ( 4.97 ), (100%), (Level 4)
        | \s*\[[^\[\]]*\]                     # [Vendor]
        | \s*\{{[^{{}}]*\}}
        | \s+{_NUMBER}                        # 5, 100%, 138, 4.96/5, 402/5/2
        | \s*(?:(?:vendor|seller|trust)\s+)?(?:level|lvl|lv)\.?\s*\d+   # Lvl 5, Vendor level 4
        | \s*[{_ORNAMENT}]+
        | \s+(?:verified|vendor|seller|trusted|top\s+seller)
        )\s*$""",
    re.I | re.X,
)
_CAPTION = re.compile(r"\s+[-–—|·]\s+.*$")
# Market user names are short (Dream allows 16 characters); a longer field is a wrong selector, and the
# badge-stripping loop is quadratic in the worst case, so hostile input is refused early.
_MAX_LENGTH = 200


def clean_vendor_name(text: str) -> str:
    """Strip decorations around a vendor name: "PHARMORA (1000) ( 4.97 )" -> "PHARMORA"."""
    name = clean_text(require_text(text, "a vendor name"))
    name = _PREFIX.sub("", name, count=1)
    name = _CAPTION.sub("", name)
    if len(name) > _MAX_LENGTH:
        raise NormalizationError("a vendor name", text, f"a user name of at most {_MAX_LENGTH} characters")
    previous = None
    while name != previous:
        previous = name
        name = _LEADING.sub("", name)
        name = _TRAILING.sub("", name).strip()
    if not name:
        raise NormalizationError("a vendor name", text, "a user name before or among the badges")
    return name
