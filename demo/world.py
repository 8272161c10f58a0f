"""The simulated world: actors, vendors, listings, sales and feedback, generated once, viewed per day.

Every entity's whole life (join, vacations, ban, listing chains, price schedule, sale and
feedback instants) is drawn once from random streams named by stable strings, so a day is a
filter over fixed histories: pages of day 5 and day 6 describe the same world one day apart.
`World.day()` returns the values a page shows (already rounded, masked and hidden the way the
market's software does), so skins only format and the truth only serialises.
"""

from __future__ import annotations

import bisect
import math
import string
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from random import Random
from typing import Any

from demo import clock, money, vocab
from demo.pgp import PgpKey, key_for
from demo.regions import DESTINATION_SETS, EXCLUSION_SETS, Place, place
from demo.rng import rng

MARKETS = ("hollowmere", "copperline")


@dataclass(frozen=True)
class Scale:
    """Size of the world; "small" keeps a market-day around 300 pages."""

    vendors: int = 30  # vendor pages on day 0
    listings: int = 160  # listings visible on day 0 (approximately)
    shared_actors: int = 4  # actors on both markets under different names, sharing one PGP key
    new_vendors: int = 4  # vendors per market who join after day 0
    history_days: int = 720  # earliest vendor join, in days before day 0
    horizon_days: int = 120  # the simulated future; after it no listing ends and nothing is sold
    sales_per_listing_day: float = 0.018
    feedback_share: float = 0.6
    slot_factor: float = 1.18  # listing slots per target listing (gaps, vacations and bans hide some)


SCALES: dict[str, Scale] = {
    "small": Scale(),
    "large": Scale(vendors=300, listings=2100, new_vendors=30),  # about 2,000 visible on day 0
}


def resolve_scale(scale: str | dict[str, Any] | Scale) -> Scale:
    """Accept a preset name, a dict of overrides on "small", or a Scale."""
    if isinstance(scale, Scale):
        return scale
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(
                f"unknown scale {scale!r}: use one of {sorted(SCALES)} or a dict of Scale fields"
            )
        return SCALES[scale]
    unknown = set(scale) - set(Scale.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown scale fields {sorted(unknown)}: valid are {sorted(Scale.__dataclass_fields__)}"
        )
    return replace(SCALES["small"], **scale)


@dataclass(frozen=True)
class MarketRules:
    """Per-market software behaviour that changes what a page shows, not only how it looks."""

    hides_vacation_listings: bool  # otherwise listings stay up with a vacation flag
    feedback_price_approx_usd: bool  # "~ $30" instead of the exact price in the vendor's currency
    buyer_mask: str  # joiner between first and last letter of the buyer name
    level_min_sales: int  # below this the level is not shown (null)
    trust_needs_verification: bool  # unverified vendors show no trust level (null)


RULES: dict[str, MarketRules] = {
    "hollowmere": MarketRules(True, True, "...", 0, False),
    "copperline": MarketRules(False, False, "***", 5, True),
}

COUNTRY_CURRENCY = {
    "US": "USD",
    "GB": "GBP",
    "AU": "AUD",
    "CA": "CAD",
    "CO": "USD",
    "CN": "USD",
    "IN": "USD",
    "KR": "USD",
}
COUNTRY_WEIGHTS = {
    "US": 5, "GB": 3, "DE": 4, "NL": 4, "FR": 2, "ES": 1, "PL": 1, "CZ": 1, "BE": 1,
    "CA": 2, "AU": 2, "CH": 1, "SE": 1, "CN": 1, "IN": 1, "CO": 1, "KR": 1,
}  # fmt: skip
EUROPEAN = {"DE", "NL", "FR", "ES", "PL", "CZ", "BE", "CH", "SE", "GB"}
RATING_WEIGHTS = {"good": (2, 2, 3, 10, 83), "scam": (30, 10, 10, 10, 40)}  # for ratings 1..5


@dataclass(frozen=True)
class Actor:
    """A person behind one or more vendor accounts; shared actors reuse their key across markets."""

    index: int
    names: dict[str, str]  # market -> vendor name
    key: PgpKey | None


@dataclass(frozen=True)
class ShippingOption:
    """A shipping method with its price in the listing's currency; days None for no stated time."""

    method: str
    days: int | None
    price: Decimal

    @property
    def name(self) -> str:
        """The option as named on the page, without its price ("Standard - 7 days")."""
        if self.days is None:
            return self.method
        return f"{self.method} - {self.days} day{'s' if self.days != 1 else ''}"


