"""Crashes the fuzzers found, each kept as the input that raised (fixed at its cause, see the asserts)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from scrapy.http import HtmlResponse

from dnm.barriers import read_login_form, retry_after
from dnm.normalize import NormalizationError, parse_when
from dnm.profile import load_profile
from fuzz.targets import target_barriers, target_normalize_dates

END_OF_CALENDAR = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)


def test_a_page_clock_at_the_calendars_end_is_a_counted_error_not_an_overflow() -> None:
    # was: OverflowError from `now + 1 day` in the plausibility check
    assert parse_when("24h", END_OF_CALENDAR).latest == datetime(9999, 12, 30, 23, 59, tzinfo=UTC)
    assert parse_when("2020-01-01", END_OF_CALENDAR).earliest.year == 2020


def test_an_age_rounded_forward_past_the_calendars_end_keeps_its_bounds_ordered() -> None:
    # was: latest (year 5000) before earliest (9999): the forward overflow was clamped to datetime.min
    span = parse_when("0m", END_OF_CALENDAR, rounding="round")
    assert span.earliest <= span.latest
    target_normalize_dates(
        bytes.fromhex("33") + b"\x00" * 9 + b"be3" + b"\x00" * 6 + b":ed \x1b[" + b"\xff" * 14 + b"0m"
    )


@pytest.mark.parametrize("text", ["just now", "yesterday", "today"])
def test_relative_words_against_the_calendars_first_day_raise_normalization_error(text: str) -> None:
    with pytest.raises(NormalizationError):
        parse_when(text, datetime(1, 1, 1, tzinfo=UTC))


def test_retry_after_with_a_superscript_digit_byte_is_ignored() -> None:
    # was: ValueError from float("²"): "²".isdigit() is True
    response = HtmlResponse("http://127.0.0.1/", headers={"Retry-After": b"\xb2"}, body=b"")
    assert retry_after(response) is None
    target_barriers(b"\x00\xb2\n\n<p>x")


def test_a_login_form_whose_input_id_holds_a_quote_is_read() -> None:
    # was: ValueError "XPath error: Invalid predicate": the page's id was pasted into the expression
    body = (
        b'<form id=login><label for="a\'b">Username</label><input id="a\'b" name=u type=text>'
        b"<label for=p>Password</label><input id=p name=p type=password></form>"
    )
    form = read_login_form(load_profile("hollowmere").login, HtmlResponse("http://127.0.0.1/", body=body))
    assert form is not None and (form.username, form.password) == ("u", "p")


def test_a_normalizer_bug_leaves_the_page_stored_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: an exception other than NormalizationError must not drop the page from the crawl."""
    from types import SimpleNamespace

    from scrapy.settings import Settings
    from scrapy.statscollectors import MemoryStatsCollector

    import pipelines.normalization as pipeline_module
    from dnm.extraction import RawRecord
    from dnm.items import PageItem

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a normalizer bug")

    monkeypatch.setattr(pipeline_module, "normalize_records", broken)
    profile = load_profile("hollowmere")
    crawler = SimpleNamespace(spider=SimpleNamespace(profile=profile), settings=Settings())
    crawler.stats = MemoryStatsCollector(crawler)  # type: ignore[arg-type]
    pipeline = pipeline_module.NormalizationPipeline(crawler)  # type: ignore[arg-type]
    pipeline.open_spider()
    item = PageItem(
        url="http://127.0.0.1:8401/listing/1", page_type="listing", status=200, body=b"<h1>x</h1>",
        sha256="0" * 64, fetched_at=datetime(2026, 1, 2, tzinfo=UTC),
        raw_records=[RawRecord(kind="listing", fields={"title": "x"})],
    )  # fmt: skip
    assert pipeline.process_item(item) is item
    assert item.records == [] and "normalization failed: ZeroDivisionError" in item.errors[0]
    assert crawler.stats.get_value("dnm/normalize/errors/crashed") == 1
