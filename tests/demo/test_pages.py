"""The skins: reproducible bytes, every page reachable, and pages that agree with the truth."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from demo import clock
from demo.app import create_app
from demo.skins.base import sitemap
from demo.truth import truth
from demo.world import MARKETS

from . import extract

Client = Callable[..., FlaskClient]
DAYS = (0, 7)  # on day 7 both markets have a vendor on vacation and a banned one


def state(c: FlaskClient):
    return c.application.extensions["demo"]


@pytest.mark.parametrize("market", MARKETS)
def test_same_arguments_serve_identical_bytes(market: str) -> None:
    a = create_app(market, 4, seed=3).test_client()
    b = create_app(market, 4, seed=3).test_client()
    paths = sitemap(state(a).md, state(a).skin.urls)
    sample = paths[:3] + paths[len(paths) // 2 : len(paths) // 2 + 3] + paths[-3:] + ["/nope"]
    for path in sample:
        ra, rb = a.get(path), b.get(path)
        assert ra.status_code == rb.status_code
        assert ra.data == rb.data, path
    other = create_app(market, 4, seed=4).test_client()
    assert other.get("/").data != a.get("/").data


@pytest.mark.parametrize("market", MARKETS)
def test_every_sitemap_page_is_served_with_server_time(market: str, client: Client) -> None:
    c = client(market, 0)
    for path in sitemap(state(c).md, state(c).skin.urls):
        response = c.get(path)
        assert response.status_code == 200, path
        assert response.content_type == "text/html; charset=utf-8"
        body = response.get_data(as_text=True)
        assert "Server time: " in body and "</html>" in body
    home = c.get("/").get_data(as_text=True)
    assert (
        "2026-01-01 12:00:00 UTC" if market == "hollowmere" else "Thursday, Jan 1, 2026 12:00:00 UTC"
    ) in home


@pytest.mark.parametrize(
    ("market", "paths"),
    [
        ("hollowmere", ["/listing/1", "/vendor/nobody", "/category/none", "/category/drugs?page=0",
                        "/category/drugs?page=x", "/category/drugs?page=999", "/vendor/{v}/feedback?page=1",
                        "/vendor/{v}/feedback?page=999", "/item?id=1"]),
        ("copperline", ["/item", "/item?id=zzzzzzzz", "/profile/1", "/c/1/1", "/c/100/0", "/c/100/abc",
                        "/profile/{v}/feedback/1", "/profile/{v}/feedback/999", "/listing/1"]),
    ],
)  # fmt: skip
def test_unknown_things_are_404(market: str, paths: list[str], client: Client) -> None:
    c = client(market, 0)
    vendor = state(c).md.vendors[0].id
    for path in paths:
        response = c.get(path.format(v=vendor))
        assert response.status_code == 404, path
        assert "Server time" in response.get_data(as_text=True)


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("market", MARKETS)
def test_listing_pages_match_truth(market: str, day: int, client: Client) -> None:
    c = client(market, day)
    urls = state(c).skin.urls
    records = truth(market, day)
    assert records
    for record in records:
        html = c.get(urls.listing(record["listing_id"])).data
        got = extract.LISTING[market](html)
        want = {k: record[k] for k in got}
        assert got == want, record["listing_id"]


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("market", MARKETS)
def test_vendor_and_feedback_pages_match_truth(market: str, day: int, client: Client) -> None:
    c = client(market, day)
    urls = state(c).skin.urls
    feedback = truth(market, day, kind="feedback")
    for record in truth(market, day, kind="vendors"):
        html = c.get(urls.vendor(record["vendor_id"])).data
        got = extract.VENDOR[market](html)
        low, high = got.pop("last_seen")
        assert low < clock.datetime.fromisoformat(record["last_seen_latest"]) <= high
        shown = got.pop("shown_fingerprint")
        assert shown == (record["pgp_fingerprint"] if record["fingerprint_shown"] else None)
        assert got == {k: record[k] for k in got}, record["vendor"]

        rows, url = extract.FEEDBACK[market](html)
        while url:
            more, url = extract.FEEDBACK[market](c.get(url).data)
            rows += more
        want = [f for f in feedback if f["vendor_id"] == record["vendor_id"]]
        assert len(rows) == len(want) == record["feedback_count"]
        for row, exp in zip(rows, want, strict=True):
            low, high = row.pop("posted_at")
            assert low <= clock.datetime.fromisoformat(exp["posted_at_latest"]) <= high
            assert row == {k: exp[k] for k in row}


@pytest.mark.parametrize("market", MARKETS)
def test_category_counts_match_truth_and_index_totals(market: str, client: Client) -> None:
    c = client(market, 7)
    md, urls = state(c).md, state(c).skin.urls
    records = truth(market, 7, kind="categories")
    assert extract.CATEGORIES[market](c.get("/").data) == [
        {k: r[k] for k in ("category", "category_id", "listing_count")} for r in records
    ]
    listings = truth(market, 7)
    for record in records:
        path = record["category"]
        assert record["listing_count"] == sum(1 for item in listings if item["category"][: len(path)] == path)
        # Walk the paginated index and collect every listing link.
        seen: list[str] = []
        page = 1
        while True:
            response = c.get(urls.category(record["category_id"], page))
            assert response.status_code == 200
            links = extract.parse(response.data).css("a::attr(href)").getall()
            seen += [h for h in links if h.startswith(urls.listing(""))]
            if urls.category(record["category_id"], page + 1) not in links:
                break
            page += 1
        assert len(set(seen)) == record["listing_count"] == len(md.listings_in(record["category_id"]))


@pytest.mark.parametrize("market", MARKETS)
def test_text_variants_reach_the_pages(market: str, client: Client) -> None:
    c = client(market, 0)
    bodies = "".join(c.get(u).get_data(as_text=True) for u in sitemap(state(c).md, state(c).skin.urls))
    assert "Korea, Republic of" in bodies
    assert "Free shipping" in bodies
    assert "BEGIN PGP PUBLIC KEY BLOCK" in bodies
    if market == "hollowmere":
        for needle in ("USD ", "/g (", "~ $", "Excluded", "h ago", "1d ", 'class="category depth2'):
            assert needle in bodies, needle
    else:
        for needle in ("$", " €", "£ ", " ฿", " XMR", "except ", "hours ago", "From: "):
            assert needle in bodies, needle


@pytest.mark.parametrize("market", MARKETS)
def test_login_page_hides_real_fields_among_decoys(market: str, client: Client) -> None:
    c = client(market, 0)
    page = extract.parse(c.get(state(c).skin.urls.login()).data)
    inputs = page.css("form input[name]")
    names = [i.attrib["name"] for i in inputs if i.attrib["name"] != "token"]
    assert len(names) >= 16
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in names)
    style = next(s for s in page.css("style::text").getall() if "display:none" in s)
    real = [i for i in inputs if i.attrib.get("tabindex") != "-1" and i.attrib["name"] != "token"]
    assert len(real) == 2
    for node in real:
        classes = node.xpath("..").attrib["class"].split()
        assert not any(f".{cls}{{display:none}}" in style for cls in classes)
    assert c.post(state(c).skin.urls.login()).status_code == 303
