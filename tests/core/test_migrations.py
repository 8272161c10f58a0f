"""The Alembic migrations build exactly the models' schema and upgrade old archives, on SQLite and PostgreSQL.

Every test here runs on both backends whatever DNM_TEST_DATABASE says: the migrations are the
one place where the two must agree by construction. PostgreSQL tests skip when the server cannot
be reached (and fail under CI=true), like every PostgreSQL test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, inspect, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from dnm.cli import main
from models import ListingSnapshot, Page, VendorSnapshot
from models.base import Base
from models.db import open_engine
from models.migrate import (
    FIRST_REVISION,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    include_object,
    upgrade,
)
from models.types import ExactDecimal, UTCDateTime
from tests.conftest import BACKENDS, POSTGRES, archive_url

NOW = datetime(2026, 1, 2, 12, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend in turn."""
    url = archive_url(tmp_path, backend=request.param)
    yield url
    POSTGRES.drop(url)


@pytest.fixture
def bare_engine(empty_url: str) -> Iterator[Engine]:
    """An engine on the empty database, no schema made."""
    engine = open_engine(empty_url, create=False)
    yield engine
    engine.dispose()


def migrate(engine: Engine, action: str = "upgrade", revision: str = "head") -> None:
    """Run the migration scripts themselves (open_engine takes a shortcut for new databases)."""
    with engine.begin() as connection:
        getattr(command, action)(alembic_config(connection=connection), revision)


