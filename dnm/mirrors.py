"""A market's mirrors during a crawl: which are trusted, which answer, and which one requests go to.

A mirror is trusted when the market's signed mirror list, signed by the key pinned in the profile
(`mirror_list.fingerprint`), names it; mirrors the list names are trusted without being fetched first.
A mirror whose key or signature does not check out (a phishing clone) is refused for the crawl and
reported. Liveness: a run of `DNM_MIRROR_FAILURES` network failures in a row marks a mirror down, and
requests move to the next live trusted one; a success clears the count.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

URL_IN_TEXT = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?/?")


@dataclass
class Mirror:
    """One mirror of a market and what the crawl has learnt about it."""

    url: str  # base URL, no trailing slash
    source: str  # "profile", "command line", "signed list"
    trusted: bool = False
    refused: str | None = None
    down: bool = False
    failures_in_row: int = 0
    down_since: float = 0.0  # monotonic time it was marked down
    ok: int = 0
    failed: int = 0

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc.lower()

    @property
    def state(self) -> str:
        if self.refused:
            return "refused"
        if self.down:
            return "down"
        return "trusted" if self.trusted else "unverified"


def base_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.lower(), "", "", "")).rstrip("/")


def urls_in(text: str) -> list[str]:
    """The base URLs a mirror list names, in order."""
    return list(dict.fromkeys(base_url(found) for found in URL_IN_TEXT.findall(text)))


class MirrorPool:
    """The mirrors of one market for one crawl; `current` is where requests go now."""

    def __init__(
        self, urls: list[tuple[str, str]], *, failures_to_down: int = 5, require_trust: bool = False
    ):
        self.mirrors: list[Mirror] = []
        for url, source in urls:
            self.add(url, source)
        if not self.mirrors:
            raise ValueError("a market needs at least one mirror")
        self.canonical = self.mirrors[0].url
        self.failures_to_down = failures_to_down
        self.require_trust = require_trust

    def add(self, url: str, source: str) -> Mirror:
        url = base_url(url)
        found = self.find(urlsplit(url).netloc)
        if found is None:
            found = Mirror(url, source)
            self.mirrors.append(found)
        return found

    def find(self, host: str) -> Mirror | None:
        host = host.lower()
        return next((m for m in self.mirrors if m.host == host), None)

    def usable(self) -> list[Mirror]:
        return [m for m in self.mirrors if not m.refused and (m.trusted or not self.require_trust)]

    def current(self, avoid: frozenset[str] = frozenset()) -> Mirror | None:
        """The first usable mirror that is not down (nor one of the hosts to `avoid`); when all are
        down, the one that failed least."""
        usable = [m for m in self.usable() if m.host not in avoid] or self.usable()
        live = [m for m in usable if not m.down]
        if live:
            return live[0]
        return min(usable, key=lambda m: m.failures_in_row) if usable else None

    def rewrite(self, url: str, avoid: frozenset[str] = frozenset()) -> str:
        """`url` moved onto the current mirror (avoiding some hosts), if it is on one of this market's."""
        parts = urlsplit(url)
        current = self.current(avoid)
        if current is None or self.find(parts.netloc) is None or parts.netloc.lower() == current.host:
            return url
        target = urlsplit(current.url)
        return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))

    def canonicalize(self, url: str) -> str:
        """`url` on the canonical mirror, so that one page has one URL whatever mirror served it."""
        parts = urlsplit(url)
        if self.find(parts.netloc) is None:
            return url
        target = urlsplit(self.canonical)
        return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))

    def note_ok(self, host: str, sent_at: float) -> None:
        """Count an answer from a mirror to a request sent at `sent_at` (monotonic time)."""
        mirror = self.find(host)
        if mirror is not None:
            mirror.ok += 1
            if mirror.down and sent_at < mirror.down_since:
                return  # an answer to a request sent before it went down says nothing about now
            mirror.failures_in_row = 0
            if mirror.down:
                mirror.down = False
                logger.warning("mirror %s answers again", mirror.url)

    def note_failure(self, host: str) -> bool:
        """Count a network failure; True when this one marked the mirror down."""
        mirror = self.find(host)
        if mirror is None:
            return False
        mirror.failed += 1
        mirror.failures_in_row += 1
        if not mirror.down and mirror.failures_in_row >= self.failures_to_down:
            mirror.down = True
            mirror.down_since = time.monotonic()
            following = self.current()
            logger.warning(
                "mirror %s is down (%d failures in a row); now using %s",
                mirror.url, mirror.failures_in_row, following.url if following else "none",
            )  # fmt: skip
            return True
        return False

    def refuse(self, host: str, reason: str) -> None:
        mirror = self.find(host)
        if mirror is not None and not mirror.refused:
            mirror.refused = reason
            logger.error("mirror %s refused: %s", mirror.url, reason)

    def report(self) -> list[dict[str, Any]]:
        """Every mirror with its state, for the crawl's record and summary."""
        return [
            {
                "url": m.url,
                "source": m.source,
                "state": m.state,
                "ok": m.ok,
                "failed": m.failed,
                "refused": m.refused,
            }
            for m in self.mirrors
        ]


class MirrorRefused(Exception):
    """A mirror whose signed list does not check out against the pinned key."""


def check_signed_list(mirror: Mirror, key_text: str, signed_text: str, pinned: str) -> list[str]:
    """The mirror URLs of a signed list, after checking the key against the pin and the signature.

    Raises MirrorRefused with the reason for a wrong key, a bad or missing signature, or a list that
    does not name the mirror it was served by.
    """
    from dnm.pgpsig import SignatureError, fingerprint_of_armored, verify_cleartext

    if not key_text.strip():
        raise MirrorRefused("serves no market key")
    try:
        fingerprint = fingerprint_of_armored(key_text).upper()
    except ValueError as exc:
        raise MirrorRefused(f"serves an unreadable key: {exc}") from None
    if fingerprint != pinned:
        raise MirrorRefused(f"serves key {fingerprint}, the profile pins {pinned}")
    if not signed_text.strip():
        raise MirrorRefused("serves no signed mirror list")
    try:
        signed = verify_cleartext(signed_text, key_text)
    except SignatureError as exc:
        raise MirrorRefused(f"mirror list signature does not verify: {exc}") from None
    listed = urls_in(signed.text)
    if mirror.host not in {urlsplit(url).netloc for url in listed}:
        raise MirrorRefused("is not named in the market's own signed mirror list")
    return listed
