"""A reference parser for the two demo skins, written only from the pages, to check them against truth.

It doubles as a worked example for profile authors: every selector and text pattern a real
profile needs is here. It imports the place spellings from demo.regions (a real profile would
carry its own table) but nothing about how pages are rendered.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from parsel import Selector

from demo.regions import SPELLINGS

PLACE_CODES = {text: code for code, texts in SPELLINGS.items() for text in texts}
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "AU$": "AUD", "CAD": "CAD"}


def parse(html: bytes | str) -> Selector:
    """Parse a page with Scrapy's selector library, as a profile would."""
    return Selector(text=html.decode("utf-8") if isinstance(html, bytes) else html)


def text(node: Selector | None) -> str:
    """Collapsed text of a node, text pieces joined by spaces."""
    assert node is not None
    return " ".join(" ".join(node.xpath(".//text()").getall()).split())


def first(page: Selector, css: str) -> Selector:
    """The first match of a CSS selector, which must exist."""
    found = page.css(css)
    assert found, css
    return found[0]


def maybe(page: Selector, css: str) -> Selector | None:
    """The first match of a CSS selector, or None."""
    found = page.css(css)
    return found[0] if found else None


def raw(node: Selector) -> str:
    """Uncollapsed text of a node (for <pre> and <textarea> contents)."""
    return "".join(node.xpath(".//text()").getall())


def href(node: Selector) -> str:
    """A link's target."""
    return node.attrib["href"]


def amount(value: str) -> str:
    """Parse "1,234.50" -> "1234.50"."""
    return value.replace(",", "")


def places(value: str, separator: str) -> list[str]:
    """Codes of a place list, deduplicated in order; joins pieces split inside "Korea, Republic of"."""
    pieces = value.split(separator)
    out: list[str] = []
    i = 0
    while i < len(pieces):
        piece = pieces[i].strip()
        if piece not in PLACE_CODES and i + 1 < len(pieces):
            joined = f"{piece}, {pieces[i + 1].strip()}"
            if joined in PLACE_CODES:
                piece, i = joined, i + 1
        code = PLACE_CODES[piece]
        if code not in out:
            out.append(code)
        i += 1
    return out


def fingerprint_of_armor(armored: str) -> str:
    """v4 fingerprint of the first public-key packet in an armoured block."""
    lines = armored.strip().splitlines()
    body = "".join(line for line in lines[1:-1] if line and not line.startswith("=") and ":" not in line)
    data = base64.b64decode(body)
    assert data[0] & 0x40, "new-format packet expected"
    length = data[1]
    assert length < 192
    key = data[2 : 2 + length]
    return hashlib.sha1(b"\x99" + struct.pack(">H", len(key)) + key).hexdigest().upper()


# Relative ages: (earliest, latest) instants an age string allows, given the server time.


def interval(now: datetime, low: timedelta, width: timedelta) -> tuple[datetime, datetime]:
    """Elapsed time in [low, low + width) means the instant lies in (now - low - width, now - low]."""
    return now - low - width, now - low


def hollowmere_age(value: str, now: datetime) -> tuple[datetime, datetime]:
    """Ages like "12m", "5h", "1d 22h", "3d"."""
    if m := re.fullmatch(r"(\d+)m", value):
        return interval(now, timedelta(minutes=int(m[1])), timedelta(minutes=1))
    if m := re.fullmatch(r"(\d+)h", value):
        return interval(now, timedelta(hours=int(m[1])), timedelta(hours=1))
    if m := re.fullmatch(r"(\d+)d (\d+)h", value):
        return interval(now, timedelta(days=int(m[1]), hours=int(m[2])), timedelta(hours=1))
    m = re.fullmatch(r"(\d+)d", value)
    assert m, value
    return interval(now, timedelta(days=int(m[1])), timedelta(days=1))


