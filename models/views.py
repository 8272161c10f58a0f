"""The researcher's SQL views: the archive's common questions as plain tables, on SQLite and PostgreSQL.

Each view is one documented SELECT (docs/data-dictionary.md, "Views"); they hold no data of their own,
so they are always as current as the archive. `listing_snapshots` and `vendor_snapshots` join states,
sightings and pages back into one row per entity per crawl (every crawl); the research views built on
them leave out crawls that re-parse old captures (`crawls.reparse_of`): they are other readings of
nights already counted. The SQL is kept to what both backends read the same way (no JSON functions,
no window functions).
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

# name -> (what it answers, SELECT)
VIEWS: dict[str, tuple[str, str]] = {
    # The two snapshot views come first: the views below read them.
    "listing_snapshots": (
        "One row per listing per crawl that saw it: the sighting joined to the listing's state then and "
        "to the page it was read from (the ORM's ListingSnapshot).",
        """
        SELECT si.id, si.crawl_id, si.page_id, si.state_id, p.fetched_at AS observed_at, u.url,
               pl.sha256 AS page_sha256, st.content_sha256, st.profile_version, si.listing_id,
               st.vendor_id, st.vendor_name, st.category_id, st.title, st.description,
               st.price_amount, st.price_currency, st.price_unit, st.price_shown, st.escrow,
               st.stock, st.stock_shown, st.ships_from_shown, st.ships_to_shown
        FROM listing_sightings si
        JOIN listing_states st ON st.id = si.state_id
        JOIN pages p ON p.id = si.page_id
        JOIN urls u ON u.id = p.url_id
        JOIN payloads pl ON pl.id = p.payload_id
        """,
    ),
    "vendor_snapshots": (
        "One row per vendor per crawl that saw it: the sighting joined to the vendor's state then and "
        "to the page it was read from (the ORM's VendorSnapshot).",
        """
        SELECT si.id, si.crawl_id, si.page_id, si.state_id, p.fetched_at AS observed_at, u.url,
               pl.sha256 AS page_sha256, st.content_sha256, st.profile_version, si.vendor_id,
               st.name, st.name_shown, st.level, st.trust_level, st.sales, st.rating, st.joined_on,
               st.status, st.feedback_count, st.fingerprint_shown, si.last_seen_earliest,
               si.last_seen_latest, si.last_seen_shown, st.pgp_key_id
        FROM vendor_sightings si
        JOIN vendor_states st ON st.id = si.state_id
        JOIN pages p ON p.id = si.page_id
        JOIN urls u ON u.id = p.url_id
        JOIN payloads pl ON pl.id = p.payload_id
        """,
    ),
    "listing_history": (
        "One row per listing per crawl that saw it: the price and stock history of every listing.",
        # Sightings are indexed crawl first (models/listing.py): `c.market_id = l.market_id` (always true)
        # lets one listing's history be read as one index probe per crawl of its market, not a scan.
        """
        SELECT m.slug AS market, l.listing_key AS listing_id, s.crawl_id, s.observed_at,
               s.title, v.vendor_key AS vendor_id, s.vendor_name AS vendor,
               s.price_amount, s.price_currency, s.price_unit, s.price_shown,
               s.stock, s.escrow, s.content_sha256, s.profile_version
        FROM listing_snapshots s
        JOIN listings l ON l.id = s.listing_id
        JOIN markets m ON m.id = l.market_id
        JOIN crawls c ON c.id = s.crawl_id AND c.market_id = l.market_id AND c.reparse_of IS NULL
        LEFT JOIN vendors v ON v.id = s.vendor_id
        """,
    ),
    "vendor_summary": (
        "One row per vendor account: when it was seen, how many listings and feedback it has.",
        # Correlated subqueries, not grouped derived tables: asking for one vendor then reads that
        # vendor's rows only, on both backends, however many nights the archive holds.
        """
        SELECT m.slug AS market, v.vendor_key AS vendor_id, v.name AS vendor, v.first_seen_at,
               (SELECT MAX(p.fetched_at) FROM vendor_sightings vs
                JOIN crawls c ON c.id = vs.crawl_id AND c.reparse_of IS NULL
                JOIN pages p ON p.id = vs.page_id
                WHERE vs.vendor_id = v.id) AS last_seen_at,
               (SELECT COUNT(*) FROM vendor_sightings vs
                JOIN crawls c ON c.id = vs.crawl_id AND c.reparse_of IS NULL
                WHERE vs.vendor_id = v.id) AS snapshots,
               (SELECT COUNT(DISTINCT st.listing_id) FROM listing_states st WHERE st.vendor_id = v.id)
                   AS listings,
               (SELECT COUNT(*) FROM feedback f WHERE f.vendor_id = v.id) AS feedback,
               (SELECT COUNT(*) FROM vendor_keys vk WHERE vk.vendor_id = v.id) AS pgp_keys
        FROM vendors v
        JOIN markets m ON m.id = v.market_id
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
        JOIN shipping_regions o ON o.state_id = s.state_id AND o.role = 'from'
        JOIN shipping_regions d ON d.state_id = s.state_id AND d.role = 'to'
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
    drop_views(connection)
    for name, (_, select) in VIEWS.items():
        connection.execute(text(f"CREATE VIEW {name} AS {select}"))


def drop_views(connection: Connection) -> None:
    """Drop every view of VIEWS that exists as a view (before 0004, two of the names were tables)."""
    existing = set(inspect(connection).get_view_names())
    for name in reversed(VIEWS):
        if name in existing:
            connection.execute(text(f"DROP VIEW {name}"))
