"""The scheduler's run history: scheduled_runs (models/schedule.py, dnm/schedule/, docs/operations.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

One new table, nothing else touched: one row per cron slot of a market (ran, skipped because another
crawl of the market held its lock, or missed), unique per (market, slot) so two schedulers on one
archive never run the same slot.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("market", sa.String(length=64), nullable=False),
        sa.Column("scheduled_for", models.types.UTCDateTime(), nullable=False),
        sa.Column("started_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", models.types.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("crawl_id", sa.Integer(), nullable=True),
        sa.Column("time_box", sa.Integer(), nullable=True),
        sa.Column("request_budget", sa.Integer(), nullable=True),
        sa.Column("log_file", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["crawl_id"], ["crawls.id"], name=op.f("fk_scheduled_runs_crawl_id_crawls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_runs")),
        sa.UniqueConstraint("market", "scheduled_for", name="uq_scheduled_runs_market_slot"),
    )


def downgrade() -> None:
    op.drop_table("scheduled_runs")