@dataclass(frozen=True)
class Feedback:
    """A buyer's rating, fixed at posting time; prices are in the vendor's currency."""

    vendor_id: str
    listing_id: str
    posted_at: datetime
    rating: int
    text: str
    buyer: str  # already masked the way the market prints it
    price: Decimal | None  # None when the buyer chose to hide the order value


@dataclass
class Listing:
    """A listing's whole life; `price_on`, `live_on` and `stock_at` read it on a given day."""

    id: str
    order: int  # creation order on its market; indexes sort newest first
    vendor_id: str
    product: str
    category: tuple[str, ...]
    title: str  # raw, may contain doubled spaces
    description: str  # raw, multi-line
    currency: str
    unit: str | None  # "g", "10 pills" for per-unit prices
    prices: tuple[tuple[int, Decimal], ...]  # (first day, price), sorted
    start_day: int
    end_day: int | None  # first day it is gone; None: still up at the horizon
    stock_cap: int | None  # None: unlimited
    escrow: bool
    digital: bool
    ships_from: tuple[Place, ...]
    ships_to: tuple[Place, ...]
    excluded: tuple[Place, ...]
    shipping: tuple[ShippingOption, ...]
    sales: tuple[datetime, ...] = ()

    def live_on(self, day: int) -> bool:
        """Whether the vendor keeps it up on that day (vendor status is checked separately)."""
        return self.start_day <= day and (self.end_day is None or day < self.end_day)

    def price_on(self, day: int) -> Decimal:
        """The price in force on a day (the last change on or before it)."""
        days = [d for d, _ in self.prices]
        return self.prices[max(0, bisect.bisect_right(days, day) - 1)][1]

    def stock_at(self, instant: datetime) -> int | None:
        """Stock left: sales draw it down and the vendor restocks to the cap when it would hit zero."""
        if self.stock_cap is None:
            return None
        sold = bisect.bisect_right(self.sales, instant)
        return self.stock_cap - sold % self.stock_cap


@dataclass
class Vendor:
    """A vendor account's whole life on one market."""

    id: str
    name: str
    actor: int
    key: PgpKey | None
    shows_fingerprint: bool
    joined_at: datetime
    country: str
    currency: str
    spelling: int  # which spelling of place names this vendor tends to type
    vacations: tuple[tuple[int, int], ...]  # [start, end) days
    ban_day: int | None
    verified: bool
    popularity: float
    scammer: bool
    sales: tuple[datetime, ...] = ()
    feedback: tuple[Feedback, ...] = ()  # oldest first

    @property
    def join_day(self) -> int:
        """Day of joining (the vendor page exists from this day on)."""
        return clock.day_of(self.joined_at)

    def status_on(self, day: int) -> str:
        """The status on a day: "banned", "vacation" or "active"."""
        if self.ban_day is not None and day >= self.ban_day:
            return "banned"
        if any(start <= day < end for start, end in self.vacations):
            return "vacation"
        return "active"

    def can_sell_at(self, instant: datetime) -> bool:
        """False while on vacation or after the ban."""
        day = clock.day_of(instant)
        return self.status_on(day) == "active" and instant >= self.joined_at


@dataclass(frozen=True)
class Category:
    """A node of a market's category tree (paths are fixed; counts come with the day)."""

    id: str
    name: str
    path: tuple[str, ...]
    parent_id: str | None

    @property
    def depth(self) -> int:
        """0 for roots."""
        return len(self.path) - 1


# ---------------------------------------------------------------------------------------------
# Day views: exactly what a page shows on one day.


@dataclass(frozen=True)
class CategoryView:
    """A category with its child ids and the count shown beside it."""

    category: Category
    child_ids: tuple[str, ...]
    count: int

    @property
    def id(self) -> str:
        """Market-side id, as in the URL."""
        return self.category.id


@dataclass(frozen=True)
class FeedbackView:
    """A feedback row as shown: link only if the listing is up, price as the market prints it."""

    feedback: Feedback
    listing_id: str | None
    listing_title: str
    price_amount: Decimal | None
    price_currency: str | None


@dataclass(frozen=True)
class VendorView:
    """A vendor page's values on a day."""

    vendor: Vendor
    status: str
    sales: int
    level: int | None
    trust_level: int | None
    rating: Decimal | None  # mean of visible ratings, two decimals
    positive_pct: int | None  # share of 4 and 5 star ratings, floor percent
    last_seen: datetime
    feedback: tuple[FeedbackView, ...]  # newest first

    @property
    def id(self) -> str:
        """Market-side id, as in the URL."""
        return self.vendor.id


@dataclass(frozen=True)
class ListingView:
    """A listing page's values on a day."""

    listing: Listing
    vendor: VendorView
    category_id: str
    price: Decimal
    stock: int | None
    vendor_away: bool  # shown with a vacation banner (markets that keep such listings up)

    @property
    def id(self) -> str:
        """Market-side id, as in the URL."""
        return self.listing.id


