"""The copperline skin: bootstrap-style cards with run-on "Label : value" text and wordy dates.

Modelled on card-layout markets: detail rows that read "Origin Country : Germany Ship to :
Worldwide except Australia, Canada Payment : Full Escrow ...", prices with symbols before or after
the number ("$1,234.50", "1,234.50 €", "£ 87.95"), crypto as "0.0187 ฿" and "0.52 XMR", dates as
"June 28, 2026", relative ages in words and absolute feedback times "2026-03-14 14:32".
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import Blueprint, render_template, request
from werkzeug.wrappers import Response

from demo.hostile.config import NETWORK_PRESET, Hostility
from demo.money import Rates
from demo.pgp import group_fingerprint
from demo.regions import Place
from demo.skins import base, fmt
from demo.world import FeedbackView, ListingView, ShippingOption, VendorView

# Where each currency's symbol goes on the main price; the index cards always put it after.
SYMBOL_BEFORE = {"USD": "$", "GBP": "£ ", "AUD": "AU$ "}
SYMBOL_AFTER = {"EUR": " €", "CAD": " CAD"}
SUFFIX = {"USD": "$", "EUR": "€", "GBP": "£", "AUD": "AU$", "CAD": "CAD"}


class CopperlineUrls:
    """/c/<id>/<page>, /item?id=<id>, /profile/<id>, /profile/<id>/feedback/<page>, /signin."""

    def home(self) -> str:
        """Front page with the category tree."""
        return "/"

    def login(self) -> str:
        """Sign-in form."""
        return "/signin"

    def category(self, category_id: str, page: int = 1) -> str:
        """Category index page; the page number is always in the path."""
        return f"/c/{category_id}/{page}"

    def listing(self, listing_id: str) -> str:
        """Item page."""
        return f"/item?id={listing_id}"

    def vendor(self, vendor_id: str) -> str:
        """Profile page."""
        return f"/profile/{vendor_id}"

    def feedback(self, vendor_id: str, page: int) -> str:
        """Further feedback page (2 and up)."""
        return f"/profile/{vendor_id}/feedback/{page}"


class CopperlineFormat:
    """How copperline prints values."""

    def money(self, amount: Decimal, currency: str) -> str:
        """Like "$1,234.50", "1,234.50 €", "£ 87.95", "AU$ 120.00", "120.00 CAD"."""
        number = fmt.grouped(amount)
        if currency in SYMBOL_BEFORE:
            return SYMBOL_BEFORE[currency] + number
        return number + SYMBOL_AFTER[currency]

    def money_after(self, amount: Decimal, currency: str) -> str:
        """Index-card style with the symbol after the number: "53.25 $"."""
        return f"{fmt.grouped(amount)} {SUFFIX[currency]}"

    def _unit(self, lv: ListingView) -> str:
        return f" / {lv.listing.unit}" if lv.listing.unit else ""

    def price(self, lv: ListingView) -> str:
        """Main price, per unit as "$45.00 / g" or "12.00 CAD / 10 pills"."""
        return self.money(lv.price, lv.listing.currency) + self._unit(lv)

    def card_price(self, lv: ListingView) -> str:
        """Like "53.25 $" or "4.50 € / g" on index cards."""
        return self.money_after(lv.price, lv.listing.currency) + self._unit(lv)

    def cryptos(self, lv: ListingView, rates: Rates) -> list[str]:
        """["0.0187 ฿", "0.52 XMR"]."""
        btc = fmt.coin(rates.crypto(lv.price, lv.listing.currency, "BTC"), 4)
        xmr = fmt.coin(rates.crypto(lv.price, lv.listing.currency, "XMR"), 2)
        return [f"{btc} ฿{self._unit(lv)}", f"{xmr} XMR{self._unit(lv)}"]

    def shipping(self, option: ShippingOption, currency: str) -> str:
        """Like "Express - 2 days (+$12.50)", "Economy - 14 days (free)" or "Free shipping"."""
        if option.price == 0:
            return option.name if option.days is None else f"{option.name} (free)"
        return f"{option.name} (+{self.money(option.price, currency)})"

    def ship_to(self, places: tuple[Place, ...], excluded: tuple[Place, ...]) -> str:
        """Like "World Wide , Europe , Netherlands" and exclusions as "Worldwide except Australia, Canada"."""
        text = " , ".join(p.text for p in places)
        if excluded:
            text += " except " + ", ".join(p.text for p in excluded)
        return text

    def origin(self, places: tuple[Place, ...]) -> str:
        """Origin country as typed."""
        return " , ".join(p.text for p in places)

    def date(self, instant: datetime) -> str:
        """Like "June 28, 2026"."""
        return fmt.long_date(instant)

    def age(self, then: datetime, now: datetime) -> str:
        """Like "5 hours ago", "yesterday", "just now"."""
        return fmt.age_words(now - then)

    def timestamp(self, instant: datetime) -> str:
        """Like "2026-03-14 14:32" (feedback times, to the minute)."""
        return f"{instant:%Y-%m-%d %H:%M}"

    def server_time(self, now: datetime) -> str:
        """Like "Thursday, Jan 1, 2026 12:00:00 UTC"."""
        return fmt.weekday_time(now) + " UTC"

    def handle(self, vv: VendorView) -> str:
        """Like "@name" as in profile headings."""
        return f"@{vv.vendor.name}"

    def name_pct(self, vv: VendorView) -> str:
        """Like "name (98%)" or "name (no ratings)" as on item pages."""
        pct = f"{vv.positive_pct}%" if vv.positive_pct is not None else "no ratings"
        return f"{vv.vendor.name} ({pct})"

    def level(self, vv: VendorView) -> str:
        """Seller level or "New seller"."""
        return "New seller" if vv.level is None else str(vv.level)

    def trust(self, vv: VendorView) -> str:
        """Trust level or "Unverified"."""
        return "Unverified" if vv.trust_level is None else str(vv.trust_level)

    def rating(self, vv: VendorView) -> str:
        """Like "4.97 / 5.00" or "no ratings yet"."""
        return "no ratings yet" if vv.rating is None else f"{vv.rating} / 5.00"

    def stock(self, stock: int | None) -> str:
        """Like "Unlimited Available" or "12 Available"."""
        return f"{'Unlimited' if stock is None else stock} Available"

    def payment(self, escrow: bool) -> str:
        """Escrow or finalize-early."""
        return "Full Escrow" if escrow else "Finalize Early (FE)"

    def feedback_price(self, fv: FeedbackView) -> str:
        """Exact price in the vendor's currency, or "hidden"."""
        if fv.price_amount is None or fv.price_currency is None:
            return "hidden"
        return self.money(fv.price_amount, fv.price_currency)

    def fingerprint(self, fingerprint: str) -> str:
        """Groups of four."""
        return group_fingerprint(fingerprint)

    def status(self, status: str) -> str:
        """Status words."""
        return {"active": "Active", "vacation": "On vacation", "banned": "Banned"}[status]

    def ticker(self, rates: Rates) -> list[tuple[str, str]]:
        """Header exchange-rate ticker."""
        return [("BTC", self.money(rates.btc_usd, "USD")), ("XMR", self.money(rates.xmr_usd, "USD")),
                ("BTC/EUR", self.money(rates.fiat_per_coin("BTC", "EUR"), "EUR"))]  # fmt: skip

    def lines(self, text: str) -> list[str]:
        """Description lines (printed with <br> between them)."""
        return text.split("\n")


