"""load_solver: the solver DNM_CAPTCHA_SOLVER names, dotted paths to automatic solvers, clear errors."""

from __future__ import annotations

import asyncio

import pytest
from scrapy.utils.test import get_crawler

from dnm.captcha import CaptchaSolver, SolverConfigError, load_solver
from dnm.captcha.demo import DemoSolver
from dnm.captcha.human import HumanSolver
from tests.captcha.support import FixedSolver, PlainSolver, text_challenge


def load(value: object = None, **settings: object) -> CaptchaSolver | None:
    if value is not None:
        settings["DNM_CAPTCHA_SOLVER"] = value
    return load_solver(get_crawler(settings_dict=settings))


@pytest.mark.parametrize("value", [None, "", "human", " Human "])
def test_human_is_the_default(value: str | None) -> None:
    solver = load(value, DNM_CAPTCHA_TIMEOUT=7)
    try:
        assert isinstance(solver, HumanSolver) and solver.timeout == 7
        assert isinstance(solver, CaptchaSolver)
    finally:
        assert solver is not None
        solver.close()


def test_demo() -> None:
    solver = load("demo", DNM_DEMO_SEED=5, DNM_DEMO_CAPTCHA_WRONG_FIRST=True)
    assert isinstance(solver, DemoSolver) and solver.seed == 5 and solver.wrong_first


@pytest.mark.parametrize("value", ["none", "NONE"])
def test_none_means_no_solver(value: str) -> None:
    assert load(value) is None


@pytest.mark.parametrize("path", ["tests.captcha.support:FixedSolver", "tests.captcha.support.FixedSolver"])
def test_dotted_path_built_from_the_crawler(path: str) -> None:
    solver = load(path, TEST_CAPTCHA_ANSWER="from settings")
    assert isinstance(solver, FixedSolver)
    assert asyncio.run(solver.solve(text_challenge())) == "from settings"
    solver.report(text_challenge(), "from settings", correct=True)
    solver.close()
    assert solver.verdicts == [("from settings", True)] and solver.closed


def test_dotted_path_without_from_crawler() -> None:
    solver = load("tests.captcha.support:PlainSolver")
    assert isinstance(solver, PlainSolver)
    assert asyncio.run(solver.solve(text_challenge())) == "plain"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("humn", "is not a solver name or dotted path"),
        ("tests.captcha:", "is not a solver name or dotted path"),
        ("a b.c", "is not a solver name or dotted path"),
        ("no_such_package.solvers:Solver", "cannot import module 'no_such_package.solvers'"),
        ("tests.captcha.support:Missing", "has no 'Missing'"),
        ("tests.captcha.support.CHROMIUM", "is not a class"),
        ("tests.captcha.support:NotASolver", "is not a CAPTCHA solver .no solve, report, close"),
        (3, "must be a string"),
    ],
)
def test_bad_values_are_clear_errors(value: object, match: str) -> None:
    with pytest.raises(SolverConfigError, match=match) as error:
        load(value)
    assert "DNM_CAPTCHA_SOLVER" in str(error.value)
