"""A disk that takes no more: telling its write errors apart, and stopping the crawl for them."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3

from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro

logger = logging.getLogger(__name__)

# OS errors that say the disk cannot take more; SQLite's, and PostgreSQL's SQLSTATE for the same.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
SQLITE_FULL = 13
SQLITE_IOERR = 10
POSTGRESQL_DISK_FULL = "53100"


def disk_failure(exc: BaseException) -> str | None:
    """What a write error says when it is the disk (full, over quota, past the file size limit, an I/O
    error writing the archive), else None: such an error fails every page after it, so the crawl stops."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
            return os.strerror(error.errno)
        if isinstance(error, sqlite3.Error):
            code = getattr(error, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in (SQLITE_FULL, SQLITE_IOERR):
                return f"SQLite: {error}"
        if getattr(error, "sqlstate", None) == POSTGRESQL_DISK_FULL:
            return f"PostgreSQL: {str(error).splitlines()[0]}"
        pending += [getattr(error, "orig", None), error.__cause__, error.__context__]
    return None


def stop_crawl(crawler: Crawler, message: str) -> None:
    """Stop the crawl for a reason every later page would meet too (a full disk); the first reason wins."""
    assert crawler.stats is not None
    if crawler.stats.get_value("dnm/stopped"):
        return
    logger.error("%s: the crawl stops", message)
    crawler.stats.set_value("dnm/stopped", message)
    if crawler.engine is not None:
        deferred_from_coro(crawler.engine.close_spider_async(reason="disk_full"))
