"""The demo markets' signing keys and their PGP-signed mirror lists (docs/hostile-demo.md, "Mirrors").

A real market publishes its mirror addresses in a message signed with the staff key, whose
fingerprint users pin; a phishing clone publishes its own address signed with a look-alike key (same
user id, different fingerprint). Both keys derive from (seed, market) and the signature time is the
market day's server time, so the same inputs always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from demo import clock
from demo.pgp import PgpSigningKey, signing_key_for
from demo.rng import rng


def market_name(market: str) -> str:
    """The name a market signs with ("hollowmere" -> "Hollowmere")."""
    return market.capitalize()


def _user_id(market: str) -> str:
    return f"{market_name(market)} staff <staff@{market}.demo.invalid>"


def market_key(seed: int, market: str) -> PgpSigningKey:
    """The market's staff key (its fingerprint is the one pinned in the market's profile)."""
    # Markets sign with a key much older than any demo day, made on a day of their own.
    created = clock.EPOCH - timedelta(days=rng(seed, market, "market-key").randrange(300, 700))
    return signing_key_for(f"{seed}:market:{market}", _user_id(market), created)


def phisher_key(seed: int, market: str) -> PgpSigningKey:
    """The phishing clone's key: the market's user id on a fresh key, as phishers copy it."""
    created = clock.EPOCH - timedelta(days=rng(seed, market, "phisher-key").randrange(3, 60))
    return signing_key_for(f"{seed}:phisher:{market}", _user_id(market), created)


def mirror_list_text(market_name: str, day_time: datetime, urls: Sequence[str]) -> str:
    """The text of a mirror list: a heading, the server time, one URL per line, a signed-off footer."""
    return "\n".join(
        [
            f"{market_name} official mirrors",
            f"Server time: {day_time.strftime('%Y-%m-%d %H:%M')} UTC",
            "",
            *urls,
            "",
            "Bookmark these. An address that is not in a message signed with our key is a phishing site.",
            # A line starting with "-" so that every list exercises dash-escaping (RFC 9580 7.1).
            f"-- {market_name} staff",
            "",
        ]
    )


def signed_mirror_list(
    seed: int, market: str, urls: Sequence[str], when: datetime, phishing: bool = False
) -> str:
    """The armoured cleartext-signed mirror list, signed at `when` by the market's (or the phisher's) key."""
    key = phisher_key(seed, market) if phishing else market_key(seed, market)
    return key.clearsign(mirror_list_text(market_name(market), when, urls), when)
