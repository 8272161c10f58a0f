"""The demo solver: answers from the demo market's side channel, passes its gate, refuses everything else."""

from __future__ import annotations

import asyncio
import base64
import sys
import types
from urllib.parse import urljoin

import pytest
import requests
from bs4 import BeautifulSoup
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from demo.hostile import captcha as side_channel
from demo.hostile.config import Hostility
from demo.server import DemoServer
from demo.world import MARKETS
from dnm.captcha.base import KIND_CLOCK, CaptchaChallenge, ChallengeRefused, parse_clock_answer
from dnm.captcha.demo import SIDE_CHANNEL, DemoSolver, wrong_answer
from tests.captcha.support import text_challenge


def demo_solver(**settings: object) -> DemoSolver:
    return DemoSolver.from_crawler(get_crawler(settings_dict=settings))


def challenge_for(market: str, cid: str | None, attempt: int = 1) -> CaptchaChallenge:
    kind = side_channel.kind_of(cid) if cid else "image"
    return CaptchaChallenge(
        market=market,
        kind="clock" if kind == "clock" else "text",
        page_url=f"http://{market}.test/ddos",
        challenge_id=cid,
        image=None,
        image_type=None,
        attempt=attempt,
    )


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("kind", side_channel.KINDS)
@pytest.mark.parametrize("seed", [1, 7])
def test_answers_from_the_side_channel(market: str, kind: str, seed: int) -> None:
    solver = demo_solver(DNM_DEMO_SEED=seed)
    for number in range(1, 6):
        cid = side_channel.new_cid(seed, market, kind, number)
        answer = asyncio.run(solver.solve(challenge_for(market, cid)))
        assert answer == side_channel.answer(seed, market, cid)
        form = {"hour": answer.split(":")[0], "minute": answer.split(":")[1]} if kind == "clock" else {}
        assert side_channel.check(seed, market, cid, form or {"captcha": answer})
    assert solver.stats is not None and solver.stats.get_value("dnm/captcha/demo/answered") == 5


def test_seed_setting_matters() -> None:
    cid = side_channel.new_cid(1, "hollowmere", "image", 1)
    answers = {
        asyncio.run(demo_solver(DNM_DEMO_SEED=s).solve(challenge_for("hollowmere", cid))) for s in (1, 2)
    }
    assert len(answers) == 2


@pytest.mark.parametrize("kind", side_channel.KINDS)
def test_wrong_first_then_right(kind: str) -> None:
    solver = demo_solver(DNM_DEMO_CAPTCHA_WRONG_FIRST=True)
    cid = side_channel.new_cid(1, "copperline", kind, 3)
    first = asyncio.run(solver.solve(challenge_for("copperline", cid, attempt=1)))
    second = asyncio.run(solver.solve(challenge_for("copperline", cid, attempt=2)))
    assert second == side_channel.answer(1, "copperline", cid)
    assert first != second
    form = (
        {"hour": first.split(":")[0], "minute": first.split(":")[1]}
        if kind == "clock"
        else {"captcha": first}
    )
    assert not side_channel.check(1, "copperline", cid, form)


def test_wrong_answer_is_always_wrong() -> None:
    for hour in range(1, 13):
        answer = f"{hour}:05"
        wrong = wrong_answer(KIND_CLOCK, answer)
        assert parse_clock_answer(wrong) == wrong and wrong != answer
    assert wrong_answer("text", "ABCX").upper() != "ABCX"


@pytest.mark.parametrize("market", ["dreammarket", "Hollowmere", "hollowmere-phishing", ""])
def test_refuses_markets_that_are_not_demo_markets(market: str) -> None:
    calls: list[tuple[int, str, str]] = []
    solver = DemoSolver(lambda *args: calls.append(args) or "X")  # type: ignore[func-returns-value]
    with pytest.raises(ChallengeRefused, match="only answers demo markets"):
        asyncio.run(solver.solve(text_challenge(market=market)))
    assert calls == []  # the side channel is never even asked


@pytest.mark.parametrize("cid", [None, ""])
def test_refuses_a_challenge_without_id(cid: str | None) -> None:
    solver = demo_solver()
    with pytest.raises(ChallengeRefused, match="needs the challenge id"):
        asyncio.run(solver.solve(text_challenge(challenge_id=cid)))


