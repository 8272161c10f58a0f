"""What both skins share: request-time state, URL and format contracts, pagination and page contexts.

A skin is a Flask blueprint plus a `Urls` object (where each page lives) and a formatter (how
values are printed). The views here only gather a page's data; the skin renders it with its own
templates, so the two markets differ in markup and wording but never in what they show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from flask import Blueprint, abort, current_app, g, redirect, request
from werkzeug.wrappers import Response

from demo.skins import noise
from demo.world import MarketDay, VendorView

T = TypeVar("T")

INDEX_PAGE_SIZE = 20
FEEDBACK_ON_PROFILE = 10  # rows on the vendor page itself
FEEDBACK_PAGE_SIZE = 20  # rows on each further feedback page


class Urls(Protocol):
    """Where a skin puts each kind of page; used by templates and by the sitemap."""

    def home(self) -> str: ...
    def login(self) -> str: ...
    def category(self, category_id: str, page: int = 1) -> str: ...
    def listing(self, listing_id: str) -> str: ...
    def vendor(self, vendor_id: str) -> str: ...
    def feedback(self, vendor_id: str, page: int) -> str: ...


@dataclass(frozen=True)
class Skin:
    """A market's look: routes, URL scheme, value formatting and the cut point for malformed pages."""

    name: str
    blueprint: Blueprint
    urls: Urls
    fmt: Any
    malformed_marker: bytes  # listing pages served malformed end right before this


@dataclass(frozen=True)
class DemoState:
    """Everything a request needs; one app serves one market on one day."""

    md: MarketDay
    skin: Skin
    malformed: frozenset[str]  # listing ids served truncated
    redesigned: bool = False  # listing and vendor pages in the post-redesign markup (layout_change_day)

    @property
    def mirrors(self) -> tuple[str, ...]:
        """The market's mirror list."""
        return noise.mirrors(self.md.seed, self.md.market)


def state() -> DemoState:
    """The app's demo state."""
    return current_app.extensions["demo"]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a paginated list."""

    items: tuple[T, ...]
    number: int
    pages: int
    total: int

    @property
    def prev(self) -> int | None:
        """Previous page number, if any."""
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        """Next page number, if any."""
        return self.number + 1 if self.number < self.pages else None


def page_number(raw: str | int | None) -> int:
    """Parse a page number from a URL, 404 on anything but a positive integer."""
    if raw is None:
        return 1
    if isinstance(raw, int):
        number = raw
    elif raw.isdigit() and raw.isascii():
        number = int(raw)
    else:
        abort(404)
    if number < 1:
        abort(404)
    return number


def paginate(items: Sequence[T], number: int, size: int = INDEX_PAGE_SIZE) -> Page[T]:
    """Slice a page; an empty list still has page 1, pages past the end are 404."""
    pages = max(1, math.ceil(len(items) / size))
    if number > pages:
        abort(404)
    start = (number - 1) * size
    return Page(tuple(items[start : start + size]), number, pages, len(items))


def feedback_pages(vendor: VendorView) -> int:
    """How many feedback pages a vendor has, counting the vendor page itself as page 1."""
    rest = max(0, len(vendor.feedback) - FEEDBACK_ON_PROFILE)
    return 1 + math.ceil(rest / FEEDBACK_PAGE_SIZE)


def feedback_page(vendor: VendorView, number: int) -> Page[Any]:
    """Rows of a feedback page: the first 10 on the vendor page, then 20 per page."""
    pages = feedback_pages(vendor)
    if number > pages:
        abort(404)
    if number == 1:
        rows = vendor.feedback[:FEEDBACK_ON_PROFILE]
    else:
        start = FEEDBACK_ON_PROFILE + (number - 2) * FEEDBACK_PAGE_SIZE
        rows = vendor.feedback[start : start + FEEDBACK_PAGE_SIZE]
    return Page(tuple(rows), number, pages, len(vendor.feedback))


# Page contexts: what each kind of page shows, independent of the skin.


def home_context() -> dict[str, Any]:
    """The category tree with counts."""
    md = state().md
    return {"roots": md.roots(), "total": len(md.listings)}


def category_context(category_id: str, number: int) -> dict[str, Any]:
    """A category index page; 404 for unknown categories and pages past the end."""
    md = state().md
    category = md.category(category_id)
    if category is None:
        abort(404)
    return {
        "category": category,
        "trail": md.path_views(category_id),
        "children": [md.category(c) for c in category.child_ids],
        "page": paginate(md.listings_in(category_id), number),
    }


def listing_context(listing_id: str | None) -> dict[str, Any]:
    """A listing page; marks the request so the fault hooks know which listing they serve."""
    md = state().md
    listing = md.listing(listing_id) if listing_id else None
    if listing is None:
        abort(404)
    g.demo_listing_id = listing.id
    return {"lv": listing, "trail": md.path_views(listing.category_id)}


def vendor_context(vendor_id: str) -> dict[str, Any]:
    """A vendor page with the first feedback rows."""
    vendor = state().md.vendor(vendor_id)
    if vendor is None:
        abort(404)
    return {"vv": vendor, "page": feedback_page(vendor, 1)}


def feedback_context(vendor_id: str, number: int) -> dict[str, Any]:
    """A further feedback page (2 and up; page 1 is the vendor page itself)."""
    if number < 2:
        abort(404)
    vendor = state().md.vendor(vendor_id)
    if vendor is None:
        abort(404)
    return {"vv": vendor, "page": feedback_page(vendor, number)}


def login_context(
    error: str | None = None, notice: str | None = None, next_path: str | None = None
) -> dict[str, Any]:
    """Login form fields with decoys; on a market that enforces logins, also `next` and the captcha."""
    md = state().md
    fields, hidden = noise.login_fields(md.seed, md.market, md.day)
    context: dict[str, Any] = {
        "fields": fields,
        "hidden_classes": hidden,
        "error": error,
        "notice": notice,
        "enforced": False,
        "next": None,
        "challenge": None,
    }
    from demo.hostile import gates  # here, not at the top: gates imports this module

    if gates.login_enforced():
        back = next_path or request.values.get("next")
        context.update(enforced=True, next=gates.safe_next(back), challenge=gates.login_challenge())
    return context


def login_submit() -> Response | str:
    """A POSTed login form: a redirect (home on a friendly market, `next` once logged in) or an error."""
    from demo.hostile import gates

    if not gates.login_enforced():
        return redirect(state().skin.urls.home(), code=303)
    return gates.attempt_login()


def sitemap(md: MarketDay, urls: Urls) -> list[str]:
    """Every page that exists on a market-day (what a complete crawl fetches)."""
    out = [urls.home(), urls.login()]
    for category in md.categories:
        pages = max(1, math.ceil(category.count / INDEX_PAGE_SIZE))
        out += [urls.category(category.id, n) for n in range(1, pages + 1)]
    out += [urls.listing(lv.id) for lv in md.listings]
    for vendor in md.vendors:
        out.append(urls.vendor(vendor.id))
        out += [urls.feedback(vendor.id, n) for n in range(2, feedback_pages(vendor) + 1)]
    return out
