"""Shipping places: the codes of the export schema and the spellings vendors type for them.

A listing stores what the vendor typed as (text, code) tokens; pages print the text and the
truth exports the code. The spellings are the variants seen on real markets (see
shared/research/market-anatomy.md section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

# Region codes of the export schema; countries use ISO 3166-1 alpha-2.
REGION_CODES = ("WW", "EU", "EUROPE", "NORTH_AMERICA", "SOUTH_AMERICA", "ASIA", "AFRICA", "OCEANIA")

# Spellings per code. The first is the "proper" one used where a page wants a canonical label.
SPELLINGS: dict[str, tuple[str, ...]] = {
    "WW": ("Worldwide", "World Wide", "WW", "World"),
    "EU": ("European Union", "EU"),
    "EUROPE": ("Europe", "EUROPE"),
    "NORTH_AMERICA": ("North America", "NORTH AMERICA"),
    "SOUTH_AMERICA": ("South America",),
    "ASIA": ("Asia",),
    "AFRICA": ("Africa",),
    "OCEANIA": ("Oceania",),
    "US": ("United States", "USA", "United States of America", "UNITED STATES"),
    "GB": ("United Kingdom", "UK", "UNITED KINGDOM"),
    "DE": ("Germany", "GERMANY"),
    "NL": ("Netherlands", "NETHERLANDS"),
    "FR": ("France", "FRANCE"),
    "ES": ("Spain",),
    "IT": ("Italy",),
    "BE": ("Belgium",),
    "PL": ("Poland", "POLAND"),
    "CZ": ("Czechia", "Czech Republic"),
    "AT": ("Austria",),
    "CH": ("Switzerland",),
    "SE": ("Sweden",),
    "DK": ("Denmark",),
    "NO": ("Norway",),
    "IE": ("Ireland",),
    "PT": ("Portugal",),
    "CA": ("Canada", "CANADA"),
    "AU": ("Australia", "AUSTRALIA"),
    "NZ": ("New Zealand",),
    "CN": ("China", "CHINA"),
    "IN": ("India",),
    "KR": ("Korea, Republic of", "South Korea"),
    "CO": ("Colombia",),
    "BR": ("Brazil",),
    "ZA": ("South Africa",),
}


@dataclass(frozen=True)
class Place:
    """One shipping place as printed on a page, with the code a perfect parser maps it to."""

    text: str
    code: str


def place(code: str, variant: int = 0) -> Place:
    """The place for a code, spelled with the given variant (wrapping around the list)."""
    spellings = SPELLINGS[code]
    return Place(spellings[variant % len(spellings)], code)


def codes(places: tuple[Place, ...]) -> list[str]:
    """Codes in order of first appearance with duplicates removed, as the export schema wants."""
    seen: list[str] = []
    for p in places:
        if p.code not in seen:
            seen.append(p.code)
    return seen


# Typical destination sets and exclusion lists of listings that ship worldwide.
DESTINATION_SETS: tuple[tuple[str, ...], ...] = (
    ("WW",),
    ("EU",),
    ("EUROPE",),
    ("EU", "GB"),
    ("US",),
    ("US", "CA"),
    ("NORTH_AMERICA",),
    ("GB",),
    ("AU", "NZ"),
    ("OCEANIA",),
    ("DE", "AT", "CH"),
    ("ASIA", "KR"),
    ("US", "WW"),
)
EXCLUSION_SETS: tuple[tuple[str, ...], ...] = (("AU", "CA"), ("AU",), ("US", "AU", "NZ"), ("SE", "NO", "AU"))