def test_refuses_an_id_the_market_never_issues() -> None:
    with pytest.raises(ChallengeRefused, match="not a demo challenge id"):
        asyncio.run(demo_solver().solve(text_challenge(challenge_id="../../etc/passwd")))


def test_not_configured_without_the_side_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail, as in an installation without the demo package.
    monkeypatch.setitem(sys.modules, SIDE_CHANNEL, None)
    with pytest.raises(NotConfigured, match=SIDE_CHANNEL):
        DemoSolver.from_crawler(get_crawler())


def test_uses_whatever_the_side_channel_says(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType(SIDE_CHANNEL)
    fake.answer = lambda seed, market, cid: f"{seed}/{market}/{cid}"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, SIDE_CHANNEL, fake)
    solver = DemoSolver.from_crawler(get_crawler(settings_dict={"DNM_DEMO_SEED": 42}))
    assert asyncio.run(solver.solve(text_challenge(challenge_id="abc"))) == "42/hollowmere/abc"


def test_report_warns_when_the_market_disagrees(caplog: pytest.LogCaptureFixture) -> None:
    solver = demo_solver(DNM_DEMO_CAPTCHA_WRONG_FIRST=True)
    challenge = text_challenge()
    solver.report(challenge, "wrong on purpose", correct=False)  # attempt 1, expected
    assert not caplog.records
    solver.report(text_challenge(attempt=2), "ABCD", correct=False)
    assert "DNM_DEMO_SEED" in caplog.text
    assert solver.stats is not None and solver.stats.get_value("dnm/captcha/demo/wrong") == 2


# -- through the demo market's own gate (docs/hostile-demo.md, "Anti-DDoS gate") --------------------------


def read_challenge(
    session: requests.Session, base: str, page: str, market: str, attempt: int
) -> tuple[CaptchaChallenge, dict[str, str]]:
    """The CaptchaChallenge a barrier middleware would build from a gate page, and the hidden inputs."""
    soup = BeautifulSoup(page, "html.parser")
    form = soup.select_one("form.ddos")
    assert form is not None, page[:500]
    hidden = {str(i["name"]): str(i.get("value", "")) for i in form.select("input[type=hidden]")}
    img = form.select_one("img.captcha")
    assert img is not None
    src = str(img["src"])
    if src.startswith("data:"):
        image = base64.b64decode(src.split(",", 1)[1])
    else:
        image = session.get(urljoin(base, src)).content
    kind = "clock" if form.select_one("select[name=hour]") else "text"
    challenge = CaptchaChallenge(market, kind, base + "/", hidden["cid"], image, "image/png", attempt=attempt)
    return challenge, hidden


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("gate_captcha", ["image", "clock"])
def test_passes_the_demo_gate_after_one_wrong_answer(market: str, gate_captcha: str) -> None:
    solver = demo_solver(DNM_DEMO_CAPTCHA_WRONG_FIRST=True)
    with DemoServer(market, 1, hostility=Hostility(gate_captcha=gate_captcha)) as server:
        session = requests.Session()
        page = session.get(server.url + "/?sort=new").text
        for attempt in (1, 2):
            challenge, hidden = read_challenge(session, server.url, page, market, attempt)
            assert challenge.kind == ("clock" if gate_captcha == "clock" else "text")
            assert challenge.image is not None and challenge.image.startswith(b"\x89PNG")
            answer = asyncio.run(solver.solve(challenge))
            assert answer is not None
            data = {"cid": hidden["cid"], "r": hidden["r"]}
            if challenge.kind == "clock":
                data["hour"], data["minute"] = answer.split(":")
            else:
                data["captcha"] = answer
            response = session.post(server.url + "/ddos", data=data, allow_redirects=False)
            correct = response.status_code == 303
            solver.report(challenge, answer, correct)
            assert correct == (attempt == 2), (attempt, response.status_code)
            page = response.text
        assert response.headers["Location"].endswith("/?sort=new")
        home = session.get(server.url + "/", allow_redirects=False)
        assert home.status_code == 200 and 'class="ddos"' not in home.text
    assert solver.stats is not None
    assert solver.stats.get_value("dnm/captcha/demo/wrong") == 1
    assert solver.stats.get_value("dnm/captcha/demo/correct") == 1
