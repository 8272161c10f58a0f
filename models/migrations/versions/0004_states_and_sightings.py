"""Storage that grows with change: deduplicated states, per-crawl sightings, shared page payloads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Before: every crawl wrote a full `listing_snapshots` / `vendor_snapshots` row (with its prices, regions
and options) for every entity it saw, and every page row carried its body's hash, size and raw capture.
After: an entity's values are a *state* (`listing_states`, `vendor_states`), written when they change;
each crawl adds a small *sighting* (`listing_sightings`, `vendor_sightings`) pointing at the state; a
page body is a `payloads` row and a URL a `urls` row, shared by every fetch of them. `listing_snapshots` and
`vendor_snapshots` become views (models/views.py) joining them back, so queries read as before.

Existing rows are carried over one for one: each old snapshot becomes a state (same id) and a sighting
(same id); nothing is merged after the fact. Downgrade rebuilds the snapshot tables from the views.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTING_CONTENT = (
    "vendor_id, vendor_name, category_id, title, description, price_amount, price_currency, price_unit, "
    "price_shown, escrow, stock, stock_shown, ships_from_shown, ships_to_shown"
)
VENDOR_CONTENT = (
    "name, name_shown, level, trust_level, sales, rating, joined_on, status, feedback_count, "
    "fingerprint_shown, pgp_key_id"
)
CHILDREN = ("listing_prices", "shipping_regions", "shipping_options")


def _listing_content_columns() -> list[sa.Column]:
    return [
        sa.Column("vendor_id", sa.Integer(), nullable=True),
        sa.Column("vendor_name", sa.String(length=200), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("price_amount", models.types.ExactDecimal(), nullable=True),
        sa.Column("price_currency", sa.String(length=8), nullable=True),
        sa.Column("price_unit", sa.String(length=64), nullable=True),
        sa.Column("price_shown", sa.String(length=400), nullable=True),
        sa.Column("escrow", sa.Boolean(), nullable=True),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("stock_shown", sa.String(length=200), nullable=True),
        sa.Column("ships_from_shown", sa.String(length=1000), nullable=True),
        sa.Column("ships_to_shown", sa.String(length=2000), nullable=True),
    ]


def _vendor_content_columns() -> list[sa.Column]:
    return [
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_shown", sa.String(length=400), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("trust_level", sa.Integer(), nullable=True),
        sa.Column("sales", sa.Integer(), nullable=True),
        sa.Column("rating", models.types.ExactDecimal(), nullable=True),
        sa.Column("joined_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("feedback_count", sa.Integer(), nullable=True),
        sa.Column("fingerprint_shown", sa.String(length=64), nullable=True),
        sa.Column("pgp_key_id", sa.Integer(), nullable=True),
    ]


def _last_seen_columns() -> list[sa.Column]:
    return [
        sa.Column("last_seen_earliest", models.types.UTCDateTime(), nullable=True),
        sa.Column("last_seen_latest", models.types.UTCDateTime(), nullable=True),
        sa.Column("last_seen_shown", sa.String(length=200), nullable=True),
    ]


def _state_columns() -> list[sa.Column]:
    return [
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("profile_version", sa.String(length=40), nullable=False),
    ]


def _sighting_columns(kind: str) -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crawl_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column(f"{kind}_id", sa.Integer(), nullable=False),
        sa.Column("state_id", sa.Integer(), nullable=False),
    ]


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def _sync_sequence(table: str) -> None:
    """On PostgreSQL, move the id sequence past ids copied in explicitly."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        )


