"""The page a person answers CAPTCHAs on: HTML, style and script of the human solver's local web page.

Everything a market controls (page URL, prompt, image) is hostile: text is HTML-escaped, URLs are
shown as text (never links, so a click cannot leave through a clearnet browser) without user info
or query string, and an image is served only when its bytes are a raster format the browser shows
safely (no SVG). The page loads nothing from outside: its style and script are served by the same
server and the Content-Security-Policy forbids anything else.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit, urlunsplit

from dnm.captcha.base import KIND_CLOCK, TEXT_KINDS, CaptchaChallenge

# Sent with every response of the human solver's server.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "Cache-Control": "no-store",
}

# Magic bytes of the raster formats a browser displays without running anything.
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

# Status lines after a form post: the redirect carries only one of these keys, never text.
MESSAGES: dict[str, str] = {
    "answered": "Answer sent to the crawler.",
    "skipped": "Challenge skipped.",
    "gone": "That challenge was no longer waiting (answered elsewhere, timed out or the crawl ended).",
    "empty": "Empty answer ignored: type the answer, or press Skip.",
    "invalid": "That is not a valid answer for this challenge.",
}


@dataclass(frozen=True)
class WaitingView:
    """A pending challenge as the page shows it."""

    key: str
    challenge: CaptchaChallenge
    seconds_left: float
    since: float  # wall-clock time it started waiting (shown only)


@dataclass(frozen=True)
class ResultView:
    """The market's verdict on an earlier answer."""

    market: str
    kind: str
    answer: str
    correct: bool


def sniff_image_type(data: bytes | None) -> str | None:
    """The MIME type the image's own bytes prove (PNG, JPEG, GIF, WebP), or None: claims are not trusted."""
    if not data:
        return None
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def display_url(url: str) -> str:
    """The page URL as shown to a person: no user:password, query or fragment (they may hold session ids)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    if not parts.scheme or not host:
        return "(unparsable URL)"
    netloc = f"{host}:{port}" if port else host
    shown = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
    if parts.query or parts.fragment:
        shown += " (query hidden)"
    return shown


def printable(text: str, limit: int = 500) -> str:
    """Text without control characters (no terminal escapes from a hostile market), cut to `limit`."""
    cleaned = "".join(c if c.isprintable() else " " for c in text).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def kind_label(kind: str) -> str:
    """What a person has to do for a challenge kind."""
    if kind == KIND_CLOCK:
        return "read the clock"
    if kind in TEXT_KINDS:
        return "type the characters"
    return f"answer the {kind} challenge"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _answer_inputs(view: WaitingView, focus: bool) -> str:
    key = escape(view.key)
    autofocus = " autofocus" if focus else ""
    if view.challenge.kind == KIND_CLOCK:
        hours = "".join(f'<option value="{h}">{h}</option>' for h in range(1, 13))
        minutes = "".join(f'<option value="{m:02d}">{m:02d}</option>' for m in range(60))
        return (
            f'<label for="h-{key}">Hour</label> '
            f'<select id="h-{key}" name="hour" required{autofocus}>'
            f'<option value="">--</option>{hours}</select> '
            f'<span aria-hidden="true">:</span> '
            f'<label for="m-{key}">Minute</label> '
            f'<select id="m-{key}" name="minute" required><option value="">--</option>{minutes}</select>'
        )
    return (
        f'<label for="a-{key}">Answer</label> '
        f'<input id="a-{key}" name="answer" type="text" required maxlength="64" autocomplete="off" '
        f'autocapitalize="off" spellcheck="false"{autofocus}>'
    )


def _challenge_html(view: WaitingView, token: str, focus: bool) -> str:
    challenge = view.challenge
    key = escape(view.key)
    market = escape(printable(challenge.market, 80))
    attempt = f"{challenge.attempt} (the previous answer was wrong)" if challenge.attempt > 1 else "1"
    if sniff_image_type(challenge.image):
        image = (
            f'<img class="captcha" src="/image/{key}?t={escape(token)}" alt="CAPTCHA image from {market}">'
        )
    elif challenge.image:
        image = '<p class="noimage">The image is not in a format this page shows (PNG, JPEG, GIF, WebP).</p>'
    else:
        image = '<p class="noimage">No image was captured for this challenge.</p>'
    prompt = (
        f'<p class="prompt">{escape(printable(challenge.prompt))}</p>' if challenge.prompt.strip() else ""
    )
    started = time.strftime("%H:%M:%S", time.localtime(view.since))
    return f"""
<section class="challenge" id="c-{key}" data-key="{key}">
  <h2>{market} <span class="kind">{escape(kind_label(challenge.kind))}</span></h2>
  <dl>
    <dt>Page</dt><dd><code class="url">{escape(display_url(challenge.page_url))}</code></dd>
    <dt>Attempt</dt><dd>{escape(attempt)}</dd>
    <dt>Waiting</dt><dd>since {started}, gives up in
      <span class="left" data-left="{int(view.seconds_left)}">{_duration(view.seconds_left)}</span></dd>
  </dl>
  {prompt}
  {image}
  <form method="post" action="/answer?t={escape(token)}">
    <input type="hidden" name="id" value="{key}">
    {_answer_inputs(view, focus)}
    <button type="submit" name="action" value="answer">Answer</button>
    <button type="submit" name="action" value="skip" formnovalidate class="skip">Skip</button>
  </form>
