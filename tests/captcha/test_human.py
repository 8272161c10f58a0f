"""The human solver without a browser: settings, access control, answers, the terminal, Scrapy's reactor."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.test import get_crawler

from dnm.captcha.base import SolverConfigError, parse_clock_answer
from dnm.captcha.human import HumanSolver
from dnm.captcha.page import display_url, printable, sniff_image_type
from tests.captcha.support import clock_challenge, text_challenge

ROOT = Path(__file__).resolve().parents[2]


def request(
    solver: HumanSolver, method: str, path: str, body: dict[str, str] | None = None, host: str | None = None
) -> http.client.HTTPResponse:
    """One raw HTTP request to the solver's page server (no browser, so any header can be forged)."""
    port = int(urllib.parse.urlsplit(solver.url).port or 0)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Host": host or f"127.0.0.1:{port}"}
    data = None
    if body is not None:
        data = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=data, headers=headers)
    response = connection.getresponse()
    response.read()
    return response


def with_solver(scenario: Callable[[HumanSolver], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        solver = HumanSolver(**options)
        solver.start()
        try:
            await scenario(solver)
        finally:
            solver.close()

    asyncio.run(main())


async def until_waiting(solver: HumanSolver, count: int = 1) -> None:
    for _ in range(200):
        if len(solver.waiting()) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no challenge started waiting")


async def post(
    solver: HumanSolver, form: dict[str, str], token: str | None = None
) -> http.client.HTTPResponse:
    """POST the answer form from a thread, as the browser would, without blocking the loop."""
    path = f"/answer?t={token if token is not None else solver.token}"
    return await asyncio.to_thread(request, solver, "POST", path, form)


def test_from_crawler_reads_the_settings() -> None:
    crawler = get_crawler(settings_dict={"DNM_CAPTCHA_TIMEOUT": 12.5, "DNM_CAPTCHA_TERMINAL": False})
    solver = HumanSolver.from_crawler(crawler)
    try:
        assert solver.timeout == 12.5
        assert solver.url.startswith("http://127.0.0.1:") and f"/?t={solver.token}" in solver.url
        assert len(solver.token) >= 32
        assert HumanSolver.from_crawler(crawler).token != solver.token  # random per solver
    finally:
        solver.close()


def test_port_setting_and_busy_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    solver = HumanSolver.from_crawler(get_crawler(settings_dict={"DNM_CAPTCHA_PORT": free}))
    try:
        assert solver.url.startswith(f"http://127.0.0.1:{free}/?t=")
        with pytest.raises(SolverConfigError, match="DNM_CAPTCHA_PORT"):
            HumanSolver.from_crawler(get_crawler(settings_dict={"DNM_CAPTCHA_PORT": free}))
    finally:
        solver.close()


@pytest.mark.parametrize(
    ("setting", "value", "match"),
    [("DNM_CAPTCHA_TIMEOUT", 0, "DNM_CAPTCHA_TIMEOUT"), ("DNM_CAPTCHA_PORT", 70000, "DNM_CAPTCHA_PORT")],
)
def test_bad_settings(setting: str, value: object, match: str) -> None:
    with pytest.raises(SolverConfigError, match=match):
        HumanSolver.from_crawler(get_crawler(settings_dict={setting: value}))


def test_access_needs_the_token_and_the_loopback_host() -> None:
    async def scenario(solver: HumanSolver) -> None:
        task = asyncio.create_task(solver.solve(text_challenge()))
        await until_waiting(solver)
        t = solver.token
        port = urllib.parse.urlsplit(solver.url).port
        ok = await asyncio.to_thread(request, solver, "GET", f"/?t={t}")
        assert ok.status == 200 and ok.getheader("Content-Security-Policy")
        assert (
            await asyncio.to_thread(request, solver, "GET", f"/?t={t}", host=f"localhost:{port}")
        ).status == 200
        for path in ("/", f"/?t={t[:-1]}", f"/?t={t}x", "/state", "/image/1", f"/image/1?t={t.upper()}"):
            assert (await asyncio.to_thread(request, solver, "GET", path)).status == 403, path
        # DNS rebinding: the right token under another host name is still refused.
        rebound = await asyncio.to_thread(request, solver, "GET", f"/?t={t}", host=f"evil.example:{port}")
        assert rebound.status == 403
        refused = await post(solver, {"id": "1", "action": "answer", "answer": "x"}, token="guess")
        assert refused.status == 403
        assert not task.done()
        answered = await post(solver, {"id": "1", "action": "answer", "answer": " K7PQ2 "})
        assert answered.status == 303 and answered.getheader("Location") == f"/?t={t}&m=answered"
        assert await asyncio.wait_for(task, 5) == "K7PQ2"

    with_solver(scenario)


def test_state_and_image_endpoints() -> None:
    async def scenario(solver: HumanSolver) -> None:
        challenge = clock_challenge(image_type="image/gif")  # a wrong claim: the bytes decide
        task = asyncio.create_task(solver.solve(challenge))
        await until_waiting(solver)
        port = urllib.parse.urlsplit(solver.url).port

        def get(path: str) -> tuple[int, str, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", f"{path}?t={solver.token}")
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type") or "", response.read()

        status, content_type, body = await asyncio.to_thread(get, "/state")
        assert status == 200 and json.loads(body)["waiting"] == ["1"]
        status, content_type, body = await asyncio.to_thread(get, "/image/1")
        assert (status, content_type, body) == (200, "image/png", challenge.image)
        assert (await asyncio.to_thread(get, "/image/2"))[0] == 404
        assert (await asyncio.to_thread(get, "/nothing"))[0] == 404
        task.cancel()

    with_solver(scenario)


def test_answer_forms_are_checked() -> None:
    async def scenario(solver: HumanSolver) -> None:
        clock = asyncio.create_task(solver.solve(clock_challenge()))
        text = asyncio.create_task(solver.solve(text_challenge()))
        await until_waiting(solver, 2)
        for form, outcome in [
            ({"id": "1", "action": "answer", "hour": "13", "minute": "00"}, "invalid"),
            ({"id": "1", "action": "answer", "hour": "3", "minute": ""}, "invalid"),
            ({"id": "1", "action": "answer", "hour": "x", "minute": "7"}, "invalid"),
            ({"id": "1", "action": "answer", "hour": "", "minute": ""}, "empty"),
            ({"id": "2", "action": "answer", "answer": "   "}, "empty"),
            ({"id": "2", "action": "answer", "answer": "A" * 65}, "invalid"),
            ({"id": "2", "action": "answer", "answer": "AB\x1bC"}, "invalid"),
            ({"id": "9", "action": "answer", "answer": "AB"}, "gone"),
            ({"action": "answer", "answer": "AB"}, "gone"),
        ]:
            response = await post(solver, form)
            assert response.getheader("Location", "").endswith(f"&m={outcome}"), form
        assert not clock.done() and not text.done()
        assert (
            await post(solver, {"id": "1", "action": "answer", "hour": "03", "minute": "5"})
        ).status == 303
        assert await asyncio.wait_for(clock, 5) == "3:05"
        # Answering twice (two tabs): the second post finds the challenge gone.
        await post(solver, {"id": "2", "action": "answer", "answer": "first"})
        late = await post(solver, {"id": "2", "action": "answer", "answer": "second"})
        assert late.getheader("Location", "").endswith("&m=gone")
        assert await asyncio.wait_for(text, 5) == "first"

    with_solver(scenario)


def test_timeout_skip_and_stats() -> None:
    crawler = get_crawler(settings_dict={"DNM_CAPTCHA_TIMEOUT": 0.3})
    solver = HumanSolver.from_crawler(crawler)

    async def scenario() -> None:
        started = time.monotonic()
        assert await solver.solve(text_challenge()) is None
        assert 0.25 < time.monotonic() - started < 3
        assert solver.waiting() == []
        task = asyncio.create_task(solver.solve(text_challenge()))
        await until_waiting(solver)
        await post(solver, {"id": "2", "action": "skip", "answer": "ignored"})
        assert await task is None
        task = asyncio.create_task(solver.solve(text_challenge()))
        await until_waiting(solver)
        await post(solver, {"id": "3", "action": "answer", "answer": "ok"})
        assert await task == "ok"

    try:
        asyncio.run(scenario())
        solver.report(text_challenge(), "ok", correct=False)
    finally:
        solver.close()
    assert crawler.stats is not None
    values = {k.rsplit("/", 1)[1]: v for k, v in crawler.stats.get_stats().items() if "captcha/human" in k}
    assert values == {"timeout": 1, "skipped": 1, "answered": 1, "wrong": 1}


def test_close_releases_waiting_solves() -> None:
    async def scenario(solver: HumanSolver) -> None:
        port = urllib.parse.urlsplit(solver.url).port
        tasks = [asyncio.create_task(solver.solve(text_challenge())) for _ in range(3)]
        await until_waiting(solver, 3)
        solver.close()
        assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == [None, None, None]
        assert await solver.solve(text_challenge()) is None  # closed: nothing waits any more
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    with_solver(scenario)


def test_cancelled_solve_leaves_the_page() -> None:
    async def scenario(solver: HumanSolver) -> None:
        task = asyncio.create_task(solver.solve(text_challenge()))
        await until_waiting(solver)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert solver.waiting() == []

    with_solver(scenario)


def test_verdicts_are_shown_on_the_page() -> None:
    async def scenario(solver: HumanSolver) -> None:
        solver.report(text_challenge(market="<b>x</b>"), "<i>AB</i>", correct=False)
        page = await asyncio.to_thread(request_text, solver, f"/?t={solver.token}")
        assert "&lt;i&gt;AB&lt;/i&gt;</code> was wrong" in page and "<i>AB" not in page
        assert "No challenge waiting" in page

    with_solver(scenario)


def request_text(solver: HumanSolver, path: str) -> str:
    port = urllib.parse.urlsplit(solver.url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path)
    return connection.getresponse().read().decode()


def test_the_url_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(solver: HumanSolver) -> None:
        tasks = [asyncio.create_task(solver.solve(text_challenge(prompt="\x1b[2J"))) for _ in range(2)]
        await until_waiting(solver, 2)
        for task in tasks:
            task.cancel()
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert warnings == [f"CAPTCHA waiting: open {solver.url}"]

    caplog.set_level("INFO")
    with_solver(scenario)
    assert "\x1b" not in caplog.text


def test_terminal_answers() -> None:
    out = io.StringIO()
    lines = io.StringIO("\n  k7pq2 \nnot a time\n3:7\n")  # skip, answer, then a clock: invalid, valid

    async def scenario(solver: HumanSolver) -> None:
        evil = text_challenge(prompt="\x1b]0;owned\x07 type it")
        assert await asyncio.wait_for(solver.solve(evil), 5) is None
        assert await asyncio.wait_for(solver.solve(text_challenge()), 5) == "k7pq2"
        assert await asyncio.wait_for(solver.solve(clock_challenge()), 5) == "3:07"

    with_solver(scenario, terminal=True, terminal_in=lines, terminal_out=out)
    printed = out.getvalue()
    assert "CAPTCHA from hollowmere" in printed and "type it" in printed and "\x1b" not in printed
    assert "Not a valid answer: type H:MM" in printed
    assert "http://127.0.0.1:" in printed


def test_terminal_is_off_without_a_tty() -> None:
    crawler = get_crawler(settings_dict={"DNM_CAPTCHA_TERMINAL": True})
    solver = HumanSolver.from_crawler(crawler)  # pytest's stdin is not a TTY
    try:
        assert not solver._terminal
    finally:
        solver.close()


def test_page_helpers() -> None:
    assert display_url("http://u:p@abc.onion:8080/a/b?sid=1#x") == "http://abc.onion:8080/a/b (query hidden)"
    assert display_url("http://abc.onion") == "http://abc.onion/"
    assert display_url("javascript:alert(1)") == "(unparsable URL)"
    assert printable("a\x1b[31mb\nc") == "a [31mb c"
    assert sniff_image_type(b"GIF89a...") == "image/gif"
    assert sniff_image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_image_type(b"<svg/>") is None
    assert parse_clock_answer(" 03 : 5 ") == "3:05"
    with pytest.raises(ValueError):
        parse_clock_answer("0:10")
    assert "image=" not in repr(text_challenge())  # no image bytes in logs


def test_solve_inside_scrapys_asyncio_reactor() -> None:
    """Under Scrapy's asyncio reactor, a waiting solve leaves the loop running and gets the posted answer."""
    script = textwrap.dedent(
        """
        import asyncio, http.client, json, threading, time, urllib.parse

        from scrapy.utils.reactor import install_reactor

        install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred
        from scrapy.utils.test import get_crawler

        from dnm.captcha import load_solver
        from tests.captcha.support import text_challenge

        result = {}

        def person(url, token):
            # Another thread: the person answers half a second after the challenge appears.
            port = urllib.parse.urlsplit(url).port
            for _ in range(500):
                connection = http.client.HTTPConnection("127.0.0.1", port)
                connection.request("GET", "/state?t=" + token)
                if json.loads(connection.getresponse().read())["waiting"]:
                    break
                time.sleep(0.01)
            time.sleep(0.5)
            connection = http.client.HTTPConnection("127.0.0.1", port)
            body = "id=1&action=answer&answer=R3ACT"
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            connection.request("POST", "/answer?t=" + token, body=body, headers=headers)
            connection.getresponse().read()

        async def main():
            solver = load_solver(get_crawler(settings_dict={"DNM_CAPTCHA_SOLVER": "human"}))
            ticks = 0

            async def heartbeat():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            beat = asyncio.ensure_future(heartbeat())
            threading.Thread(target=person, args=(solver.url, solver.token), daemon=True).start()
            result["answer"] = await solver.solve(text_challenge())
            result["ticks"] = ticks
            beat.cancel()
            solver.close()

        def run():
            d = Deferred.fromFuture(asyncio.ensure_future(main()))
            d.addErrback(lambda f: result.setdefault("error", f.getTraceback()))
            d.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(run)
        reactor.run()
        print(json.dumps(result))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "error" not in result, result["error"]
    assert result["answer"] == "R3ACT"
    assert result["ticks"] >= 20  # the loop kept turning while the solve waited
    assert "CAPTCHA waiting: open http://127.0.0.1:" in completed.stderr
