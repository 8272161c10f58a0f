"""The hollowmere skin: label/value tables, a depth-classed category sidebar and terse relative ages.

Modelled on the table layout of older markets: `div.tabularDetails` label/span pairs, prices as
"USD 1,234.50 (0.01873 BTC)", dates dd/mm/yyyy, feedback ages "1d 22h", approximate feedback
prices "~ $30", vendors addressed by name.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import Blueprint, render_template, request
from werkzeug.wrappers import Response

from demo.hostile.config import NETWORK_PRESET, Hostility
from demo.money import FIATS, Rates
from demo.pgp import group_fingerprint
from demo.regions import Place
from demo.skins import base, fmt
from demo.world import FeedbackView, ListingView, ShippingOption, VendorView


class HollowmereUrls:
    """/category/<slug>?page=N, /listing/<number>, /vendor/<name>, /vendor/<name>/feedback?page=N."""

    def home(self) -> str:
        """Front page."""
        return "/"

    def login(self) -> str:
        """Login form."""
        return "/login"

    def category(self, category_id: str, page: int = 1) -> str:
        """Category index page (page 1 has no query string)."""
        return f"/category/{category_id}" + (f"?page={page}" if page > 1 else "")

    def listing(self, listing_id: str) -> str:
        """Listing page."""
        return f"/listing/{listing_id}"

    def vendor(self, vendor_id: str) -> str:
        """Vendor page."""
        return f"/vendor/{vendor_id}"

    def feedback(self, vendor_id: str, page: int) -> str:
        """Further feedback page (2 and up)."""
        return f"/vendor/{vendor_id}/feedback?page={page}"


class HollowmereFormat:
    """How hollowmere prints values."""

    def money(self, amount: Decimal, currency: str) -> str:
        """Like "USD 1,234.50": ISO code first, always."""
        return f"{currency} {fmt.grouped(amount)}"

    def price(self, lv: ListingView) -> str:
        """Like "USD 1,234.50" or per unit "USD 45.00/g"."""
        unit = f"/{lv.listing.unit}" if lv.listing.unit else ""
        return self.money(lv.price, lv.listing.currency) + unit

    def crypto(self, lv: ListingView, rates: Rates) -> str:
        """Like "(0.01873 BTC)" beside the fiat price, per unit when the price is."""
        unit = f"/{lv.listing.unit}" if lv.listing.unit else ""
        return f"({fmt.coin(rates.crypto(lv.price, lv.listing.currency, 'BTC'), 5)} BTC{unit})"

    def shipping(self, option: ShippingOption, currency: str) -> str:
        """Like "Standard - 7 days - USD 5.00", "Economy - 14 days - Free" or just "Free shipping"."""
        if option.price == 0:
            return option.name if option.days is None else f"{option.name} - Free"
        return f"{option.name} - {self.money(option.price, currency)}"

    def places(self, places: tuple[Place, ...]) -> str:
        """Places as typed, comma separated (so "Korea, Republic of" contains the separator)."""
        return ", ".join(p.text for p in places)

    def date(self, instant: datetime) -> str:
        """dd/mm/yyyy."""
        return f"{instant:%d/%m/%Y}"

    def age(self, then: datetime, now: datetime) -> str:
        """Terse relative age, e.g. "1d 22h"."""
        return fmt.age_compact(now - then)

    def server_time(self, now: datetime) -> str:
        """Like "2026-01-02 12:00:00 UTC"."""
        return f"{now:%Y-%m-%d %H:%M:%S} UTC"

    def decorated(self, vv: VendorView) -> str:
        """Like "NAME (1000) ( 4.97 )": sales and rating glued to the name."""
        rating = f" ( {vv.rating} )" if vv.rating is not None else ""
        return f"{vv.vendor.name} ({vv.sales}){rating}"

    def stock(self, stock: int | None) -> str:
        """A number or "Unlimited"."""
        return "Unlimited" if stock is None else str(stock)

    def stars(self, rating: int) -> str:
        """Filled and empty stars, e.g. "★★★★☆"."""
        return "★" * rating + "☆" * (5 - rating)

    def feedback_price(self, fv: FeedbackView) -> str:
        """Like "~ $30" (always approximate US dollars) or "-" when the buyer hid it."""
        if fv.price_amount is None:
            return "-"
        return f"~ ${fmt.grouped(fv.price_amount, 0)}"

    def fingerprint(self, fingerprint: str) -> str:
        """Groups of four."""
        return group_fingerprint(fingerprint)

    def status(self, status: str) -> str:
        """Status word."""
        return {"active": "Active", "vacation": "On vacation", "banned": "Banned"}[status]

    def rates(self, rates: Rates) -> list[tuple[str, str]]:
        """Exchange-rate sidebar rows."""
        rows = [(f"1 BTC = {c}", fmt.grouped(rates.fiat_per_coin("BTC", c))) for c in FIATS]
        rows.append(("1 BTC = mBTC", "1000"))
        rows.append(("1 XMR = BTC", fmt.coin(rates.xmr_usd / rates.btc_usd, 5)))
        return rows


# `dnm demo serve --hostile`: an EndGame-style market (wait page, queue, clock captcha), strict sessions,
# and a primary onion that dies mid-crawl. A small crawl (~140 pages) meets every behaviour at least once.
HOSTILITY = Hostility(
    wait_seconds=1.0,
    queue_seconds=1.0,
    gate_captcha="clock",
    gate_ttl=30.0,
    login_required=True,
    login_captcha="image",
    post_login_captcha=0.7,  # with seed 1, the first login of the first account meets the verify page
    session_max_requests=60,
    mirror_down={0: (200, -1)},
    **NETWORK_PRESET,
)

bp = Blueprint("hollowmere", __name__)
URLS = HollowmereUrls()
SKIN = base.Skin("hollowmere", bp, URLS, HollowmereFormat(), b'<div class="tabularDetails">')


@bp.get("/")
def home() -> str:
    """Front page: news and the category sidebar."""
    return render_template("hollowmere/home.html", **base.home_context())


@bp.get("/category/<category_id>")
def category(category_id: str) -> str:
    """Category index, 20 offers per page."""
    number = base.page_number(request.args.get("page"))
    return render_template("hollowmere/category.html", **base.category_context(category_id, number))


@bp.get("/listing/<listing_id>")
def listing(listing_id: str) -> str:
    """Offer page."""
    return render_template("hollowmere/listing.html", **base.listing_context(listing_id))


@bp.get("/vendor/<vendor_id>")
def vendor(vendor_id: str) -> str:
    """Vendor profile with the first feedback rows."""
    return render_template("hollowmere/vendor.html", **base.vendor_context(vendor_id))


@bp.get("/vendor/<vendor_id>/feedback")
def feedback(vendor_id: str) -> str:
    """Further feedback pages."""
    number = base.page_number(request.args.get("page"))
    return render_template("hollowmere/vendor.html", **base.feedback_context(vendor_id, number))


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    """Login form with decoy fields; POST logs in where the market enforces logins, else just goes home."""
    if request.method == "POST":
        outcome = base.login_submit()
        if isinstance(outcome, Response):
            return outcome
        return render_template("hollowmere/login.html", **base.login_context(error=outcome))
    return render_template("hollowmere/login.html", **base.login_context())
