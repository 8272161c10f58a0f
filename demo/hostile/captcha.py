"""The demo market's CAPTCHAs: challenge ids, their answers, their PNG images, and the issued-challenge store.

Two kinds (docs/hostile-demo.md, "Challenges"): `image`, a distorted 4-6 character text drawn by the
`captcha` library and answered in `input[name=captcha]`; `clock`, an analogue clock face drawn with
Pillow and answered in `select[name=hour]` (1..12) and `select[name=minute]` (00..59).

A challenge id (`cid`) is 20 opaque hex digits; the kind is folded into the lowest bit of its first
digit, so `answer(seed, market, cid)` is a pure function of the id. That function is the demo's side
channel for the demo solver; a real market keeps its answers to itself.
"""

from __future__ import annotations

import io
import math
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import captcha.image
from captcha.image import ImageCaptcha
from PIL import Image, ImageDraw, ImageFilter

from demo.rng import rng

KINDS = ("image", "clock")
IMAGE_SIZE = (160, 60)  # width, height of a text challenge
CLOCK_SIZE = (160, 160)  # width, height of a clock face
# No 0/O, 1/I/L, 5/S, 2/Z: the text has to be readable by the people the market lets in.
ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
CID_PATTERN = re.compile(r"[0-9a-f]{20}")


