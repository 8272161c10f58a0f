"""Market profiles: loading a YAML profile from config/markets/ into checked, typed rules.

A profile says everything market-specific: where the market lives, how to tell its page types
apart, which links to follow from each, and where each field sits. The generic spider and the
extraction pipeline run any profile; docs/profiles.md is the language reference.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from dnm.records import RECORD_FIELDS, REQUIRED_FIELDS, SHIPPING_OPTION_FIELDS
from transport.onion_keys import check_v3_onion

PROFILE_DIR = Path(__file__).resolve().parent.parent / "config" / "markets"
SOURCE_KEYS = ("css", "xpath", "url", "const")


class ProfileError(ValueError):
    """A profile that cannot be used, with the file and the key path at fault."""


@dataclass(frozen=True)
class FieldRule:
    """Where one field's value sits on a page, and how to read it."""

    name: str
    css: str | None = None
    xpath: str | None = None
    url: re.Pattern[str] | None = None
    const: Any = None
    regex: re.Pattern[str] | None = None
    all: bool = False
    join: str | None = None
    normalize: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    default: Any = None
    required: bool = False
    # A repeated group (e.g. shipping options): `each` selects the rows, `fields` read each row.
    each: str | None = None
    fields: tuple[FieldRule, ...] = ()


@dataclass(frozen=True)
class LinkRule:
    """Links to follow from a page, and the page type they are expected to lead to."""

    css: str | None
    xpath: str | None
    to: str
    regex: re.Pattern[str] | None = None


@dataclass(frozen=True)
class RecordRule:
    """A record to extract from a page; with `each`, one record per selected element."""

    kind: str
    fields: tuple[FieldRule, ...]
    each: str | None = None


@dataclass(frozen=True)
class PageRule:
    """A page type: how to recognise it, what to extract, which links to follow."""

    name: str
    match_url: re.Pattern[str] | None
    match_css: str | None
    records: tuple[RecordRule, ...]
    links: tuple[LinkRule, ...]


GATE_KINDS = ("wait", "queue", "captcha", "login", "killed", "maintenance", "phishing", "error")
CAPTCHA_KINDS = ("text", "clock")


@dataclass(frozen=True)
class MatchRule:
    """How to recognise a page: every condition given must hold (status, CSS marker, text or title regex)."""

    status: tuple[int, ...] = ()
    css: str | None = None
    text: re.Pattern[str] | None = None
    title: re.Pattern[str] | None = None


@dataclass(frozen=True)
class ChallengeRule:
    """Where a CAPTCHA sits in a form and how its answer goes back.

    `answer` maps form field names to templates filled from the answer: `{text}` for a typed answer,
    `{hour}` and `{minute}` for a clock ("7:05" gives hour "7", minute "05").
    """

    form: str
    kind: str = "text"
    image: str | None = None
    id: str | None = None
    prompt: str | None = None
    answer: tuple[tuple[str, str], ...] = (("captcha", "{text}"),)


@dataclass(frozen=True)
class GateRule:
    """A barrier page type: its kind (what the crawler does about it) and how to recognise it."""

    kind: str
    match: MatchRule
    challenge: ChallengeRule | None = None
    wait: float | None = None  # seconds to wait when the page does not say (no meta refresh)


@dataclass(frozen=True)
class LoginRule:
    """The market's login form: where it is, which inputs are the real ones, how failure and logout look."""

    url: str
    form: str
    username: re.Pattern[str]  # label text of the real username input
    password: re.Pattern[str]
    challenge: ChallengeRule | None = None
    failed: FieldRule | None = None  # the error the form shows after a failed attempt
    banned: re.Pattern[str] | None = None  # an error text meaning the account itself is gone
    logged_out: MatchRule | None = None  # a content page showing this is seen without a session


@dataclass(frozen=True)
class MirrorListRule:
    """The market's signed mirror list and the key that must have signed it."""

    url: str
    signed: str  # CSS selector of the armoured signed list (its text is read as it is, newlines and all)
    key_url: str
    key: str  # CSS selector of the armoured public key
    fingerprint: str


@dataclass(frozen=True)
class ExpectRule:
    """A count the market claims: pages of `count` type that should exist, read from `page` pages.

    Values are summed over distinct `per` keys (default: the page's URL); `per_page` turns an item
    count into a number of index pages.
    """

    count: str
    page: str
    value: FieldRule
    per: FieldRule | None = None
    per_page: int | None = None


@dataclass(frozen=True)
class Completeness:
    """When a crawl may call itself complete: the share of expected pages fetched and parsed."""

    threshold: float = 1.0
    expect: tuple[ExpectRule, ...] = ()


