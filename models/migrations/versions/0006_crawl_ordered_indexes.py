"""Indexes a night appends to rather than scatters into: payloads by WARC file, sightings by crawl first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

No data changes. A night's crawl adds ~10,000 listing sightings and thousands of payloads. Two indexes
took each of those rows to a random place: `ix_payloads_warc_record_id` (record ids are random UUIDs)
and the unique (listing_id, crawl_id) of listing_sightings (every listing's run of sightings gets one
more). Each row then dirtied a page of its own, so a night wrote and checkpointed a large and growing
share of both indexes (at 160 nights, 12,300 of the 22,600 pages a night wrote). Now:

- payloads: (warc_file, warc_record_id), which serves crash recovery's "the payloads of this file"
  (which had no index) and keeps a night's rows together. A revisit record is followed to its payload by
  the payload digest it carries (dnm.reparse), not by record id.
- listing_sightings: unique (crawl_id, listing_id), which also serves "a crawl's sightings", so the
  separate crawl_id index goes. A listing's history reads one index entry per crawl of its market.

See bench/README.md ("indexes that grow at the end") for what this changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_payloads_warc_record_id", table_name="payloads")
    op.create_index("ix_payloads_warc_file", "payloads", ["warc_file", "warc_record_id"], unique=False)
    with op.batch_alter_table("listing_sightings") as batch_op:
        batch_op.drop_constraint("uq_listing_sightings_listing_crawl", type_="unique")
        batch_op.drop_index("ix_listing_sightings_crawl")
        batch_op.create_unique_constraint("uq_listing_sightings_crawl_listing", ["crawl_id", "listing_id"])


def downgrade() -> None:
    with op.batch_alter_table("listing_sightings") as batch_op:
        batch_op.drop_constraint("uq_listing_sightings_crawl_listing", type_="unique")
        batch_op.create_index("ix_listing_sightings_crawl", ["crawl_id"], unique=False)
        batch_op.create_unique_constraint("uq_listing_sightings_listing_crawl", ["listing_id", "crawl_id"])
    op.drop_index("ix_payloads_warc_file", table_name="payloads")
    op.create_index("ix_payloads_warc_record_id", "payloads", ["warc_record_id"], unique=False)
