"""Barrier middleware: gets every request past the market's barriers to its content, or says why not.

Each response is classified (`dnm.barriers.classify_barrier`); content goes on unchanged, anything
else gets its policy, and the loop goes on until content or a limit:
- wait / queue pages: wait the time they ask (at most `DNM_GATE_MAX_WAIT`), then follow them;
- CAPTCHAs: the configured solver answers (`dnm.captcha`), the form is submitted, wrong answers are
  reported and retried up to `DNM_CAPTCHA_ATTEMPTS`;
- login forms and logged-out pages: the request's account logs in again; an account the market
  refuses is retired and the page is fetched with another from the pool;
- killed path: a new circuit for the request's isolation identity (signal `circuit_killed`, acted on
  by the Tor transport: new SOCKS identity plus NEWNYM), then retry, up to `DNM_KILLED_RETRIES`;
- maintenance: exponential back-off from `DNM_MAINTENANCE_BACKOFF` seconds (or the page's
  Retry-After), up to `DNM_MAINTENANCE_RETRIES`;
- phishing: the mirror is refused (signal `mirror_refused`) and the page fetched again elsewhere;
- bare 5xx errors are left to Scrapy's RetryMiddleware.
Barriers that belong to a session (wait, queue, CAPTCHA, login: one account's cookies on one mirror) are
passed by one request at a time; requests that met the same barrier meanwhile fetch again once it is
passed, so eight requests hitting a queue solve one CAPTCHA, not eight. Barrier pages never reach the
spider's parsing: they are listed in `request.meta["dnm_barriers"]` and archived as `gate:<kind>` pages.
Stats: `dnm/barriers/<kind>`, `dnm/barriers/passed`, `dnm/barriers/unpassed/<kind>`, `dnm/captcha/...`,
`dnm/login/...`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import FormRequest, Response, TextResponse

from dnm import signals as dnm_signals
from dnm.barriers import (
    SESSION_KINDS,
    Kind,
    Verdict,
    answer_fields,
    classify_barrier,
    decode_data_uri,
    field_text,
    filled,
    meta_refresh,
    read_challenge,
    read_login_form,
    retry_after,
)
from dnm.items import HttpExchange, exchange_of
from dnm.middlewares.mirrors import MIRROR_CAUSES
from dnm.profile import ChallengeRule, Profile
from dnm.stats import exception_cause
from transport.circuits import CircuitManager

logger = logging.getLogger(__name__)

INTERNAL = "dnm_barrier_step"  # meta flag of the requests this middleware makes itself
RESTARTS = "dnm_barrier_restarts"  # times a page was sent again after a barrier step lost its mirror
CARRIED_META = ("dnm_account", "cookiejar", "download_timeout", "dnm_expected_type")


class BarrierUnpassed(IgnoreRequest):
    """A barrier the crawler could not get past; the request produced no content."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind


@dataclass(frozen=True)
class BarrierCapture:
    """A barrier page met on the way to a request's content, as it is archived."""

    url: str
    kind: str
    status: int
    body: bytes
    sha256: str
    fetched_at: datetime
    encoding: str
    # The request that met the barrier and the response's headers, for the raw store (never a body sent).
    http: HttpExchange | None = None


@dataclass
class SessionGate:
    """One session's barrier state: the lock that lets one request through at a time, and a generation
    counter that tells a waiting request that someone else passed the barrier meanwhile."""

    key: tuple[str, str]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    generation: int = 0


def capture(response: Response, kind: Kind, request: Request | None = None) -> BarrierCapture:
    """A barrier page as archived; `request` is the one that fetched it."""
    body = response.body
    encoding = response.encoding if isinstance(response, TextResponse) else "latin-1"
    return BarrierCapture(
        response.url,
        str(kind),
        response.status,
        body,
        hashlib.sha256(body).hexdigest(),
        datetime.now(UTC),
        encoding,
        exchange_of(response, request),
    )


def same_page(url: str, other: str) -> bool:
    """True when two URLs name the same page, whatever mirror they are on."""
    a, b = urlsplit(url), urlsplit(other)
    return (a.path or "/", a.query) == (b.path or "/", b.query)


