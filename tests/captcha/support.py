"""Helpers of the CAPTCHA tests: the browser (skip or fail without it), challenge images, a test solver."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from scrapy.crawler import Crawler

from dnm.captcha.base import KIND_CLOCK, KIND_TEXT, CaptchaChallenge

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> str:
    """Debian's chromium, or skip with the install hint; under CI=true a missing browser fails instead."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"{CHROMIUM} not found: install Debian's chromium package (Playwright never downloads one)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the browser tests must run, not skip)", pytrace=False)
        pytest.skip(reason)
    return str(CHROMIUM)


def text_png(text: str) -> bytes:
    """A PNG of `text` drawn by Pillow (deterministic, unlike the captcha library's noise)."""
    image = Image.new("RGB", (40 + 24 * len(text), 60), "white")
    draw = ImageDraw.Draw(image)
    draw.text((20, 15), text, fill="black", font_size=28)
    for x in range(0, image.width, 9):  # a little interference, as on the markets
        draw.line((x, 0, x + 30, 60), fill=(160, 160, 200))
    return _png(image)


def clock_png(hour: int, minute: int) -> bytes:
    """A PNG of an analogue clock face showing hour:minute."""
    size = 140
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    c = size / 2
    draw.ellipse((5, 5, size - 5, size - 5), outline="black", width=3)
    for angle, length, width in (
        ((hour % 12 + minute / 60) * 30, 0.45, 5),
        (minute * 6, 0.7, 3),
    ):
        rad = math.radians(angle - 90)
        draw.line((c, c, c + math.cos(rad) * c * length, c + math.sin(rad) * c * length), "black", width)
    return _png(image)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of an image, read by Pillow."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def text_challenge(text: str = "K7PQ2", **changes: object) -> CaptchaChallenge:
    """A text challenge from hollowmere's gate, with the image of `text`."""
    fields: dict[str, object] = {
        "market": "hollowmere",
        "kind": KIND_TEXT,
        "page_url": "http://hollowmere.test/ddos?r=/listings",
        "challenge_id": "c0ffee",
        "image": text_png(text),
        "image_type": "image/png",
        "prompt": "Type the characters you see",
    }
    fields.update(changes)
    return CaptchaChallenge(**fields)  # type: ignore[arg-type]


def clock_challenge(hour: int = 3, minute: int = 7, **changes: object) -> CaptchaChallenge:
    """A clock challenge from copperline's login form."""
    fields: dict[str, object] = {
        "market": "copperline",
        "kind": KIND_CLOCK,
        "page_url": "http://copperline.test/login",
        "challenge_id": "beef01",
        "image": clock_png(hour, minute),
        "image_type": "image/png",
        "prompt": "What time does the clock show?",
    }
    fields.update(changes)
    return CaptchaChallenge(**fields)  # type: ignore[arg-type]


class FixedSolver:
    """An automatic solver for the loader tests: answers TEST_CAPTCHA_ANSWER, remembers the verdicts."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.verdicts: list[tuple[str, bool]] = []
        self.closed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FixedSolver:
        return cls(crawler.settings.get("TEST_CAPTCHA_ANSWER", "fixed"))

    async def solve(self, challenge: CaptchaChallenge) -> str | None:
        return self.answer

    def report(self, challenge: CaptchaChallenge, answer: str, correct: bool) -> None:
        self.verdicts.append((answer, correct))

    def close(self) -> None:
        self.closed = True


class PlainSolver:
    """A solver without from_crawler: the loader builds it with no arguments."""

    async def solve(self, challenge: CaptchaChallenge) -> str | None:
        return "plain"

    def report(self, challenge: CaptchaChallenge, answer: str, correct: bool) -> None:
        return None

    def close(self) -> None:
        return None


class NotASolver:
    """Has from_crawler but none of solve/report/close."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NotASolver:
        return cls()
