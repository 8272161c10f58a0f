"""The human solver's page in a real headless chromium: what a person types and clicks reaches `solve`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from playwright.async_api import ConsoleMessage, Page, Request, async_playwright

from dnm.captcha.base import CaptchaChallenge
from dnm.captcha.human import HumanSolver
from tests.captcha.support import clock_challenge, png_size, require_chromium, text_challenge


@dataclass
class Session:
    """A solver, a browser page on it, and what the page did."""

    solver: HumanSolver
    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    async def waiting(self, challenge: CaptchaChallenge) -> asyncio.Task[str | None]:
        """Start `solve` in a task and return once the challenge is waiting."""
        before = len(self.solver.waiting())
        task = asyncio.create_task(self.solver.solve(challenge))
        for _ in range(100):
            if len(self.solver.waiting()) > before:
                return task
            await asyncio.sleep(0.01)
        raise AssertionError("the challenge never started waiting")

    async def open(self) -> None:
        """Open the page with the logged URL; it must come with the security headers."""
        response = await self.page.goto(self.solver.url)
        assert response is not None and response.status == 200
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"

    async def focused(self, name: str) -> None:
        """Wait until the keyboard is in the field `name` (autofocus lands at the first rendering)."""
        await self.page.wait_for_function(
            "(n) => document.activeElement && document.activeElement.name === n", arg=name, timeout=5000
        )

    async def image_shown(self, selector: str = "img.captcha") -> int:
        """Wait until the image has loaded and return its natural width (0 never passes)."""
        await self.page.wait_for_function(
            "(s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
            arg=selector,
            timeout=5000,
        )
        width: int = await self.page.eval_on_selector(selector, "img => img.naturalWidth")
        return width


def run(scenario: Callable[[Session], Awaitable[None]], *, timeout: float = 30.0) -> None:
    """Run a scenario with a fresh solver and a headless chromium on one event loop."""
    chromium = require_chromium()

    async def main() -> None:
        solver = HumanSolver(timeout=timeout)
        solver.start()
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
                try:
                    page = await browser.new_page()
                    session = Session(solver, page)
                    page.on("request", lambda r: session.requests.append(r.url))
                    page.on("console", lambda m: _console(session, m))
                    page.set_default_timeout(8000)
                    await scenario(session)
                    assert not session.console_errors, session.console_errors
                    origin = solver.url.split("/?")[0]
                    assert all(url.startswith(origin + "/") for url in session.requests), session.requests
                finally:
                    await browser.close()
        finally:
            solver.close()

    asyncio.run(main())


def _console(session: Session, message: ConsoleMessage) -> None:
    # CSP violations and script errors show up as console errors.
    if message.type == "error":
        session.console_errors.append(message.text)


def test_text_answer_typed_and_entered() -> None:
    challenge = text_challenge("K7PQ2")

    async def scenario(s: Session) -> None:
        task = await s.waiting(challenge)
        await s.open()
        assert await s.image_shown() == png_size(challenge.image or b"")[0]
        assert await s.page.title() == "(1) CAPTCHA waiting · dnm-archive"
        text = await s.page.inner_text("section.challenge")
        assert "hollowmere" in text and "Type the characters you see" in text
        await s.focused("answer")  # autofocus: the keyboard goes straight to the answer field
        await s.page.keyboard.type("K7PQ2")
        await s.page.keyboard.press("Enter")
        assert await asyncio.wait_for(task, 10) == "K7PQ2"
        await s.page.wait_for_selector("p.status")
        assert "Answer sent" in await s.page.inner_text("p.status")
        assert "No challenge waiting" in await s.page.inner_text("main")

    run(scenario)


def test_clock_answer_with_the_selects() -> None:
    async def scenario(s: Session) -> None:
        task = await s.waiting(clock_challenge(3, 7))
        await s.open()
        assert await s.image_shown() > 0
        hours = await s.page.eval_on_selector_all("select[name=hour] option", "os => os.map(o => o.value)")
        minutes = await s.page.eval_on_selector_all(
            "select[name=minute] option", "os => os.map(o => o.value)"
        )
        assert hours == ["", *(str(h) for h in range(1, 13))]
        assert minutes == ["", *(f"{m:02d}" for m in range(60))]
        await s.focused("hour")
        await s.page.select_option("select[name=hour]", "3")
        await s.page.select_option("select[name=minute]", "07")
        await s.page.focus("select[name=minute]")
        await s.page.keyboard.press("Enter")  # the page's script submits on Enter in a select
        assert await asyncio.wait_for(task, 10) == "3:07"

    run(scenario)


def test_clock_needs_both_selects() -> None:
    async def scenario(s: Session) -> None:
        task = await s.waiting(clock_challenge())
        await s.open()
        await s.page.select_option("select[name=hour]", "11")
        await s.page.click("button[value=answer]")  # minute missing: the browser refuses to submit
        await asyncio.sleep(0.5)
        assert not task.done()
        await s.page.select_option("select[name=minute]", "00")
        await s.page.click("button[value=answer]")
        assert await asyncio.wait_for(task, 10) == "11:00"

    run(scenario)


def test_skip_returns_none() -> None:
    async def scenario(s: Session) -> None:
        task = await s.waiting(text_challenge())
        await s.open()
        await s.page.click("button.skip")  # the answer field is empty and required: skip still goes
        assert await asyncio.wait_for(task, 10) is None
        await s.page.wait_for_selector("p.status")
        assert "skipped" in await s.page.inner_text("p.status")

    run(scenario)


def test_timeout_returns_none_and_the_page_goes_idle() -> None:
    async def scenario(s: Session) -> None:
        task = await s.waiting(text_challenge())
        await s.open()
        await s.page.wait_for_selector("section.challenge")
        assert await asyncio.wait_for(task, 10) is None
        # Nobody reloads: the page notices by itself that the challenge is gone.
        await s.page.wait_for_selector("p.idle", timeout=8000)
        assert await s.page.title() == "No CAPTCHA waiting · dnm-archive"

    run(scenario, timeout=1.5)


def test_idle_page_then_a_challenge_appears() -> None:
    async def scenario(s: Session) -> None:
        await s.open()
        assert "No challenge waiting" in await s.page.inner_text("main")
        task = await s.waiting(text_challenge("ZX9"))
        await s.page.wait_for_selector("section.challenge", timeout=8000)
        await s.image_shown()
        await s.focused("answer")  # after the automatic reload too
        await s.page.keyboard.type("ZX9")
        await s.page.keyboard.press("Enter")
        assert await asyncio.wait_for(task, 10) == "ZX9"

    run(scenario)


def test_two_challenges_at_once() -> None:
    async def scenario(s: Session) -> None:
        first = await s.waiting(text_challenge("AAA1"))
        await s.open()
        second = await s.waiting(clock_challenge(12, 59))
        await s.page.wait_for_function("() => document.querySelectorAll('section.challenge').length === 2")
        assert await s.image_shown("section.challenge:nth-of-type(1) img.captcha") > 0
        assert await s.image_shown("section.challenge:nth-of-type(2) img.captcha") > 0
        # Answer the second one first; the first keeps waiting.
        await s.page.select_option("select[name=hour]", "12")
        await s.page.select_option("select[name=minute]", "59")
        await s.page.click("section.challenge:nth-of-type(2) button[value=answer]")
        assert await asyncio.wait_for(second, 10) == "12:59"
        assert not first.done()
        await s.page.wait_for_function("() => document.querySelectorAll('section.challenge').length === 1")
        await s.page.fill("input[name=answer]", "AAA1")
        await s.page.press("input[name=answer]", "Enter")
        assert await asyncio.wait_for(first, 10) == "AAA1"

    run(scenario)


def test_a_new_challenge_does_not_wipe_a_half_typed_answer() -> None:
    async def scenario(s: Session) -> None:
        first = await s.waiting(text_challenge("HALF"))
        await s.open()
        await s.focused("answer")
        await s.page.keyboard.type("HA")
        second = await s.waiting(text_challenge("NEXT", market="copperline"))
        await s.page.wait_for_selector("p.notice:not([hidden])", timeout=8000)
        assert await s.page.input_value("input[name=answer]") == "HA"
        await s.page.keyboard.type("LF")
        await s.page.keyboard.press("Enter")
        assert await asyncio.wait_for(first, 10) == "HALF"
        await s.page.wait_for_selector("section.challenge h2:has-text('copperline')")
        await s.focused("answer")
        await s.page.keyboard.type("NEXT")
        await s.page.keyboard.press("Enter")
        assert await asyncio.wait_for(second, 10) == "NEXT"

    run(scenario)


def test_hostile_text_is_shown_escaped() -> None:
    prompt = '<script>window.pwned = 1</script><b>Type</b> & "quote" <img src=x onerror="window.pwned=2">'
    challenge = text_challenge(
        market="<i>hollowmere</i>",
        prompt=prompt,
        page_url="http://user:hunter2@hollowmere.test/<b>gate</b>?sid=SECRET#frag",
    )

    async def scenario(s: Session) -> None:
        task = await s.waiting(challenge)
        await s.open()
        assert await s.page.inner_text("p.prompt") == prompt
        assert await s.page.eval_on_selector("p.prompt", "p => p.children.length") == 0
        assert await s.page.evaluate("window.pwned === undefined")
        assert "<i>hollowmere</i>" in await s.page.inner_text("section.challenge h2")
        shown_url = await s.page.inner_text("code.url")
        assert "hollowmere.test" in shown_url and "<b>gate</b>" in shown_url
        html = await s.page.content()
        for secret in ("hunter2", "SECRET", "frag"):
            assert secret not in html
        await s.page.click("button.skip")
        assert await asyncio.wait_for(task, 10) is None

    run(scenario)


def test_wrong_token_is_forbidden() -> None:
    async def scenario(s: Session) -> None:
        task = await s.waiting(text_challenge())
        base = s.solver.url.split("?")[0]
        for url in (base, f"{base}?t=wrong", f"{base}image/1?t=wrong", f"{base}state"):
            response = await s.page.goto(url)
            assert response is not None and response.status == 403, url
            assert "hollowmere" not in await s.page.content()
        # A form posted from elsewhere without the token (CSRF) is refused too.
        posted = await s.page.request.post(f"{base}answer", form={"id": "1", "answer": "x"})
        assert posted.status == 403
        assert not task.done()
        task.cancel()
        s.console_errors.clear()  # chromium logs each refused load as an error: expected here

    run(scenario)


@pytest.mark.parametrize("image", [None, b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>"])
def test_missing_or_unsafe_image_is_not_shown(image: bytes | None) -> None:
    async def scenario(s: Session) -> None:
        task = await s.waiting(text_challenge(image=image, image_type="image/svg+xml" if image else None))
        await s.open()
        await s.focused("answer")
        assert await s.page.query_selector("img") is None
        assert await s.page.inner_text("p.noimage")
        response = await s.page.request.get(s.solver.url.replace("/?", "/image/1?"))
        assert response.status == 404
        await s.page.keyboard.type("typed anyway")
        await s.page.keyboard.press("Enter")
        assert await asyncio.wait_for(task, 10) == "typed anyway"

    run(scenario)


def test_page_polls_and_loads_only_its_own_resources() -> None:
    async def scenario(s: Session) -> None:
        seen: list[Request] = []
        s.page.on("request", lambda r: seen.append(r))
        task = await s.waiting(clock_challenge())
        await s.open()
        await s.image_shown()
        await asyncio.sleep(2)  # at least one poll
        paths = {r.url.split("?")[0].rsplit("/", 1)[-1] or "/" for r in seen}
        assert {"/", "app.css", "app.js", "1", "state"} <= paths
        task.cancel()

    run(scenario)