class BarrierMiddleware:
    """Classifies every response and carries out the policy for barrier pages (see the module docs)."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.max_wait = settings.getfloat("DNM_GATE_MAX_WAIT", 30.0)
        self.max_steps = settings.getint("DNM_GATE_MAX_STEPS", 40)
        self.captcha_attempts = settings.getint("DNM_CAPTCHA_ATTEMPTS", 3)
        self.login_attempts = settings.getint("DNM_LOGIN_ATTEMPTS", 3)
        self.killed_retries = settings.getint("DNM_KILLED_RETRIES", 8)
        self.maintenance_retries = settings.getint("DNM_MAINTENANCE_RETRIES", 8)
        self.backoff = settings.getfloat("DNM_MAINTENANCE_BACKOFF", 2.0)
        self.max_restarts = settings.getint("DNM_BARRIER_RESTARTS", 2)
        self.gates: dict[tuple[str, str], SessionGate] = {}
        self.solver: Any = None
        spec = str(settings.get("DNM_CAPTCHA_SOLVER") or "human")
        if spec.strip().lower() != "none":
            from dnm.captcha import solver_class

            solver_class(spec)  # a misspelt solver fails the crawl now, not at its first CAPTCHA
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BarrierMiddleware:
        return cls(crawler)

    def load_solver(self) -> Any:
        """The CAPTCHA solver, built at the first CAPTCHA: a crawl that meets none opens no solver page."""
        if self.solver is None:
            from dnm.captcha import load_solver

            self.solver = load_solver(self.crawler) or False
        return self.solver or None

    def spider_closed(self, spider: Spider) -> None:
        if self.solver:
            self.solver.close()

    @property
    def profile(self) -> Profile:
        return self.crawler.spider.profile  # type: ignore[union-attr]

    @property
    def market(self) -> str:
        return self.profile.market

    def inc(self, key: str, count: int = 1) -> None:
        assert self.stats is not None
        self.stats.inc_value(key, count)

    # -- session bookkeeping -------------------------------------------------------------------------

    def session_key(self, meta: dict[str, Any], url: str) -> tuple[str, str]:
        return (meta.get("dnm_account") or "anonymous", urlsplit(url).netloc)

    def gate(self, key: tuple[str, str]) -> SessionGate:
        if key not in self.gates:
            self.gates[key] = SessionGate(key)
        return self.gates[key]

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        # Which barrier generation this request was sent under: if the barrier is passed by another
        # request before this one's answer arrives, it only needs fetching again.
        key = self.session_key(request.meta, request.url)
        request.meta["dnm_gate_seen"] = (key, self.gate(key).generation)

    # -- the loop ------------------------------------------------------------------------------------

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Any:
        if request.meta.get(INTERNAL):
            # A step of a barrier being passed: the loop that made it looks at it. A barrier served
            # with a 5xx status (maintenance) is not a server error for RetryMiddleware to hammer.
            if response.status >= 500 and classify_barrier(self.profile, response).kind is not Kind.ERROR:
                request.meta["dont_retry"] = True
            return response
        return await self.resolve(request, response)

    def target_of(self, request: Request) -> str:
        """The page the request is for: before any redirect to a login or gate page."""
        redirects = request.meta.get("redirect_urls") or []
        return redirects[0] if redirects else request.url

    async def resolve(self, request: Request, response: Response) -> Response | Request:
        target = self.target_of(request)
        captures: list[BarrierCapture] = request.meta.setdefault("dnm_barriers", [])
        steps: Counter[str] = Counter()
        held: SessionGate | None = None
        sent: Request = request
        try:
            for step in range(self.max_steps):
                verdict = classify_barrier(
                    self.profile, response, logged_in=bool(request.meta.get("dnm_account"))
                )
                if held is not None and verdict.kind not in SESSION_KINDS:
                    held = self.release(held)
                if verdict.kind is Kind.CONTENT and step and not same_page(response.url, target):
                    # Past the barrier but not on the page asked for (a login that lands on the home page).
                    response, sent = await self.fetch_again(request, target)
                    continue
                if verdict.kind in (Kind.CONTENT, Kind.ERROR):
                    if step:
                        self.inc("dnm/barriers/passed")
                        response.request = request
                    return response  # content, or a server error for RetryMiddleware
                captures.append(capture(response, verdict.kind, sent))
                self.inc(f"dnm/barriers/{verdict.kind}")
                if verdict.kind in SESSION_KINDS:
                    key = self.session_key(request.meta, response.url)
                    if held is not None and held.key != key:
                        held = self.release(held)
                    if held is None:
                        gate = self.gate(key)
                        seen_key, seen = sent.meta.get("dnm_gate_seen") or (key, gate.generation)
                        await gate.lock.acquire()
                        if seen_key == key and gate.generation != seen:
                            gate.lock.release()  # passed by another request since this one was sent
                            self.inc("dnm/barriers/shared")
                            response, sent = await self.fetch_again(request, target)
                            continue
                        held = gate
                    steps[verdict.kind] += 1  # counted only when this request acts on the barrier
                    response, sent = await self.pass_session_barrier(
                        request, response, verdict, target, steps
                    )
                else:
                    steps[verdict.kind] += 1
                if verdict.kind is Kind.KILLED:
                    self.limit(
                        steps, Kind.KILLED, self.killed_retries, "the market kept killing new circuits"
                    )
                    self.crawler.signals.send_catch_log(
                        dnm_signals.circuit_killed, identity=sent.meta.get("dnm_isolation"), url=response.url
                    )
                    response, sent = await self.fetch_again(request, target)
                elif verdict.kind is Kind.MAINTENANCE:
                    self.limit(
                        steps, Kind.MAINTENANCE, self.maintenance_retries, "the market stayed in maintenance"
                    )
                    delay = retry_after(response) or self.backoff * 2 ** (steps[Kind.MAINTENANCE] - 1)
                    await asyncio.sleep(min(delay, self.max_wait))
                    response, sent = await self.fetch_again(request, target)
                elif verdict.kind is Kind.PHISHING:
                    self.limit(steps, Kind.PHISHING, 2, "phishing warnings on every mirror")
                    self.crawler.signals.send_catch_log(
                        dnm_signals.mirror_refused,
                        url=response.url,
                        reason="the page says this mirror is phishing",
                    )
                    response, sent = await self.fetch_again(request, target)
            raise BarrierUnpassed("loop", f"still not at the content after {self.max_steps} barrier pages")
        except BarrierUnpassed as exc:
            self.inc(f"dnm/barriers/unpassed/{exc.kind}")
            logger.warning("barrier not passed for %s: %s", target, exc)
            raise
        except Exception as exc:
            # A step lost its mirror (dropped mid-barrier, retries spent): the page is not lost with it.
            # Sent again from the start, the mirror middleware takes it to a live mirror, where it meets
            # that mirror's barrier afresh (a session on the dead one is of no use there).
            restarts = request.meta.get(RESTARTS, 0)
            cause = exception_cause(exc)
            if cause not in MIRROR_CAUSES or restarts >= self.max_restarts:
                raise
            self.inc("dnm/barriers/restarted")
            logger.info("barrier step for %s failed (%s): the page is sent again", target, cause)
            # The page asked for, not a gate page a redirect led to (that redirect kept in meta says so).
            meta = {**request.meta, RESTARTS: restarts + 1}
            return request.replace(url=target, dont_filter=True, meta=meta)
        finally:
            if held is not None:
                self.release(held)

    def release(self, gate: SessionGate) -> None:
        gate.generation += 1
        gate.lock.release()

    def limit(self, steps: Counter[str], kind: Kind, limit: int, reason: str) -> None:
        if steps[kind] > limit:
            raise BarrierUnpassed(str(kind), f"{reason} ({limit} tries)")

    async def pass_session_barrier(
        self, request: Request, response: Response, verdict: Verdict, target: str, steps: Counter[str]
    ) -> tuple[Response, Request]:
        """One step past a wait page, queue, CAPTCHA or login form; returns the next response."""
        if verdict.kind in (Kind.WAIT, Kind.QUEUE):
            self.limit(steps, verdict.kind, 30, "the wait never ended")
            refresh = meta_refresh(response)
            delay = (
                refresh[0] if refresh else (verdict.gate.wait if verdict.gate and verdict.gate.wait else 5.0)
            )
            url = refresh[1] if refresh else target
            if delay > self.max_wait:
                logger.info(
                    "%s asks to wait %.0f s; waiting %.0f s (DNM_GATE_MAX_WAIT)", url, delay, self.max_wait
                )
            # A little over the time asked: a market that counts whole seconds must see it has passed.
            await asyncio.sleep(min(delay, self.max_wait) + 0.25)
            return await self.fetch(request, url)
        if verdict.kind is Kind.CAPTCHA:
            # A request may meet several CAPTCHAs on its way (gate, then verify, then the gate again once
            # the first expired): what is limited is answers refused in a row, plus a loop guard.
            if request.meta.get("dnm_captcha_refused", 0) >= self.captcha_attempts:
                raise BarrierUnpassed(
                    "captcha", f"CAPTCHA answers kept being refused ({self.captcha_attempts} in a row)"
                )
            self.limit(steps, Kind.CAPTCHA, self.captcha_attempts * 4, "CAPTCHA after CAPTCHA")
            assert verdict.gate is not None and verdict.gate.challenge is not None
            return await self.submit_challenge(request, response, verdict.gate.challenge, steps[Kind.CAPTCHA])
        # Login pages met, not refusals (those retire accounts): maintenance or a gate may interrupt a login.
        self.limit(steps, Kind.LOGIN, self.login_attempts * 4, "could not log in")
        return await self.log_in(request, response, steps)

    # -- fetching ------------------------------------------------------------------------------------

    def internal(self, request: Request, url: str, **kwargs: Any) -> Request:
        meta = {key: request.meta[key] for key in CARRIED_META if key in request.meta}
        meta[INTERNAL] = True
        cls = kwargs.pop("cls", Request)
        return cls(url, meta=meta, dont_filter=True, priority=request.priority + 1, **kwargs)

    async def download(self, step: Request) -> tuple[Response, Request]:
        engine = self.crawler.engine
        assert engine is not None
        response = await engine.download_async(step)
        return response, response.request or step

    async def fetch(self, request: Request, url: str) -> tuple[Response, Request]:
        return await self.download(self.internal(request, url))

    async def fetch_again(self, request: Request, target: str) -> tuple[Response, Request]:
        return await self.fetch(request, target)

    # -- CAPTCHAs ------------------------------------------------------------------------------------

    async def answer(
        self, request: Request, response: TextResponse, rule: ChallengeRule, attempt: int
    ) -> Any:
        """(challenge, answer, form) for the challenge on the page; raises when it cannot be answered."""
        from dnm.captcha.base import CaptchaChallenge

        form = read_challenge(rule, response)
        if form is None:
            raise BarrierUnpassed("captcha", f"no challenge form {rule.form!r} on {response.url}")
        solver = self.load_solver()
        if solver is None:
            raise BarrierUnpassed("captcha", "a CAPTCHA must be solved and DNM_CAPTCHA_SOLVER is 'none'")
        image, image_type = None, None
        if form.image_src and getattr(solver, "needs_image", True):
            image, image_type = await self.challenge_image(request, response, form.image_src)
        challenge = CaptchaChallenge(
            market=self.market,
            kind=rule.kind,
            page_url=response.url,
            challenge_id=form.challenge_id,
            image=image,
            image_type=image_type,
            prompt=form.prompt,
            attempt=attempt,
        )
        self.inc("dnm/captcha/asked")
        try:
            solution = await solver.solve(challenge)
        except ValueError as exc:  # the solver refuses this challenge (ChallengeRefused)
            raise BarrierUnpassed("captcha", f"the CAPTCHA solver refused the challenge: {exc}") from None
        if not solution:
            self.inc("dnm/captcha/unanswered")
            raise BarrierUnpassed("captcha", "the CAPTCHA solver gave no answer (timeout or skipped)")
        return challenge, solution, form

    async def challenge_image(
        self, request: Request, page: Response, src: str
    ) -> tuple[bytes | None, str | None]:
        inline = decode_data_uri(src)
        if inline is not None:
            return inline
        step = self.internal(request, urljoin(page.url, src))
        step.meta["dnm_captcha_image"] = True  # the media guard lets exactly these images through
        image, _ = await self.download(step)
        content_type = (image.headers.get(b"Content-Type") or b"").decode("latin-1").split(";")[0] or None
        return image.body, content_type

    async def submit_challenge(
        self,
        request: Request,
        response: Response,
        rule: ChallengeRule,
        attempt: int,
        extra: dict[str, str] | None = None,
        refused: Callable[[Response], bool] | None = None,
    ) -> tuple[Response, Request]:
        """Solve the page's challenge and send its form (with `extra` fields); `refused` tells from the
        answer page whether the CAPTCHA was wrong, when the form does more than the CAPTCHA (a login)."""
        assert isinstance(response, TextResponse)
        challenge, solution, form = await self.answer(request, response, rule, attempt)
        values = {**(extra or {}), **answer_fields(rule, solution)}
        step = self.internal(
            request, form.action, cls=FormRequest, formdata=filled(form.fields, values), method=form.method
        )
        after, sent = await self.download(step)
        if refused is not None:
            correct = not refused(after)
        else:  # the same challenge form again: the answer was refused (and a new challenge issued)
            correct = not (isinstance(after, TextResponse) and read_challenge(rule, after) is not None)
        self.inc(f"dnm/captcha/{'solved' if correct else 'refused'}")
        request.meta["dnm_captcha_refused"] = 0 if correct else request.meta.get("dnm_captcha_refused", 0) + 1
        self.load_solver().report(challenge, solution, correct)
        return after, sent

    # -- login ---------------------------------------------------------------------------------------

    def account_of(self, request: Request) -> Any:
        pool = getattr(self.crawler.spider, "accounts", None)
        return pool.get(request.meta.get("dnm_account")) if pool is not None else None

    def switch_account(self, request: Request) -> None:
        pool = self.crawler.spider.accounts  # type: ignore[union-attr]
        account = pool.for_url(request.url)
        if account is None:
            raise BarrierUnpassed("login", "every account of this market was refused")
        request.meta["dnm_account"] = account.label
        request.meta["cookiejar"] = CircuitManager.base(self.market, account.label)

    def captcha_refused(self, after: Response) -> bool:
        """After a login with a CAPTCHA: the form is back and its error is about the CAPTCHA (a wrong
        password or a banned account says something else, and is no fault of the solver)."""
        rule = self.profile.login
        if rule is None or not isinstance(after, TextResponse) or read_login_form(rule, after) is None:
            return False
        message = field_text(rule.failed, after) if rule.failed is not None else after.text
        return bool(re.search(r"(?i)captcha", message))

    async def log_in(
        self, request: Request, response: Response, steps: Counter[str]
    ) -> tuple[Response, Request]:
        rule = self.profile.login
        if rule is None:
            raise BarrierUnpassed(
                "login", "the market asks for a login and its profile has no 'login' section"
            )
        account = self.account_of(request)
        if account is None:
            raise BarrierUnpassed(
                "login",
                f"the market asks for a login and no account is configured for {self.market} (docs/accounts)",
            )
        pool = self.crawler.spider.accounts  # type: ignore[union-attr]
        if account.label in pool.retired:
            # Sent before its account was refused: fetch it again as an account that still works
            # (which may well be logged in already).
            self.switch_account(request)
            return await self.fetch(request, self.target_of(request))
        form = read_login_form(rule, response) if isinstance(response, TextResponse) else None
        if form is None:
            # A logged-out view of a content page: go to the login form itself.
            return await self.fetch(request, urljoin(response.url, rule.url))
        if form.method != "POST":
            raise BarrierUnpassed(
                "login", f"the login form would send the credentials in its URL ({form.method})"
            )
        values = {form.username: account.username, form.password: account.password}
        if (
            rule.challenge is not None
            and isinstance(response, TextResponse)
            and read_challenge(rule.challenge, response) is not None
        ):
            after, sent = await self.submit_challenge(
                request, response, rule.challenge, steps[Kind.LOGIN], values, refused=self.captcha_refused
            )
        else:
            step = self.internal(
                request,
                form.action,
                cls=FormRequest,
                formdata=filled(form.fields, values),
                method=form.method,
            )
            after, sent = await self.download(step)
        self.inc("dnm/login/attempts")
        if isinstance(after, TextResponse) and read_login_form(rule, after) is not None:
            message = field_text(rule.failed, after) if rule.failed is not None else ""
            self.inc("dnm/login/refused")
            failures = request.meta["dnm_login_failures"] = request.meta.get("dnm_login_failures", 0) + 1
            if (rule.banned is not None and rule.banned.search(message)) or failures >= self.login_attempts:
                if pool.retire(account, message or "login refused"):
                    self.inc("dnm/login/accounts_retired")
                request.meta["dnm_login_failures"] = 0
                self.switch_account(request)
                return await self.fetch(request, self.target_of(request))
            logger.info("login of %s refused (%s); trying again", account.label, message or "no message")
        elif after.status < 400:
            self.inc("dnm/login/succeeded")
            logger.info("logged in to %s as %s", self.market, account.label)
        return after, sent
