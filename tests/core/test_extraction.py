"""The extraction engine: page classification, field rules, repeated rows, and link following."""

from __future__ import annotations

from pathlib import Path

import pytest
from parsel import Selector

from dnm.extraction import classify, extract_links, extract_records, read_field
from dnm.profile import FieldRule, load_profile

PROFILE = """
market: tiny
version: "1"
mirrors: ["http://tiny.example"]
pages:
  - type: home
    match: {url: '^/$'}
    links:
      - {css: 'a::attr(href)', to: item, regex: '^/item/'}
  - type: banned
    match: {url: '^/item/', css: '.banned'}
  - type: item
    match: {url: '^/item/'}
    records:
      listing:
        fields:
          listing_id: {url: '/item/(?P<value>\\d+)'}
          title: {css: 'h1::text', required: true}
          description: {css: '.desc', join: ' '}
          category: {css: '.crumbs a::text', all: true}
          prices: {css: '.facts', regex: 'Price\\s*:\\s*(.+?)\\s+Stock'}
          stock: {css: '.facts', regex: 'Stock\\s*:\\s*(\\S+)', default: 'Unlimited'}
          shipping_options:
            each: 'table.ship tr'
            fields:
              name: 'td.n'
              price: 'td.p'
      feedback:
        each: '.fb'
        fields:
          vendor_id: {const: 'v1'}
          text: '.t'
"""

PAGE = """<html><body>
<h1>  Fine   <b>ignored</b>Product </h1>
<div class="desc"><p>Line one</p><p>Line&nbsp;two</p></div>
<div class="crumbs"><a>Drugs</a> &gt; <a>Stimulants</a></div>
<div class="facts">Origin : DE Price : USD 1,234.50 Stock : 12 Payment : Escrow</div>
<table class="ship"><tr><td class="n">Standard</td><td class="p">USD 5.00</td></tr>
<tr><td class="n">Express</td><td class="p"></td></tr></table>
<div class="fb"><span class="t">great</span></div><div class="fb"><span class="t"> </span></div>
</body></html>"""


@pytest.fixture
def profile(tmp_path: Path):
    (tmp_path / "tiny.yaml").write_text(PROFILE)
    return load_profile("tiny", tmp_path)


def test_classify_uses_url_and_marker(profile) -> None:
    plain = Selector(text=PAGE)
    assert classify(profile, "http://tiny.example/", plain).name == "home"
    assert classify(profile, "http://tiny.example/item/7", plain).name == "item"
    assert (
        classify(profile, "http://tiny.example/item/7", Selector(text="<p class=banned>x</p>")).name
        == "banned"
    )
    assert classify(profile, "http://tiny.example/elsewhere", plain) is None


def test_fields_read_shown_strings(profile) -> None:
    listing, *feedback = extract_records(
        profile.page("item"), Selector(text=PAGE), "http://tiny.example/item/7"
    )
    assert listing.kind == "listing" and not listing.errors
    assert listing.fields["listing_id"] == "7"
    assert listing.fields["title"] == "Fine"  # ::text yields each text node; the first non-empty one wins
    assert listing.fields["description"] == "Line one Line two"
    assert listing.fields["category"] == ["Drugs", "Stimulants"]
    assert listing.fields["prices"] == "USD 1,234.50"
    assert listing.fields["stock"] == "12"
    assert listing.fields["shipping_options"] == [
        {"name": "Standard", "price": "USD 5.00"},
        {"name": "Express"},
    ]
    assert [f.fields.get("text") for f in feedback] == ["great", None]
    assert feedback[1].errors == []  # text is not marked required in this profile


def test_required_field_missing_is_an_error_not_an_exception(profile) -> None:
    (record, *_) = extract_records(
        profile.page("item"), Selector(text="<p>nothing</p>"), "http://tiny.example/item/8"
    )
    assert record.errors == ["listing.title: required field not found"]
    assert record.fields["stock"] == "Unlimited"  # the default applies when the page shows nothing


def test_links_stay_on_the_mirror(profile) -> None:
    html = """<a href="/item/1">a</a><a href="/item/1#x">dup</a><a href="http://evil.example/item/2">off</a>
    <a href="/about">not an item</a><a href="javascript:alert(1)">js</a><a href="item/3">relative</a>"""
    links = extract_links(profile.page("home"), Selector(text=html), "http://tiny.example/")
    assert links == [("http://tiny.example/item/1", "item"), ("http://tiny.example/item/1", "item")]


def test_element_text_keeps_word_boundaries() -> None:
    rule = FieldRule(name="x", css="td")
    assert read_field(rule, Selector(text="<td>Ships to<br>Germany</td>"), "u") == "Ships to Germany"