@dataclass(frozen=True)
class MarketDay:
    """Everything visible on one market on one day."""

    market: str
    day: int
    seed: int
    now: datetime
    rates: money.Rates
    categories: tuple[CategoryView, ...]  # pre-order
    listings: tuple[ListingView, ...]  # newest first
    vendors: tuple[VendorView, ...]  # by join time
    _listing_index: dict[str, ListingView] = field(repr=False, compare=False)
    _vendor_index: dict[str, VendorView] = field(repr=False, compare=False)
    _category_index: dict[str, CategoryView] = field(repr=False, compare=False)
    _by_category: dict[str, tuple[ListingView, ...]] = field(repr=False, compare=False)

    def listing(self, listing_id: str) -> ListingView | None:
        """The visible listing with this id, or None."""
        return self._listing_index.get(listing_id)

    def vendor(self, vendor_id: str) -> VendorView | None:
        """The vendor page with this id, or None."""
        return self._vendor_index.get(vendor_id)

    def category(self, category_id: str) -> CategoryView | None:
        """The category with this id, or None."""
        return self._category_index.get(category_id)

    def listings_in(self, category_id: str) -> tuple[ListingView, ...]:
        """Visible listings in a category and its descendants, newest first."""
        return self._by_category.get(category_id, ())

    def roots(self) -> tuple[CategoryView, ...]:
        """Top-level categories."""
        return tuple(c for c in self.categories if c.category.parent_id is None)

    def path_views(self, category_id: str) -> tuple[CategoryView, ...]:
        """The category and its ancestors, root first (for breadcrumbs)."""
        chain: list[CategoryView] = []
        current: str | None = category_id
        while current is not None:
            view = self._category_index[current]
            chain.append(view)
            current = view.category.parent_id
        return tuple(reversed(chain))


# ---------------------------------------------------------------------------------------------
# Generation.


def _handle(r: Random) -> str:
    """Invent one vendor handle in one of the styles seen on markets."""
    head, tail = r.choice(vocab.NAME_HEADS), r.choice(vocab.NAME_TAILS)
    style = r.randrange(5)
    if style == 0:
        return head + tail
    if style == 1:
        return f"{head.lower()}_{tail.lower()}"
    if style == 2:
        return "".join(r.choice(vocab.NAME_SYLLABLES) for _ in range(3)).upper()
    if style == 3:
        return f"{head.lower()}{tail.lower()}{r.choice(('420', '24', '77', '88', '101', '7'))}"
    return f"{head}{tail}Shop"


def _alias(handle: str, r: Random) -> str:
    """A similar but different name for the same actor on another market."""
    forms = (
        f"{handle.lower()}_official",
        f"the{handle}",
        f"{handle}2",
        f"real_{handle.lower()}",
        f"{handle.upper()}_EU",
    )
    return r.choice(forms)


def _unique(make: Any, taken: set[str]) -> str:
    """Call make() until it returns a name not taken (case-insensitively), then reserve it."""
    while True:
        name = make()
        if name.lower() not in taken:
            taken.add(name.lower())
            return name


def _actors(seed: int, scale: Scale) -> list[Actor]:
    """The global population: shared actors first, then each market's own vendors."""
    per_market = scale.vendors + scale.new_vendors
    if not 0 <= scale.shared_actors <= per_market:
        raise ValueError("shared_actors must be between 0 and vendors + new_vendors")
    taken: set[str] = set()
    actors: list[Actor] = []
    total = 2 * per_market - scale.shared_actors
    for i in range(total):
        r = rng(seed, "actor", i)
        handle = _unique(lambda r=r: _handle(r), taken)
        if i < scale.shared_actors:
            names = {MARKETS[0]: handle, MARKETS[1]: _unique(lambda r=r, h=handle: _alias(h, r), taken)}
        elif i < per_market:
            names = {MARKETS[0]: handle}
        else:
            names = {MARKETS[1]: handle}
        key = None
        if i < scale.shared_actors or r.random() < 0.88:
            # Keys predate every join, so no vendor shows a key created after they arrived.
            days_before = scale.history_days + r.randint(30, 400)
            created = clock.day_start(-days_before) + timedelta(seconds=r.randrange(86_400))
            key = key_for(f"{seed}:actor:{i}", f"{handle} <{handle.lower()}@demo.invalid>", created)
        actors.append(Actor(i, names, key))
    return actors