@dataclass(frozen=True)
class Drift:
    """When a crawl differs from the market's last good one enough to raise an alarm (dnm.drift)."""

    # A field's fill rate or a page type's coverage falling by more than this (a share: 0.1 = 10 points).
    max_drop: float = 0.1
    # Fields filled on fewer records than this in the last good crawl are not watched (too few to judge).
    min_records: int = 5


@dataclass(frozen=True)
class Profile:
    """A market profile, checked and compiled."""

    market: str
    name: str
    version: str
    sha256: str
    path: Path
    mirrors: tuple[str, ...]
    start: tuple[str, ...]
    pages: tuple[PageRule, ...]
    clock: FieldRule | None = None
    day_first: bool = True
    default_currency: str | None = None
    price_prefer: str = "fiat"
    relative_rounding: str = "floor"
    hooks: str | None = None
    gates: tuple[GateRule, ...] = ()
    login: LoginRule | None = None
    mirror_list: MirrorListRule | None = None
    completeness: Completeness = field(default_factory=Completeness)
    drift: Drift = field(default_factory=Drift)

    @property
    def parser_version(self) -> str:
        """What made a parsed row: profile version plus the exact file content it was read from."""
        return f"{self.market}@{self.version}+{self.sha256[:12]}"

    def page(self, name: str) -> PageRule:
        for page in self.pages:
            if page.name == name:
                return page
        raise KeyError(name)

    def load_hooks(self) -> Any:
        """The profile's Python hook object, for what the profile language cannot say (or None)."""
        if not self.hooks:
            return None
        module_name, _, attr = self.hooks.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module


def profile_path(market: str, directory: Path | None = None) -> Path:
    """The profile file of a market name, or a path given directly."""
    candidate = Path(market)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    directory = directory or default_profile_dir()
    for suffix in (".yaml", ".yml"):
        path = directory / f"{market}{suffix}"
        if path.exists():
            return path
    known = ", ".join(sorted(p.stem for p in directory.glob("*.y*ml"))) or "none"
    raise ProfileError(f"no profile for market {market!r} in {directory} (known: {known})")


def default_profile_dir() -> Path:
    """Where profiles are looked up: $DNM_PROFILE_DIR, else the project's config/markets/."""
    configured = os.environ.get("DNM_PROFILE_DIR")
    return Path(configured) if configured else PROFILE_DIR


def load_profile(market: str, directory: Path | None = None) -> Profile:
    """Read, check and compile a market's profile; every mistake is reported with its key path."""
    path = profile_path(market, directory)
    raw_bytes = path.read_bytes()
    try:
        data = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    return _Compiler(path, hashlib.sha256(raw_bytes).hexdigest()).profile(data)


def available_markets(directory: Path | None = None) -> list[str]:
    """Names of the markets that have a profile."""
    return sorted(p.stem for p in (directory or default_profile_dir()).glob("*.y*ml"))