def copperline_age(value: str, now: datetime) -> tuple[datetime, datetime]:
    """Ages like "just now", "1 minute ago", "5 hours ago", "yesterday", "3 days ago"."""
    if value == "just now":
        return interval(now, timedelta(0), timedelta(minutes=1))
    if value == "yesterday":
        return interval(now, timedelta(days=1), timedelta(days=1))
    m = re.fullmatch(r"(\d+) (minute|hour|day)s? ago", value)
    assert m, value
    unit = timedelta(**{m[2] + "s": 1})
    return interval(now, int(m[1]) * unit, unit)


def hollowmere_now(page: Selector) -> datetime:
    """Server time from the footer: "Server time: 2026-01-02 12:00:00 UTC"."""
    value = text(first(page, "span.serverTime")).removeprefix("Server time: ")
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)


def copperline_now(page: Selector) -> datetime:
    """Server time from the footer: "Server time: Friday, Jan 2, 2026 12:00:00 UTC"."""
    value = text(first(page, "p.server-time")).removeprefix("Server time: ")
    return datetime.strptime(value, "%A, %b %d, %Y %H:%M:%S UTC").replace(tzinfo=UTC)


# Hollowmere.


def hollowmere_money(value: str) -> tuple[str, str, str | None]:
    """Parse "USD 1,234.50/g" -> ("1234.50", "USD", "g")."""
    m = re.fullmatch(r"([A-Z]{3}) ([\d,]+\.\d\d)(?:/(.+))?", value)
    assert m, value
    return amount(m[2]), m[1], m[3]


def hollowmere_rows(page: Selector, css: str) -> dict[str, Selector]:
    """label -> value span of a `div.tabularDetails` block."""
    return {text(row.xpath("./label")): row.xpath("./span")[0] for row in page.css(css)}


def hollowmere_listing(html: bytes) -> dict:
    """Listing fields from a hollowmere offer page."""
    page = parse(html)
    rows = hollowmere_rows(page, "div.tabularDetails > div")
    vendor = rows["Vendor"].css("a")[0]
    price, currency, unit = hollowmere_money(text(rows["Price"]).split(" (")[0])
    options = []
    for option in page.css("select[name=shipping] option"):
        label = text(option)
        name, _, tail = label.rpartition(" - ")
        if tail == "Free":
            options.append({"name": name, "price_amount": "0.00", "price_currency": currency})
        elif re.fullmatch(r"[A-Z]{3} [\d,]+\.\d\d", tail):
            value, code, _ = hollowmere_money(tail)
            options.append({"name": name, "price_amount": value, "price_currency": code})
        else:
            options.append({"name": label, "price_amount": "0.00", "price_currency": currency})
    stock = text(rows["Stock"])
    return {
        "title": text(first(page, "div.offer div.title")),
        "description": text(first(page, "#offerDescription pre")),
        "vendor": text(vendor),
        "vendor_id": href(vendor).rsplit("/", 1)[1],
        "category": [text(a) for a in page.css("div.breadcrumbs a")][1:],
        "price_amount": price,
        "price_currency": currency,
        "price_unit": unit,
        "ships_from": places(text(rows["Ships from"]), ", "),
        "ships_to": places(text(rows["Ships to"]), ", "),
        "ships_to_excluded": places(text(rows["Excluded"]), ", ") if "Excluded" in rows else [],
        "escrow": text(rows["Escrow"]) == "Yes",
        "stock": None if stock == "Unlimited" else int(stock),
        "shipping_options": options,
    }


def hollowmere_vendor(html: bytes) -> dict:
    """Vendor fields from a hollowmere vendor page (times as intervals)."""
    page = parse(html)
    now = hollowmere_now(page)
    m = re.fullmatch(r"(\S+) \((\d+)\)(?: \( ([\d.]+) \))?", text(first(page, "h1.username")))
    assert m
    rows = {label: text(span) for label, span in hollowmere_rows(page, "div.vendorDetails > div").items()}
    key = maybe(page, "pre.pgp")
    shown = maybe(page, "pre.fingerprint")
    return {
        "vendor": m[1],
        "level": int(rows["Level"]),
        "trust_level": int(rows["Trust level"]),
        "sales": int(rows["Sales"]),
        "rating": m[3],
        "joined_on": datetime.strptime(rows["Join date"], "%d/%m/%Y").date().isoformat(),
        "last_seen": hollowmere_age(rows["Last active"].removesuffix(" ago"), now),
        "status": {"Active": "active", "On vacation": "vacation", "Banned": "banned"}[rows["Status"]],
        "pgp_fingerprint": fingerprint_of_armor(raw(key)) if key else None,
        "fingerprint_shown": shown is not None,
        "shown_fingerprint": text(shown).replace(" ", "") if shown else None,
        "feedback_count": int(rows["Feedback"]),
    }