def _nice(amount: Decimal, r: Random) -> Decimal:
    """Round a price the way vendors do: whole, half, .99 or exact cents."""
    style = r.randrange(4)
    if style == 0:
        value = amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    elif style == 1:
        value = (amount * 2).quantize(Decimal("1"), rounding=ROUND_HALF_UP) / 2
    elif style == 2:
        value = amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP) - Decimal("0.01")
    else:
        value = amount
    return money.cents(max(value, Decimal("0.50")))


def _vendors(seed: int, market: str, scale: Scale, actors: list[Actor]) -> list[Vendor]:
    """One market's vendors with their join, vacation and ban histories."""
    mine = [a for a in actors if market in a.names]
    joiners = {a.index for a in mine[-scale.new_vendors :]} if scale.new_vendors else set()
    rules = RULES[market]
    drafts: list[Vendor] = []
    joiner_rank = {idx: k for k, idx in enumerate(sorted(joiners))}
    for actor in mine:
        r = rng(seed, market, "vendor", actor.index)
        if actor.index in joiner_rank:
            # The first newcomer arrives within the first week so short crawls see a join.
            k = joiner_rank[actor.index]
            join_day = r.randint(1, 6) if k == 0 else r.randint(7, max(8, scale.horizon_days // 2))
            joined_at = clock.day_start(join_day) + timedelta(seconds=r.randrange(12 * 3600))
        else:
            join_day = -r.randint(20, scale.history_days)
            joined_at = clock.day_start(join_day) + timedelta(seconds=r.randrange(86_400))
        country = r.choices(list(COUNTRY_WEIGHTS), weights=list(COUNTRY_WEIGHTS.values()))[0]
        vacations: list[tuple[int, int]] = []
        for _ in range(r.choice((0, 0, 1, 1, 2))):
            start = r.randint(join_day + 20, join_day + 20 + scale.history_days + scale.horizon_days)
            vacations.append((start, start + r.randint(3, 21)))
        ban_day = None
        if r.random() < 0.06:
            ban_day = r.randint(join_day + 60, max(join_day + 61, scale.horizon_days))
        drafts.append(
            Vendor(
                id="",
                name=actor.names[market],
                actor=actor.index,
                key=actor.key if (actor.index < scale.shared_actors or r.random() < 0.93) else None,
                shows_fingerprint=r.random() < 0.4,
                joined_at=joined_at,
                country=country,
                currency=COUNTRY_CURRENCY.get(country, "EUR" if country in EUROPEAN else "USD"),
                spelling=r.randrange(4),
                vacations=tuple(sorted(vacations)),
                ban_day=ban_day,
                verified=not rules.trust_needs_verification or r.random() < 0.7,
                popularity=math.exp(r.gauss(0, 0.6)),
                scammer=r.random() < 0.05,
            )
        )
    _force_early_events(seed, market, drafts)
    _ensure_variety(seed, market, drafts)
    drafts.sort(key=lambda v: v.joined_at)
    r = rng(seed, market, "vendor-ids")
    next_id = 1000 + r.randint(0, 80)
    for v in drafts:
        if market == "hollowmere":
            v.id = v.name  # hollowmere addresses vendors by name
        else:
            v.id = str(next_id)
            next_id += r.randint(1, 40)
    return drafts


def _ensure_variety(seed: int, market: str, vendors: list[Vendor]) -> None:
    """Make every fiat and Korea's comma-containing name appear on each market, whatever the seed.

    Only vendors who are up from before day 0 and never banned are recast, so the variety is on
    the pages of every day.
    """
    steady = [v for v in vendors if v.ban_day is None and v.join_day < 0]
    korean = steady[len(steady) // 2]
    korean.country, korean.currency, korean.spelling = "KR", "USD", 0
    home = {"USD": "US", "EUR": "DE", "GBP": "GB", "AUD": "AU", "CAD": "CA"}
    r = rng(seed, market, "variety")
    for currency, country in home.items():
        if all(v.currency != currency or v not in steady for v in vendors):
            common = [v for v in steady if sum(w.currency == v.currency for w in steady) > 1]
            chosen = r.choice([v for v in common if v is not korean])
            chosen.country, chosen.currency = country, currency


def _force_early_events(seed: int, market: str, vendors: list[Vendor]) -> None:
    """Guarantee a vacation and a ban within the first ten days, whatever the seed."""
    r = rng(seed, market, "early-events")
    veterans = [v for v in vendors if v.join_day < -30 and v.ban_day is None]
    away, banned = r.sample(veterans, 2)
    start = r.randint(2, 6)
    # Drop the vendor's own vacations that would overlap the forced one.
    kept = [x for x in away.vacations if x[1] < start or x[0] > start + 12]
    away.vacations = tuple(sorted([*kept, (start, start + r.randint(4, 10))]))
    banned.ban_day = r.randint(3, 9)
    banned.vacations = tuple(x for x in banned.vacations if x[1] < banned.ban_day)


def _places(codes: tuple[str, ...], spelling: int, r: Random) -> tuple[Place, ...]:
    """Spell a set of codes the way this vendor types them, sometimes switching style mid-list."""
    out = []
    for code in codes:
        variant = spelling if r.random() < 0.7 else r.randrange(4)
        out.append(place(code, variant))
    return tuple(out)


def _destinations(vendor: Vendor, r: Random) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Where a physical listing ships to and which countries are excluded."""
    c = vendor.country
    if c in ("US", "CA"):
        options = [("US",), ("US", "CA"), ("NORTH_AMERICA",), ("WW",), ("US", "WW"), (c,)]
    elif c in ("AU",):
        options = [("AU", "NZ"), ("OCEANIA",), ("AU",), ("WW",)]
    elif c in EUROPEAN:
        options = [("WW",), ("EU",), ("EUROPE",), ("EU", "GB"), (c, "EU"), ("WW",), (c,)]
    elif c == "KR":
        options = [("KR", "ASIA"), ("ASIA",), ("WW",)]
    else:
        options = [("WW",), ("WW",), ("NORTH_AMERICA", "EUROPE")]
    dest = r.choice([*options, r.choice(DESTINATION_SETS)])
    excluded: tuple[str, ...] = ()
    if dest == ("WW",) and r.random() < 0.35:
        excluded = r.choice(EXCLUSION_SETS)
    if r.random() < 0.12:
        dest = (dest[0], *dest)  # vendors repeat themselves: "Worldwide, Worldwide"
    return dest, excluded


def _shipping(currency: str, r: Random) -> tuple[ShippingOption, ...]:
    """One to three shipping methods, sometimes led by a free option."""
    usd = {"Standard": (0, 8), "Tracked": (8, 15), "Express": (15, 30), "Next day": (20, 35),
           "Economy": (0, 4), "Stealth+ Tracked": (10, 20)}  # fmt: skip
    options: list[ShippingOption] = []
    if r.random() < 0.25:
        options.append(ShippingOption("Free shipping", None, money.cents(0)))
    for method, days in r.sample(vocab.SHIPPING_METHODS, r.randint(1, 3)):
        low, high = usd[method]
        amount = money.convert(Decimal(str(round(r.uniform(low, high) * 2) / 2)), "USD", currency)
        amount = (amount * 2).quantize(Decimal("1"), rounding=ROUND_HALF_UP) / 2
        options.append(ShippingOption(method, r.choice(days), money.cents(amount)))
    return tuple(options)


def _description(product: vocab.Product, title: str, r: Random) -> str:
    """A multi-line description with the stray whitespace real vendors leave in."""
    blurbs = vocab.PRODUCT_BLURBS["digital" if product.digital else "default"]
    lines = [title.upper() if r.random() < 0.3 else title, "", r.choice(blurbs)]
    if not product.digital:
        lines += ["", *r.sample(vocab.STEALTH_LINES, 2)]
    lines += ["", "  * " + "\n  * ".join(r.sample(vocab.POLICY_LINES, 2))]
    if r.random() < 0.3:
        lines.append("Questions?   Message us   before ordering & allow 24h for replies.")
    return "\n".join(lines)


@dataclass
class _Draft:
    """A listing before its market-side id is known, with its sales and feedback drafts."""

    listing: Listing
    sort_key: tuple[int, int, int, int]
    feedback: list[tuple[datetime, int, str, str, Decimal | None]]


def _listing_draft(
    seed: int, market: str, scale: Scale, vendor: Vendor, vendor_rank: int, slot: int, k: int,
    start: int, end: int | None, product_key: str,
) -> _Draft:  # fmt: skip
    """Draw one listing's content, price schedule, sales and feedback."""
    r = rng(seed, market, "listing", vendor.actor, slot, k)
    product = vocab.PRODUCT_BY_KEY[product_key]
    q = r.choice(product.quantities)
    title = r.choice(product.titles).format(q=q, name=r.choice(product.names), pct=r.randint(70, 96))
    if r.random() < 0.1:
        title = title.replace(" ", "  ", 1)  # doubled spaces survive in real titles
    unit = None
    usd_unit = Decimal(str(round(r.uniform(*product.usd_per_unit), 2)))
    if product.per_unit_labels and r.random() < 0.35:
        unit, size = r.choice(product.per_unit_labels)
        usd = usd_unit * size
    else:
        usd = usd_unit * q * Decimal(str(round(q**-0.08, 4)))
    price = _nice(money.convert(usd, "USD", vendor.currency), r)
    stop = end if end is not None else scale.horizon_days
    prices = [(start, price)]
    for _ in range(max(0, stop - start) // 45 + 1):
        if r.random() < 0.5 and stop - start > 2:
            change_day = r.randint(start + 1, stop - 1)
            factor = Decimal(str(round(r.uniform(0.8, 1.2), 3)))
            prices.append((change_day, _nice(price * factor, r)))
    prices.sort(key=lambda p: p[0])
    prices = [p for i, p in enumerate(prices) if i == 0 or p[0] != prices[i - 1][0]]

    if product.digital:
        ships_from, ships_to, excluded, shipping = (place("WW", vendor.spelling),), (place("WW", 0),), (), ()
    else:
        dest, excl = _destinations(vendor, r)
        ships_from = (place(vendor.country, vendor.spelling if r.random() < 0.8 else r.randrange(4)),)
        ships_to, excluded = _places(dest, vendor.spelling, r), _places(excl, vendor.spelling, r)
        shipping = _shipping(vendor.currency, r)

    listing = Listing(
        id="",
        order=0,
        vendor_id="",
        product=product_key,
        category=vocab.CATEGORY_PATHS[market][product_key],
        title=title,
        description=_description(product, title, r),
        currency=vendor.currency,
        unit=unit,
        prices=tuple(prices),
        start_day=start,
        end_day=end,
        stock_cap=None if product.digital or r.random() < 0.3 else r.randint(5, 120),
        escrow=r.random() < 0.7,
        digital=product.digital,
        ships_from=ships_from,
        ships_to=ships_to,
        excluded=excluded,
        shipping=shipping,
    )

    # Sales are a Poisson process over the listing's life, minus vacations and the time after a ban.
    rate = scale.sales_per_listing_day * vendor.popularity * r.uniform(0.5, 1.5)
    sales: list[datetime] = []
    feedback: list[tuple[datetime, int, str, str, Decimal | None]] = []
    t = float(start)
    weights = RATING_WEIGHTS["scam" if vendor.scammer else "good"]
    ban_at = clock.day_start(vendor.ban_day) if vendor.ban_day is not None else None
    while rate > 0:
        t += r.expovariate(rate)
        if t >= stop:
            break
        at = clock.day_start(0) + timedelta(seconds=round(t * 86_400))
        if not vendor.can_sell_at(at):
            continue
        sales.append(at)
        if r.random() >= scale.feedback_share:
            continue
        posted = at + timedelta(seconds=r.randint(2 * 3600, 12 * 86_400))
        if ban_at is not None and posted >= ban_at:
            continue
        rating = r.choices(range(1, 6), weights=weights)[0]
        units = r.choice((1, 2, 3, 5, 10)) if unit else 1
        paid = None if r.random() < 0.15 else listing.price_on(clock.day_of(at)) * units
        buyer = "".join(r.choice(vocab.BUYER_SYLLABLES) for _ in range(r.randint(2, 3)))
        buyer = (buyer.capitalize() if r.random() < 0.4 else buyer) + (
            str(r.randint(0, 99)) if r.random() < 0.5 else ""
        )
        masked = buyer[0] + RULES[market].buyer_mask + buyer[-1]
        feedback.append((posted, rating, r.choice(vocab.FEEDBACK_TEXT[rating]), masked, paid))
    listing.sales = tuple(sales)
    return _Draft(listing, (start, vendor_rank, slot, k), feedback)


def _listings(seed: int, market: str, scale: Scale, vendors: list[Vendor]) -> list[Listing]:
    """Every listing a market ever had, as chains of relistings in each vendor's slots."""
    r = rng(seed, market, "slots")
    total_slots = max(len(vendors), round(scale.listings * scale.slot_factor))
    weights = [v.popularity for v in vendors]
    slots = [1] * len(vendors)
    for i in r.choices(range(len(vendors)), weights=weights, k=total_slots - len(vendors)):
        slots[i] += 1
    products = [p.key for p in vocab.PRODUCTS]
    drafts: list[tuple[Vendor, _Draft]] = []
    for rank, (vendor, n_slots) in enumerate(zip(vendors, slots, strict=True)):
        vr = rng(seed, market, "specialty", vendor.actor)
        specialty = vr.choices(products, weights=vocab.PRODUCT_WEIGHTS, k=vr.randint(1, 3))
        limit = scale.horizon_days if vendor.ban_day is None else min(vendor.ban_day, scale.horizon_days)
        for slot in range(n_slots):
            sr = rng(seed, market, "chain", vendor.actor, slot)
            day, k = vendor.join_day + sr.randint(0, 14), 0
            while day < limit:
                life = max(4, int(sr.expovariate(1 / 150)))
                end: int | None = day + life
                if vendor.ban_day is not None:
                    end = min(end, vendor.ban_day)  # type: ignore[type-var]
                if end is not None and end >= scale.horizon_days:
                    end = None
                draft = _listing_draft(
                    seed, market, scale, vendor, rank, slot, k, day, end, sr.choice(specialty)
                )
                drafts.append((vendor, draft))
                if end is None:
                    break
                day, k = end + sr.randint(0, 10), k + 1

    # Ids grow with creation time, as on real markets.
    drafts.sort(key=lambda vd: vd[1].sort_key)
    ir = rng(seed, market, "listing-ids")
    next_number = 20_000 + ir.randint(0, 999)
    used: set[str] = set()
    listings: list[Listing] = []
    feedback_by_vendor: dict[str, list[Feedback]] = {}
    sales_by_vendor: dict[str, list[datetime]] = {}
    for order, (vendor, draft) in enumerate(drafts):
        listing = draft.listing
        if market == "hollowmere":
            listing.id = str(next_number)
            next_number += ir.randint(1, 9)
        else:
            listing.id = _unique(
                lambda: "".join(ir.choices(string.ascii_lowercase + string.digits, k=8)), used
            )
        listing.order = order
        listing.vendor_id = vendor.id
        listings.append(listing)
        sales_by_vendor.setdefault(vendor.id, []).extend(listing.sales)
        feedback_by_vendor.setdefault(vendor.id, []).extend(
            Feedback(vendor.id, listing.id, posted, rating, text, buyer, paid)
            for posted, rating, text, buyer, paid in draft.feedback
        )
    for vendor in vendors:
        vendor.sales = tuple(sorted(sales_by_vendor.get(vendor.id, [])))
        vendor.feedback = tuple(sorted(feedback_by_vendor.get(vendor.id, []), key=lambda f: f.posted_at))
    return listings


def _slug(text: str) -> str:
    """URL slug of a category name ("Buds & Flowers" -> "buds-and-flowers")."""
    text = text.lower().replace("&", "and").replace("+", "plus")
    return "-".join("".join(ch if ch.isalnum() else " " for ch in text).split())


def _categories(market: str) -> list[Category]:
    """A market's category tree in pre-order, built from the product paths."""
    paths: list[tuple[str, ...]] = []
    for full in vocab.CATEGORY_PATHS[market].values():
        for depth in range(1, len(full) + 1):
            if full[:depth] not in paths:
                paths.append(full[:depth])
    ordered = sorted(paths, key=lambda p: [paths.index(p[: i + 1]) for i in range(len(p))])
    ids: dict[tuple[str, ...], str] = {}
    out = []
    for i, path in enumerate(ordered):
        ids[path] = "-".join(_slug(p) for p in path) if market == "hollowmere" else str(100 + 7 * i)
        out.append(Category(ids[path], path[-1], path, ids.get(path[:-1]) if len(path) > 1 else None))
    return out


# ---------------------------------------------------------------------------------------------
# The world and its days.


class World:
    """All markets of one seed; `day()` gives what is visible on a market on a day."""

    def __init__(self, seed: int = 1, scale: str | dict[str, Any] | Scale = "small") -> None:
        self.seed = seed
        self.scale = resolve_scale(scale)
        self.actors = _actors(seed, self.scale)
        self.vendors: dict[str, dict[str, Vendor]] = {}
        self.listings: dict[str, dict[str, Listing]] = {}
        self.categories: dict[str, tuple[Category, ...]] = {}
        for market in MARKETS:
            vendors = _vendors(seed, market, self.scale, self.actors)
            listings = _listings(seed, market, self.scale, vendors)
            self.vendors[market] = {v.id: v for v in vendors}
            self.listings[market] = {item.id: item for item in listings}
            self.categories[market] = tuple(_categories(market))
        self._days: dict[tuple[str, int], MarketDay] = {}

    def day(self, market: str, day: int) -> MarketDay:
        """The market as visible on a day (cached)."""
        if market not in MARKETS:
            raise ValueError(f"unknown market {market!r}: use one of {MARKETS}")
        key = (market, day)
        if key not in self._days:
            self._days[key] = _market_day(self, market, day)
        return self._days[key]


@lru_cache(maxsize=8)
def get_world(seed: int = 1, scale: Scale = SCALES["small"]) -> World:
    """A shared World per (seed, scale): building one takes a noticeable fraction of a second."""
    return World(seed, scale)


def world_for(seed: int = 1, scale: str | dict[str, Any] | Scale = "small") -> World:
    """Resolve the scale and return the cached World."""
    return get_world(seed, resolve_scale(scale))


def _last_seen(seed: int, market: str, vendor: Vendor, day: int, status: str) -> datetime:
    """Exact last-seen instant: recent for active vendors, frozen while away or after a ban."""
    if status == "banned":
        assert vendor.ban_day is not None
        anchor = clock.day_start(vendor.ban_day)
    elif status == "vacation":
        anchor = clock.day_start(max(s for s, e in vendor.vacations if s <= day < e))
    else:
        anchor = clock.now(day)
    # Less than a day back, so the active last-seen moves forward from one day to the next.
    back = rng(seed, market, "seen", vendor.id, day if status == "active" else anchor.isoformat()).randint(
        0, 20 * 3600
    )
    return max(vendor.joined_at, anchor - timedelta(seconds=back))


def _rating(ratings: list[int]) -> Decimal | None:
    """Mean rating with two decimals, half up; None without feedback."""
    if not ratings:
        return None
    return (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _market_day(world: World, market: str, day: int) -> MarketDay:
    """Filter the fixed histories down to one day and compute every shown value."""
    rules = RULES[market]
    now = clock.now(day)
    seed = world.seed

    statuses = {v.id: v.status_on(day) for v in world.vendors[market].values() if v.join_day <= day}
    visible: list[Listing] = []
    for item in world.listings[market].values():
        status = statuses.get(item.vendor_id)
        if not item.live_on(day) or status in (None, "banned"):
            continue
        if status == "vacation" and rules.hides_vacation_listings:
            continue
        visible.append(item)
    visible_ids = {item.id: item for item in visible}
    all_listings = world.listings[market]

    vendor_views: dict[str, VendorView] = {}
    for vendor in sorted(world.vendors[market].values(), key=lambda v: v.joined_at):
        if vendor.id not in statuses:
            continue
        shown = [f for f in vendor.feedback if f.posted_at <= now]
        rows = []
        for fb in reversed(shown):
            if fb.price is None:
                amount, currency = None, None
            elif rules.feedback_price_approx_usd:
                amount = money.to_usd(fb.price, vendor.currency).quantize(
                    Decimal("1"), rounding=ROUND_HALF_UP
                )
                currency = "USD"
            else:
                amount, currency = fb.price, vendor.currency
            link = fb.listing_id if fb.listing_id in visible_ids else None
            rows.append(FeedbackView(fb, link, all_listings[fb.listing_id].title, amount, currency))
        sales = bisect.bisect_right(vendor.sales, now)
        age_days = (now - vendor.joined_at).days
        ratings = [f.rating for f in shown]
        vendor_views[vendor.id] = VendorView(
            vendor=vendor,
            status=statuses[vendor.id],
            sales=sales,
            level=None if sales < rules.level_min_sales else min(10, 1 + sales // 20),
            trust_level=min(6, 1 + sales // 60 + age_days // 180) if vendor.verified else None,
            rating=_rating(ratings),
            positive_pct=(100 * sum(1 for x in ratings if x >= 4) // len(ratings)) if ratings else None,
            last_seen=_last_seen(seed, market, vendor, day, statuses[vendor.id]),
            feedback=tuple(rows),
        )

    categories = world.categories[market]
    by_path = {c.path: c for c in categories}
    listing_views = []
    for item in sorted(visible, key=lambda x: -x.order):
        vv = vendor_views[item.vendor_id]
        listing_views.append(
            ListingView(
                listing=item,
                vendor=vv,
                category_id=by_path[item.category].id,
                price=item.price_on(day),
                stock=item.stock_at(now),
                vendor_away=vv.status == "vacation",
            )
        )
    by_category: dict[str, list[ListingView]] = {c.id: [] for c in categories}
    for lv in listing_views:
        path = lv.listing.category
        for depth in range(1, len(path) + 1):
            by_category[by_path[path[:depth]].id].append(lv)
    children: dict[str, list[str]] = {c.id: [] for c in categories}
    for c in categories:
        if c.parent_id is not None:
            children[c.parent_id].append(c.id)
    category_views = tuple(CategoryView(c, tuple(children[c.id]), len(by_category[c.id])) for c in categories)

    return MarketDay(
        market=market,
        day=day,
        seed=seed,
        now=now,
        rates=money.rates(seed, day),
        categories=category_views,
        listings=tuple(listing_views),
        vendors=tuple(vendor_views.values()),
        _listing_index={lv.id: lv for lv in listing_views},
        _vendor_index=vendor_views,
        _category_index={cv.id: cv for cv in category_views},
        _by_category={k: tuple(v) for k, v in by_category.items()},
    )
