"""Seed inputs for the fuzz targets: the demo markets' real pages and fields, and hostile strings.

Pages are rendered with the demo app's test client (no server), following the profile's own link rules
from the home page, and the hostile demo's first answers (its gate pages) are taken as barrier seeds.
Field seeds are the raw strings extraction reads from those pages. Every seed is written in its target's
input layout (`fuzz.targets`).
"""

from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path

from demo.app import create_app
from demo.skins import hostility_for
from dnm.extraction import extract_links, extract_records
from fuzz.targets import HOST, ITEM, ROW, profiles, record_rules, response_of

DAY = 3
PAGES_PER_MARKET = 40

# Text no archive may execute, run or let reorder what is around it; stored verbatim, shown escaped.
HOSTILE = (
    "<script>alert(document.cookie)</script>",
    '"><img src=x onerror=alert(1)>',
    "</td></tr></table><script>fetch('//x')</script>",
    "'; DROP TABLE vendors; --",
    "1 OR 1=1; SELECT * FROM listings WHERE '' = '",
    "Robert'); DELETE FROM pages;--",
    '=HYPERLINK("http://x","click")',
    "=cmd|' /C calc'!A0",
    "+SUM(1,1)",
    "-2+3",
    "@SUM(A1)",
    "nul\x00byte",
    "bell\x07 escape\x1b[31m red \x1b[0m",
    "\u202egnp.exe",
    "vendor\u202eevil\u202c name",
    "\u2066isolate\u2069 \u200f rtl mark",
    "Ã©Ã¨ Ã¼ber â‚¬ 12,50",  # UTF-8 read as cp1252
    "\ufffd\ufffd 50 \ufffd",
    "ｔｅｓｔ　ＵＳＤ　１２",
    "𝟏𝟐𝟑 $",
    "١٢٣٫٤٥ USD",
    "1e308 USD",
    "NaN BTC",
    "-50 USD",
    "9" * 100 + " USD",
    "Infinity €",
    "0000-00-00",
    "31/02/2020",
    "30 February 2020",
    "99999-12-31",
    "9999-12-31 23:59:59 UTC",
    "0001-01-01 00:00:00 UTC",
    "2020-13-45 25:61:61 +99:99",
    "99999999999999 days ago",
    "\r\n\t\v\f",
)


def render_pages(market: str) -> list[tuple[str, bytes]]:
    """(path, body) of the market's pages reached from its home page by the profile's link rules."""
    profile = next(p for p in profiles() if p.market == market)
    client = create_app(market, DAY).test_client()
    seen, queue, pages = {"/"}, deque([("/", "home")]), []
    while queue and len(pages) < PAGES_PER_MARKET:
        path, page_type = queue.popleft()
        body = client.get(path).data
        pages.append((path, body))
        url = HOST + path
        response = response_of(url, body)
        for link, to in extract_links(profile.page(page_type), response.selector, url):
            next_path = link[len(HOST) :]
            if next_path not in seen:
                seen.add(next_path)
                queue.append((next_path, to))
    return pages


def gate_pages(market: str) -> list[bytes]:
    """The hostile demo's first answers to a fresh visitor: its wait, queue, CAPTCHA and login pages."""
    client = create_app(market, DAY, hostility=hostility_for(market)).test_client()
    return [client.get(path).data for path in ("/", "/login", "/", "/")]


def seeds() -> dict[str, list[bytes]]:
    """Seed inputs per target name."""
    pages = [page for market in ("hollowmere", "copperline") for page in render_pages(market)]
    page_inputs = [path.encode() + b"\n" + body for path, body in pages]
    strings = sorted(set(_field_strings(pages)) | set(HOSTILE))
    hostile_pages = [
        f"/listing/1\n<html><body><div class='offer'><div class='title'>{s}</div></div></body></html>".encode(
            "utf-8", "surrogatepass"
        )
        for s in HOSTILE
    ]
    text_inputs = [b"\x00" + s.encode("utf-8") for s in strings]
    gates = [body for market in ("hollowmere", "copperline") for body in gate_pages(market)]
    return {
        "extract": page_inputs + hostile_pages,
        "barriers": [b"\x00\n\n" + body for body in gates + [body for _, body in pages[:10]]],
        "records": _record_inputs(pages),
        "normalize_text": text_inputs,
        "normalize_prices": text_inputs,
        "normalize_regions": text_inputs,
        "normalize_dates": [b"\x00" + t for t in text_inputs],
        "normalize_names": text_inputs,
        "normalize_pgp": text_inputs,
    }


def _field_strings(pages: list[tuple[str, bytes]]) -> list[str]:
    """Every raw field string extraction reads from the pages, at most 1,000 distinct."""
    found: dict[str, None] = {}
    for profile in profiles():
        for path, body in pages:
            response = response_of(HOST + path, body)
            for page in profile.pages:
                for raw in extract_records(page, response.selector, HOST + path):
                    for value in raw.fields.values():
                        for item in value if isinstance(value, list) else [value]:
                            if isinstance(item, str):
                                found.setdefault(item[:2000])
                            elif isinstance(item, dict):
                                found.update(dict.fromkeys(v[:2000] for v in item.values()))
    return list(found)[:1000]


def _record_inputs(pages: list[tuple[str, bytes]]) -> list[bytes]:
    """Raw records read from the pages, in the records target's layout (rule index, clock, lines)."""
    inputs: list[bytes] = []
    rules = record_rules()
    for index, (_profile, page, rule) in enumerate(rules):
        for path, body in pages:
            response = response_of(HOST + path, body)
            for raw in extract_records(page, response.selector, HOST + path)[:3]:
                lines = [_encode_value(raw.fields.get(f.name)) for f in rule.fields]
                text = "\n".join(line.replace("\n", " ") for line in lines)
                inputs.append(bytes([index % 256, 0, 0]) + text.encode("utf-8"))
    return inputs[:400]


def _encode_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value and isinstance(value[0], dict):  # type: ignore[index]
        return ROW.join(ITEM.join(str(v) for v in row.values()) for row in value)  # type: ignore[union-attr]
    return ITEM.join(str(v) for v in value)  # type: ignore[union-attr]


def write_seeds(directory: Path, targets: list[str]) -> dict[str, Path]:
    """Write each target's seeds as files named by their SHA-256 under `directory`/<target>."""
    out: dict[str, Path] = {}
    all_seeds = seeds()
    for target in targets:
        folder = directory / target
        folder.mkdir(parents=True, exist_ok=True)
        for data in all_seeds[target]:
            (folder / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
        out[target] = folder
    return out