class _Compiler:
    """Turns the YAML tree into rules, naming the key path of anything wrong."""

    def __init__(self, path: Path, sha256: str) -> None:
        self.path = path
        self.sha256 = sha256

    def fail(self, where: str, message: str) -> ProfileError:
        return ProfileError(f"{self.path}: {where}: {message}")

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        unknown = set(value) - allowed
        if unknown:
            raise self.fail(where, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        return value

    def regex(self, pattern: Any, where: str) -> re.Pattern[str]:
        if not isinstance(pattern, str):
            raise self.fail(where, "expected a regular expression string")
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise self.fail(where, f"bad regular expression {pattern!r}: {exc}") from exc

    def profile(self, data: Any) -> Profile:
        top = self.mapping(
            data,
            "top level",
            {
                "market",
                "name",
                "version",
                "mirrors",
                "start",
                "clock",
                "defaults",
                "pages",
                "hooks",
                "gates",
                "login",
                "mirror_list",
                "completeness",
                "drift",
            },
        )
        for key in ("market", "version", "pages"):
            if key not in top:
                raise self.fail("top level", f"missing required key {key!r}")
        defaults = self.mapping(
            top.get("defaults") or {},
            "defaults",
            {"day_first", "currency", "price_prefer", "relative_rounding"},
        )
        if defaults.get("price_prefer", "fiat") not in ("fiat", "crypto", "first"):
            raise self.fail("defaults.price_prefer", "must be fiat, crypto or first")
        if defaults.get("relative_rounding", "floor") not in ("floor", "round"):
            raise self.fail("defaults.relative_rounding", "must be floor or round")
        mirrors = top.get("mirrors") or []
        if not isinstance(mirrors, list) or not all(isinstance(m, str) for m in mirrors):
            raise self.fail("mirrors", "expected a list of base URLs")
        for index, mirror in enumerate(mirrors):
            self.mirror(mirror, f"mirrors[{index}]")
        start = top.get("start") or ["/"]
        if not isinstance(start, list) or not all(isinstance(s, str) for s in start):
            raise self.fail("start", "expected a list of paths")
        pages_data = top["pages"]
        if not isinstance(pages_data, list) or not pages_data:
            raise self.fail("pages", "expected a non-empty list of page types")
        pages = tuple(self.page(p, f"pages[{i}]") for i, p in enumerate(pages_data))
        names = [p.name for p in pages]
        for page in pages:
            for link in page.links:
                if link.to not in names:
                    raise self.fail(f"pages.{page.name}.links", f"link target {link.to!r} is not a page type")
        clock = self.field("clock", top["clock"], "clock") if top.get("clock") else None
        gates_data = top.get("gates") or []
        if not isinstance(gates_data, list):
            raise self.fail("gates", "expected a list of gate pages")
        gates = tuple(self.gate(g, f"gates[{i}]") for i, g in enumerate(gates_data))
        return Profile(
            market=str(top["market"]),
            name=str(top.get("name") or top["market"]),
            version=str(top["version"]),
            sha256=self.sha256,
            path=self.path,
            mirrors=tuple(m.rstrip("/") for m in mirrors),
            start=tuple(start),
            pages=pages,
            clock=clock,
            day_first=bool(defaults.get("day_first", True)),
            default_currency=defaults.get("currency"),
            price_prefer=defaults.get("price_prefer", "fiat"),
            relative_rounding=defaults.get("relative_rounding", "floor"),
            hooks=top.get("hooks"),
            gates=gates,
            login=self.optional(top, "login", self.login, ""),
            mirror_list=self.optional(top, "mirror_list", self.mirror_list, ""),
            completeness=self.completeness(top.get("completeness") or {}, "completeness", set(names)),
            drift=self.drift(top.get("drift") or {}, "drift"),
        )

    def optional(self, spec: dict[str, Any], key: str, build: Any, where: str) -> Any:
        """`build(spec[key], key path)` when the key is given, else None."""
        if spec.get(key) is None:
            return None
        return build(spec[key], f"{where}.{key}" if where else key)

    def match(self, data: Any, where: str) -> MatchRule:
        spec = self.mapping(data, where, {"status", "css", "text", "title"})
        if not spec:
            raise self.fail(where, "give at least one of status, css, text, title")
        status = spec.get("status", [])
        status = [status] if isinstance(status, int) else status
        if not isinstance(status, list) or not all(isinstance(s, int) for s in status):
            raise self.fail(f"{where}.status", "expected an HTTP status or a list of them")
        return MatchRule(
            status=tuple(status),
            css=spec.get("css"),
            text=self.regex(spec["text"], f"{where}.text") if "text" in spec else None,
            title=self.regex(spec["title"], f"{where}.title") if "title" in spec else None,
        )

    def challenge(self, data: Any, where: str) -> ChallengeRule:
        spec = self.mapping(data, where, {"form", "kind", "image", "id", "prompt", "answer"})
        if "form" not in spec:
            raise self.fail(where, "a challenge needs the css selector of its 'form'")
        kind = spec.get("kind", "text")
        if kind not in CAPTCHA_KINDS:
            raise self.fail(f"{where}.kind", f"must be one of {list(CAPTCHA_KINDS)}")
        default = {"hour": "{hour}", "minute": "{minute}"} if kind == "clock" else {"captcha": "{text}"}
        answer = spec.get("answer") or default
        if not isinstance(answer, dict) or not all(isinstance(v, str) for v in answer.values()):
            raise self.fail(f"{where}.answer", "expected a mapping of form field -> template")
        allowed = {"text", "hour", "minute"}
        for name, template in answer.items():
            unknown = set(re.findall(r"{(\w*)}", template)) - allowed
            if unknown:
                raise self.fail(f"{where}.answer.{name}", f"unknown placeholder(s) {sorted(unknown)}")
        return ChallengeRule(
            form=str(spec["form"]),
            kind=kind,
            image=spec.get("image"),
            id=spec.get("id"),
            prompt=spec.get("prompt"),
            answer=tuple((str(k), v) for k, v in answer.items()),
        )

    def gate(self, data: Any, where: str) -> GateRule:
        spec = self.mapping(data, where, {"kind", "match", "challenge", "wait"})
        kind = spec.get("kind")
        if kind not in GATE_KINDS:
            raise self.fail(f"{where}.kind", f"must be one of {list(GATE_KINDS)}")
        if "match" not in spec:
            raise self.fail(where, "a gate needs 'match'")
        if kind == "captcha" and "challenge" not in spec:
            raise self.fail(where, "a captcha gate needs 'challenge' (its form, image and answer fields)")
        wait = spec.get("wait")
        if wait is not None and (not isinstance(wait, int | float) or wait < 0):
            raise self.fail(f"{where}.wait", "expected seconds (a number >= 0)")
        return GateRule(
            kind=kind,
            match=self.match(spec["match"], f"{where}.match"),
            challenge=self.optional(spec, "challenge", self.challenge, where),
            wait=float(wait) if wait is not None else None,
        )

    def login(self, data: Any, where: str) -> LoginRule:
        allowed = {"url", "form", "username", "password", "challenge", "failed", "banned", "logged_out"}
        spec = self.mapping(data, where, allowed)
        for key in ("url", "form"):
            if key not in spec:
                raise self.fail(where, f"missing required key {key!r}")
        return LoginRule(
            url=str(spec["url"]),
            form=str(spec["form"]),
            username=self.regex(spec.get("username", "(?i)user ?name|login"), f"{where}.username"),
            password=self.regex(spec.get("password", "(?i)password"), f"{where}.password"),
            challenge=self.optional(spec, "challenge", self.challenge, where),
            failed=self.optional(spec, "failed", lambda v, w: self.field("failed", v, w), where),
            banned=self.optional(spec, "banned", self.regex, where),
            logged_out=self.optional(spec, "logged_out", self.match, where),
        )

    def mirror_list(self, data: Any, where: str) -> MirrorListRule:
        spec = self.mapping(data, where, {"url", "signed", "key_url", "key", "fingerprint"})
        for key in ("url", "signed", "key", "fingerprint"):
            if key not in spec:
                raise self.fail(where, f"missing required key {key!r}")
        fingerprint = re.sub(r"\s+", "", str(spec["fingerprint"])).upper()
        if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", fingerprint):
            raise self.fail(f"{where}.fingerprint", "expected a v4 (40 hex) or v6 (64 hex) key fingerprint")
        return MirrorListRule(
            url=str(spec["url"]),
            signed=str(spec["signed"]),
            key_url=str(spec.get("key_url", spec["url"])),
            key=str(spec["key"]),
            fingerprint=fingerprint,
        )

    def drift(self, data: Any, where: str) -> Drift:
        spec = self.mapping(data, where, {"max_drop", "min_records"})
        max_drop = spec.get("max_drop", Drift.max_drop)
        if not isinstance(max_drop, int | float) or not 0 < max_drop <= 1:
            raise self.fail(f"{where}.max_drop", "expected a share between 0 (exclusive) and 1")
        min_records = spec.get("min_records", Drift.min_records)
        if not isinstance(min_records, int) or min_records < 1:
            raise self.fail(f"{where}.min_records", "expected a positive integer")
        return Drift(max_drop=float(max_drop), min_records=min_records)

    def completeness(self, data: Any, where: str, page_types: set[str]) -> Completeness:
        spec = self.mapping(data, where, {"threshold", "expect"})
        threshold = spec.get("threshold", 1.0)
        if not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise self.fail(f"{where}.threshold", "expected a share between 0 (exclusive) and 1")
        expect_data = self.mapping(spec.get("expect") or {}, f"{where}.expect", page_types)
        rules = []
        for count, rule in expect_data.items():
            at = f"{where}.expect.{count}"
            rule_spec = self.mapping(rule, at, {"page", "per", "per_page", *SOURCE_KEYS, "regex"})
            if rule_spec.get("page") not in page_types:
                raise self.fail(f"{at}.page", f"expected one of the page types {sorted(page_types)}")
            per_page = rule_spec.get("per_page")
            if per_page is not None and (not isinstance(per_page, int) or per_page < 1):
                raise self.fail(f"{at}.per_page", "expected a positive integer")
            value = {k: v for k, v in rule_spec.items() if k in (*SOURCE_KEYS, "regex")}
            rules.append(
                ExpectRule(
                    count=count,
                    page=rule_spec["page"],
                    value=self.field(count, value, at),
                    per=self.optional(rule_spec, "per", lambda v, w: self.field("per", v, w), at),
                    per_page=per_page,
                )
            )
        return Completeness(threshold=float(threshold), expect=tuple(rules))

    def mirror(self, url: str, where: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.fail(where, f"{url!r} is not an http(s) base URL")
        if parts.hostname.endswith(".onion"):
            try:
                check_v3_onion(parts.hostname)
            except ValueError as exc:
                raise self.fail(where, str(exc)) from exc

    def page(self, data: Any, where: str) -> PageRule:
        page = self.mapping(data, where, {"type", "match", "records", "links"})
        if "type" not in page:
            raise self.fail(where, "missing 'type' (the page type's name)")
        where = f"pages.{page['type']}"
        match = self.mapping(page.get("match") or {}, f"{where}.match", {"url", "css"})
        if not match:
            raise self.fail(f"{where}.match", "give a url regex and/or a css selector to recognise the page")
        records_data = self.mapping(page.get("records") or {}, f"{where}.records", set(RECORD_FIELDS))
        records = tuple(
            self.record(kind, spec, f"{where}.records.{kind}") for kind, spec in records_data.items()
        )
        links = tuple(
            self.link(spec, f"{where}.links[{i}]") for i, spec in enumerate(page.get("links") or [])
        )
        return PageRule(
            name=str(page["type"]),
            match_url=self.regex(match["url"], f"{where}.match.url") if "url" in match else None,
            match_css=match.get("css"),
            records=records,
            links=links,
        )

    def record(self, kind: str, data: Any, where: str) -> RecordRule:
        spec = self.mapping(data, where, {"each", "fields"})
        fields_data = self.mapping(spec.get("fields") or {}, f"{where}.fields", set(RECORD_FIELDS[kind]))
        missing = [name for name in REQUIRED_FIELDS[kind] if name not in fields_data]
        if missing:
            raise self.fail(f"{where}.fields", f"a {kind} record needs {missing}")
        fields = tuple(
            self.field(name, value, f"{where}.fields.{name}") for name, value in fields_data.items()
        )
        return RecordRule(kind=kind, fields=fields, each=spec.get("each"))

    def link(self, data: Any, where: str) -> LinkRule:
        spec = self.mapping(data, where, {"css", "xpath", "to", "regex"})
        if "to" not in spec or not (spec.get("css") or spec.get("xpath")):
            raise self.fail(where, "a link needs 'to' and a 'css' or 'xpath' selector")
        return LinkRule(
            css=spec.get("css"),
            xpath=spec.get("xpath"),
            to=str(spec["to"]),
            regex=self.regex(spec["regex"], f"{where}.regex") if "regex" in spec else None,
        )

    def field(self, name: str, data: Any, where: str) -> FieldRule:
        if isinstance(data, str):  # shorthand: a bare CSS selector
            data = {"css": data}
        spec = self.mapping(
            data,
            where,
            {
                *SOURCE_KEYS,
                "regex",
                "all",
                "join",
                "normalize",
                "args",
                "default",
                "required",
                "each",
                "fields",
            },
        )
        if "each" in spec:
            nested = self.mapping(spec.get("fields") or {}, f"{where}.fields", set(SHIPPING_OPTION_FIELDS))
            return FieldRule(
                name=name,
                each=spec["each"],
                fields=tuple(self.field(n, v, f"{where}.fields.{n}") for n, v in nested.items()),
            )
        sources = [key for key in SOURCE_KEYS if key in spec]
        if len(sources) != 1 and "default" not in spec:
            raise self.fail(
                where, f"give exactly one source of {list(SOURCE_KEYS)} (got {sources or 'none'})"
            )
        args = spec.get("args") or {}
        if not isinstance(args, dict):
            raise self.fail(f"{where}.args", "expected a mapping of normalizer arguments")
        normalize = spec.get("normalize")
        if normalize is not None:
            from dnm.normalize import NORMALIZERS  # late: normalizers are heavier than the profile

            if normalize not in NORMALIZERS:
                raise self.fail(
                    f"{where}.normalize", f"unknown normalizer {normalize!r}; known: {sorted(NORMALIZERS)}"
                )
        return FieldRule(
            name=name,
            css=spec.get("css"),
            xpath=spec.get("xpath"),
            url=self.regex(spec["url"], f"{where}.url") if "url" in spec else None,
            const=spec.get("const"),
            regex=self.regex(spec["regex"], f"{where}.regex") if "regex" in spec else None,
            all=bool(spec.get("all", False)),
            join=spec.get("join"),
            normalize=normalize,
            args=args,
            default=spec.get("default"),
            required=bool(spec.get("required", False)),
        )