</section>"""


def render_page(
    token: str,
    version: int,
    waiting: Sequence[WaitingView],
    recent: Sequence[ResultView],
    message: str | None = None,
) -> str:
    """The whole page: waiting challenges (the first one focused), or "no challenge waiting"."""
    t = escape(token)
    if waiting:
        body = "".join(_challenge_html(view, token, focus=i == 0) for i, view in enumerate(waiting))
        title = f"({len(waiting)}) CAPTCHA waiting"
    else:
        body = '<p class="idle">No challenge waiting. This page updates by itself when one arrives.</p>'
        title = "No CAPTCHA waiting"
    status = f'<p class="status" role="status">{escape(MESSAGES[message])}</p>' if message in MESSAGES else ""
    results = ""
    if recent:
        items = "".join(
            f'<li class="{"right" if r.correct else "wrong"}">{escape(printable(r.market, 80))}: '
            f"<code>{escape(printable(r.answer, 80))}</code> was {'right' if r.correct else 'wrong'}</li>"
            for r in reversed(recent)
        )
        results = f'<section class="recent"><h2>Latest verdicts</h2><ul>{items}</ul></section>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · dnm-archive</title>
<link rel="stylesheet" href="/app.css?t={t}">
<script src="/app.js?t={t}" defer></script>
</head>
<body data-version="{version}" data-state="/state?t={t}" data-home="/?t={t}">
<header>
  <h1>dnm-archive: CAPTCHAs</h1>
  {status}
  <p class="notice" role="status" hidden></p>
</header>
<main>{body}
</main>
{results}
<footer>Enter sends an answer; Skip gives the challenge up. Only this computer can open this page:
keep its address private. Images stay in the crawler's memory.</footer>
</body>
</html>
"""


APP_CSS = """
:root { color-scheme: light dark; --accent: #2457a6; --muted: #666; }
body { font: 16px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 1.5rem auto; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
.kind { font-weight: normal; color: var(--muted); margin-left: .5rem; }
.challenge { border: 2px solid var(--accent); border-radius: 8px; padding: 1rem; margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0 0 .75rem; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.prompt { font-style: italic; overflow-wrap: anywhere; }
/* Market captchas are small (160 px): shown larger so the characters are readable. */
img.captcha { display: block; min-width: 320px; max-width: 100%; height: auto; margin: .5rem 0 1rem;
  background: #fff; border: 1px solid #999; }
form { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; }
input, select, button { font: inherit; padding: .35rem .6rem; }
input[name=answer] { font-family: ui-monospace, monospace; letter-spacing: .1em; min-width: 12rem; }
button { cursor: pointer; border-radius: 4px; border: 1px solid var(--accent); }
button[value=answer] { background: var(--accent); color: #fff; }
button.skip { background: transparent; color: inherit; }
:focus-visible { outline: 3px solid orange; outline-offset: 2px; }
.status, .notice { background: #fff6d5; color: #222; padding: .4rem .7rem; border-radius: 4px; }
.idle { font-size: 1.1rem; color: var(--muted); padding: 2rem 0; }
.recent li.wrong { color: #b00020; }
.recent li.right { color: #1b7a2e; }
footer { margin-top: 2rem; color: var(--muted); font-size: .9rem; }
"""

# Polls /state and reloads when the list changes, unless the person is in the middle of an answer.
APP_JS = """
"use strict";
(function () {
  const body = document.body;
  const notice = document.querySelector(".notice");
  let version = body.dataset.version;

  function typing() {
    return Array.from(document.querySelectorAll("input[name=answer], select")).some((el) => el.value !== "");
  }

  function show(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  async function poll() {
    try {
      const response = await fetch(body.dataset.state, { cache: "no-store" });
      if (!response.ok) {
        show("The crawler refused this page (" + response.status + "): open the address it logged.");
        return;
      }
      const state = await response.json();
      if (String(state.version) !== version) {
        if (!typing()) {
          window.location.replace(body.dataset.home);
          return;
        }
        show("The list of challenges changed: it will update after you answer or skip.");
      }
    } catch (error) {
      show("The crawler is not answering (has the crawl ended?). Retrying…");
    }
    window.setTimeout(poll, 1500);
  }

  // Enter on a select (the clock's hour and minute) submits like Enter in a text field.
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.key === "Enter" && target instanceof HTMLSelectElement && target.form) {
      event.preventDefault();
      target.form.requestSubmit(target.form.querySelector("button[value=answer]"));
    }
  });

  window.setInterval(() => {
    for (const el of document.querySelectorAll(".left")) {
      const left = Math.max(0, Number(el.dataset.left) - 1);
      el.dataset.left = String(left);
      const seconds = String(left % 60).padStart(2, "0");
      el.textContent = left >= 60 ? Math.floor(left / 60) + " min " + seconds + " s" : left + " s";
    }
  }, 1000);

  window.setTimeout(poll, 1500);
})();
"""
