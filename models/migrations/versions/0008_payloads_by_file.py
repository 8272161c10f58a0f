"""Payloads by WARC file alone: a night's rows land at the end of the index, not among the night's.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28

Revision 0006 keyed the payloads' WARC index by (warc_file, warc_record_id), so that a night's payloads
would land together rather than each at a random place of an index keyed by record id. Together they
land, but a record id is a random UUID, so within the night's file they still scatter: every batch of
the night wrote most of the night's pages of that index again (night 151 of a 150-night archive: 178
pages in 1,923 log frames, 15% of what the night wrote; `python -m bench.wal_pages`). Nothing reads the
record ids in that order: crash recovery and `dnm archive-check` read "the payloads of this file", and
a revisit is followed to its record by the payload digest it carries. Keyed by the file alone (and so,
in SQLite, by file then rowid), a batch appends; the index is also less than half the size (the record
ids were 47 of its ~95 bytes an entry).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_payloads_warc_file", table_name="payloads")
    op.create_index("ix_payloads_warc_file", "payloads", ["warc_file"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_payloads_warc_file", table_name="payloads")
    op.create_index("ix_payloads_warc_file", "payloads", ["warc_file", "warc_record_id"], unique=False)
