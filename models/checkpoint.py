"""Background WAL checkpoints of a SQLite archive while a crawl writes it.

In WAL mode SQLite appends each commit to the `-wal` file and copies the log into the database file at a
*checkpoint*, which by default runs inside the commit that takes the log past 1,000 pages: that commit
waits while the pages are copied and both files are synced to disk (a sixth of a large batch's time; in
a crawl, a stall of the Scrapy reactor). A `WalCheckpointer` runs a PASSIVE checkpoint on its own
connection in a thread, at most every `interval` seconds after a commit (a tenth of that while the
writer files pages in bulk, BUSY_PAGES), so the copying and syncing happen beside the writer rather
than inside its commits. What a power cut can take back shrinks: the log is synced within a second of a
commit instead of when it reaches 4 MB (SQLite's own checkpoint still runs in a commit should the log
reach that size first). PASSIVE never waits for readers or writers; a
checkpoint that finds the file busy is tried again after the next commit.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import Connection, Engine

logger = logging.getLogger(__name__)


# How often, at most, the thread checkpoints while commits come (seconds).
INTERVAL = 0.5
# The writer's own checkpoint, in its commit, once the log holds this many pages (SQLite's default is
# 1,000, which the thread would rarely get ahead of): the bound should the thread fall behind.
FALLBACK_PAGES = 10_000
# A log this long at a checkpoint means the writer is filing pages in bulk (a crawl commits a page, a few
# dozen log pages, at a time): the thread then checkpoints every `interval / 10` seconds, keeping up with
# it. In bulk the log only starts over when a commit finds it all copied, which the writer's next batch
# rarely leaves time for: SQLite's checkpoint at FALLBACK_PAGES does it, and then has little left to copy.
BUSY_PAGES = 500


class WalCheckpointer:
    """Checkpoints one SQLite file from a daemon thread after commits, at most every `interval` seconds."""

    def __init__(self, path: str | Path, *, interval: float = INTERVAL) -> None:
        self.path = str(path)
        self.interval = interval
        self.checkpoints = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"wal-checkpoint {Path(path).name}", daemon=True
        )
        self._thread.start()

    @classmethod
    def for_engine(cls, engine: Engine, *, interval: float = INTERVAL) -> WalCheckpointer | None:
        """A checkpointer for the engine's database if it is a SQLite file in WAL mode, else None."""
        database = engine.url.database
        if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
            return None
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        return cls(database, interval=interval) if str(mode).lower() == "wal" else None

    @staticmethod
    def adopt(connection: Connection) -> None:
        """Leave checkpoints to the thread on this writing connection (SQLite's own at FALLBACK_PAGES);
        once per connection of the pool."""
        info = connection.connection.info
        if not info.get("dnm/fallback-checkpoints"):
            connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")
            info["dnm/fallback-checkpoints"] = True

    def committed(self) -> None:
        """A transaction was committed: checkpoint soon (on the thread; this returns at once)."""
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (after the checkpoint under way, if any). Safe to call twice."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            logger.warning(
                "no background checkpoints of %s (%s): SQLite checkpoints in its commits", self.path, exc
            )
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping.is_set():
                    return
                busy = self._checkpoint(connection) >= BUSY_PAGES
                if self._stopping.wait(self.interval / 10 if busy else self.interval):
                    return
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> int:
        """One PASSIVE checkpoint; returns the pages the log held (0 if it could not run)."""
        try:
            ((_, logged, _),) = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as exc:
            # Busy or failing: SQLite's own checkpoints in the writer's commits still bound the log.
            logger.debug("background checkpoint of %s: %s", self.path, exc)
            return 0
        return max(logged, 0)
