"""Signed mirror lists, the staff key page and the phishing clone's key swap (docs/hostile-demo.md)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from parsel import Selector

from demo import clock
from demo.app import create_app
from demo.mirrors import market_key, mirror_list_text, phisher_key, signed_mirror_list
from demo.world import MARKETS
from dnm.normalize.pgp import fingerprint
from dnm.pgpsig import SignatureError, verify_cleartext

PUBLIC = {
    "mirror1": "http://mirror-one.onion",
    "mirror0": "http://primary.onion",
    "phishing": "http://phish.onion",
    "mirror2": "http://mirror-two.onion",
}
GENUINE = ["http://primary.onion", "http://mirror-one.onion", "http://mirror-two.onion"]


def make_app(market: str, *, phishing: bool, public: dict[str, str] | None = PUBLIC) -> Flask:
    app = create_app(market, 3, phishing=phishing)  # every demo app publishes its signed mirror list
    if public is not None:
        app.extensions["public_urls"] = dict(public)
    return app


def test_keys_are_deterministic_and_the_phisher_copies_the_user_id() -> None:
    for market in MARKETS:
        key, phisher = market_key(1, market), phisher_key(1, market)
        assert key == market_key(1, market) and phisher == phisher_key(1, market)
        assert key.public.user_id == phisher.public.user_id
        assert key.fingerprint != phisher.fingerprint
        assert fingerprint(key.armored) == key.fingerprint
        assert key.public.created < clock.EPOCH
    assert market_key(1, "hollowmere").fingerprint != market_key(1, "copperline").fingerprint
    assert market_key(1, "hollowmere").fingerprint != market_key(2, "hollowmere").fingerprint


def test_mirror_list_text_lists_one_url_per_line() -> None:
    text = mirror_list_text("Hollowmere", clock.now(2), GENUINE)
    lines = text.splitlines()
    assert lines[:2] == ["Hollowmere official mirrors", "Server time: 2026-01-03 12:00 UTC"]
    assert [line for line in lines if line.startswith("http")] == GENUINE


def test_signed_list_is_deterministic_and_signed_at_the_given_time() -> None:
    when = clock.now(4)
    signed = signed_mirror_list(1, "copperline", GENUINE, when)
    assert signed == signed_mirror_list(1, "copperline", GENUINE, when)
    assert signed != signed_mirror_list(1, "copperline", GENUINE, clock.now(5))
    result = verify_cleartext(signed, market_key(1, "copperline").armored)
    assert result.created == when and "- -- Copperline staff" in signed


@pytest.mark.parametrize("market", MARKETS)
def test_mirrors_page_lists_the_public_mirrors_signed_by_the_market(market: str) -> None:
    page = Selector(make_app(market, phishing=False).test_client().get("/mirrors").text)
    signed = page.css("pre.pgp-signed::text").get()
    assert signed is not None
    result = verify_cleartext(signed, market_key(1, market).armored)
    assert [line for line in result.lines if line.startswith("http")] == GENUINE
    assert result.created == clock.now(3)
    key_page = Selector(make_app(market, phishing=False).test_client().get("/pgp").text)
    assert key_page.css("pre.pgp-key::text").get() == market_key(1, market).armored


@pytest.mark.parametrize("market", MARKETS)
def test_phishing_clone_lists_itself_first_under_its_own_key(market: str) -> None:
    client = make_app(market, phishing=True).test_client()
    signed = Selector(client.get("/mirrors").text).css("pre.pgp-signed::text").get()
    assert signed is not None
    with pytest.raises(SignatureError, match="wrong key"):
        verify_cleartext(signed, market_key(1, market).armored)
    shown_key = Selector(client.get("/pgp").text).css("pre.pgp-key::text").get()
    assert shown_key == phisher_key(1, market).armored
    result = verify_cleartext(signed, shown_key)
    assert [line for line in result.lines if line.startswith("http")] == ["http://phish.onion", *GENUINE]


def test_without_public_urls_the_list_holds_the_address_asked() -> None:
    app = make_app("hollowmere", phishing=False, public=None)
    signed = Selector(app.test_client().get("/mirrors", base_url="http://127.0.0.1:8123").text)
    text = verify_cleartext(
        signed.css("pre.pgp-signed::text").get() or "", market_key(1, "hollowmere").armored
    )
    assert [line for line in text.lines if line.startswith("http")] == ["http://127.0.0.1:8123"]


@pytest.mark.parametrize("market", MARKETS)
def test_phishing_clone_swaps_every_vendor_key(market: str) -> None:
    genuine, clone = make_app(market, phishing=False), make_app(market, phishing=True)
    md = genuine.extensions["demo"].md
    vendors = [v for v in md.vendors if v.vendor.key is not None][:3]
    assert vendors
    phisher = phisher_key(1, market)
    for vendor in vendors:
        path = md_vendor_path(genuine, vendor.id)
        real_page = genuine.test_client().get(path)
        fake_page = clone.test_client().get(path)
        assert real_page.status_code == fake_page.status_code == 200
        assert vendor.vendor.key.armored in real_page.text
        assert vendor.vendor.key.armored not in fake_page.text
        assert fake_page.text.count(phisher.armored) == 1
        assert int(fake_page.headers["Content-Length"]) == len(fake_page.data)
        # Nothing else changes: put the real key back and the pages are the same.
        assert fake_page.text.replace(phisher.armored, vendor.vendor.key.armored) == real_page.text


def md_vendor_path(app: Flask, vendor_id: str) -> str:
    return app.extensions["demo"].skin.urls.vendor(vendor_id)


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed: apt-get install gnupg")
def test_gnupg_verifies_the_signed_mirror_list(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    key = market_key(1, "hollowmere")
    (tmp_path / "key.asc").write_text(key.armored + "\n")
    signed_path = tmp_path / "signed.asc"
    when = datetime(2026, 1, 3, 12, tzinfo=UTC)
    signed_path.write_text(signed_mirror_list(1, "hollowmere", GENUINE, when) + "\n")
    tampered_path = tmp_path / "tampered.asc"
    tampered_path.write_text(signed_path.read_text().replace("mirror-one", "mirror-0ne"))
    try:
        subprocess.run(
            ["gpg", "--batch", "--import", str(tmp_path / "key.asc")],
            env=env,
            check=True,
            capture_output=True,
        )
        good = subprocess.run(
            ["gpg", "--batch", "--status-fd", "1", "--verify", str(signed_path)],
            env=env,
            capture_output=True,
            text=True,
        )
        bad = subprocess.run(
            ["gpg", "--batch", "--status-fd", "1", "--verify", str(tampered_path)],
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], env=env, capture_output=True
        )
    assert good.returncode == 0 and "Good signature" in good.stderr, good.stderr
    assert f"[GNUPG:] VALIDSIG {key.fingerprint} 2026-01-03 {int(when.timestamp())}" in good.stdout
    assert bad.returncode == 1 and "BAD signature" in bad.stderr
