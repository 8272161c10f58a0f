"""Barrier pages: telling a market's content from what stands in front of it, and reading barrier forms.

A response is either content (a page type of the profile) or a barrier: a wait page, an anti-DDoS
queue, a CAPTCHA, a login form, a killed circuit, maintenance, a phishing warning or a bare server
error. The profile's `gates` say how each looks on a market; a few generic signs (a meta refresh, the
"killed your path" text, 5xx statuses) are recognised without it. The policy for each kind lives in
`dnm.middlewares.barriers`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urljoin

from parsel import Selector
from scrapy.http import Response, TextResponse

from dnm.extraction import read_field
from dnm.profile import ChallengeRule, GateRule, LoginRule, MatchRule, Profile


class Kind(StrEnum):
    """What a response is, as far as getting to content goes."""

    CONTENT = "content"
    WAIT = "wait"
    QUEUE = "queue"
    CAPTCHA = "captcha"
    LOGIN = "login"
    KILLED = "killed"
    MAINTENANCE = "maintenance"
    PHISHING = "phishing"
    ERROR = "error"


# Kinds that belong to a session (cookies of one account on one mirror): one request at a time passes them.
SESSION_KINDS = frozenset({Kind.WAIT, Kind.QUEUE, Kind.CAPTCHA, Kind.LOGIN})

KILLED_TEXT = re.compile(r"killed your (?:path|circuit)", re.IGNORECASE)
REFRESH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:[;,]\s*(?:url\s*=\s*)?['\"]?([^'\"]*)['\"]?)?\s*$", re.I)


@dataclass(frozen=True)
class Verdict:
    """The kind of a response, and the profile's gate rule that said so (None for generic signs)."""

    kind: Kind
    gate: GateRule | None = None


def text_of(response: Response) -> str:
    """The response body as text ("" for binaries)."""
    return response.text if isinstance(response, TextResponse) else ""


def matches(rule: MatchRule, response: Response) -> bool:
    """True when every condition of the rule holds for the response."""
    if rule.status and response.status not in rule.status:
        return False
    if not isinstance(response, TextResponse):
        return not (rule.css or rule.text or rule.title)
    if rule.css and not response.css(rule.css):
        return False
    if rule.title and not rule.title.search(" ".join(response.css("title::text").getall())):
        return False
    return not (rule.text and not rule.text.search(response.text))


def classify_barrier(profile: Profile, response: Response, *, logged_in: bool = False) -> Verdict:
    """What the response is: the profile's gates first, then generic signs, else content.

    With `logged_in` (the request belongs to an account), a page showing the profile's logged-out
    markers is a login barrier: the session has gone although the page still loads.
    """
    for gate in profile.gates:
        if matches(gate.match, response):
            return Verdict(Kind(gate.kind), gate)
    login = profile.login
    if login is not None and isinstance(response, TextResponse) and response.css(login.form):
        return Verdict(Kind.LOGIN)
    if (
        logged_in
        and login is not None
        and login.logged_out is not None
        and matches(login.logged_out, response)
    ):
        return Verdict(Kind.LOGIN)
    if response.status == 403 and KILLED_TEXT.search(text_of(response)[:2000]):
        return Verdict(Kind.KILLED)
    if response.status >= 500 or response.status == 429:
        return Verdict(Kind.ERROR)
    if response.status == 200 and meta_refresh(response) is not None and len(response.body) < 8192:
        return Verdict(Kind.WAIT)  # a short page that only sends the visitor on: a redirect/wait page
    return Verdict(Kind.CONTENT)


def meta_refresh(response: Response) -> tuple[float, str] | None:
    """(seconds, absolute URL) of a `<meta http-equiv="refresh">`; the URL is the page's own if none."""
    if not isinstance(response, TextResponse):
        return None
    for content in response.xpath(
        "//meta[translate(@http-equiv,'REFSH','refsh')='refresh']/@content"
    ).getall():
        found = REFRESH.match(content)
        if found:
            return float(found.group(1)), urljoin(
                response.url, (found.group(2) or "").strip() or response.url
            )
    return None


def retry_after(response: Response) -> float | None:
    """Seconds from a Retry-After header given in seconds, if any."""
    value = (response.headers.get(b"Retry-After") or b"").decode("latin-1").strip()
    # ASCII digits only: str.isdigit() also says yes to "²" (a latin-1 byte), which float() refuses.
    return float(value) if value.isascii() and value.isdigit() else None


# -- forms --------------------------------------------------------------------------------------------

# A rule's selector list and a body saying display:none; the class ending each selector of the list is hidden
# (".a, .wrap .b{display:none}" hides a and b), as a class right before "{" was for a single selector.
HIDING_RULE = re.compile(r"([^{}]+)\{[^{}]*display\s*:\s*none", re.IGNORECASE)
LAST_CLASS = re.compile(r"\.([A-Za-z_][\w-]*)\s*$")


def hidden_classes(selector: Selector) -> set[str]:
    """Classes the page's own <style> blocks hide: where markets put decoy inputs."""
    css = " ".join(selector.css("style::text").getall())
    return {
        found.group(1)
        for selectors in HIDING_RULE.findall(css)
        for part in selectors.split(",")
        if (found := LAST_CLASS.search(part))
    }


def is_visible(element: Selector, hidden: set[str]) -> bool:
    """False for an input a person would not see: hidden type, display:none, a hiding class on it or above."""
    if (element.attrib.get("type") or "").lower() == "hidden":
        return False
    for node in [element, *element.xpath("ancestor::*")]:
        style = (node.attrib.get("style") or "").replace(" ", "").lower()
        if "display:none" in style or "visibility:hidden" in style:
            return False
        if hidden & set((node.attrib.get("class") or "").split()):
            return False
    return True


