"""The demo market's user accounts: three per market, the second one banned, and their secrets file.

The crawler logs in with accounts from a secrets file kept outside the repository (the format
below, one `[[market]]` table per account); `dnm demo accounts` writes that file for the demo.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from demo import vocab
from demo.rng import rng

ACCOUNTS_PER_MARKET = 3
BANNED_INDEX = 1  # the second account of every market is banned
PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
SECRETS_HEADER = "# dnm-archive accounts (demo market, generated; keep outside the repository)"


@dataclass(frozen=True)
class Account:
    """A market login."""

    username: str
    password: str
    banned: bool


def demo_accounts(seed: int, market: str) -> list[Account]:
    """The market's accounts, the same for the same (seed, market); the second one is banned."""
    accounts = []
    for index in range(ACCOUNTS_PER_MARKET):
        r = rng(seed, market, "account", index)
        name = "".join(r.choice(vocab.BUYER_SYLLABLES) for _ in range(r.randint(3, 4)))
        username = f"{name}{r.randint(10, 99)}"
        password = "".join(r.choices(PASSWORD_ALPHABET, k=16))
        accounts.append(Account(username, password, index == BANNED_INDEX))
    return accounts


def find(seed: int, market: str, username: str) -> Account | None:
    """The market's account with this username, if any."""
    return next((a for a in demo_accounts(seed, market) if a.username == username), None)


def secrets_toml(seed: int, markets: Iterable[str]) -> str:
    """The crawler's secrets file (TOML) holding every account of the given markets."""
    lines = [SECRETS_HEADER]
    for market in markets:
        for account in demo_accounts(seed, market):
            # A JSON string is a valid TOML basic string (same quoting and escapes).
            lines += ["", f"[[{market}]]", f"username = {json.dumps(account.username)}"]
            lines.append(f"password = {json.dumps(account.password)}")
    return "\n".join(lines) + "\n"
