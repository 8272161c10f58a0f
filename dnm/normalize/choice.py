"""Mapping a market's wording onto a fixed vocabulary ("Full Escrow" -> true, "On vacation" -> vacation)."""

from __future__ import annotations

import re
from typing import Any

from dnm.normalize.errors import NormalizationError
from dnm.normalize.text import clean_text


def choice(text: str, map: dict[str, Any] | None = None, default: Any = None) -> Any:
    """The value of the first `map` pattern (a case-insensitive regex) found in `text`.

    Profiles use it for wording that means one of a few things, e.g.
    `{normalize: choice, args: {map: {'escrow': true, 'finali[sz]e early|\\bFE\\b': false}}}`.
    With no match, `default` if given, else an error listing the patterns.
    """
    if not map:
        raise NormalizationError("a choice", text, "a profile rule with args.map (pattern: value)")
    cleaned = clean_text(text)
    for pattern, value in map.items():
        if re.search(pattern, cleaned, re.IGNORECASE):
            return value
    if default is not None:
        return default
    raise NormalizationError("a choice", text, f"one of the patterns {list(map)}")