# `dnm demo serve --hostile`: no wait page, a short queue and a text captcha, a plain login form, short
# sessions, and a third mirror that never answers. A small crawl meets every behaviour at least once.
HOSTILITY = Hostility(
    queue_seconds=1.0,
    gate_captcha="image",
    login_required=True,
    login_captcha=None,
    post_login_captcha=0.3,  # with seed 1, the second login of the first account (after 6 s) meets it
    session_ttl=6.0,
    mirror_down={2: (0, -1)},
    **NETWORK_PRESET,
)

bp = Blueprint("copperline", __name__)
URLS = CopperlineUrls()
SKIN = base.Skin("copperline", bp, URLS, CopperlineFormat(), b'<div class="row price-row">')


@bp.get("/")
def home() -> str:
    """Front page with the category tree and mirrors."""
    return render_template("copperline/home.html", **base.home_context())


@bp.get("/c/<category_id>/<page>")
def category(category_id: str, page: str) -> str:
    """Category index, 20 cards per page."""
    return render_template(
        "copperline/category.html", **base.category_context(category_id, base.page_number(page))
    )


@bp.get("/item")
def item() -> str:
    """Item page; the id is a query parameter."""
    return render_template("copperline/item.html", **base.listing_context(request.args.get("id")))


@bp.get("/profile/<vendor_id>")
def profile(vendor_id: str) -> str:
    """Vendor profile with the first feedback."""
    return render_template("copperline/profile.html", **base.vendor_context(vendor_id))


@bp.get("/profile/<vendor_id>/feedback/<page>")
def feedback(vendor_id: str, page: str) -> str:
    """Further feedback pages."""
    return render_template(
        "copperline/profile.html", **base.feedback_context(vendor_id, base.page_number(page))
    )


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> str | Response:
    """Sign-in form with decoys; POST signs in where the market enforces logins, else goes home."""
    if request.method == "POST":
        outcome = base.login_submit()
        if isinstance(outcome, Response):
            return outcome
        return render_template("copperline/signin.html", **base.login_context(error=outcome))
    return render_template("copperline/signin.html", **base.login_context())
