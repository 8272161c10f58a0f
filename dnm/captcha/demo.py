"""Demo CAPTCHA solver: answers the demo market's challenges from its side channel, for unattended tests.

`demo.hostile.captcha.answer(seed, market, cid)` gives the answer of any challenge a demo market
issued (docs/hostile-demo.md, "Challenges"). Only the demo markets (`demo.world.MARKETS`) have that
side channel, so this solver refuses any other market, and any challenge without the page's id,
with `ChallengeRefused` instead of guessing.

Settings: `DNM_DEMO_SEED` (the demo world's seed, default 1), `DNM_DEMO_CAPTCHA_WRONG_FIRST`
(answer wrongly on attempt 1, so tests exercise the retry path; default False).
Stats: `dnm/captcha/demo/answered`, `.../correct`, `.../wrong`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured

from demo.world import MARKETS
from dnm.captcha.base import KIND_CLOCK, CaptchaChallenge, ChallengeRefused, parse_clock_answer

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

SIDE_CHANNEL = "demo.hostile.captcha"


def wrong_answer(kind: str, answer: str) -> str:
    """An answer sure to be wrong: a clock one hour off, or the text with one character more."""
    if kind == KIND_CLOCK:
        hour, minute = parse_clock_answer(answer).split(":")
        return f"{int(hour) % 12 + 1}:{minute}"
    return answer + ("x" if not answer.endswith("x") else "y")


class DemoSolver:
    """Answers demo-market challenges from `demo.hostile.captcha.answer`; refuses everything else."""

    needs_image = False  # the side channel answers from the challenge id: no image is fetched

    def __init__(
        self,
        answer: Callable[[int, str, str], str],
        *,
        seed: int = 1,
        wrong_first: bool = False,
        stats: StatsCollector | None = None,
    ) -> None:
        self._answer = answer
        self.seed = seed
        self.wrong_first = wrong_first
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DemoSolver:
        """Build from DNM_DEMO_SEED and DNM_DEMO_CAPTCHA_WRONG_FIRST; NotConfigured without the demo."""
        try:
            module = importlib.import_module(SIDE_CHANNEL)
        except ImportError as exc:
            raise NotConfigured(
                f"the demo CAPTCHA solver needs {SIDE_CHANNEL} (the demo package): {exc}"
            ) from exc
        settings = crawler.settings
        return cls(
            module.answer,
            seed=settings.getint("DNM_DEMO_SEED", 1),
            wrong_first=settings.getbool("DNM_DEMO_CAPTCHA_WRONG_FIRST", False),
            stats=crawler.stats,
        )

    async def solve(self, challenge: CaptchaChallenge) -> str | None:
        """The side channel's answer (deliberately wrong on attempt 1 with DNM_DEMO_CAPTCHA_WRONG_FIRST)."""
        if challenge.market not in MARKETS:
            raise ChallengeRefused(
                f"the demo CAPTCHA solver only answers demo markets {list(MARKETS)}, not "
                f"{challenge.market!r}: set DNM_CAPTCHA_SOLVER to 'human' or an automatic solver"
            )
        if not challenge.challenge_id:
            raise ChallengeRefused(
                "the demo CAPTCHA solver needs the challenge id (hidden input cid) of the "
                f"{challenge.market} challenge on {challenge.page_url}"
            )
        # The side channel derives the answer from (seed, market, cid) with a few draws from a seeded
        # stream: cheap enough to call on the event loop.
        try:
            answer = self._answer(self.seed, challenge.market, challenge.challenge_id)
        except ValueError as exc:
            raise ChallengeRefused(
                f"{challenge.challenge_id!r} is not a demo challenge id ({exc}): the page is not a demo "
                f"market's challenge, or the barrier read the wrong input"
            ) from exc
        if self.stats is not None:
            self.stats.inc_value("dnm/captcha/demo/answered")
        if self.wrong_first and challenge.attempt == 1:
            return wrong_answer(challenge.kind, answer)
        return answer

    def report(self, challenge: CaptchaChallenge, answer: str, correct: bool) -> None:
        """Count the verdict; a rejected side-channel answer means the solver and the market disagree."""
        if self.stats is not None:
            self.stats.inc_value(f"dnm/captcha/demo/{'correct' if correct else 'wrong'}")
        expected_wrong = self.wrong_first and challenge.attempt == 1
        if correct and expected_wrong:
            logger.warning(
                "demo CAPTCHA %s/%s: the deliberately wrong answer was accepted",
                challenge.market, challenge.challenge_id,
            )  # fmt: skip
        elif not correct and not expected_wrong:
            logger.warning(
                "demo CAPTCHA %s/%s: the side channel's answer was rejected (seed %d: does DNM_DEMO_SEED "
                "match the demo server's seed?)",
                challenge.market, challenge.challenge_id, self.seed,
            )  # fmt: skip

    def close(self) -> None:
        """Nothing to release."""
