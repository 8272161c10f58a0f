"""The mirror-list pages (`/mirrors`, `/pgp`) and the phishing clone's key tampering.

`/mirrors` shows the market's public mirror URLs in a cleartext-signed message (`pre.pgp-signed`),
`/pgp` the armoured staff key (`pre.pgp-key`). The URLs come from `app.extensions["public_urls"]`,
which the server fills ({"mirror0": url, ..., "phishing": url}: onion URLs over Tor, loopback URLs
otherwise). The phishing clone lists its own address first, signs with the phisher's key, and
swaps every armoured public key on its pages for the phisher's, as key-swapping phishing proxies do.
"""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, render_template, request

from demo.hostile.config import Hostility
from demo.mirrors import market_key, phisher_key, signed_mirror_list
from demo.pgp import group_fingerprint
from demo.skins.base import state

_MIRROR_KEY = re.compile(r"mirror(\d+)")
_KEY_BLOCK = re.compile(r"-----BEGIN PGP PUBLIC KEY BLOCK-----.*?-----END PGP PUBLIC KEY BLOCK-----", re.S)


def public_mirror_urls(app: Flask, *, phishing: bool) -> list[str]:
    """The URLs `/mirrors` lists: the genuine mirrors by index; the clone puts its own address first.

    Without `public_urls` (an app not run by DemoServer) the list is the address the request came to.
    """
    public: dict[str, str] = app.extensions.get("public_urls") or {}
    here = request.host_url.rstrip("/")
    indexed = sorted(
        (int(m.group(1)), url) for key, url in public.items() if (m := _MIRROR_KEY.fullmatch(key))
    )
    genuine = [url for _, url in indexed] or ([] if phishing else [here])
    if phishing:
        return [public.get("phishing", here), *genuine]
    return genuine


def install(app: Flask, hostility: Hostility, *, phishing: bool = False) -> None:
    """Register `/mirrors` and `/pgp`; for the phishing clone also the vendor-key swap."""
    del hostility  # the pages are the same whatever the mirror count; the server decides the URLs

    def mirrors() -> str:
        demo = state()
        urls = public_mirror_urls(current_app, phishing=phishing)
        signed = signed_mirror_list(demo.md.seed, demo.md.market, urls, demo.md.now, phishing=phishing)
        return render_template(f"{demo.skin.name}/mirrors.html", signed=signed)

    def pgp() -> str:
        demo = state()
        key = (phisher_key if phishing else market_key)(demo.md.seed, demo.md.market)
        return render_template(
            f"{demo.skin.name}/pgp.html", key=key.armored, key_fingerprint=group_fingerprint(key.fingerprint)
        )

    app.add_url_rule("/mirrors", "hostile_mirrors", mirrors, methods=["GET"])
    app.add_url_rule("/pgp", "hostile_pgp", pgp, methods=["GET"])
    if phishing:
        app.after_request(_swap_keys)


def _swap_keys(response: Response) -> Response:
    """Replace every armoured public key in an HTML page by the phisher's (the clone's tamper)."""
    if response.mimetype != "text/html" or response.is_streamed or response.direct_passthrough:
        return response
    body = response.get_data(as_text=True)
    if "BEGIN PGP PUBLIC KEY BLOCK" in body:
        demo = state()
        armored = phisher_key(demo.md.seed, demo.md.market).armored
        response.set_data(_KEY_BLOCK.sub(lambda _: armored, body))
    return response
