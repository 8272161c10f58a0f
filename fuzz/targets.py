"""The fuzz targets: each a function of bytes that runs one part of the reading path and checks its contract.

The contract is the pipeline's: whatever a page holds, extraction returns strings, normalizers return a
value or raise `NormalizationError` (a counted error, never anything else), record normalization keeps
every failure on the record and raises nothing, barrier classification always gives a verdict. Any other
exception escaping a target is a crash. Targets are plain functions so that the atheris harness
(`fuzz.harness`) and the hypothesis tests (tests/fuzz/) drive the same code.

Input layout: the first bytes choose options (profile, page type, encoding, clock), the rest is the text or
page; seeds (`fuzz.corpus`) are written in the same layout, so mutations start from real market pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from scrapy.http import Headers
from scrapy.responsetypes import responsetypes

from dnm.barriers import (
    answer_fields,
    classify_barrier,
    decode_data_uri,
    hidden_classes,
    meta_refresh,
    read_challenge,
    read_login_form,
    retry_after,
)
from dnm.extraction import RawRecord, classify, extract_links, extract_records, read_field
from dnm.normalization import Context, context_for, normalize_record, normalize_records
from dnm.normalize import (
    NormalizationError,
    choice,
    clean_text,
    clean_vendor_name,
    extract_key_blocks,
    fingerprint,
    normalize,
    normalize_fingerprint,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_instant,
    parse_int,
    parse_price,
    parse_prices,
    parse_regions,
    parse_route,
    parse_stock,
    parse_when,
    region_code,
)
from dnm.profile import FieldRule, Profile, load_profile
from dnm.records import Record

MARKETS = ("hollowmere", "copperline")
HOST = "http://127.0.0.1:8401"
NOW = datetime(2026, 3, 14, 15, tzinfo=UTC)
# Clocks a page can set (a market's printed server time becomes the context's now): the ordinary one and
# the calendar's ends, where date arithmetic overflows.
CLOCKS = (
    NOW,
    datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(2009, 1, 1, tzinfo=UTC),
    datetime(2026, 3, 14, 15),  # naive: taken as UTC
)
ENCODINGS = ("utf-8", "latin-1", "utf-16-le", "cp1252")
STATUSES = (200, 200, 403, 429, 500, 503, 404, 302, 0, 999)
# Field separators of the records target: rows of a repeated group, values of a list or a row.
ROW, ITEM = "\x1e", "\x1f"


@cache
def profiles() -> tuple[Profile, ...]:
    """The demo markets' real profiles (config/markets/), loaded once per process."""
    return tuple(load_profile(market) for market in MARKETS)


def decode(data: bytes) -> str:
    """Text from fuzz bytes: the first byte picks an encoding, undecodable bytes become U+FFFD."""
    if not data:
        return ""
    return data[1:].decode(ENCODINGS[data[0] % len(ENCODINGS)], errors="replace")


def _expect_error(call: Callable[[], object]) -> object:
    """Run a normalizer: a value or a NormalizationError; anything else propagates as a crash."""
    try:
        return call()
    except NormalizationError:
        return None


# -- pages ---------------------------------------------------------------------------------------------


def response_of(url: str, body: bytes, status: int = 200, headers: dict[str, Any] | None = None) -> Any:
    """The response Scrapy would build for these bytes (its class from the headers, its encoding sniffed)."""
    header_map = Headers({"Content-Type": "text/html", **(headers or {})})
    cls = responsetypes.from_args(headers=header_map, url=url, body=body)
    return cls(url=url, status=status, headers=header_map, body=body)


def split_page(data: bytes) -> tuple[str, bytes]:
    """(URL, body): the first line is the path (e.g. `/listing/12`), the rest is the page's bytes."""
    path, _, body = data.partition(b"\n")
    path_text = path.decode("latin-1")[:500]
    return HOST + "/" + path_text.lstrip("/"), body


def target_extract(data: bytes) -> None:
    """A page through each profile's classification, then its page type's records, links and normalization.

    As in a crawl, the page type is the one classification gives (the path line chooses it, the body may
    lose its marker); a page of no type of a profile is only classified by it.
    """
    url, body = split_page(data)
    response = response_of(url, body)
    selector = response.selector
    for profile in profiles():
        page = classify(profile, url, selector)
        if page is None:
            continue
        context = context_for(profile, NOW)
        clock = profile.clock
        if clock is not None and isinstance(shown := read_field(clock, selector, url), str):
            _expect_error(lambda c=clock, s=shown: normalize(c.normalize or "instant", s, now=NOW))
        raw = extract_records(page, selector, url)
        _check_raw(raw)
        for link, to in extract_links(page, selector, url):
            assert link.startswith(HOST) and to, (link, to)
        _check_records(normalize_records(page, raw, context, profile))


def _check_raw(raw: list[RawRecord]) -> None:
    for record in raw:
        for value in record.fields.values():
            assert isinstance(value, str | list), value


def _check_records(records: list[Record]) -> None:
    for record in records:
        assert all(isinstance(error, str) for error in record.errors), record.errors


# -- barriers ------------------------------------------------------------------------------------------


def target_barriers(data: bytes) -> None:
    """A response (status, Retry-After, Content-Type, body) through barrier checks and form reading."""
    status = STATUSES[data[0] % len(STATUSES)] if data else 200
    retry, content_type, body = [*data[1:].split(b"\n", 2), b"", b""][:3]
    headers = {"Retry-After": retry, "Content-Type": content_type}  # raw bytes, as servers send them
    response = response_of(HOST + "/", body, status, {k: v for k, v in headers.items() if v})
    for profile in profiles():
        for logged_in in (False, True):
            classify_barrier(profile, response, logged_in=logged_in)
    meta_refresh(response)
    seconds = retry_after(response)
    assert seconds is None or seconds >= 0, seconds
    if not hasattr(response, "selector"):
        return
    hidden_classes(response.selector)
    for profile in profiles():
        if profile.login is not None:
            read_login_form(profile.login, response)
            if profile.login.challenge is not None:
                _challenge(profile.login.challenge, response)
        for gate in profile.gates:
            if gate.challenge is not None:
                _challenge(gate.challenge, response)


