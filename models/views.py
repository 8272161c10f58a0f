"""The researcher's SQL views: the archive's common questions as plain tables, on SQLite and PostgreSQL.

Each view is one documented SELECT over the snapshot tables (docs/data-dictionary.md, "Views"); they
hold no data of their own, so they are always as current as the archive. The SQL is kept to what both
backends read the same way (no JSON functions, no window functions). Crawls that re-parse old captures
(`crawls.reparse_of`) are left out: they are other readings of nights already counted.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# name -> (what it answers, SELECT)
VIEWS: dict[str, tuple[str, str]] = {
    "listing_history": (
        "One row per listing per crawl that saw it: the price and stock history of every listing.",
        """
        SELECT m.slug AS market, l.listing_key AS listing_id, s.crawl_id, s.observed_at,
               s.title, v.vendor_key AS vendor_id, s.vendor_name AS vendor,
               s.price_amount, s.price_currency, s.price_unit, s.price_shown,
               s.stock, s.escrow, s.content_sha256, s.profile_version
        FROM listing_snapshots s
        JOIN crawls c ON c.id = s.crawl_id AND c.reparse_of IS NULL
        JOIN listings l ON l.id = s.listing_id
        JOIN markets m ON m.id = l.market_id
        LEFT JOIN vendors v ON v.id = s.vendor_id
        """,
    ),
    "vendor_summary": (
        "One row per vendor account: when it was seen, how many listings and feedback it has.",
        """
        SELECT m.slug AS market, v.vendor_key AS vendor_id, v.name AS vendor, v.first_seen_at,
               seen.last_seen_at, COALESCE(seen.snapshots, 0) AS snapshots,
               COALESCE(offered.listings, 0) AS listings,
               (SELECT COUNT(*) FROM feedback f WHERE f.vendor_id = v.id) AS feedback,
               (SELECT COUNT(*) FROM vendor_keys vk WHERE vk.vendor_id = v.id) AS pgp_keys
        FROM vendors v
        JOIN markets m ON m.id = v.market_id
        LEFT JOIN (
            SELECT vs.vendor_id, MAX(vs.observed_at) AS last_seen_at, COUNT(*) AS snapshots
            FROM vendor_snapshots vs JOIN crawls c ON c.id = vs.crawl_id AND c.reparse_of IS NULL
            GROUP BY vs.vendor_id
        ) seen ON seen.vendor_id = v.id
        LEFT JOIN (
            SELECT ls.vendor_id, COUNT(DISTINCT ls.listing_id) AS listings
            FROM listing_snapshots ls JOIN crawls c ON c.id = ls.crawl_id AND c.reparse_of IS NULL
            GROUP BY ls.vendor_id
        ) offered ON offered.vendor_id = v.id
        """,
    ),
    "shipping_matrix": (
        "Listings per crawl by origin and destination (region codes as stored: ISO alpha-2 or tokens).",
        """
        SELECT m.slug AS market, s.crawl_id, o.code AS ships_from, d.code AS ships_to,
               COUNT(DISTINCT s.listing_id) AS listings
        FROM listing_snapshots s
        JOIN crawls c ON c.id = s.crawl_id AND c.reparse_of IS NULL
        JOIN listings l ON l.id = s.listing_id
        JOIN markets m ON m.id = l.market_id
        JOIN shipping_regions o ON o.snapshot_id = s.id AND o.role = 'from'
        JOIN shipping_regions d ON d.snapshot_id = s.id AND d.role = 'to'
        GROUP BY m.slug, s.crawl_id, o.code, d.code
        """,
    ),
    "vendor_identities": (
        "Vendor accounts that published the same OpenPGP key: one row per (key, account); "
        "`accounts` counts the accounts sharing the key, across names and markets.",
        """
        SELECT k.fingerprint, m.slug AS market, v.vendor_key AS vendor_id, v.name AS vendor,
               vk.first_crawl_id, vk.last_crawl_id, vk.printed_fingerprint_matches,
               (SELECT COUNT(DISTINCT vk2.vendor_id) FROM vendor_keys vk2 WHERE vk2.pgp_key_id = k.id)
                   AS accounts
        FROM vendor_keys vk
        JOIN pgp_keys k ON k.id = vk.pgp_key_id
        JOIN vendors v ON v.id = vk.vendor_id
        JOIN markets m ON m.id = v.market_id
        """,
    ),
}


def create_views(connection: Connection) -> None:
    """(Re)create every view; safe to run on every open."""
    for name, (_, select) in VIEWS.items():
        connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
        connection.execute(text(f"CREATE VIEW {name} AS {select}"))


def drop_views(connection: Connection) -> None:
    for name in VIEWS:
        connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
