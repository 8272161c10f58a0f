"""CAPTCHA solvers of the crawler: which one a crawl uses, chosen by a setting, and their settings.

The barrier middleware builds a `CaptchaChallenge` when a market shows a CAPTCHA, awaits the
solver `load_solver(crawler)` returned, posts the answer and calls `report` with the market's
verdict; `close` at the end of the crawl (dnm/captcha/base.py holds the contract).

Settings:
- `DNM_CAPTCHA_SOLVER` (default "human"): which solver answers.
  - "human": a person, on a local web page (dnm/captcha/human.py).
  - "demo": the demo market's side channel; demo markets only, for unattended tests (dnm/captcha/demo.py).
  - "none": no solver; challenges stay unsolved and the crawl records that.
  - "package.module:Class" or "package.module.Class": any automatic solver, built with
    `Class.from_crawler(crawler)` (or `Class()` without it) and providing solve/report/close.
- `DNM_CAPTCHA_TIMEOUT` (default 300): seconds the human solver waits for an answer before giving up.
- `DNM_CAPTCHA_PORT` (default 0 = a free port): the human solver's page port, on 127.0.0.1 only.
- `DNM_CAPTCHA_TERMINAL` (default False): the human solver also asks on the terminal when stdin is a TTY.
- `DNM_DEMO_SEED` (default 1): the demo world's seed, which the demo solver passes to the side channel.
- `DNM_DEMO_CAPTCHA_WRONG_FIRST` (default False): the demo solver answers attempt 1 wrongly, so tests
  exercise the retry path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from scrapy.utils.misc import build_from_crawler

from dnm.captcha.base import (
    KIND_CLOCK,
    KIND_TEXT,
    CaptchaChallenge,
    CaptchaError,
    CaptchaSolver,
    ChallengeRefused,
    SolverConfigError,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

__all__ = [
    "KIND_CLOCK",
    "KIND_TEXT",
    "SOLVER_NAMES",
    "CaptchaChallenge",
    "CaptchaError",
    "CaptchaSolver",
    "ChallengeRefused",
    "SolverConfigError",
    "load_solver",
    "solver_class",
]

DEFAULT_SOLVER = "human"
# Named solvers; anything else must be a dotted path.
SOLVER_NAMES: dict[str, str] = {
    "human": "dnm.captcha.human:HumanSolver",
    "demo": "dnm.captcha.demo:DemoSolver",
}
_HOW = "use 'human', 'demo', 'none' or a dotted path 'package.module:Class'"


def solver_class(spec: str) -> type:
    """The class a DNM_CAPTCHA_SOLVER value names (not "none"); SolverConfigError says why it cannot."""
    name = spec.strip()
    path = SOLVER_NAMES.get(name.lower(), name)
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if (
        not module_name
        or not attr
        or not all(part.isidentifier() for part in (*module_name.split("."), attr))
    ):
        raise SolverConfigError(f"DNM_CAPTCHA_SOLVER={spec!r} is not a solver name or dotted path: {_HOW}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SolverConfigError(
            f"DNM_CAPTCHA_SOLVER={spec!r}: cannot import module {module_name!r} ({exc}): {_HOW}"
        ) from exc
    try:
        cls = getattr(module, attr)
    except AttributeError:
        raise SolverConfigError(
            f"DNM_CAPTCHA_SOLVER={spec!r}: module {module_name!r} has no {attr!r}"
        ) from None
    if not isinstance(cls, type):
        raise SolverConfigError(f"DNM_CAPTCHA_SOLVER={spec!r}: {module_name}.{attr} is not a class")
    missing = [m for m in ("solve", "report", "close") if not callable(getattr(cls, m, None))]
    if missing:
        raise SolverConfigError(
            f"DNM_CAPTCHA_SOLVER={spec!r}: {cls.__qualname__} is not a CAPTCHA solver "
            f"(no {', '.join(missing)}; see dnm/captcha/base.py CaptchaSolver)"
        )
    return cls


def load_solver(crawler: Crawler) -> CaptchaSolver | None:
    """The solver DNM_CAPTCHA_SOLVER names, built from the crawler; None for "none" (nothing is solved)."""
    spec = crawler.settings.get("DNM_CAPTCHA_SOLVER") or DEFAULT_SOLVER
    if not isinstance(spec, str):
        raise SolverConfigError(f"DNM_CAPTCHA_SOLVER must be a string, not {spec!r}: {_HOW}")
    if spec.strip().lower() == "none":
        return None
    solver: CaptchaSolver = build_from_crawler(solver_class(spec), crawler)
    return solver
