"""Raw captures: pages linked to their WARC record; crawls rebuilt by `dnm reparse` linked to their source.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

The columns of models/crawl.py added with the raw capture store (dnm/rawstore.py, docs/raw-captures.md):
pages.warc_file, warc_record_id and payload_sha256, indexed for revisit and record lookups; crawls.reparse_of.
All nullable: pages archived before this revision have no capture. The foreign key on crawls makes SQLite
copy the table (batch mode); models.migrate turns SQLite's foreign key checks off while it migrates.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crawls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reparse_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_crawls_reparse_of_crawls"), "crawls", ["reparse_of"], ["id"]
        )

    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warc_file", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("warc_record_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("payload_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_pages_payload_sha256", ["payload_sha256"], unique=False)
        batch_op.create_index("ix_pages_warc_record_id", ["warc_record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_index("ix_pages_warc_record_id")
        batch_op.drop_index("ix_pages_payload_sha256")
        batch_op.drop_column("payload_sha256")
        batch_op.drop_column("warc_record_id")
        batch_op.drop_column("warc_file")

    with op.batch_alter_table("crawls", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_crawls_reparse_of_crawls"), type_="foreignkey")
        batch_op.drop_column("reparse_of")
