"""Ship-to / ship-from regions: country names and codes, continents, "Worldwide", exclusions, routes.

Codes are ISO 3166-1 alpha-2 for countries plus the region codes in ``REGION_CODES``. Names are
matched case- and accent-insensitively, ignoring punctuation and a leading "the", against pycountry's
names (official, common) and ``_ALIAS_TABLE`` (market spellings, including "UK", "USA", "WW", "EU").
Other codes ("DE", "DEU") are only read when written in upper case, as markets print them:
lower-case "in", "to", "no" are words, not India, Tonga and Norway.

Decisions:

* Bare "NA" (and "na", "NA (c)") is North America, not Namibia: markets' continent lists use it
  (the MSc scraper's continent table maps it so) and nobody lists Namibia by its code. "Namibia" and
  "NAM" still give "NA".
* "SA", "AS", "AF" stay Saudi Arabia, American Samoa and Afghanistan (their ISO meaning); no source
  showed them used for continents.
* "England", "Scotland", "Wales", "Northern Ireland" are GB; "America" is US.
* A "(c)" suffix ("North America(C)") marks a continent: only region codes are accepted with it.
* Other parentheses and brackets separate pieces: "Germany (DE)" is DE once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pycountry

from dnm.normalize.errors import NormalizationError, require_text
from dnm.normalize.text import clean_text

REGION_CODES = ("WW", "EU", "EUROPE", "NORTH_AMERICA", "SOUTH_AMERICA", "ASIA", "AFRICA", "OCEANIA")


@dataclass(frozen=True)
class Regions:
    """Regions named in one field: ``codes`` included, ``excluded`` ruled out, ``raw`` the input text.

    Both tuples are in order of first appearance, without duplicates.
    """

    codes: tuple[str, ...]
    excluded: tuple[str, ...]
    raw: str


# Market spellings pycountry does not know, by code. Keys are compared after _compact().
_ALIAS_TABLE: dict[str, tuple[str, ...]] = {
    "WW": (
        "worldwide",
        "world wide",
        "ww",
        "world",
        "everywhere",
        "global",
        "international",
        "anywhere",
        "all countries",
        "whole world",
    ),
    "EU": ("european union", "eu"),
    "EUROPE": ("europe",),
    "NORTH_AMERICA": ("north america", "na"),
    "SOUTH_AMERICA": ("south america",),
    "ASIA": ("asia",),
    "AFRICA": ("africa",),
    "OCEANIA": ("oceania", "australasia"),
    "US": ("usa", "us", "united states", "united states of america", "america"),
    "GB": ("uk", "great britain", "britain", "england", "scotland", "wales", "northern ireland"),
    "NL": ("holland", "netherlands", "nederland"),
    "CZ": ("czech republic",),
    "RU": ("russia",),
    "KR": ("south korea",),
    "KP": ("north korea",),
    "TR": ("turkey",),
    "MK": ("macedonia",),
    "CI": ("ivory coast",),
    "VA": ("vatican", "vatican city"),
    "PS": ("palestine",),
    "MO": ("macau", "macao"),
    "AE": ("uae",),
    "SZ": ("swaziland",),
    "MM": ("burma",),
    "CV": ("cape verde",),
    "TL": ("east timor",),
    "BA": ("bosnia",),
    "DE": ("deutschland",),
    "ES": ("espana",),
    "IT": ("italia",),
    "AT": ("osterreich",),
    "CH": ("schweiz", "suisse"),
    "SE": ("sverige",),
}

_CONTINENT_MARK = re.compile(r"\s*\(c\)$", re.I)
# Pieces are split on these; "(c)" is a continent mark, not a bracket.
_STRONG_SEPARATORS = re.compile(r"[;/|\[\]{}]|\((?!c\))|(?<!\(c)\)", re.I)
_CONJUNCTIONS = re.compile(r"\s+(?:and|&|\+)\s+|\s*&\s*", re.I)
_FILLER = re.compile(r"\b(?:only|ships?\s+to|ships?\s+from)\b", re.I)
_LABEL = re.compile(
    r"^(?:ships?\s+(?:to|from)|shipping\s+(?:to|from)|delivers?\s+to|origin(?:\s+country)?|"
    r"country\s+of\s+origin|location|destinations?)(?:\s*:|\s+(?=\w))\s*",
    re.I,
)
_EXCLUSION = re.compile(
    r"\b(?:except(?:\s+for)?|excluding|excludes?|excl\.?|exc\.|but\s+not(?:\s+to)?|not\s+to"
    r"|(?:we\s+)?(?:do\s+not|does\s+not|don[’']?t|doesn[’']?t|can\s*not|can[’']?t|won[’']?t|will\s+not)"
    r"\s+ship(?:\s+to)?|not\s+shipping(?:\s+to)?|no\s+ship(?:ping)?\s+to)(?!\w)\s*:?",
    re.I,
)
_ARROW = re.compile(r"\s*(?:→|⟶|⇒|➔|➜|➝|-{1,2}>|=>|[—–]>)\s*")
_ROUTE_WORD = re.compile(r"\s+to\s+", re.I)
_UPPER_CODE = re.compile(r"[A-Z]{2,3}")

EXPECTED_REGION = (
    "a country name or code (e.g. 'Germany', 'DE', 'DEU'), or Worldwide, EU, Europe, North America, "
    "South America, Asia, Africa, Oceania"
)


def _compact(name: str) -> str:
    """Reduce a name to its letters and digits, case- and accent-free, without a leading "the"."""
    decomposed = unicodedata.normalize("NFKD", name).casefold()
    words = re.findall(r"[^\W_]+", "".join(c for c in decomposed if not unicodedata.combining(c)))
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return "".join(words)


def _build_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            value = getattr(country, attribute, None)
            if value:
                index[_compact(value)] = country.alpha_2
    for code, names in _ALIAS_TABLE.items():
        index.update(dict.fromkeys(map(_compact, names), code))
    return index


_INDEX = _build_index()


def _lookup(name: str) -> str | None:
    """Return the code for one region name or upper-case code, or None."""
    name = name.strip(" .-:'\"")
    marked = _CONTINENT_MARK.search(name)
    if marked:
        code = _lookup(name[: marked.start()])
        return code if code in REGION_CODES else None
    by_name = _INDEX.get(_compact(name))
    if by_name is not None or not _UPPER_CODE.fullmatch(name):
        return by_name
    country = pycountry.countries.get(**{"alpha_2" if len(name) == 2 else "alpha_3": name})
    return None if country is None else country.alpha_2


def region_code(name: str) -> str:
    """Return the code of one region name: "United States" -> "US", "Worldwide" -> "WW"."""
    code = _lookup(clean_text(require_text(name, "a region")))
    if code is None:
        raise NormalizationError("a region", name, EXPECTED_REGION)
    return code


def parse_regions(text: str) -> Regions:
    """Read a ship-to/ship-from field such as "Worldwide except Australia, Canada" or "EU/UK Only".

    Raises ``NormalizationError`` naming the first piece it cannot place; callers decide whether to
    count it and go on.
    """
    cleaned = _LABEL.sub("", clean_text(require_text(text, "regions")))
    exclusion = _EXCLUSION.search(cleaned)
    if exclusion is None:
        included, excluded = cleaned, ""
    else:
        included, excluded = cleaned[: exclusion.start()], cleaned[exclusion.end() :]
    regions = Regions(_codes(included, text), _codes(excluded, text), text)
    if not regions.codes and not regions.excluded:
        raise NormalizationError("regions", text, EXPECTED_REGION)
    return regions


def parse_route(text: str) -> tuple[Regions, Regions]:
    """Read a route "DE → WW", "NL⟶WW, EU" or "FR to WW" into (ships from, ships to)."""
    cleaned = clean_text(require_text(text, "a route"))
    sides = _ARROW.split(cleaned, maxsplit=1)
    if len(sides) != 2:
        sides = _ROUTE_WORD.split(cleaned, maxsplit=1)
    if len(sides) != 2:
        raise NormalizationError("a route", text, "'FROM → TO', e.g. 'DE → WW' or 'United States → WW'")
    return parse_regions(sides[0]), parse_regions(sides[1])


def _codes(text: str, whole: str) -> tuple[str, ...]:
    """Codes of every piece of ``text`` in order, without duplicates."""
    codes: list[str] = []
    for piece in _pieces(text):
        codes.extend(_piece_codes(piece, whole))
    return tuple(dict.fromkeys(codes))


def _pieces(text: str) -> list[str]:
    """Split on separators, keeping comma names such as "Korea, Republic of" whole."""
    pieces: list[str] = []
    for chunk in _STRONG_SEPARATORS.split(text):
        parts = [part.strip() for part in chunk.split(",")]
        i = 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] and parts[i + 1] and _lookup(f"{parts[i]}, {parts[i + 1]}"):
                pieces.append(f"{parts[i]}, {parts[i + 1]}")
                i += 2
            else:
                pieces.append(parts[i])
                i += 1
    return [piece for piece in pieces if piece.strip(" .-:'\"")]


def _piece_codes(piece: str, whole: str) -> list[str]:
    """Codes of one piece: a name, a name with filler ("UK Only"), or names joined by "and"/"&"."""
    stripped = _FILLER.sub(" ", piece).strip()
    if not stripped:
        return []  # filler alone ("Only")
    code = _lookup(piece) or _lookup(stripped)
    if code is not None:
        return [code]
    parts = [part for part in _CONJUNCTIONS.split(stripped) if part.strip()]
    codes = [_lookup(part) for part in parts]
    if len(parts) > 1 and all(codes):
        return [code for code in codes if code]
    within = None if piece == clean_text(whole) else whole
    raise NormalizationError("a region", piece, EXPECTED_REGION, within=within)
