"""A small market of listing pages on loopback, crawled for real: what the bad-input crawl tests share."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import DnmResult, run_dnm


def listing_profile(market: str, name: str, listing_id: str, fields: str = "") -> str:
    """A profile of a home page linking listing pages `/listing/<listing_id>` (a regex) with a title in
    <h1>; `fields` adds listing fields (YAML lines indented as the title's)."""
    return f"""\
market: {market}
name: {name}
version: "1"
mirrors: ["http://u6lmi54lafmzva7l2bozyc3ebnaj2kpfrswjgx43mj4dszlmuskdfzyd.onion"]  # hollowmere's, unused
start: ["/"]
pages:
  - type: home
    match: {{url: '^/$'}}
    links:
      - {{css: 'a::attr(href)', to: listing}}
  - type: listing
    match: {{url: '^/listing/{listing_id}$'}}
    records:
      listing:
        fields:
          listing_id: {{url: '^/listing/({listing_id})$'}}
          title: {{css: 'h1', required: true}}
{fields}"""


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """The handler served on a loopback port, in a thread; yields the base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def crawl_directly(
    folder: Path, profile: str, market: str, url: str, database: str, *options: str, timeout: float = 300
) -> DnmResult:
    """`dnm crawl` of the market at `url` (loopback, no Tor) with `profile` as its only profile."""
    profiles = folder / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / f"{market}.yaml").write_text(profile)
    return run_dnm(
        "crawl", market, "--mirror", url, "--transport", "direct", "--allow-host", "127.0.0.1",
        "--database", database, "--no-progress", *options,
        env={"DNM_PROFILE_DIR": str(profiles)}, timeout=timeout,
    )  # fmt: skip
