"""The CAPTCHA solver contract: what a challenge carries, what a solver does, and how it fails.

The barrier middleware builds a `CaptchaChallenge` from a gate or login page, awaits a
`CaptchaSolver`, posts the answer and tells the solver whether it was right. Solvers are Scrapy
components (`from_crawler(crawler)`) and run inside Scrapy's asyncio reactor, so `solve` must never
block the event loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

KIND_TEXT = "text"  # type the characters shown in the image
KIND_CLOCK = "clock"  # read an analogue clock, answer "H:MM" on a 12-hour dial
# The demo contract (docs/hostile-demo.md) calls the text kind "image"; both mean "type the characters".
TEXT_KINDS = frozenset({KIND_TEXT, "image"})

_CLOCK_ANSWER = re.compile(r"^\s*(\d{1,2})\s*:\s*(\d{1,2})\s*$")


@dataclass(frozen=True)
class CaptchaChallenge:
    """One CAPTCHA met on a market page, with everything a solver may look at."""

    market: str
    kind: str  # "text" (type the characters) or "clock" (answer "H:MM", 12-hour)
    page_url: str
    challenge_id: str | None  # the page's own id for it (e.g. hidden input cid), if any
    # The image bytes (PNG/JPEG/GIF), fetched or decoded from a data: URI; kept out of repr and logs.
    image: bytes | None = field(repr=False)
    image_type: str | None  # "image/png", ...
    prompt: str = ""  # instruction text shown near the captcha on the page
    attempt: int = 1


class CaptchaError(Exception):
    """Base of the errors raised by CAPTCHA solvers and their loader."""


class SolverConfigError(CaptchaError, ValueError):
    """DNM_CAPTCHA_SOLVER or a solver setting names something that cannot be used."""


class ChallengeRefused(CaptchaError, ValueError):
    """A solver was asked about a challenge it must not answer (e.g. the demo solver, a real market)."""


@runtime_checkable
class CaptchaSolver(Protocol):
    """What the barrier middleware needs from a solver; build one with `from_crawler(crawler)`."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CaptchaSolver:
        """Build the solver from the crawl's settings."""
        ...

    async def solve(self, challenge: CaptchaChallenge) -> str | None:
        """The answer to post, or None when there is none (gave up, skipped, timed out)."""
        ...

    def report(self, challenge: CaptchaChallenge, answer: str, correct: bool) -> None:
        """Learn whether `answer` to `challenge` was accepted by the market."""
        ...

    def close(self) -> None:
        """Release what the solver holds (servers, threads); pending `solve` calls return None."""
        ...


def clock_answer(hour: int, minute: int) -> str:
    """The canonical "H:MM" answer of a 12-hour clock; out-of-range values are a ValueError."""
    if not 1 <= hour <= 12 or not 0 <= minute <= 59:
        raise ValueError(f"not a 12-hour clock time: hour {hour}, minute {minute}")
    return f"{hour}:{minute:02d}"


def parse_clock_answer(text: str) -> str:
    """Normalise a typed clock answer ("3:5", " 03:05 ") to "H:MM"; ValueError if it is not one."""
    match = _CLOCK_ANSWER.match(text)
    if match is None:
        raise ValueError(f"not an H:MM clock answer: {text!r}")
    return clock_answer(int(match.group(1)), int(match.group(2)))