def new_cid(seed: int, market: str, kind: str, number: int) -> str:
    """The id of the `number`-th challenge a market issues, of the given kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown challenge kind {kind!r}: use one of {KINDS}")
    raw = rng(seed, market, "cid", number).randbytes(10).hex()
    first = (int(raw[0], 16) & ~1) | KINDS.index(kind)
    return f"{first:x}{raw[1:]}"


def is_cid(cid: str) -> bool:
    """True if `cid` has the shape of a challenge id."""
    return CID_PATTERN.fullmatch(cid) is not None


def kind_of(cid: str) -> str:
    """The kind ("image" or "clock") of a challenge id."""
    if not is_cid(cid):
        raise ValueError(f"not a challenge id: {cid!r}")
    return KINDS[int(cid[0], 16) & 1]


def _clock_time(seed: int, market: str, cid: str) -> tuple[int, int]:
    r = rng(seed, market, "captcha", cid)
    return r.randint(1, 12), r.randrange(60)


def answer(seed: int, market: str, cid: str) -> str:
    """The answer to a challenge: its text for images, "H:MM" (12-hour) for clocks."""
    if kind_of(cid) == "clock":
        hour, minute = _clock_time(seed, market, cid)
        return f"{hour}:{minute:02d}"
    r = rng(seed, market, "captcha", cid)
    return "".join(r.choices(ALPHABET, k=r.randint(4, 6)))


def check(seed: int, market: str, cid: str, form: Mapping[str, str]) -> bool:
    """True if the submitted form answers the challenge (text case-insensitive, spaces ignored)."""
    if not is_cid(cid):
        return False
    if kind_of(cid) == "clock":
        hour, minute = (form.get("hour") or "").strip(), (form.get("minute") or "").strip()
        if not (hour.isdigit() and minute.isdigit()):
            return False
        return f"{int(hour)}:{int(minute):02d}" == answer(seed, market, cid)
    given = "".join((form.get("captcha") or "").split()).upper()
    return given == answer(seed, market, cid)


class _SeededSecrets:
    """Stands in for the `secrets` module inside `captcha.image`, drawing from a seeded stream."""

    def __init__(self, r: random.Random) -> None:
        self._r = r

    def randbelow(self, n: int) -> int:
        """Like secrets.randbelow."""
        return self._r.randrange(n)

    def randbits(self, k: int) -> int:
        """Like secrets.randbits."""
        return self._r.getrandbits(k)

    def choice(self, seq: Sequence[object]) -> object:
        """Like secrets.choice."""
        return self._r.choice(seq)


# The captcha library draws its distortions from `secrets`; swapping that module for a seeded stream
# (one render at a time) makes the same challenge render to the same bytes.
_RENDER_LOCK = threading.Lock()


def _text_png(seed: int, market: str, cid: str) -> bytes:
    r = rng(seed, market, "captcha-image", cid)
    background = (r.randint(238, 255), r.randint(238, 255), r.randint(238, 255))
    ink = (r.randint(10, 150), r.randint(10, 150), r.randint(10, 150), 255)
    generator = ImageCaptcha(width=IMAGE_SIZE[0], height=IMAGE_SIZE[1], font_sizes=(38, 42, 46))
    with _RENDER_LOCK:
        real = captcha.image.secrets
        captcha.image.secrets = _SeededSecrets(r)  # type: ignore[assignment]
        try:
            image = generator.generate_image(answer(seed, market, cid), bg_color=background, fg_color=ink)
        finally:
            captcha.image.secrets = real
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _clock_png(seed: int, market: str, cid: str) -> bytes:
    hour, minute = _clock_time(seed, market, cid)
    r = rng(seed, market, "captcha-clock", cid)
    width, height = CLOCK_SIZE
    image = Image.new("RGB", CLOCK_SIZE, (r.randint(225, 250), r.randint(225, 250), r.randint(225, 250)))
    draw = ImageDraw.Draw(image)
    # Speckle behind the face, as clock captchas do to spoil template matching.
    for _ in range(180):
        x, y = r.randrange(width), r.randrange(height)
        shade = r.randint(120, 210)
        draw.point((x, y), fill=(shade, shade, shade))
    cx, cy, radius = width / 2, height / 2, min(width, height) / 2 - 8
    ink = (r.randint(0, 60), r.randint(0, 60), r.randint(0, 60))
    draw.ellipse(
        (cx - radius, cy - radius, cx + radius, cy + radius), fill=(252, 252, 248), outline=ink, width=3
    )

    def point(angle: float, length: float) -> tuple[float, float]:
        # Angles in degrees clockwise from 12 o'clock.
        rad = math.radians(angle)
        return cx + length * math.sin(rad), cy - length * math.cos(rad)

    for tick in range(60):
        major = tick % 5 == 0
        inner = radius * (0.80 if major else 0.90)
        draw.line((point(tick * 6, inner), point(tick * 6, radius - 3)), fill=ink, width=4 if major else 1)
    hour_angle = (hour % 12 + minute / 60) * 30
    draw.line(((cx, cy), point(hour_angle, radius * 0.50)), fill=ink, width=7)
    draw.line(((cx, cy), point(minute * 6, radius * 0.82)), fill=ink, width=3)
    draw.ellipse((cx - 5, cy - 5, cx + 5, cy + 5), fill=ink)
    image = image.filter(ImageFilter.SMOOTH)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@lru_cache(maxsize=256)
def render_png(seed: int, market: str, cid: str) -> bytes:
    """The PNG image of a challenge: distorted text or a clock face."""
    if kind_of(cid) == "clock":
        return _clock_png(seed, market, cid)
    return _text_png(seed, market, cid)


class Challenges:
    """The challenges a market has issued and when: enough to expire them and to accept each answer once.

    Thread-safe; keeps at most `capacity` challenges, dropping the oldest first, so a crawler that
    never answers cannot grow the server's memory.
    """

    def __init__(
        self, seed: int, market: str, clock: Callable[[], float] = time.time, capacity: int = 10_000
    ) -> None:
        self.seed, self.market, self.clock, self.capacity = seed, market, clock, capacity
        self._lock = threading.Lock()
        self._issued: OrderedDict[str, float] = OrderedDict()
        self._count = 0

    def issue(self, kind: str) -> str:
        """A new challenge of this kind; returns its id."""
        with self._lock:
            self._count += 1
            cid = new_cid(self.seed, self.market, kind, self._count)
            self._issued[cid] = self.clock()
            while len(self._issued) > self.capacity:
                self._issued.popitem(last=False)
        return cid

    def live(self, cid: str, ttl: float) -> bool:
        """True if the challenge was issued here and has not expired (its image may be served)."""
        with self._lock:
            issued = self._issued.get(cid)
        return issued is not None and self.clock() - issued <= ttl

    def solve(self, cid: str, ttl: float, form: Mapping[str, str]) -> bool:
        """Check an answer; the challenge is used up whether the answer is right or not."""
        with self._lock:
            issued = self._issued.pop(cid, None)
        if issued is None or self.clock() - issued > ttl:
            return False
        return check(self.seed, self.market, cid, form)
