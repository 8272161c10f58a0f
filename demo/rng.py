"""Seeded random streams named by stable strings, so every entity's randomness is independent.

`random.Random(str)` hashes the string with SHA-512 (seeding version 2), which is stable across
processes and Python versions; Python's `hash()` is salted per process and must never be used.
"""

from __future__ import annotations

import random


def rng(*parts: object) -> random.Random:
    """A random stream named by its parts, e.g. rng(seed, "hollowmere", "listing", 17)."""
    return random.Random(":".join(str(p) for p in parts))