def drift(engine: Engine) -> list[Any]:
    """What Alembic finds different between the database and the models (types included)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object(connection.dialect.name)}
        )
        return compare_metadata(context, Base.metadata)


def revision_of(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return current_revision(connection)


def test_migrations_build_exactly_the_models_schema(bare_engine: Engine) -> None:
    migrate(bare_engine)
    assert drift(bare_engine) == []
    assert set(inspect(bare_engine).get_table_names()) == {*Base.metadata.tables, "alembic_version"}
    assert revision_of(bare_engine) == head_revision()


def test_schema_drift_is_seen(bare_engine: Engine) -> None:
    # The comparison above means something only if it can fail: take an index away, add a column.
    migrate(bare_engine)
    with bare_engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_pages_crawl"))
        connection.execute(text("ALTER TABLE markets ADD COLUMN stray INTEGER"))
    changes = [change[0] for change in drift(bare_engine)]
    assert sorted(changes) == ["add_index", "remove_column"]


def test_new_archive_is_created_at_head(empty_url: str) -> None:
    engine = open_engine(empty_url)
    try:
        assert revision_of(engine) == head_revision()
        assert drift(engine) == []
        # Opening it again finds it at head and changes nothing.
        assert upgrade(engine) == (head_revision(), head_revision())
    finally:
        engine.dispose()


def seed_first_revision(engine: Engine) -> None:
    """A market, a crawl and a page as an archive at the first revision holds them.

    Rows pointing at other rows matter: on SQLite some migrations copy a table, and the rows that
    refer to it must survive the copy.
    """
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO markets (id, slug, name, created_at) VALUES (1, 'old', 'Old market', :at)"),
            {"at": NOW},
        )
        connection.execute(
            text(
                "INSERT INTO crawls (id, market_id, started_at, status, tool_version, profile_version,"
                " profile_sha256, settings_sha256, transport)"
                " VALUES (1, 1, :at, 'complete', '0.1.0', 'old@1', :sha, :sha, 'tor')"
            ),
            {"at": NOW, "sha": "0" * 64},
        )
        connection.execute(
            text(
                "INSERT INTO pages (id, crawl_id, url, page_type, status, fetched_at, sha256, size,"
                " extraction_errors) VALUES (1, 1, 'http://old/', 'listing', 200, :at, :sha, 10, 0)"
            ),
            {"at": NOW, "sha": "f" * 64},
        )
        # A listing and a vendor snapshot with a price and a region: 0004 turns them into states and
        # sightings, and the snapshot views must show them as they were.
        for statement in (
            "INSERT INTO listings (id, market_id, listing_key, first_seen_at) VALUES (1, 1, 'L1', :at)",
            "INSERT INTO vendors (id, market_id, vendor_key, name, first_seen_at)"
            " VALUES (1, 1, 'V1', 'vee', :at)",
            "INSERT INTO listing_snapshots (id, listing_id, crawl_id, page_id, observed_at, url, page_sha256,"
            " content_sha256, profile_version, vendor_id, title, price_amount, price_currency)"
            " VALUES (7, 1, 1, 1, :at, 'http://old/', :sha, :sha, 'old@1', 1, 'Old listing', '1.50', 'EUR')",
            "INSERT INTO listing_prices (snapshot_id, position, amount, currency, shown)"
            " VALUES (7, 0, '1.50', 'EUR', '1.50 EUR')",
            "INSERT INTO shipping_regions (snapshot_id, role, position, code) VALUES (7, 'from', 0, 'DE')",
            "INSERT INTO vendor_snapshots (id, vendor_id, crawl_id, page_id, observed_at, url, page_sha256,"
            " content_sha256, profile_version, name, name_shown, last_seen_shown)"
            " VALUES (3, 1, 1, 1, :at, 'http://old/', :sha, :sha, 'old@1', 'vee', 'vee', '2 hours ago')",
        ):
            connection.execute(text(statement), {"at": NOW, "sha": "f" * 64})


def assert_seed_kept(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("SELECT slug FROM markets")).scalars().all() == ["old"]
        crawls = connection.execute(
            text(
                "SELECT c.id, u.url FROM crawls c JOIN pages p ON p.crawl_id = c.id"
                " JOIN urls u ON u.id = p.url_id"
            )
        )
        assert crawls.all() == [(1, "http://old/")]
    with Session(engine) as session:
        (listing,) = session.scalars(select(ListingSnapshot)).all()
        assert (listing.id, listing.crawl_id, listing.url, listing.page_sha256) == (
            7,
            1,
            "http://old/",
            "f" * 64,
        )
        assert (listing.title, listing.price_amount, listing.observed_at) == (
            "Old listing",
            Decimal("1.50"),
            NOW,
        )
        assert [(p.amount, p.shown) for p in listing.prices] == [(Decimal("1.50"), "1.50 EUR")]
        assert [(r.role, r.code) for r in listing.regions] == [("from", "DE")]
        (vendor,) = session.scalars(select(VendorSnapshot)).all()
        assert (vendor.id, vendor.name, vendor.last_seen_shown) == (3, "vee", "2 hours ago")
        (page,) = session.scalars(select(Page)).all()
        assert (page.url, page.sha256, page.size) == ("http://old/", "f" * 64, 10)


def test_archive_at_the_first_revision_upgrades_to_head(bare_engine: Engine) -> None:
    migrate(bare_engine, revision=FIRST_REVISION)
    seed_first_revision(bare_engine)
    assert upgrade(bare_engine) == (FIRST_REVISION, head_revision())
    assert drift(bare_engine) == []
    assert_seed_kept(bare_engine)
    if bare_engine.dialect.name == "sqlite":
        # Checks were off while migrating; the connection goes back to the pool with them on.
        with bare_engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_states_and_sightings_downgrade_back_to_snapshot_tables(bare_engine: Engine) -> None:
    migrate(bare_engine, revision=FIRST_REVISION)
    seed_first_revision(bare_engine)
    upgrade(bare_engine)
    with bare_engine.begin() as connection:
        # A second crawl sees the listing unchanged: one more sighting of the same state.
        connection.execute(
            text(
                "INSERT INTO crawls (id, market_id, started_at, status, tool_version, profile_version,"
                " profile_sha256, settings_sha256, transport)"
                " VALUES (2, 1, :at, 'complete', '0.1.0', 'old@1', :sha, :sha, 'tor')"
            ),
            {"at": NOW, "sha": "0" * 64},
        )
        connection.execute(
            text(
                "INSERT INTO pages (id, crawl_id, url_id, page_type, status, fetched_at, extraction_errors,"
                " payload_id) VALUES (2, 2, 1, 'listing', 200, :at, 0, 1)"
            ),
            {"at": NOW + timedelta(days=1)},
        )
        connection.execute(
            text(
                "INSERT INTO listing_sightings (id, crawl_id, page_id, listing_id, state_id)"
                " VALUES (8, 2, 2, 1, 7)"
            )
        )
    downgrade(bare_engine, "0003")
    with bare_engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, crawl_id, url, page_sha256, title FROM listing_snapshots ORDER BY id")
        ).all()
        assert rows == [
            (7, 1, "http://old/", "f" * 64, "Old listing"),
            (8, 2, "http://old/", "f" * 64, "Old listing"),
        ]
        prices = connection.execute(
            text("SELECT snapshot_id, shown FROM listing_prices ORDER BY snapshot_id")
        )
        assert prices.all() == [(7, "1.50 EUR"), (8, "1.50 EUR")]
        regions = connection.execute(
            text("SELECT snapshot_id, code FROM shipping_regions ORDER BY snapshot_id")
        )
        assert regions.all() == [(7, "DE"), (8, "DE")]
        pages = connection.execute(text("SELECT id, url, sha256, size FROM pages ORDER BY id"))
        assert pages.all() == [(1, "http://old/", "f" * 64, 10), (2, "http://old/", "f" * 64, 10)]
    # And up again: the same rows as states and sightings.
    upgrade(bare_engine)
    assert drift(bare_engine) == []
    with Session(bare_engine) as session:
        assert [s.id for s in session.scalars(select(ListingSnapshot).order_by(ListingSnapshot.id))] == [7, 8]


def test_archive_made_before_migrations_is_taken_as_the_first_revision(bare_engine: Engine) -> None:
    # Archives made by create_all before there were migrations have tables and no alembic_version.
    migrate(bare_engine, revision=FIRST_REVISION)
    seed_first_revision(bare_engine)
    with bare_engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    assert upgrade(bare_engine) == (None, head_revision())
    assert revision_of(bare_engine) == head_revision()
    assert drift(bare_engine) == []
    assert_seed_kept(bare_engine)


def test_downgrade_to_nothing_and_back(bare_engine: Engine) -> None:
    migrate(bare_engine)
    migrate(bare_engine, "downgrade", "base")
    assert set(inspect(bare_engine).get_table_names()) == {"alembic_version"}
    migrate(bare_engine)
    assert drift(bare_engine) == []


def test_exact_decimals_and_utc_times_round_trip(bare_engine: Engine) -> None:
    table = Table(
        "exact",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("amount", ExactDecimal()),
        Column("at", UTCDateTime()),
    )
    table.create(bare_engine)
    # Evidence keeps what the page showed: no float, no rounding, no padding to a fixed scale.
    amounts = [Decimal("0.1"), Decimal("1.50"), Decimal("123456789012345678901234.1234567890123456789")]
    local = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=2)))
    with bare_engine.begin() as connection:
        connection.execute(insert(table), [{"amount": amount, "at": local} for amount in amounts])
        rows = connection.execute(select(table.c.amount, table.c.at).order_by(table.c.id)).all()
    assert [amount for amount, _ in rows] == amounts
    assert [str(amount) for amount, _ in rows] == [str(amount) for amount in amounts]
    assert {at for _, at in rows} == {local} and all(at.tzinfo == UTC for _, at in rows)
    with pytest.raises(StatementError, match="naive datetime"), bare_engine.begin() as connection:
        connection.execute(insert(table).values(amount=Decimal(1), at=datetime(2026, 1, 1)))


def test_db_commands_show_and_bring_the_revision(empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    head = head_revision()
    assert main(["db", "current", "--database", empty_url]) == 0
    assert "no revision" in capsys.readouterr().out
    assert main(["db", "upgrade", "--database", empty_url]) == 0
    assert f"created at {head}" in capsys.readouterr().out
    assert main(["db", "upgrade", "--database", empty_url]) == 0
    assert f"already at {head}" in capsys.readouterr().out
    assert main(["db", "current", "--database", empty_url]) == 0
    assert f"{head} (head)" in capsys.readouterr().out


def test_db_command_on_an_unreachable_archive_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    assert main(["db", "current", "--database", url]) == 1
    assert "cannot open the archive" in capsys.readouterr().err


@pytest.mark.sqlite_only("WAL and the archive file are SQLite's own")
def test_sqlite_archive_is_a_file_in_wal_mode(database_url: str) -> None:
    # WAL lets researchers read while a crawl writes (models/db.py); the folder is made on demand.
    nested = database_url.replace("archive.sqlite", "deeper/archive.sqlite")
    engine = open_engine(nested)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert Path(nested.removeprefix("sqlite:///")).is_file()
    finally:
        engine.dispose()
