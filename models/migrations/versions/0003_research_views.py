"""Research views: listing_history, vendor_summary, shipping_matrix, vendor_identities (models/views.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Views hold no data. `models.migrate.upgrade` drops them before any migration and makes them anew from
models/views.py after, so this revision only marks the schema that has them (archives at 0002 get
them on their next open).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from models.views import drop_views

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing to do here: the views of today's models/views.py may read tables of later revisions.
    pass


def downgrade() -> None:
    drop_views(op.get_bind())