def upgrade() -> None:
    # -- payloads: one row per distinct page body ---------------------------------------------
    op.create_table(
        "payloads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("warc_file", sa.String(length=500), nullable=True),
        sa.Column("warc_record_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payloads")),
        sa.UniqueConstraint("sha256", name=op.f("uq_payloads_sha256")),
    )
    op.create_index("ix_payloads_warc_record_id", "payloads", ["warc_record_id"], unique=False)
    # The record holding a body is the first page's that has one (later pages were revisits of it).
    op.execute(
        """
        INSERT INTO payloads (sha256, size, warc_file, warc_record_id)
        SELECT p.sha256, p.size,
               (SELECT c.warc_file FROM pages c WHERE c.sha256 = p.sha256 AND c.warc_record_id IS NOT NULL
                ORDER BY c.id LIMIT 1),
               (SELECT c.warc_record_id FROM pages c WHERE c.sha256 = p.sha256
                AND c.warc_record_id IS NOT NULL ORDER BY c.id LIMIT 1)
        FROM pages p
        WHERE p.id = (SELECT MIN(f.id) FROM pages f WHERE f.sha256 = p.sha256)
        """
    )
    op.create_table(
        "urls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_urls")),
        sa.UniqueConstraint("url", name=op.f("uq_urls_url")),
    )
    op.execute("INSERT INTO urls (url) SELECT DISTINCT url FROM pages")
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("url_id", sa.Integer(), nullable=True))
    op.execute("UPDATE pages SET payload_id = (SELECT pl.id FROM payloads pl WHERE pl.sha256 = pages.sha256)")
    op.execute("UPDATE pages SET url_id = (SELECT u.id FROM urls u WHERE u.url = pages.url)")
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.alter_column("payload_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("url_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(op.f("fk_pages_payload_id_payloads"), "payloads", ["payload_id"], ["id"])
        batch_op.create_foreign_key(op.f("fk_pages_url_id_urls"), "urls", ["url_id"], ["id"])
        batch_op.drop_index("ix_pages_warc_record_id")
        batch_op.drop_index("ix_pages_payload_sha256")
        batch_op.drop_index("ix_pages_sha256")
        batch_op.drop_index("ix_pages_crawl_url")
        for column in ("url", "sha256", "size", "warc_file", "warc_record_id", "payload_sha256"):
            batch_op.drop_column(column)
        batch_op.create_index("ix_pages_crawl", ["crawl_id"], unique=False)

    # -- listings: states and sightings -------------------------------------------------------
    op.create_table(
        "listing_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        *_listing_content_columns(),
        *_state_columns(),
        _fk("listing_states", "category_id", "categories"),
        _fk("listing_states", "listing_id", "listings"),
        _fk("listing_states", "vendor_id", "vendors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_states")),
    )
    op.create_index("ix_listing_states_listing", "listing_states", ["listing_id"], unique=False)
    op.create_index("ix_listing_states_vendor", "listing_states", ["vendor_id"], unique=False)
    op.create_table(
        "listing_sightings",
        *_sighting_columns("listing"),
        _fk("listing_sightings", "crawl_id", "crawls"),
        _fk("listing_sightings", "listing_id", "listings"),
        _fk("listing_sightings", "page_id", "pages"),
        _fk("listing_sightings", "state_id", "listing_states"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_sightings")),
        sa.UniqueConstraint("listing_id", "crawl_id", name="uq_listing_sightings_listing_crawl"),
    )
    op.create_index("ix_listing_sightings_crawl", "listing_sightings", ["crawl_id"], unique=False)
    op.execute(
        f"INSERT INTO listing_states (id, listing_id, {LISTING_CONTENT}, content_sha256, profile_version) "
        f"SELECT id, listing_id, {LISTING_CONTENT}, content_sha256, profile_version FROM listing_snapshots"
    )
    op.execute(
        "INSERT INTO listing_sightings (id, crawl_id, page_id, listing_id, state_id) "
        "SELECT id, crawl_id, page_id, listing_id, id FROM listing_snapshots"
    )
    _sync_sequence("listing_states")
    _sync_sequence("listing_sightings")
    for table in CHILDREN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"fk_{table}_snapshot_id_listing_snapshots"), type_="foreignkey")
            batch_op.alter_column("snapshot_id", new_column_name="state_id", existing_type=sa.Integer())
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                op.f(f"fk_{table}_state_id_listing_states"), "listing_states", ["state_id"], ["id"]
            )
            batch_op.create_index(f"ix_{table}_state", ["state_id"], unique=False)

    # -- vendors: states and sightings (last seen moves to the sighting) ------------------------
    op.create_table(
        "vendor_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        *_vendor_content_columns(),
        *_state_columns(),
        _fk("vendor_states", "pgp_key_id", "pgp_keys"),
        _fk("vendor_states", "vendor_id", "vendors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vendor_states")),
    )
    op.create_index("ix_vendor_states_vendor", "vendor_states", ["vendor_id"], unique=False)
    op.create_table(
        "vendor_sightings",
        *_sighting_columns("vendor"),
        *_last_seen_columns(),
        _fk("vendor_sightings", "crawl_id", "crawls"),
        _fk("vendor_sightings", "page_id", "pages"),
        _fk("vendor_sightings", "state_id", "vendor_states"),
        _fk("vendor_sightings", "vendor_id", "vendors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vendor_sightings")),
        sa.UniqueConstraint("vendor_id", "crawl_id", name="uq_vendor_sightings_vendor_crawl"),
    )
    op.create_index("ix_vendor_sightings_crawl", "vendor_sightings", ["crawl_id"], unique=False)
    op.execute(
        f"INSERT INTO vendor_states (id, vendor_id, {VENDOR_CONTENT}, content_sha256, profile_version) "
        f"SELECT id, vendor_id, {VENDOR_CONTENT}, content_sha256, profile_version FROM vendor_snapshots"
    )
    op.execute(
        "INSERT INTO vendor_sightings (id, crawl_id, page_id, vendor_id, state_id, last_seen_earliest,"
        " last_seen_latest, last_seen_shown) SELECT id, crawl_id, page_id, vendor_id, id, last_seen_earliest,"
        " last_seen_latest, last_seen_shown FROM vendor_snapshots"
    )
    _sync_sequence("vendor_states")
    _sync_sequence("vendor_sightings")

    op.drop_table("listing_snapshots")
    op.drop_table("vendor_snapshots")

    # Feedback rows are updated by every crawl that sees them: room for HOT updates (models/feedback.py).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE feedback SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE feedback RESET (fillfactor)")
    # The snapshot tables come back filled from what the views of revision 0004 would show.
    op.create_table(
        "listing_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        *_listing_content_columns(),
        sa.Column("crawl_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("page_sha256", sa.String(length=64), nullable=False),
        *_state_columns(),
        _fk("listing_snapshots", "category_id", "categories"),
        _fk("listing_snapshots", "crawl_id", "crawls"),
        _fk("listing_snapshots", "listing_id", "listings"),
        _fk("listing_snapshots", "page_id", "pages"),
        _fk("listing_snapshots", "vendor_id", "vendors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_snapshots")),
        sa.UniqueConstraint("listing_id", "crawl_id", name="uq_listing_snapshots_listing_crawl"),
    )
    op.create_index("ix_listing_snapshots_crawl", "listing_snapshots", ["crawl_id"], unique=False)
    op.create_index("ix_listing_snapshots_vendor", "listing_snapshots", ["vendor_id"], unique=False)
    op.create_table(
        "vendor_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        *_vendor_content_columns(),
        *_last_seen_columns(),
        sa.Column("crawl_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("page_sha256", sa.String(length=64), nullable=False),
        *_state_columns(),
        _fk("vendor_snapshots", "crawl_id", "crawls"),
        _fk("vendor_snapshots", "page_id", "pages"),
        _fk("vendor_snapshots", "pgp_key_id", "pgp_keys"),
        _fk("vendor_snapshots", "vendor_id", "vendors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vendor_snapshots")),
        sa.UniqueConstraint("vendor_id", "crawl_id", name="uq_vendor_snapshots_vendor_crawl"),
    )
    op.create_index("ix_vendor_snapshots_crawl", "vendor_snapshots", ["crawl_id"], unique=False)
    page = (
        "JOIN pages p ON p.id = si.page_id JOIN urls u ON u.id = p.url_id"
        " JOIN payloads pl ON pl.id = p.payload_id"
    )
    # A state seen by several crawls becomes one snapshot per sighting: the sighting's id is unique.
    op.execute(
        f"INSERT INTO listing_snapshots (id, listing_id, {LISTING_CONTENT}, crawl_id, page_id, observed_at,"
        f" url, page_sha256, content_sha256, profile_version) SELECT si.id, si.listing_id,"
        f" {', '.join('st.' + c.strip() for c in LISTING_CONTENT.split(','))}, si.crawl_id, si.page_id,"
        f" p.fetched_at, u.url, pl.sha256, st.content_sha256, st.profile_version"
        f" FROM listing_sightings si JOIN listing_states st ON st.id = si.state_id {page}"
    )
    op.execute(
        f"INSERT INTO vendor_snapshots (id, vendor_id, {VENDOR_CONTENT}, last_seen_earliest,"
        f" last_seen_latest, last_seen_shown, crawl_id, page_id, observed_at, url, page_sha256,"
        f" content_sha256, profile_version)"
        f" SELECT si.id, si.vendor_id, {', '.join('st.' + c.strip() for c in VENDOR_CONTENT.split(','))},"
        f" si.last_seen_earliest, si.last_seen_latest, si.last_seen_shown, si.crawl_id, si.page_id,"
        f" p.fetched_at, u.url, pl.sha256, st.content_sha256, st.profile_version"
        f" FROM vendor_sightings si JOIN vendor_states st ON st.id = si.state_id {page}"
    )
    _sync_sequence("listing_snapshots")
    _sync_sequence("vendor_snapshots")
    # Under 0003 every snapshot had its own prices, regions and options: each sighting gets a copy of its
    # state's. The copies are made under negated ids first, so a state id equal to some unrelated
    # sighting's id cannot be mistaken for it.
    for table, columns in (
        ("listing_prices", "position, amount, currency, unit, shown"),
        ("shipping_regions", "role, position, code"),
        ("shipping_options", "position, name, price_amount, price_currency, shown"),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_state")
            batch_op.drop_constraint(op.f(f"fk_{table}_state_id_listing_states"), type_="foreignkey")
            batch_op.alter_column("state_id", new_column_name="snapshot_id", existing_type=sa.Integer())
        op.execute(
            f"INSERT INTO {table} (snapshot_id, {columns}) SELECT -si.id, {columns} FROM {table} t"
            f" JOIN listing_sightings si ON si.state_id = t.snapshot_id"
        )
        op.execute(f"DELETE FROM {table} WHERE snapshot_id >= 0")
        op.execute(f"UPDATE {table} SET snapshot_id = -snapshot_id")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                op.f(f"fk_{table}_snapshot_id_listing_snapshots"),
                "listing_snapshots",
                ["snapshot_id"],
                ["id"],
            )
    op.drop_table("vendor_sightings")
    op.drop_table("vendor_states")
    op.drop_table("listing_sightings")
    op.drop_table("listing_states")

    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("warc_file", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("warc_record_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("payload_sha256", sa.String(length=64), nullable=True))
    for column, source in (
        ("sha256", "sha256"),
        ("size", "size"),
        ("warc_file", "warc_file"),
        ("warc_record_id", "warc_record_id"),
        ("payload_sha256", "CASE WHEN pl.warc_record_id IS NULL THEN NULL ELSE pl.sha256 END"),
    ):
        op.execute(
            f"UPDATE pages SET {column} = (SELECT {source} FROM payloads pl WHERE pl.id = pages.payload_id)"
        )
    op.execute("UPDATE pages SET url = (SELECT u.url FROM urls u WHERE u.id = pages.url_id)")
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.alter_column("url", existing_type=sa.String(length=2000), nullable=False)
        batch_op.alter_column("sha256", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("size", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_pages_crawl")
        batch_op.drop_constraint(op.f("fk_pages_payload_id_payloads"), type_="foreignkey")
        batch_op.drop_column("payload_id")
        batch_op.drop_constraint(op.f("fk_pages_url_id_urls"), type_="foreignkey")
        batch_op.drop_column("url_id")
        batch_op.create_index("ix_pages_crawl_url", ["crawl_id", "url"], unique=False)
        batch_op.create_index("ix_pages_sha256", ["sha256"], unique=False)
        batch_op.create_index("ix_pages_payload_sha256", ["payload_sha256"], unique=False)
        batch_op.create_index("ix_pages_warc_record_id", ["warc_record_id"], unique=False)
    op.drop_index("ix_payloads_warc_record_id", table_name="payloads")
    op.drop_table("payloads")
    op.drop_table("urls")
