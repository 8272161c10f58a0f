"""Background WAL checkpoints: a SQLite archive's commits reach its database file without the writer
checkpointing in its commits, and no thread outlives the crawl."""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from bench.synthetic_market import MarketShape, SyntheticMarket, synthetic_profile
from dnm.archive import ArchiveWriter, CrawlSetup
from models.checkpoint import BUSY_PAGES, FALLBACK_PAGES, WalCheckpointer
from models.db import open_engine
from tests.conftest import archive_url

# SQLite files only: the PostgreSQL pass would run the same tests again.
pytestmark = pytest.mark.sqlite_only("background checkpoints of a SQLite file")

SETUP = CrawlSetup(tool_version="test", settings_sha256="0" * 64, transport="direct")
SHAPE = MarketShape(listings=600, vendors=40)


def checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("wal-checkpoint")]


def until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = open_engine(archive_url(tmp_path, backend="sqlite"))
    yield engine
    engine.dispose()


def write_night(engine: Engine, finish: bool = True) -> ArchiveWriter:
    night = next(SyntheticMarket(SHAPE).nights(1))
    writer = ArchiveWriter(engine, synthetic_profile(SHAPE), SETUP)
    writer.begin()
    for start in range(0, len(night.pages), 50):
        writer.write_pages(night.pages[start : start + 50])
    if finish:
        writer.finish("complete", None, {})
    return writer


def test_commits_reach_the_database_file_from_the_thread(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = Path(sqlite_engine.url.database)
    writer = write_night(sqlite_engine, finish=False)
    checkpointer = writer._checkpointer
    assert checkpointer is not None and until(lambda: checkpointer.checkpoints >= 1)
    # The writer's own connection leaves checkpoints to the thread until the log is this long.
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == FALLBACK_PAGES
    # After the thread's next checkpoint (the writer idle), the database file alone (no -wal beside it)
    # holds every page: nothing but the thread has checkpointed it.
    done = checkpointer.checkpoints
    checkpointer.committed()
    assert until(lambda: checkpointer.checkpoints > done)
    alone = tmp_path / "alone.sqlite"
    shutil.copyfile(path, alone)
    with sqlite3.connect(alone) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with sqlite3.connect(path) as live:
            for table in ("pages", "listing_sightings", "feedback"):
                count = f"SELECT count(*) FROM {table}"
                assert copy.execute(count).fetchone() == live.execute(count).fetchone() != (0,)
    writer.finish("complete", None, {})


def test_a_bulk_writer_is_checkpointed_every_tenth_of_the_interval(tmp_path: Path) -> None:
    # A crawl commits a page at a time and is checkpointed once an interval. Filing pages in bulk fills
    # the log faster than that: the thread then keeps up every tenth of the interval, and goes back to
    # the interval once a checkpoint finds the log short again.
    path = tmp_path / "bulk.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the thread checkpoints
    writer.execute("CREATE TABLE bodies (body BLOB)")
    checkpointer = WalCheckpointer(path, interval=20.0)

    def commit(pages: int) -> None:  # a row of 3,000 bytes a page
        writer.execute("BEGIN")
        writer.executemany("INSERT INTO bodies VALUES (?)", [(os.urandom(3000),) for _ in range(pages)])
        writer.execute("COMMIT")
        checkpointer.committed()

    try:
        commit(BUSY_PAGES + 100)
        assert until(lambda: checkpointer.checkpoints == 1)
        commit(BUSY_PAGES + 100)
        assert until(lambda: checkpointer.checkpoints == 2, seconds=5.0)  # 2 s, not 20
        commit(5)  # a crawl's page (the log starts over, all of it copied before)
        assert until(lambda: checkpointer.checkpoints == 3, seconds=5.0)
        commit(5)
        assert not until(lambda: checkpointer.checkpoints > 3, seconds=5.0)  # back to the interval
    finally:
        checkpointer.close()
        writer.close()


def test_no_thread_outlives_the_crawl(sqlite_engine: Engine) -> None:
    before = checkpoint_threads()
    write_night(sqlite_engine)
    assert checkpoint_threads() == before
    # A writer dropped without finish() (its crawl failed) stops its thread when it is collected.
    writer = write_night(sqlite_engine, finish=False)
    assert len(checkpoint_threads()) == len(before) + 1
    del writer
    gc.collect()
    assert until(lambda: checkpoint_threads() == before)


def test_closing_twice_and_a_missing_file_are_harmless(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(tmp_path / "no-such-dir" / "archive.sqlite", interval=0.01)
    checkpointer.committed()
    checkpointer.close()
    checkpointer.close()
    assert checkpointer.checkpoints == 0


def test_only_sqlite_files_in_wal_mode_get_one(tmp_path: Path) -> None:
    memory = open_engine("sqlite://")
    assert WalCheckpointer.for_engine(memory) is None
    memory.dispose()
    rollback = tmp_path / "rollback.sqlite"
    sqlite3.connect(rollback).execute("CREATE TABLE t (x)").connection.close()
    engine = create_engine(f"sqlite:///{rollback}")  # no archive PRAGMAs: a rollback journal
    assert WalCheckpointer.for_engine(engine) is None
    engine.dispose()
