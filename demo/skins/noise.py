"""Page furniture that real markets print around the data: mirrors, warnings, decoys, long selects.

None of it is in the truth; it is there so that parsers learn to ignore it. The onion addresses
are random strings in the v3 shape (56 base32 characters), not real services.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pycountry

from demo.rng import rng

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def mirrors(seed: int, market: str, count: int = 4) -> tuple[str, ...]:
    """Invented onion mirror addresses for a market."""
    r = rng(seed, market, "mirrors")
    return tuple("".join(r.choices(BASE32, k=56)) + ".onion" for _ in range(count))


@lru_cache(maxsize=1)
def countries() -> tuple[str, ...]:
    """Every country name, for the long <select> lists markets put on filter forms."""
    return tuple(sorted(c.name for c in pycountry.countries))


@dataclass(frozen=True)
class FormField:
    """One input of a login form; decoys are hidden by a CSS class or inline style."""

    name: str
    label: str
    kind: str  # "text", "password" or "hidden"
    css: str  # class name; decoys get a class the page's <style> hides
    real: bool


def login_fields(
    seed: int, market: str, day: int, decoys: int = 14
) -> tuple[tuple[FormField, ...], tuple[str, ...]]:
    """Real username/password inputs hidden among decoys with random 32-hex names.

    Returns the fields in page order and the CSS classes that hide the decoys. The names change
    every day, as on markets that rotate them to break saved scrapers.
    """
    r = rng(seed, market, "login", day)
    hidden_classes = tuple("c" + r.randbytes(4).hex() for _ in range(3))
    visible_class = "c" + r.randbytes(4).hex()
    fields = [
        FormField(r.randbytes(16).hex(), "Username", "text", visible_class, True),
        FormField(r.randbytes(16).hex(), "Password", "password", visible_class, True),
    ]
    for _ in range(decoys):
        kind = r.choice(("text", "password", "hidden"))
        label = r.choice(("Username", "Password", "Login", "PIN", ""))
        fields.append(FormField(r.randbytes(16).hex(), label, kind, r.choice(hidden_classes), False))
    r.shuffle(fields)
    return tuple(fields), hidden_classes