def hollowmere_feedback(html: bytes) -> tuple[list[dict], str | None]:
    """Feedback rows of a vendor or feedback page, and the next page's URL."""
    page = parse(html)
    now = hollowmere_now(page)
    rows = []
    for tr in page.css("table.ratings tr.fb"):
        link = maybe(tr, "td.item a")
        price = text(first(tr, "td.price"))
        rows.append({
            "rating": text(first(tr, "td.stars")).count("★"),
            "text": text(first(tr, "td.text")),
            "buyer": text(first(tr, "td.buyer")),
            "posted_at": hollowmere_age(text(first(tr, "td.age")), now),
            "listing_id": href(link).rsplit("/", 1)[1] if link else None,
            "price_amount": None if price == "-" else amount(price.removeprefix("~ $")),
            "price_currency": None if price == "-" else "USD",
        })  # fmt: skip
    nxt = maybe(page, "div.feedbackTab a.next")
    return rows, href(nxt) if nxt else None


def hollowmere_categories(html: bytes) -> list[dict]:
    """The sidebar tree: depth classes give the nesting."""
    out, stack = [], []
    for node in parse(html).css("div.sidebar.browse div.category"):
        depth = int(next(c for c in node.attrib["class"].split() if c.startswith("depth"))[5:])
        link = node.xpath("./a")[0]
        stack[depth:] = [text(link)]
        out.append({
            "category": list(stack),
            "category_id": href(link).rsplit("/", 1)[1],
            "listing_count": int(text(first(node, "span.count")).strip("()")),
        })  # fmt: skip
    return out


# Copperline.


def copperline_money(value: str) -> tuple[str, str]:
    """Parse "$1,234.50", "1,234.50 €", "£ 87.95", "AU$ 120.00", "120.00 CAD" -> (amount, currency)."""
    m = re.fullmatch(r"(AU\$ |\$|£ )?([\d,]+\.\d\d)( €| CAD)?", value)
    assert m and bool(m[1]) != bool(m[3]), value
    return amount(m[2]), CURRENCY_SYMBOLS[(m[1] or m[3]).strip()]


def copperline_listing(html: bytes) -> dict:
    """Listing fields from a copperline item page."""
    page = parse(html)
    price_text, _, unit = text(first(page, "div.price-row span.price")).partition(" / ")
    price, currency = copperline_money(price_text)
    vendor = first(page, "a.vendor-link")
    details = text(first(page, "div.row.details"))
    m = re.fullmatch(
        r"Origin Country : (.*) Ship to : (.*) Payment : (.*) Product class : (.*) Quantity : (.*) Available",
        details,
    )
    assert m, details
    dest, _, excluded = m[2].partition(" except ")
    options = []
    for li in page.css("ul.ship-opts li"):
        label = text(li)
        if o := re.fullmatch(r"(.*) \(\+(.*)\)", label):
            value, code = copperline_money(o[2])
            options.append({"name": o[1], "price_amount": value, "price_currency": code})
        else:
            options.append(
                {"name": label.removesuffix(" (free)"), "price_amount": "0.00", "price_currency": currency}
            )
    return {
        "title": text(first(page, "h2.listing-title")),
        "description": text(first(page, "div.card-text.description")),
        "vendor": re.sub(r" \((\d+%|no ratings)\)$", "", text(vendor)),
        "vendor_id": href(vendor).rsplit("/", 1)[1],
        "category": [text(a) for a in page.css("nav.crumbs a")][1:],
        "price_amount": price,
        "price_currency": currency,
        "price_unit": unit or None,
        "ships_from": places(m[1], " , "),
        "ships_to": places(dest, " , "),
        "ships_to_excluded": places(excluded, ", ") if excluded else [],
        "escrow": m[3] == "Full Escrow",
        "stock": None if m[5] == "Unlimited" else int(m[5]),
        "shipping_options": options,
    }