def form_defaults(form: Selector) -> list[tuple[str, str]]:
    """What a browser would send for a form left as it is: every named input, select and textarea."""
    fields: list[tuple[str, str]] = []
    for element in form.xpath(".//input[@name] | .//select[@name] | .//textarea[@name]"):
        name = element.attrib["name"]
        tag = element.root.tag
        kind = (element.attrib.get("type") or "text").lower()
        if tag == "input" and kind in ("submit", "button", "image", "reset", "file"):
            continue
        if tag == "input" and kind in ("checkbox", "radio") and "checked" not in element.attrib:
            continue
        if tag == "select":
            chosen = (
                element.xpath("./option[@selected]/@value").get() or element.xpath("./option/@value").get()
            )
            fields.append((name, chosen or ""))
        elif tag == "textarea":
            fields.append((name, element.xpath("string()").get() or ""))
        else:
            fields.append((name, element.attrib.get("value", "")))
    return fields


def form_action(form: Selector, page_url: str) -> tuple[str, str]:
    """(method, absolute action URL) of a form."""
    method = (form.attrib.get("method") or "GET").upper()
    return method, urljoin(page_url, form.attrib.get("action") or page_url)


def labelled_input(
    form: Selector, label: re.Pattern[str], hidden: set[str], kinds: tuple[str, ...]
) -> str | None:
    """The name of the visible input whose <label> text matches, of one of the given types."""
    for candidate in form.xpath(".//input[@name]"):
        if (candidate.attrib.get("type") or "text").lower() not in kinds or not is_visible(candidate, hidden):
            continue
        input_id = candidate.attrib.get("id")
        # The id is the page's: passed as an XPath variable, never pasted into the expression (a quote
        # in it would be an XPath syntax error, a crafted one an injected predicate).
        labels = form.xpath(".//label[@for=$id]//text()", id=input_id).getall() if input_id else []
        labels += candidate.xpath("ancestor::label[1]//text()").getall()
        if label.search(" ".join(" ".join(labels).split())):
            return candidate.attrib["name"]
    return None


@dataclass(frozen=True)
class LoginForm:
    """A login form as a person sees it: where it goes, what it sends, and the real credential inputs."""

    method: str
    action: str
    fields: list[tuple[str, str]]
    username: str
    password: str


def read_login_form(rule: LoginRule, response: TextResponse) -> LoginForm | None:
    """The login form on the page with its real inputs found among the decoys, or None when absent."""
    form = response.css(rule.form)
    if not form:
        return None
    hidden = hidden_classes(response.selector)
    username = labelled_input(form[0], rule.username, hidden, ("text", "email"))
    password = labelled_input(form[0], rule.password, hidden, ("password",))
    if username is None or password is None:
        return None
    method, action = form_action(form[0], response.url)
    return LoginForm(method, action, form_defaults(form[0]), username, password)


# -- challenges -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengeForm:
    """A CAPTCHA on a page: its form, the image reference and the challenge's own id."""

    method: str
    action: str
    fields: list[tuple[str, str]]
    image_src: str | None
    challenge_id: str | None
    prompt: str


def read_challenge(rule: ChallengeRule, response: TextResponse) -> ChallengeForm | None:
    """The challenge form on the page, or None when the page does not hold it."""
    form = response.css(rule.form)
    if not form:
        return None
    image = form[0].css(rule.image).get() if rule.image else None
    if image is None and rule.image:
        image = response.css(rule.image).get()
    challenge_id = (
        form[0].css(rule.id).get() if rule.id else form[0].css("input[name=cid]::attr(value)").get()
    )
    prompt = " ".join(" ".join(response.css(rule.prompt + " ::text").getall()).split()) if rule.prompt else ""
    if image is None and not challenge_id:
        return None  # the form is there (a login form, say) but holds no challenge today
    method, action = form_action(form[0], response.url)
    return ChallengeForm(method, action, form_defaults(form[0]), image, challenge_id, prompt)


def answer_fields(rule: ChallengeRule, answer: str) -> dict[str, str]:
    """The form fields an answer fills: "{text}" as typed, "{hour}"/"{minute}" from "H:MM"."""
    values = {"text": answer.strip()}
    clock = re.fullmatch(r"\s*(\d{1,2})\s*[:.h ]\s*(\d{1,2})\s*", answer)
    if clock:
        values["hour"], values["minute"] = str(int(clock.group(1))), f"{int(clock.group(2)):02d}"
    return {
        name: template.format(**{"text": "", "hour": "", "minute": "", **values})
        for name, template in rule.answer
    }


def decode_data_uri(src: str) -> tuple[bytes, str] | None:
    """(bytes, media type) of a base64 `data:` URI, or None for anything else."""
    found = re.match(r"data:([\w/+.-]+)?(;[^,]*)?,(.*)$", src.strip(), re.DOTALL)
    if not found or "base64" not in (found.group(2) or ""):
        return None
    try:
        return base64.b64decode(found.group(3), validate=False), found.group(1) or "application/octet-stream"
    except (binascii.Error, ValueError):
        return None


def filled(fields: list[tuple[str, str]], values: dict[str, str]) -> list[tuple[str, str]]:
    """The form's fields with some values set (fields not on the form are added)."""
    out = [(name, values.get(name, value)) for name, value in fields]
    present = {name for name, _ in fields}
    return out + [(name, value) for name, value in values.items() if name not in present]


def field_text(rule: object, response: TextResponse) -> str:
    """A field rule's text on a page ("" when absent)."""
    value = read_field(rule, response.selector, response.url)  # type: ignore[arg-type]
    return " ".join(value) if isinstance(value, list) else (value or "")  # type: ignore[arg-type]
