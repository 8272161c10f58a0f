"""Malformed listing pages: the served-truncated set is exactly the truth's malformed set."""

from __future__ import annotations

import pytest

from demo.app import create_app
from demo.truth import truth
from demo.world import MARKETS


@pytest.mark.parametrize("market", MARKETS)
def test_malformed_rate_marks_exactly_the_truncated_pages(market: str) -> None:
    app = create_app(market, 2, malformed_rate=0.25)
    c = app.test_client()
    urls = app.extensions["demo"].skin.urls
    records = truth(market, 2, malformed_rate=0.25)
    marked = {r["listing_id"] for r in records if r["malformed"]}
    assert 0.1 * len(records) < len(marked) < 0.4 * len(records)
    served_broken = set()
    for record in records:
        response = c.get(urls.listing(record["listing_id"]))
        body = response.get_data(as_text=True)
        assert response.status_code == 200
        assert " ".join(record["title"].split()[:2]) in " ".join(body.split())
        if "</html>" not in body:
            served_broken.add(record["listing_id"])
            assert record["price_amount"] not in body.split("<title>")[-1].split("</title>")[-1]
    assert served_broken == marked
    assert truth(market, 2) == [dict(r, malformed=False) for r in records]


def test_rate_is_validated() -> None:
    with pytest.raises(ValueError, match=r"between 0\.0 and 1\.0"):
        create_app("hollowmere", 0, malformed_rate=1.5)
