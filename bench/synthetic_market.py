"""A synthetic market's nights for the archive benchmark: the pages and records a crawl files, without HTTP.

`SyntheticMarket(MarketShape(...)).nights(n)` yields, night by night, the `(CapturedPage, [Record])`
pairs that `ArchiveWriter.write_pages` takes: one page per category node, one per visible listing and
one per vendor (its profile and newest feedback). Records carry what extraction found (`shown`) and what
normalization made of it (`values`), in the formats of a hollowmere-style market (label/value tables,
"USD 1,234.50 (0.01873 BTC)" prices, dd/mm/yyyy dates); tests/bench/test_archive_year.py runs the shown
strings through hollowmere's own profile rules and checks that they normalize to these values.

Everything is drawn from one seeded `random.Random`, so a shape gives the same nights on every run.
Each night (after the first) moves the market on: the BTC rate drifts (every listing page shows a
new conversion, a volatile value), a share of listings change price, appear or vanish, sales lower
stock and raise vendors' sales, some buyers leave feedback, vendors come online (`last_seen`, volatile)
or go on vacation (their listings are hidden), a few vendors join. The nights in
`MarketShape.unchanged_nights` move nothing: every page then has the previous night's bytes again.
A page's SHA-256 is taken over a canonical rendering of its URL and shown strings (what the page
displays), so it changes exactly when the page's content does.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any

from demo import vocab
from demo.pgp import group_fingerprint, key_for
from dnm.archive import CapturedPage
from dnm.normalize import Price, Regions, TimeSpan, clean_text, parse_regions
from dnm.normalize.pgp import extract_key_blocks, fingerprint
from dnm.profile import Profile
from dnm.records import REQUIRED_FIELDS, Record

MARKET = "synthetic"
CENT = Decimal("0.01")
SATOSHI_SHOWN = Decimal("0.00001")  # the market prints BTC conversions to five places
RATE_PLACES = Decimal("1E-14")
# BTC per unit of each fiat currency the market prices in, on the first night.
START_RATES = {"USD": Decimal("0.000016"), "EUR": Decimal("0.0000174")}
EUR_PER_USD = Decimal("0.92")
STATUS_SHOWN = {"active": "Active", "vacation": "On vacation", "banned": "Banned"}

SHIPS_FROM = ("United Kingdom", "Germany", "Netherlands", "United States", "Canada", "Australia",
              "Spain", "France", "Poland", "Sweden", "Belgium", "Czech Republic")  # fmt: skip
SHIPS_TO = (("Worldwide", 8), ("Europe", 4), ("European Union", 3), ("United States", 3),
            ("United States, Canada", 2), ("United Kingdom", 2), ("Germany, Austria, Switzerland", 1),
            ("Australia, New Zealand", 1))  # fmt: skip
EXCLUDED = (
    "Australia, Canada",
    "Australia",
    "United States, Australia, New Zealand",
    "Sweden, Norway, Australia",
)
# Normalized once: every listing shows one of these strings.
REGIONS: dict[str, Regions] = {
    text: parse_regions(text) for text in (*SHIPS_FROM, *(t for t, _ in SHIPS_TO), *EXCLUDED, "Worldwide")
}
FEEDBACK_RATINGS = ((5, 75), (4, 12), (3, 5), (2, 3), (1, 5))
SHIPPING_PRICES = tuple(Decimal(p) for p in ("3.00", "5.00", "8.00", "12.00", "20.00"))


@dataclass(frozen=True)
class MarketShape:
    """The size of the synthetic market and how much of it moves each night (rates per entity per night)."""

    listings: int = 10_000
    vendors: int = 600
    seed: int = 1
    price_change: float = 0.015  # listings whose price changes
    appear: float = 0.003  # new listings, as a share of the visible ones
    vanish: float = 0.003  # listings taken down for good
    sale: float = 0.008  # listings that sell one unit (stock down, vendor's sales up)
    feedback_share: float = 0.6  # sales that leave feedback
    restock: float = 0.004  # limited listings restocked
    online: float = 0.9  # vendors who log in (their "last seen" moves)
    vacation: float = 0.001  # vendors who start a vacation of 3-14 nights (their listings are hidden)
    new_vendors: float = 0.3  # vendors joining per night
    rate_volatility: float = 0.03  # daily standard deviation of the BTC rate's log
    feedback_shown: int = 10  # newest feedback on a vendor's page
    unchanged_nights: tuple[int, ...] = (2,)  # nights on which nothing at all changes
    start: datetime = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    crawl_hours: float = 4.0  # one night's pages are fetched over this span

    def describe(self) -> str:
        return f"{self.listings:,} listings, {self.vendors:,} vendors, seed {self.seed}"


def synthetic_profile(shape: MarketShape) -> Profile:
    """The profile the archive writer files the synthetic market under (its name, version and hash)."""
    digest = hashlib.sha256(repr(shape).encode()).hexdigest()
    return Profile(
        market=MARKET,
        name="Synthetic market (benchmark)",
        version="1",
        sha256=digest,
        path=Path(__file__),
        mirrors=(),
        start=("/",),
        pages=(),
        price_prefer="fiat",
    )


@dataclass(frozen=True)
class Night:
    """One night's crawl of the market: its pages in fetch order."""

    number: int
    started_at: datetime
    unchanged: bool
    pages: list[tuple[CapturedPage, list[Record]]]

    def count(self, kind: str) -> int:
        """Records of one kind on this night's pages."""
        return sum(1 for _, records in self.pages for record in records if record.kind == kind)


