"""Bad input, property by property: whatever a page holds, the reading path ends in values or counted errors.

The targets are the fuzzers' own (fuzz/targets.py), driven here by hypothesis with modest example counts
(the 100,000-input runs are `python -m fuzz all`, docs/reliability.md); the last test runs every atheris
harness for a few hundred inputs so that they cannot rot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnm.extraction import extract_records
from dnm.normalization import context_for, normalize_records
from dnm.normalize import (
    NormalizationError,
    clean_text,
    clean_vendor_name,
    parse_date,
    parse_decimal,
    parse_int,
    parse_price,
    parse_when,
)
from fuzz.corpus import HOSTILE
from fuzz.targets import (
    TARGETS,
    response_of,
    target_barriers,
    target_extract,
    target_normalize_dates,
    target_normalize_prices,
    target_records,
)
from fuzz.targets import profiles as demo_profiles

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 14, 15, tzinfo=UTC)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

tags = st.sampled_from(["div", "span", "table", "tr", "td", "p", "a", "pre", "h1", "label", "form", "b"])
classes = st.sampled_from(["offer", "title", "tabularDetails", "username", "price", "card", "x"])
words = st.sampled_from([*HOSTILE, "Price", "Vendor", "1,234.50 USD", "Ships to", "Worldwide", "3d", "&amp;"])


@st.composite
def markup(draw: st.DrawFn, depth: int = 0) -> str:
    """Malformed HTML: random tags, unclosed or stray closing tags, hostile text between."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        tag, cls = draw(tags), draw(classes)
        inner = draw(markup(depth + 1)) if depth < 4 and draw(st.booleans()) else draw(words)
        close = draw(st.sampled_from([f"</{tag}>", "", "</div></table>", "<"]))
        parts.append(f"<{tag} class='{cls}'>{inner}{close}")
    return "".join(parts)


paths = st.sampled_from(["/", "/listing/12", "/vendor/x", "/category/drugs", "/c/100/1", "/l/7", "/v/a"])


@FAST
@given(
    path=paths, html=markup(), encoding=st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252", "koi8-r"])
)
def test_malformed_html_in_any_encoding_extracts_without_raising(path: str, html: str, encoding: str) -> None:
    # The page says utf-8 whatever it is encoded in: a lying charset is how mojibake reaches markets.
    body = f"<html><head><meta charset='utf-8'></head><body>{html}</body></html>".encode(encoding, "replace")
    target_extract(path.encode() + b"\n" + body)


@FAST
@given(path=paths, body=st.binary(max_size=2000))
def test_arbitrary_bytes_extract_without_raising(path: str, body: bytes) -> None:
    target_extract(path.encode() + b"\n" + body)


@pytest.mark.parametrize("depth", [10_000, 50_000])
def test_deeply_nested_markup_is_read_to_lxmls_depth_limit_and_never_raises(depth: int) -> None:
    body = (
        b"<html><body>"
        + b"<div class='offer'>" * depth
        + b"<div class='title'>deep</div>"
        + b"</div>" * depth
    )
    target_extract(b"/listing/1\n" + body)
    # libxml2 stops nesting at its depth limit; what lies deeper is not read, so a required field there
    # becomes the record's counted "required field not found" error rather than a crash.
    profile = demo_profiles()[0]
    url = "http://127.0.0.1:8401/listing/1"
    records = extract_records(profile.page("listing"), response_of(url, body).selector, url)
    assert records and all("title" not in r.fields for r in records)
    assert any("listing.title: required field not found" in r.errors for r in records)


def test_a_page_of_megabytes_extracts_without_raising() -> None:
    row = b"<tr><td>Price</td><td>1,234.50 USD</td><td>\xe2\x80\xae<script>x</script></td></tr>"
    body = b"<html><body><div class='offer'><div class='title'>t</div>" + b"<table>" + row * 70_000
    assert len(body) > 5_000_000
    target_extract(b"/listing/1\n" + body)


def test_mojibake_and_broken_utf8_are_kept_as_shown() -> None:
    """Bytes that do not decode become U+FFFD; text already mojibake'd is kept as the page shows it."""
    profile = demo_profiles()[0]
    url = "http://127.0.0.1:8401/listing/1"
    body = "<meta charset='utf-8'><div class='offer'><div class='title'>Ã©clair \xff</div></div>".encode()
    body = body.replace(b"\xc3\xbf", b"\xff\xfe")  # bytes that are not UTF-8 at all
    records = extract_records(profile.page("listing"), response_of(url, body).selector, url)
    assert records[0].fields["title"] == "Ã©clair \ufffd\ufffd"


# -- numbers and prices ---------------------------------------------------------------------------------

