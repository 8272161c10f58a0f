"""The archive writer's fast paths store what the plain statements stored: on SQLite, rows through the
driver's cursor and lookups by a JSON array, byte for byte; on PostgreSQL, feedback resighted by arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from dnm import archive
from models.db import open_engine
from tests.conftest import POSTGRES, archive_url, require_postgresql
from tests.core.test_archive_batches import crawl_nights, dump


def stored(engine: Engine) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every value of every table as SQLite holds it (`quote()`: its storage class and bytes), by id;
    without the columns that say when the writer ran."""
    written_now = {("crawls", "started_at"), ("crawls", "finished_at"), ("markets", "created_at")}
    tables = {}
    with engine.connect() as connection:
        for name in sorted(inspect(connection).get_table_names()):
            if name == "alembic_version":
                continue
            columns = [
                column["name"]
                for column in inspect(connection).get_columns(name)
                if (name, column["name"]) not in written_now
            ]
            quoted = ", ".join(f'quote("{column}")' for column in columns)
            rows = connection.exec_driver_sql(f'SELECT {quoted} FROM "{name}" ORDER BY id').all()
            tables[name] = (columns, [tuple(row) for row in rows])
    return tables


def core_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer as it was: every insert, update and lookup through Core, lookups as IN lists of 500."""

    def chunks(connection: Any, values: list[Any]) -> list[list[Any]]:
        return [values[n : n + 500] for n in range(0, len(values), 500)]

    monkeypatch.setattr(archive, "_driver_insert", lambda connection, table, row: None)
    monkeypatch.setattr(
        archive, "_executemany", lambda connection, statement, rows: connection.execute(statement, rows)
    )
    monkeypatch.setattr(archive, "_among", lambda connection, column, values: column.in_(values))
    monkeypatch.setattr(
        archive,
        "_lookup",
        lambda connection, columns, key, values: connection.execute(
            select(*columns).where(key.in_(values))
        ).all(),
    )
    monkeypatch.setattr(archive, "_DRIVER_STATEMENTS", {})
    monkeypatch.setattr(
        archive,
        "_chunks",
        lambda connection, values: [values[n : n + 500] for n in range(0, len(values), 500)],
    )


@pytest.mark.parametrize("batch", [1, 7])
def test_the_driver_path_stores_what_core_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    fast = open_engine(f"sqlite:///{tmp_path / 'fast.sqlite'}")
    try:
        crawl_nights(fast, batch=batch)
        fast_rows = stored(fast)
    finally:
        fast.dispose()
    with monkeypatch.context() as patched:
        core_only(patched)
        core = open_engine(f"sqlite:///{tmp_path / 'core.sqlite'}")
        try:
            crawl_nights(core, batch=batch)
            core_rows = stored(core)
        finally:
            core.dispose()
    assert fast_rows.keys() == core_rows.keys()
    for table in core_rows:
        assert fast_rows[table] == core_rows[table], table
    # What the comparison covers: timestamps, decimals, booleans, JSON, updates of feedback and key links.
    assert len(core_rows["listing_sightings"][1]) > 100 and core_rows["listing_prices"][1]
    assert core_rows["vendor_keys"][1] and core_rows["categories"][1]
    columns, feedback = core_rows["feedback"]
    sightings = columns.index("sightings")
    assert any(row[sightings] != "1" for row in feedback)  # counted up by the UPDATE of a second sighting


def test_driver_errors_are_sqlalchemy_errors(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'errors.sqlite'}")
    try:
        with engine.begin() as connection:
            statement = archive._driver_insert(connection, archive._URLS, {"url": "http://m/"})
            assert statement is not None
            statement.execute(connection, [{"url": "http://m/"}])
            with pytest.raises(IntegrityError):
                statement.execute(connection, [{"url": "http://m/a"}, {"url": "http://m/"}])
    finally:
        engine.dispose()


def test_a_column_default_goes_through_core(tmp_path: Path) -> None:
    # pages.extraction_errors has a default: rows without it must get it, as Core's insert gives it.
    engine = open_engine(f"sqlite:///{tmp_path / 'defaults.sqlite'}")
    try:
        with engine.connect() as connection:
            row = {"crawl_id": 1, "url_id": 1, "page_type": "x", "status": 200, "fetched_at": None,
                   "server_time": None, "payload_id": 1}  # fmt: skip
            assert archive._driver_insert(connection, archive._PAGES, row) is None
            assert (
                archive._driver_insert(connection, archive._PAGES, {**row, "extraction_errors": 0})
                is not None
            )
    finally:
        engine.dispose()


def test_feedback_resighted_by_arrays_as_row_by_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # On PostgreSQL a batch's resighted feedback is one UPDATE over arrays; the rows must be those that
    # one UPDATE per feedback gave. (Elsewhere both are the per-row statement: the test passes trivially.)
    urls = [archive_url(tmp_path, "arrays"), archive_url(tmp_path, "rows")]
    engines = [open_engine(url) for url in urls]
    try:
        crawl_nights(engines[0], batch=7)
        with monkeypatch.context() as patched:
            patched.setattr(
                archive,
                "_resight",
                lambda connection, rows: connection.execute(archive._RESIGHT_FEEDBACK, rows),
            )
            crawl_nights(engines[1], batch=7)
        arrays, rows = dump(engines[0]), dump(engines[1])
        assert arrays == rows
        assert any(row[-1] > 1 for row in rows["feedback"])  # sightings, counted up
    finally:
        for engine, url in zip(engines, urls, strict=True):
            engine.dispose()
            POSTGRES.drop(url)


def test_postgresql_tables_have_statistics_after_the_first_crawl(tmp_path: Path) -> None:
    # With autovacuum off nothing else analyzes them, and lookups of a batch's values plan as scans.
    require_postgresql()
    url = archive_url(tmp_path, "analyzed", backend="postgresql")
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            before = unanalyzed(connection)
        assert {"payloads", "pages", "listing_sightings"} <= before
        crawl_nights(engine, batch=50)
        with engine.connect() as connection:
            assert unanalyzed(connection) == before - {table.name for table in archive._WRITTEN}
    finally:
        engine.dispose()
        POSTGRES.drop(url)


def unanalyzed(connection: Any) -> set[str]:
    return set(
        connection.exec_driver_sql(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
            "AND relkind = 'r' AND reltuples < 0"
        ).scalars()
    )