@dataclass
class _Feedback:
    number: int
    listing: int
    listing_title: str
    rating: int
    text: str
    buyer: str
    posted: date
    usd: int | None  # the approximate price shown with it, None when the buyer hid it
    records: dict[bool, Record] = field(default_factory=dict)  # by "listing still linked"


@dataclass
class _Vendor:
    key: str
    joined: date
    weight: float
    sales: int
    feedback_count: int
    rating_sum: float
    last_seen: datetime
    armored: str | None
    key_values: dict[str, str] | None
    shows_fingerprint: bool
    trust: int = 1  # grows with the account's age; moved only on nights the market moves
    status: str = "active"
    vacation_until: int = 0
    feedback: list[_Feedback] = field(default_factory=list)


@dataclass
class _Listing:
    number: int
    vendor: _Vendor
    currency: str
    unit: str | None
    amount: Decimal
    stock: int | None
    path: tuple[str, ...]
    static_shown: dict[str, Any]
    static_values: dict[str, Any]
    # The page's rendering without price and stock, which are all that a listing's night changes.
    static_rendering: bytes = b""
    version: int = 0
    # The last page made: (version, rates version) -> record, SHA-256, size.
    cached: tuple[tuple[int, int], Record, str, int] | None = None


class SyntheticMarket:
    """A market's state, moved on night by night; `nights()` yields what each night's crawl archives."""

    def __init__(self, shape: MarketShape | None = None) -> None:
        self.shape = shape or MarketShape()
        self.rng = Random(self.shape.seed)
        # Record ids of the raw store come from their own stream, so they never shift the market's draws.
        self._ids = Random(f"warc-ids-{self.shape.seed}")
        # Bodies already in the raw store: sha256 -> (WARC file, record id), as the payloads table has them.
        self._stored: dict[str, tuple[str, str]] = {}
        self.base_url = f"http://{_onion(self.rng)}.onion"
        self.rates = dict(START_RATES)
        self._rates_version = 0
        self.vendors: list[_Vendor] = []
        self._vendor_keys: set[str] = set()
        self.listings: dict[int, _Listing] = {}
        self._next_listing = 100_001
        self._next_feedback = 1
        self._feedback_keys: dict[str, set[tuple[str, str, int, date]]] = {}
        self.night = 0
        start = self.shape.start.date()
        for _ in range(self.shape.vendors):
            self._add_vendor(start - timedelta(days=self.rng.randint(30, 900)), veteran=True)
        for _ in range(self.shape.listings):
            self._add_listing()
        for vendor in self.vendors:
            self._seed_feedback(vendor)
        self.categories = _category_nodes()

    def listing_numbers(self) -> list[int]:
        """Every listing id the market has shown or will show up to now, vanished ones included."""
        return list(range(100_001, self._next_listing))

    # -- nights ----------------------------------------------------------------------------

    def nights(self, count: int) -> Iterator[Night]:
        """The next `count` nights (the first call starts at night 1, the market's initial state)."""
        for _ in range(count):
            self.night += 1
            unchanged = self.night in self.shape.unchanged_nights
            if self.night > 1 and not unchanged:
                self._advance()
            yield self._crawl(unchanged)

    def _started_at(self) -> datetime:
        return self.shape.start + timedelta(days=self.night - 1)

    def _advance(self) -> None:
        rng, shape, today = self.rng, self.shape, self._started_at().date()
        drift = Decimal(math.exp(rng.gauss(0.0, shape.rate_volatility)))
        self.rates = {code: (rate * drift).quantize(RATE_PLACES) for code, rate in self.rates.items()}
        self._rates_version += 1
        for vendor in self.vendors:
            vendor.trust = _trust(vendor.joined, today)
            if vendor.status == "vacation" and vendor.vacation_until <= self.night:
                vendor.status = "active"
            elif vendor.status == "active" and rng.random() < shape.vacation:
                vendor.status, vendor.vacation_until = "vacation", self.night + rng.randint(3, 14)
        if rng.random() < shape.new_vendors:
            self._add_vendor(today, veteran=False)
        visible = [listing for listing in self.listings.values() if listing.vendor.status == "active"]
        for listing in visible:
            if rng.random() < shape.vanish:
                del self.listings[listing.number]
                continue
            if rng.random() < shape.sale:
                self._sell(listing, today)
            if rng.random() < shape.price_change:
                listing.amount = max(CENT, (listing.amount * Decimal(rng.uniform(0.8, 1.25))).quantize(CENT))
                listing.version += 1
            if listing.stock is not None and rng.random() < shape.restock:
                listing.stock += rng.randint(5, 100)
                listing.version += 1
        for _ in range(sum(rng.random() < shape.appear for _ in visible)):
            self._add_listing()
        evening = self._started_at()
        for vendor in self.vendors:
            if vendor.status != "banned" and rng.random() < shape.online:
                vendor.last_seen = _minute(evening - timedelta(minutes=rng.randint(5, 20 * 60)))

    def _sell(self, listing: _Listing, today: date) -> None:
        vendor = listing.vendor
        vendor.sales += 1
        if listing.stock is not None and listing.stock > 0:
            listing.stock -= 1
            listing.version += 1
        if self.rng.random() < self.shape.feedback_share:
            posted = today - timedelta(days=self.rng.randint(0, 1))
            usd = listing.amount if listing.currency == "USD" else listing.amount / EUR_PER_USD
            self._leave_feedback(vendor, listing.number, listing.static_values["title"], posted, int(usd))

    def _crawl(self, unchanged: bool) -> Night:
        started = self._started_at()
        visible = [listing for listing in self.listings.values() if listing.vendor.status == "active"]
        total = len(self.categories) + len(visible) + len(self.vendors)
        step = timedelta(hours=self.shape.crawl_hours) / max(total, 1)
        stamp = f"{started:%Y%m%dT%H%M%S}"
        warc_file = f"{MARKET}/{self.night}-{stamp}.warc.gz"
        pages: list[tuple[CapturedPage, list[Record]]] = []

        def add(url: str, page_type: str, records: list[Record], sha256: str, size: int) -> None:
            fetched = _second(started + step * len(pages))
            # As the capture pipeline does: a body stored before is a fetch-log line pointing at the
            # record that holds it; a new one gets a response record in tonight's file.
            if sha256 not in self._stored:
                record_id = f"<urn:uuid:{uuid.UUID(int=self._ids.getrandbits(128), version=4)}>"
                self._stored[sha256] = (warc_file, record_id)
            stored_file, record_id = self._stored[sha256]
            page = CapturedPage(
                url, page_type, 200, sha256, size, fetched, fetched, 0, stored_file, record_id, sha256
            )
            pages.append((page, records))

        counts = Counter(node for listing in visible for node in _prefixes(listing.path))
        for path in self.categories:
            url, record = self._category_page(path, counts[path])
            add(url, "category", [record], *_digest(url, [record]))
        for listing in visible:
            record, sha256, size = self._listing_page(listing)
            add(f"{self.base_url}/listing/{listing.number}", "listing", [record], sha256, size)
        for vendor in self.vendors:
            url, records = self._vendor_page(vendor)
            add(url, "vendor", records, *_digest(url, records))
        return Night(self.night, started, unchanged, pages)

    # -- pages -----------------------------------------------------------------------------

    def _category_page(self, path: tuple[str, ...], count: int) -> tuple[str, Record]:
        slug = re.sub(r"[^a-z0-9]+", "-", " ".join(path).lower()).strip("-")
        shown = {"path": list(path), "category_id": slug, "listing_count": f"{count:,}"}
        values = {"path": list(path), "category_id": slug, "listing_count": count}
        return f"{self.base_url}/category/{slug}", _record("category", values, shown)

    def _listing_page(self, listing: _Listing) -> tuple[Record, str, int]:
        version = (listing.version, self._rates_version)
        if listing.cached is not None and listing.cached[0] == version:
            return listing.cached[1:]
        unit = f"/{listing.unit}" if listing.unit else ""
        fiat_shown = f"{listing.currency} {listing.amount:,.2f}{unit}"
        btc = (listing.amount * self.rates[listing.currency]).quantize(SATOSHI_SHOWN)
        btc_shown = f"{btc} BTC{unit}"
        fiat = Price(listing.amount, listing.currency, listing.unit, fiat_shown)
        stock_shown = "Unlimited" if listing.stock is None else str(listing.stock)
        shown = {**listing.static_shown, "prices": f"{fiat_shown} ({btc_shown})", "stock": stock_shown}
        values = {
            **listing.static_values,
            "prices": [fiat, Price(btc, "BTC", listing.unit, btc_shown)],
            "price": fiat,
            "stock": listing.stock,
        }
        record = _record("listing", values, shown)
        if not listing.static_rendering:
            url = f"{self.base_url}/listing/{listing.number}"
            listing.static_rendering = _rendering(url, [_record("listing", {}, listing.static_shown)])
        body = b"\n".join((listing.static_rendering, shown["prices"].encode(), stock_shown.encode()))
        sha256, size = hashlib.sha256(body).hexdigest(), len(body)
        listing.cached = (version, record, sha256, size)
        return record, sha256, size

    def _vendor_page(self, vendor: _Vendor) -> tuple[str, list[Record]]:
        level = 1 + min(9, vendor.sales // 150)
        trust = vendor.trust
        decorated = f"{vendor.key} ({vendor.sales})"
        shown: dict[str, Any] = {"vendor_id": vendor.key}
        values: dict[str, Any] = {"vendor_id": vendor.key, "name": vendor.key}
        if vendor.feedback_count:
            rating = Decimal(vendor.rating_sum / vendor.feedback_count).quantize(CENT)
            decorated += f" ( {rating} )"
            shown["rating"], values["rating"] = str(rating), rating
        last_seen = vendor.last_seen
        shown |= {
            "name": decorated,
            "level": str(level),
            "trust_level": str(trust),
            "sales": str(vendor.sales),
            "joined_on": f"{vendor.joined:%d/%m/%Y}",
            "last_seen": f"{last_seen:%d/%m/%Y %H:%M}",
            "status": STATUS_SHOWN[vendor.status],
            "feedback_count": str(vendor.feedback_count),
        }
        values |= {
            "level": level,
            "trust_level": trust,
            "sales": vendor.sales,
            "joined_on": vendor.joined,
            "last_seen": TimeSpan(last_seen, last_seen + timedelta(minutes=1)),
            "status": vendor.status,
            "feedback_count": vendor.feedback_count,
        }
        if vendor.armored and vendor.key_values:
            shown["pgp_key"], values["pgp_key"] = vendor.armored, vendor.key_values
            if vendor.shows_fingerprint:
                shown["fingerprint"] = group_fingerprint(vendor.key_values["fingerprint"])
                values["fingerprint"] = vendor.key_values["fingerprint"]
        records = [_record("vendor", values, shown)]
        records += [self._feedback_record(vendor, fb) for fb in vendor.feedback[: self.shape.feedback_shown]]
        return f"{self.base_url}/vendor/{vendor.key}", records

    def _feedback_record(self, vendor: _Vendor, feedback: _Feedback) -> Record:
        # A vanished listing's feedback keeps its title but loses the link.
        linked = feedback.listing in self.listings
        if linked not in feedback.records:
            shown: dict[str, Any] = {
                "vendor_id": vendor.key,
                "rating": str(feedback.rating),
                "posted": f"{feedback.posted:%d/%m/%Y}",
                "buyer": feedback.buyer,
                "text": feedback.text,
            }
            day = datetime(feedback.posted.year, feedback.posted.month, feedback.posted.day, tzinfo=UTC)
            values: dict[str, Any] = {
                "vendor_id": vendor.key,
                "rating": feedback.rating,
                "posted": TimeSpan(day, day + timedelta(days=1)),
                "buyer": feedback.buyer,
                "text": clean_text(feedback.text),
            }
            if linked:
                shown["listing_id"] = values["listing_id"] = str(feedback.listing)
            if feedback.usd is not None:
                price_shown = f"~ ${feedback.usd:,}"
                shown["price"], values["price"] = (
                    price_shown,
                    Price(Decimal(feedback.usd), "USD", None, price_shown),
                )
            feedback.records[linked] = _record("feedback", values, shown)
        return feedback.records[linked]

    # -- entities --------------------------------------------------------------------------

    def _add_vendor(self, joined: date, *, veteran: bool) -> None:
        rng = self.rng
        key = _vendor_name(rng)
        while key in self._vendor_keys:
            key = _vendor_name(rng) + str(rng.randint(2, 99))
        self._vendor_keys.add(key)
        sales = int(rng.paretovariate(1.1) * 20) if veteran else 0
        count = int(sales * self.shape.feedback_share)
        armored, key_values = None, None
        if rng.random() < 0.97:
            created = datetime(joined.year, joined.month, joined.day, tzinfo=UTC)
            armored = key_for(
                f"synthetic:{self.shape.seed}:{key}", f"{key} <{key.lower()}@synthetic.invalid>", created
            ).armored
            block = extract_key_blocks(armored)[0]
            key_values = {"armored": block, "fingerprint": fingerprint(block)}
        # A veteran was last seen before the first night; a newcomer on the night it joined.
        evening = self.shape.start if veteran else self._started_at()
        self.vendors.append(
            _Vendor(
                key=key,
                joined=joined,
                weight=rng.paretovariate(1.2),
                sales=sales,
                feedback_count=count,
                rating_sum=count * rng.uniform(4.3, 5.0),
                last_seen=_minute(evening - timedelta(minutes=rng.randint(5, 72 * 60))),
                armored=armored,
                key_values=key_values,
                shows_fingerprint=rng.random() < 0.5,
                trust=_trust(joined, evening.date()),
            )
        )

    def _add_listing(self) -> None:
        rng = self.rng
        active = [v for v in self.vendors if v.status == "active"]
        vendor = rng.choices(active, weights=[v.weight for v in active])[0]
        product = rng.choices(vocab.PRODUCTS, weights=vocab.PRODUCT_WEIGHTS)[0]
        quantity = rng.choice(product.quantities)
        title = rng.choice(product.titles).format(
            q=quantity, name=rng.choice(product.names), pct=rng.choice((70, 80, 85, 90, 92))
        )
        per_unit = (
            bool(product.per_unit_labels) and product.per_unit_labels[-1][1] == 1 and rng.random() < 0.2
        )
        unit = product.per_unit_labels[-1][0] if per_unit else None
        usd = Decimal(rng.uniform(*product.usd_per_unit)) * (1 if per_unit else quantity)
        currency = "EUR" if rng.random() < 0.15 else "USD"
        amount = max(CENT, (usd * (EUR_PER_USD if currency == "EUR" else 1)).quantize(CENT))
        blurbs = vocab.PRODUCT_BLURBS["digital" if product.digital else "default"]
        lines = [rng.choice(blurbs), *rng.sample(vocab.POLICY_LINES, 2)]
        if not product.digital:
            lines.insert(1, rng.choice(vocab.STEALTH_LINES))
        description = "\n".join(lines)
        path = vocab.CATEGORY_PATHS["hollowmere"][product.key]
        number = self._next_listing
        self._next_listing += 1
        ships_from = "Worldwide" if product.digital else rng.choice(SHIPS_FROM)
        ships_to = rng.choices([t for t, _ in SHIPS_TO], weights=[w for _, w in SHIPS_TO])[0]
        escrow = rng.random() < 0.8
        shown: dict[str, Any] = {
            "listing_id": str(number),
            "title": title,
            "description": description,
            "vendor": vendor.key,
            "vendor_id": vendor.key,
            "category": list(path),
            "ships_to": ships_to,
            "ships_from": ships_from,
            "escrow": "Yes" if escrow else "No (FE)",
        }
        values: dict[str, Any] = {
            "listing_id": str(number),
            "title": clean_text(title),
            "description": clean_text(description),
            "vendor": vendor.key,
            "vendor_id": vendor.key,
            "category": list(path),
            "ships_to": REGIONS[ships_to],
            "ships_from": REGIONS[ships_from],
            "escrow": escrow,
        }
        if ships_to == "Worldwide" and rng.random() < 0.3:
            excluded = rng.choice(EXCLUDED)
            shown["ships_to_excluded"], values["ships_to_excluded"] = excluded, REGIONS[excluded]
        if not product.digital:
            rows, options = [], []
            for name, days in rng.sample(vocab.SHIPPING_METHODS, rng.randint(1, 3)):
                label = f"{name} - {rng.choice(days)} days"
                free = rng.random() < 0.25
                fee = Decimal(0) if free else rng.choice(SHIPPING_PRICES)
                text = f"{label} - Free" if free else f"{label} - {currency} {fee:,.2f}"
                row = {"name": label, "price": text}
                rows.append(row)
                price = Price(fee, currency, None, text if free else f"{currency} {fee:,.2f}")
                options.append({"shown": row, "name": label, "price": price})
            shown["shipping_options"], values["shipping_options"] = rows, options
        stock = None if rng.random() < 0.4 else rng.randint(1, 200)
        self.listings[number] = _Listing(number, vendor, currency, unit, amount, stock, path, shown, values)

    def _seed_feedback(self, vendor: _Vendor) -> None:
        """The feedback a veteran vendor's page already shows on the first night, oldest first."""
        own = [listing for listing in self.listings.values() if listing.vendor is vendor]
        if not own or not vendor.feedback_count:
            return
        start = self.shape.start.date()
        for age in sorted(
            self.rng.sample(range(1, 120), min(self.shape.feedback_shown, vendor.feedback_count)),
            reverse=True,
        ):
            listing = self.rng.choice(own)
            usd = listing.amount if listing.currency == "USD" else listing.amount / EUR_PER_USD
            self._leave_feedback(
                vendor,
                listing.number,
                listing.static_values["title"],
                start - timedelta(days=age),
                int(usd),
                counted=True,
            )

    def _leave_feedback(
        self, vendor: _Vendor, listing: int, title: str, posted: date, usd: int, *, counted: bool = False
    ) -> None:
        """A new feedback on top of the vendor's page; `counted`: the vendor's totals already include it."""
        rng = self.rng
        keys = self._feedback_keys.setdefault(vendor.key, set())
        # The archive merges sightings with the same words, buyer, rating and day: keep each feedback unique.
        while True:
            rating = rng.choices([r for r, _ in FEEDBACK_RATINGS], weights=[w for _, w in FEEDBACK_RATINGS])[
                0
            ]
            text = rng.choice(vocab.FEEDBACK_TEXT[rating])
            buyer = f"{rng.choice('abcdefghijklmnopqrstuvwxyz')}...{rng.choice('0123456789abcdefghijk')}"
            if (buyer, text, rating, posted) not in keys:
                break
        keys.add((buyer, text, rating, posted))
        shown_usd = None if rng.random() < 0.3 else max(1, usd)
        vendor.feedback.insert(
            0, _Feedback(self._next_feedback, listing, title, rating, text, buyer, posted, shown_usd)
        )
        self._next_feedback += 1
        if not counted:
            vendor.feedback_count += 1
            vendor.rating_sum += rating


def _record(kind: str, values: dict[str, Any], shown: dict[str, Any]) -> Record:
    return Record(kind=kind, values=values, shown=shown, required=REQUIRED_FIELDS[kind])


def _rendering(url: str, records: list[Record]) -> bytes:
    """A page's canonical rendering: its URL and every shown string, in order."""
    return json.dumps(
        [url, [(r.kind, r.shown) for r in records]], sort_keys=True, ensure_ascii=False
    ).encode()


def _digest(url: str, records: list[Record]) -> tuple[str, int]:
    """SHA-256 and size of a page's canonical rendering."""
    body = _rendering(url, records)
    return hashlib.sha256(body).hexdigest(), len(body)


def _category_nodes() -> list[tuple[str, ...]]:
    paths = vocab.CATEGORY_PATHS["hollowmere"].values()
    return sorted({node for path in paths for node in _prefixes(path)})


def _prefixes(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [path[: n + 1] for n in range(len(path))]


def _vendor_name(rng: Random) -> str:
    head, tail = rng.choice(vocab.NAME_HEADS), rng.choice(vocab.NAME_TAILS)
    style = rng.random()
    if style < 0.5:
        return head + tail
    if style < 0.7:
        return f"{head.lower()}_{tail.lower()}"
    if style < 0.85:
        return (head + tail).upper()
    return "".join(rng.sample(vocab.NAME_SYLLABLES, 3)) + str(rng.randint(1, 99))


def _trust(joined: date, today: date) -> int:
    return 1 + min(4, (today - joined).days // 180)


def _onion(rng: Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(56))


def _minute(instant: datetime) -> datetime:
    return instant.replace(second=0, microsecond=0)


def _second(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)