ABSURD_NUMBERS = [
    "1e308",
    "1E+308",
    "NaN",
    "nan",
    "Infinity",
    "inf",
    "-0",
    "−50",
    "9" * 100,
    "0." + "0" * 60 + "1",
]


@pytest.mark.parametrize("number", ABSURD_NUMBERS)
@pytest.mark.parametrize("template", ["{} USD", "$ {}", "{}", "{} BTC / g"])
def test_absurd_numbers_are_finite_non_negative_prices_or_counted_errors(number: str, template: str) -> None:
    text = template.format(number)
    try:
        price = parse_price(text, default_currency="USD")
    except NormalizationError:
        return
    assert price.amount.is_finite() and price.amount >= 0, (text, price)
    assert len(price.amount.as_tuple().digits) <= 40


@pytest.mark.parametrize("number", ABSURD_NUMBERS)
def test_absurd_numbers_as_integers_and_decimals(number: str) -> None:
    for parse in (parse_int, parse_decimal):
        try:
            value = parse(number)
        except NormalizationError:
            continue
        assert Decimal(value).is_finite() and abs(Decimal(value)) < Decimal(10) ** 40, (number, value)


@FAST
@given(text=st.text(max_size=120) | st.sampled_from(HOSTILE))
def test_prices_of_any_text(text: str) -> None:
    target_normalize_prices(b"\x00" + text.encode("utf-8", "surrogatepass"))


# -- dates ---------------------------------------------------------------------------------------------

ABSURD_DATES = [
    "0000-01-01",
    "0000-00-00",
    "99999-12-31",
    "30/02/2020",
    "Feb 30, 2020",
    "31 April 2021",
    "2020-02-30 12:00",
    "2021-01-01 25:00",
    "2021-01-01 23:60:61",
    "2021-01-01 12:00 +99:00",
    "1999-12-31",
    "3000-01-01",
    "9999-12-31 23:59:59 UTC",
    "99999999999999999999 years ago",
    "in 3 days",
]


@pytest.mark.parametrize("text", ABSURD_DATES)
def test_absurd_dates_are_counted_errors(text: str) -> None:
    with pytest.raises(NormalizationError):
        parse_when(text, NOW)
    if "ago" not in text and "in " not in text:
        with pytest.raises(NormalizationError):
            parse_date(text, now=NOW)


@FAST
@given(data=st.binary(max_size=80))
def test_dates_against_every_clock(data: bytes) -> None:
    target_normalize_dates(data)


# -- hostile text --------------------------------------------------------------------------------------

CONTROL = "".join(map(chr, [*range(0, 9), 11, 12, *range(14, 32), 127]))


@FAST
@given(text=st.text(alphabet=CONTROL + "\u202e\u202d\u2066\u2067\u2068\u2069\u200f<>'\";=+-@ab", max_size=40))
def test_control_characters_and_bidi_overrides_are_kept_verbatim(text: str) -> None:
    """Clean-up only collapses whitespace and drops zero-width characters: nothing else is altered."""
    cleaned = clean_text(text)
    assert [c for c in cleaned if not c.isspace()] == [c for c in text if not c.isspace()]
    try:
        name = clean_vendor_name("Sold by " + text + "evil\u202ename")
    except NormalizationError:
        return
    assert "evil\u202ename" in name


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_in_a_listing_is_kept_verbatim_through_normalization(hostile: str) -> None:
    profile = demo_profiles()[0]
    page = profile.page("listing")
    url = "http://127.0.0.1:8401/listing/12"
    html = (
        "<div class='offer'><div class='title'>{0}</div></div><div id='offerDescription'><pre>{0}</pre></div>"
    ).format(hostile.replace("&", "&amp;").replace("<", "&lt;"))
    raw = extract_records(page, response_of(url, html.encode()).selector, url)
    (record,) = normalize_records(page, raw, context_for(profile, NOW), profile)
    # An HTML tree cannot hold NUL: lxml drops it from what extraction reads (the raw capture keeps it).
    expected = clean_text(hostile.replace("\x00", ""))
    assert record.values.get("title") == (expected or None)
    assert record.values.get("description") == (expected or None)


@FAST
@given(data=st.binary(max_size=600))
def test_records_and_barriers_of_any_bytes(data: bytes) -> None:
    target_records(data)
    target_barriers(data)


# -- the harnesses themselves --------------------------------------------------------------------------


def test_every_atheris_harness_runs_a_few_hundred_inputs(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "fuzz", "all", "--runs", "300", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["target"] for r in results} == set(TARGETS)
    assert all(r["runs"] >= 300 and r["crashes"] == 0 for r in results), results
