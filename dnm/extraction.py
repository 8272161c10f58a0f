"""Applying a profile's rules to a parsed page: page type, raw field strings, links to follow.

Everything here returns the strings the page shows (whitespace tidied); turning them into typed
values is normalization's job, so that a wrong normalizer never loses what was on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from parsel import Selector, SelectorList

from dnm.normalize.text import clean_text
from dnm.profile import FieldRule, LinkRule, PageRule, Profile

RawValue = str | list[str] | list[dict[str, Any]] | None


@dataclass
class RawRecord:
    """A record as found on the page: field name -> shown string(s), plus what could not be found."""

    kind: str
    fields: dict[str, RawValue] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def classify(profile: Profile, url: str, selector: Selector) -> PageRule | None:
    """The first page type whose url pattern and css marker both match, or None."""
    path = _path_and_query(url)
    for page in profile.pages:
        if page.match_url is not None and not page.match_url.search(path):
            continue
        if page.match_css is not None and not selector.css(page.match_css):
            continue
        return page
    return None


def extract_records(page: PageRule, selector: Selector, url: str) -> list[RawRecord]:
    """Every record the page type defines, read from the page."""
    records: list[RawRecord] = []
    for rule in page.records:
        scopes: list[Selector] = list(selector.css(rule.each)) if rule.each else [selector]
        for scope in scopes:
            record = RawRecord(kind=rule.kind)
            for field_rule in rule.fields:
                value = read_field(field_rule, scope, url)
                if _is_empty(value):
                    if field_rule.required:
                        record.errors.append(f"{rule.kind}.{field_rule.name}: required field not found")
                    continue
                record.fields[field_rule.name] = value
            records.append(record)
    return records


def extract_links(page: PageRule, selector: Selector, url: str) -> list[tuple[str, str]]:
    """(absolute URL, expected page type) for each link rule; links leaving the page's host are dropped."""
    host = urlsplit(url).netloc
    found: list[tuple[str, str]] = []
    for rule in page.links:
        for href in _link_targets(rule, selector):
            absolute = urljoin(url, href.strip())
            parts = urlsplit(absolute)
            # Markets are full of off-site and phishing links (in feedback, in ads): only the
            # mirror being crawled is ever followed.
            if parts.scheme not in ("http", "https") or parts.netloc != host:
                continue
            found.append((absolute.split("#", 1)[0], rule.to))
    return found


def read_field(rule: FieldRule, scope: Selector, url: str) -> RawValue:
    """The shown value of one field inside `scope` (the page, or one row of an `each`)."""
    if rule.each:
        return [
            {sub.name: value for sub in rule.fields if not _is_empty(value := read_field(sub, row, url))}
            for row in scope.css(rule.each)
        ]
    strings = _source_strings(rule, scope, url)
    if rule.regex is not None:
        strings = [m for s in strings if (m := _regex_value(rule, s)) is not None]
    strings = [s for s in strings if s]
    if not strings:
        return rule.default
    if rule.join is not None:
        return clean_text(rule.join.join(strings)) if rule.join.strip() else rule.join.join(strings).strip()
    if rule.all:
        return strings
    return strings[0]


def _source_strings(rule: FieldRule, scope: Selector, url: str) -> list[str]:
    if rule.url is not None:
        match = rule.url.search(_path_and_query(url))
        if not match:
            return []
        return [clean_text(match.group("value") if "value" in rule.url.groupindex else match.group(1))]
    if rule.const is not None:
        return [str(rule.const)]
    if rule.css is not None:
        return _strings(scope.css(rule.css))
    if rule.xpath is not None:
        return _strings(scope.xpath(rule.xpath))
    return []


def _strings(nodes: SelectorList[Selector]) -> list[str]:
    """Text of each selected node: a text/attribute node as is, an element as all its text."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node.root, str):
            out.append(clean_text(node.root))
        else:
            # Block-level text joined with spaces, so "Ships to<br>Germany" does not become "Ships toGermany".
            out.append(clean_text(" ".join(node.xpath(".//text()").getall())))
    return out


def _regex_value(rule: FieldRule, text: str) -> str | None:
    assert rule.regex is not None
    match = rule.regex.search(text)
    if not match:
        return None
    if "value" in rule.regex.groupindex:
        value = match.group("value")
    elif rule.regex.groups:
        value = match.group(1)
    else:
        value = match.group(0)
    return clean_text(value) if value is not None else None


def _link_targets(rule: LinkRule, selector: Selector) -> list[str]:
    nodes = selector.css(rule.css) if rule.css else selector.xpath(rule.xpath or "")
    hrefs = [h for h in nodes.getall() if isinstance(h, str)]
    if rule.regex is not None:
        hrefs = [h for h in hrefs if rule.regex.search(h)]
    return hrefs


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _is_empty(value: RawValue) -> bool:
    return value is None or value == "" or value == []
