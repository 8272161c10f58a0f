"""Market accounts: credentials from the environment or a secrets file, and the pool a crawl draws from.

Credentials never live in profiles, logs or exports. They come from
- environment variables `DNM_ACCOUNT_<MARKET>_USERNAME` / `_PASSWORD` (one account), and
- a TOML secrets file (`DNM_ACCOUNTS_FILE`, default `~/.config/dnm-archive/accounts.toml`) with one
  `[[market]]` table per account (`username`, `password`). The file must not be readable by group or
  others, and must not sit inside the project's tree except under the git-ignored `var/`.
Everything that is logged or recorded names an account by its label ("hollowmere#1"), never by name.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ACCOUNTS_FILE = Path("~/.config/dnm-archive/accounts.toml")


class AccountsError(ValueError):
    """A secrets file or variable that cannot be used, said without showing any secret."""


@dataclass(frozen=True)
class Account:
    """One market account. `repr` and `str` show the label only."""

    market: str
    label: str
    username: str = field(repr=False)
    password: str = field(repr=False)

    def __str__(self) -> str:
        return self.label


def env_name(market: str, part: str) -> str:
    """The environment variable of one credential part, e.g. DNM_ACCOUNT_HOLLOWMERE_PASSWORD."""
    return f"DNM_ACCOUNT_{''.join(c if c.isalnum() else '_' for c in market).upper()}_{part}"


def check_secrets_file(path: Path) -> None:
    """Refuse a secrets file others can read, or one inside the project's tree (outside var/)."""
    resolved = path.resolve()
    inside = resolved.is_relative_to(PROJECT_ROOT)
    if inside and not resolved.is_relative_to(PROJECT_ROOT / "var"):
        raise AccountsError(f"{path}: a secrets file must live outside the repository (or under var/)")
    mode = resolved.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AccountsError(f"{path}: readable by others (mode {stat.filemode(mode)}); run: chmod 600 {path}")


def read_secrets_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The tables of a secrets file: market -> list of {username, password}."""
    check_secrets_file(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # The parser's message may quote the line it failed on, which could hold a password: only the line
        # number is kept (Python 3.11's TOMLDecodeError has no `lineno`; its message ends "(at line N, ...)").
        found = re.search(r"\(at line (\d+),", str(exc))
        line = getattr(exc, "lineno", None) or (found.group(1) if found else "?")
        raise AccountsError(f"{path}: not valid TOML (line {line})") from None
    for market, entries in data.items():
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise AccountsError(f"{path}: [{market}] must be an array of tables: [[{market}]]")
        for index, entry in enumerate(entries, 1):
            for key in ("username", "password"):
                if not isinstance(entry.get(key), str) or not entry[key]:
                    raise AccountsError(f"{path}: [[{market}]] #{index} needs a non-empty {key}")
    return data


def load_accounts(market: str, secrets_file: str | Path | None = None, environ: Any = None) -> list[Account]:
    """Every account configured for a market: the environment's first, then the secrets file's."""
    environ = os.environ if environ is None else environ
    found: list[tuple[str, str]] = []
    username, password = environ.get(env_name(market, "USERNAME")), environ.get(env_name(market, "PASSWORD"))
    if username and password:
        found.append((username, password))
    elif username or password:
        raise AccountsError(f"set both {env_name(market, 'USERNAME')} and {env_name(market, 'PASSWORD')}")
    explicit = secrets_file or environ.get("DNM_ACCOUNTS_FILE")
    path = Path(explicit or DEFAULT_ACCOUNTS_FILE).expanduser()
    if path.exists():
        found += [(e["username"], e["password"]) for e in read_secrets_file(path).get(market, [])]
    elif explicit:
        raise AccountsError(f"accounts file {path} does not exist")
    unique = list(dict.fromkeys(found))
    return [Account(market, f"{market}#{i}", u, p) for i, (u, p) in enumerate(unique, 1)]


class AccountPool:
    """The accounts a crawl of one market uses; an account that cannot log in is retired for the crawl."""

    def __init__(self, accounts: list[Account]) -> None:
        self.accounts = list(accounts)
        self.retired: dict[str, str] = {}  # label -> reason

    @property
    def active(self) -> list[Account]:
        return [a for a in self.accounts if a.label not in self.retired]

    def for_url(self, url: str) -> Account | None:
        """The account a page is fetched with: spread over the active accounts, stable per URL."""
        active = self.active
        return active[zlib.crc32(url.encode()) % len(active)] if active else None

    def get(self, label: str | None) -> Account | None:
        return next((a for a in self.accounts if a.label == label), None)

    def retire(self, account: Account, reason: str) -> bool:
        """Stop using an account for this crawl; True if it was still in use."""
        if account.label in self.retired:
            return False
        self.retired[account.label] = reason
        logger.warning("account %s retired for this crawl: %s", account.label, reason)
        return True
