"""Payloads found by the first 64 bits of their digest: on SQLite a small integer index, not the text one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

A night's crawl adds thousands of page bodies, each at a random place of the index payloads are found
by (a SHA-256 digest is random), so each dirties an index page of its own, and at 64 hex characters a
key that index is four times the size of one of integers: at 160 nights it held most of what a night
wrote. Now `payloads.sha256_prefix` holds the digest's first 64 bits (signed, `models.crawl.digest_prefix`),
every lookup by digest goes through it and compares the full digest on the row, and:

- SQLite: the prefix column is the index; the unique constraint on the digest goes, and a trigger
  (`payloads_sha256_unique`) refuses a second row with a digest already held, found through the prefix.
  SQLite has one writer at a time, which looks a body up before it inserts it.
- PostgreSQL: the unique constraint stays (crawls write at once there and insert with ON CONFLICT), and
  it serves lookups: no prefix index.

Existing rows get their prefix here (a Python function on SQLite, a bit-string cast on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.crawl import digest_prefix

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As models/crawl.py creates it in new archives (kept here as this revision made it).
DIGEST_UNIQUE = """CREATE TRIGGER payloads_sha256_unique BEFORE INSERT ON payloads
WHEN EXISTS (SELECT 1 FROM payloads WHERE sha256_prefix = NEW.sha256_prefix AND sha256 = NEW.sha256)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: payloads.sha256'); END"""


def upgrade() -> None:
    op.add_column("payloads", sa.Column("sha256_prefix", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.execute("UPDATE payloads SET sha256_prefix = ('x' || left(sha256, 16))::bit(64)::bigint")
        op.alter_column("payloads", "sha256_prefix", existing_type=sa.BigInteger(), nullable=False)
        return
    dbapi_connection = bind.connection.dbapi_connection
    assert dbapi_connection is not None
    dbapi_connection.create_function("dnm_digest_prefix", 1, digest_prefix, deterministic=True)
    op.execute("UPDATE payloads SET sha256_prefix = dnm_digest_prefix(sha256)")
    with op.batch_alter_table("payloads") as batch_op:
        batch_op.alter_column("sha256_prefix", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_constraint("uq_payloads_sha256", type_="unique")
    op.create_index("ix_payloads_sha256_prefix", "payloads", ["sha256_prefix"], unique=False)
    op.execute(DIGEST_UNIQUE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_column("payloads", "sha256_prefix")
        return
    op.execute("DROP TRIGGER payloads_sha256_unique")
    op.drop_index("ix_payloads_sha256_prefix", table_name="payloads")
    with op.batch_alter_table("payloads") as batch_op:
        batch_op.drop_column("sha256_prefix")
        batch_op.create_unique_constraint("uq_payloads_sha256", ["sha256"])