def _challenge(rule: Any, response: Any) -> None:
    form = read_challenge(rule, response)
    if form is not None and form.image_src:
        decode_data_uri(form.image_src)
        answer_fields(rule, form.prompt)


# -- normalizers ---------------------------------------------------------------------------------------


def target_normalize_text(data: bytes) -> None:
    """Whitespace clean-up, integers, decimals, flags, stock counts and choices."""
    text = decode(data)
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned  # idempotent
    for parse in (parse_int, parse_decimal, parse_bool, parse_stock):
        _expect_error(lambda parse=parse: parse(text))
    _expect_error(lambda: choice(text, {"escrow": True, r"finali[sz]e early|\bFE\b": False}, default="other"))


def target_normalize_prices(data: bytes) -> None:
    """Every price in a text, one preferred price, and bare amounts with a default currency."""
    text = decode(data)
    # A number too long to be a price (40+ digits) is a counted error for the whole field.
    for price in _expect_error(lambda: parse_prices(text)) or []:  # type: ignore[attr-defined]
        assert price.amount >= 0 and price.currency, price
    for prefer in ("fiat", "crypto", "first"):
        _expect_error(lambda prefer=prefer: parse_price(text, prefer))
    _expect_error(lambda: parse_price(text, default_currency="USD"))


def target_normalize_regions(data: bytes) -> None:
    """Ship-to lists, routes and single region names."""
    text = decode(data)
    for parse in (parse_regions, parse_route, region_code):
        _expect_error(lambda parse=parse: parse(text))


def target_normalize_dates(data: bytes) -> None:
    """Dates and ages against every clock a page can set, both orders and both roundings."""
    clock = CLOCKS[data[0] % len(CLOCKS)] if data else NOW
    text = decode(data[1:])
    for day_first in (True, False):
        for rounding in ("floor", "round"):
            span = _expect_error(
                lambda d=day_first, r=rounding: parse_when(text, clock, day_first=d, rounding=r)
            )
            if span is not None:
                assert span.earliest <= span.latest, (text, span)  # type: ignore[attr-defined]
        _expect_error(lambda d=day_first: parse_date(text, day_first=d, now=clock))
        _expect_error(lambda d=day_first: parse_instant(text, day_first=d, now=clock))
        _expect_error(lambda d=day_first: parse_instant(text, day_first=d))


def target_normalize_names(data: bytes) -> None:
    """Vendor names among their badges."""
    text = decode(data)
    name = _expect_error(lambda: clean_vendor_name(text))
    assert name is None or (isinstance(name, str) and name.strip()), name


def target_normalize_pgp(data: bytes) -> None:
    """Armoured key blocks, their fingerprints, and printed fingerprints."""
    text = decode(data)
    for block in extract_key_blocks(text):
        found = _expect_error(lambda block=block: fingerprint(block))
        assert found is None or len(found) in (40, 64), found  # type: ignore[arg-type]
    _expect_error(lambda: fingerprint(text))
    _expect_error(lambda: normalize_fingerprint(text))


# -- whole records -------------------------------------------------------------------------------------


@cache
def record_rules() -> tuple[tuple[Profile, Any, Any], ...]:
    """(profile, page rule, record rule) of every record the demo profiles define."""
    return tuple(
        (profile, page, rule) for profile in profiles() for page in profile.pages for rule in page.records
    )


def raw_record_of(rule: Any, text: str) -> RawRecord:
    """A raw record of `rule`'s kind whose fields take the text's lines in order (an empty line: absent)."""
    raw = RawRecord(kind=rule.kind)
    lines = text.split("\n")
    for index, field_rule in enumerate(rule.fields):
        piece = lines[index] if index < len(lines) else ""
        if piece:
            raw.fields[field_rule.name] = _field_value(field_rule, piece)
    return raw


def _field_value(rule: FieldRule, piece: str) -> Any:
    if rule.each:
        names = [sub.name for sub in rule.fields]
        return [dict(zip(names, row.split(ITEM), strict=False)) for row in piece.split(ROW)]
    if rule.all:
        return piece.split(ITEM)
    return piece


def target_records(data: bytes) -> None:
    """Raw records of every kind the profiles define, normalized whole against any clock."""
    if len(data) < 2:
        return
    rules = record_rules()
    profile, _page, rule = rules[data[0] % len(rules)]
    clock = CLOCKS[data[1] % len(CLOCKS)]
    raw = raw_record_of(rule, decode(data[2:]))
    context = Context(clock, profile.day_first, profile.default_currency, profile.relative_rounding)
    record = normalize_record(rule, raw, context, profile)
    _check_records([record])
    assert isinstance(record.storable, bool)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "extract": target_extract,
    "barriers": target_barriers,
    "records": target_records,
    "normalize_text": target_normalize_text,
    "normalize_prices": target_normalize_prices,
    "normalize_regions": target_normalize_regions,
    "normalize_dates": target_normalize_dates,
    "normalize_names": target_normalize_names,
    "normalize_pgp": target_normalize_pgp,
}
# Inputs the size of a large market page for the page targets; a field's worth for the normalizers.
MAX_LEN = {"extract": 1 << 15, "barriers": 1 << 15, "records": 1 << 13}
DEFAULT_MAX_LEN = 4096