def copperline_vendor(html: bytes) -> dict:
    """Vendor fields from a copperline profile page (times as intervals)."""
    page = parse(html)
    now = copperline_now(page)
    stats = text(first(page, "div.row.stats"))
    m = re.fullmatch(
        r"Seller Level : (\d+|New seller) Trust Level : (\d+|Unverified) Sales : (\d+) Rating : "
        r"(?:([\d.]+) / 5\.00|no ratings yet) Member since : (.*) Last seen : (.*) Feedback : (\d+)",
        stats,
    )
    assert m, stats
    key = maybe(page, "textarea.pgp-key")
    shown = maybe(page, "code.fpr")
    status = text(first(page, "div.account-status")).removeprefix("Account status : ")
    return {
        "vendor": text(first(page, "h2.profile-name")).removeprefix("@"),
        "level": None if m[1] == "New seller" else int(m[1]),
        "trust_level": None if m[2] == "Unverified" else int(m[2]),
        "sales": int(m[3]),
        "rating": m[4],
        "joined_on": datetime.strptime(m[5], "%B %d, %Y").date().isoformat(),
        "last_seen": copperline_age(m[6], now),
        "status": {"Active": "active", "On vacation": "vacation", "Banned": "banned"}[status],
        "pgp_fingerprint": fingerprint_of_armor(raw(key)) if key else None,
        "fingerprint_shown": shown is not None,
        "shown_fingerprint": text(shown).replace(" ", "") if shown else None,
        "feedback_count": int(m[7]),
    }


def copperline_feedback(html: bytes) -> tuple[list[dict], str | None]:
    """Feedback rows of a profile or feedback page, and the next page's URL."""
    page = parse(html)
    rows = []
    for item in page.css("div.feedback-item"):
        link = maybe(item, "div.fb-meta a")
        price = text(first(item, "span.fb-price"))
        value, code = (None, None) if price == "hidden" else copperline_money(price)
        posted = datetime.strptime(text(first(item, "span.fb-date")), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        rating = re.fullmatch(r"Rating : (\d) of 5", text(first(item, "span.fb-rating")))
        assert rating
        rows.append({
            "rating": int(rating[1]),
            "text": text(first(item, "p.fb-text")),
            "buyer": text(first(item, "span.fb-buyer")),
            "posted_at": (posted, posted + timedelta(seconds=59)),
            "listing_id": parse_qs(urlsplit(href(link)).query)["id"][0] if link else None,
            "price_amount": value,
            "price_currency": code,
        })  # fmt: skip
    nxt = maybe(page, "ul.pagination a[rel=next]")
    return rows, href(nxt) if nxt else None


def copperline_categories(html: bytes) -> list[dict]:
    """The nested <ul> tree on the home page."""
    out: list[dict] = []

    def walk(ul: Selector, path: list[str]) -> None:
        for li in ul.xpath("./li"):
            link = li.xpath("./a")[0]
            here = [*path, text(link)]
            out.append({
                "category": here,
                "category_id": href(link).split("/")[2],
                "listing_count": int(text(li.xpath("./span[contains(@class, 'badge')]")[0])),
            })  # fmt: skip
            for child in li.xpath("./ul"):
                walk(child, here)

    walk(first(parse(html), "ul.cat-tree"), [])
    return out


LISTING = {"hollowmere": hollowmere_listing, "copperline": copperline_listing}
VENDOR = {"hollowmere": hollowmere_vendor, "copperline": copperline_vendor}
FEEDBACK = {"hollowmere": hollowmere_feedback, "copperline": copperline_feedback}
CATEGORIES = {"hollowmere": hollowmere_categories, "copperline": copperline_categories}
