"""Full disks and read-only archive directories: a clear error, a non-zero exit, a consistent archive.

A full disk is a small tmpfs mounted over the raw store or the SQLite archive's directory (root, with
mount allowed: skipped otherwise, with the reason), or a file size limit (RLIMIT_FSIZE, anywhere: writes
past it fail with EFBIG). Each crawl must stop with "disk full ... while writing ...", exit non-zero,
keep what it stored, not be `complete`, and leave an archive that passes its checks; the next crawl,
with room again, closes what is left and equals the ground truth. A read-only directory is refused
before the crawl starts, naming the directory and what to do (as an unprivileged user: root writes
through file modes).
"""

from __future__ import annotations

import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from demo.server import DemoServer
from models import Crawl
from tests.conftest import TEST_DATABASE, DnmResult, archive_url
from tests.reliability.test_crash import (
    MARKET,
    Archive,
    crawl,
    crawls,
    expect_consistent,
    expect_ground_truth,
    stored_pages,
)

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def small_disk(directory: Path, size: str) -> Iterator[None]:
    """A tmpfs of `size` mounted at `directory` for the block; skips where mounting is not allowed."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(
            "a full disk is simulated with a tmpfs mount, which needs root (RLIMIT_FSIZE runs anyway)"
        )
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)]
    mounted = subprocess.run(command, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


def crawl_limited(archive: Archive, mirror: str, preexec: Callable[[], None] | None) -> DnmResult:
    """A crawl as tests.conftest.crawl_demo runs it, with `preexec` run in the child before it starts."""
    completed = subprocess.run(
        [sys.executable, "-m", "dnm.cli", "crawl", MARKET, "--mirror", mirror, "--transport", "direct",
         "--allow-host", "127.0.0.1", "--database", archive.url, "--no-progress",
         "--set", f"DNM_RAW_DIR={archive.raw}"],
        capture_output=True, text=True, timeout=300, preexec_fn=preexec, cwd=REPO,
        env={**os.environ, "DNM_SESSION_DIR": str(archive.raw.parent / "sessions")},
    )  # fmt: skip
    return DnmResult(completed.returncode, completed.stdout, completed.stderr)


def file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def expect_stopped_cleanly(result: DnmResult, archive: Archive, writing: str) -> Crawl:
    """The crawl said why it stopped, exited non-zero without a traceback, kept its pages, not complete."""
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    said = result.stderr
    assert "disk full" in said and f"while writing the {writing}" in said, said[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-5000:]
    (stopped,) = crawls(archive)
    assert stopped.status != "complete"
    assert stored_pages(archive, stopped.id) > 0, "what was stored before the disk filled is kept"
    return stopped


def resume(archive: Archive, mirror: str) -> None:
    """With room again, the next crawl closes what the full disk left and equals the ground truth."""
    result = crawl(archive, mirror)
    assert result.returncode == 0, result.stderr[-3000:]
    first, after = crawls(archive)
    assert first.status in ("partial", "failed") and after.status == "complete", first.status_reason
    expect_consistent(archive)
    expect_ground_truth(archive, after.id)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    from models.db import open_engine
    from tests.conftest import POSTGRES

    (tmp_path / "db").mkdir()
    url = archive_url(tmp_path / "db")
    engine = open_engine(url)
    yield Archive(url, engine, tmp_path / "warc")
    engine.dispose()
    POSTGRES.drop(url)


def test_a_full_raw_store_stops_the_crawl_cleanly(archive: Archive) -> None:
    with DemoServer(MARKET, 1) as server:
        with small_disk(archive.raw, "320k"):
            result = crawl_limited(archive, server.url, None)
            stopped = expect_stopped_cleanly(result, archive, "raw capture")
            assert stopped.status == "partial" and "disk full" in (stopped.status_reason or "")
            expect_consistent(archive)  # the file was cut back to its last whole record, and closed
            kept = list(archive.raw.rglob("*.warc.gz*"))
            saved = {path: path.read_bytes() for path in kept}
        for path, data in saved.items():  # the store moves to a larger disk
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        resume(archive, server.url)


@pytest.mark.sqlite_only("the SQLite archive's own disk")
def test_a_full_sqlite_disk_stops_the_crawl_cleanly(archive: Archive, tmp_path: Path) -> None:
    database = Path(archive.url.removeprefix("sqlite:///"))
    archive.engine.dispose()
    saved = database.read_bytes()  # the empty archive, made on the large disk, copied onto the small one
    with DemoServer(MARKET, 1) as server:
        with small_disk(database.parent, "640k"):
            database.write_bytes(saved)
            result = crawl_limited(archive, server.url, None)
            expect_stopped_cleanly(result, archive, "archive")
            archive.engine.dispose()
            # Moved to a larger disk: the archive file and its write-ahead log, as they were left.
            files = {path.name: path.read_bytes() for path in database.parent.iterdir()}
        for name, data in files.items():
            (database.parent / name).write_bytes(data)
        resume(archive, server.url)


def test_a_file_size_limit_stops_the_crawl_cleanly(archive: Archive) -> None:
    # Below what one crawl writes to the raw store (about 1 MB) and, on SQLite, to the archive.
    with DemoServer(MARKET, 1) as server:
        result = crawl_limited(archive, server.url, file_size_limit(700_000))
        where = "raw capture" if TEST_DATABASE != "sqlite" else ""
        expect_stopped_cleanly(result, archive, where)
        resume(archive, server.url)


@pytest.mark.sqlite_only("the SQLite archive's own file")
def test_an_archive_too_full_to_begin_a_crawl_says_so(archive: Archive) -> None:
    with DemoServer(MARKET, 1) as server:
        # The empty archive is about 300 kB: its write-ahead log cannot grow past this.
        result = crawl_limited(archive, server.url, file_size_limit(10_000))
    said = result.stderr
    assert result.returncode == 1 and "Traceback" not in said, said[-5000:]
    assert "disk full" in said and "while writing the archive" in said and "no crawl began" in said, said
    assert crawls(archive) == []


def test_a_read_only_archive_directory_is_refused_with_what_to_do() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the crawl as an unprivileged user (root writes anyway)")
    nobody = pwd.getpwnam("nobody")
    if not os.access(REPO, os.R_OK | os.X_OK) or not os.access(sys.executable, os.X_OK):
        pytest.skip("the checkout is not readable by other users")
    # Under /tmp itself: pytest's own temporary folders are private to root.
    place = Path(tempfile.mkdtemp(prefix="dnm-readonly-"))
    place.chmod(0o755)
    readonly, writable = place / "readonly", place / "writable"
    readonly.mkdir()
    writable.mkdir()
    writable.chmod(0o777)
    for case, database, raw in (
        ("archive", readonly / "archive.sqlite", writable / "warc"),
        ("raw capture", writable / "archive.sqlite", readonly / "warc"),
    ):
        if case == "raw capture":
            raw.mkdir(mode=0o755)
        completed = subprocess.run(
            ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
             sys.executable, "-m", "dnm.cli", "crawl", MARKET, "--mirror", "http://127.0.0.1:9",
             "--transport", "direct", "--allow-host", "127.0.0.1", "--database", f"sqlite:///{database}",
             "--no-progress", "--set", f"DNM_RAW_DIR={raw}"],
            capture_output=True, text=True, timeout=120, cwd=REPO,
            env={**os.environ, "DNM_SCHEDULE_LOCK_DIR": str(writable / "locks"),
                 "DNM_SESSION_DIR": str(writable / "sessions"), "HOME": str(writable)},
        )  # fmt: skip
        said = completed.stderr
        assert completed.returncode == 1, (case, completed.returncode, said[-3000:])
        named = database.parent if case == "archive" else raw
        assert f"cannot write to the {case} directory {named}" in said, said
        assert "Permission denied" in said and "make it writable" in said, said
        assert "Traceback" not in said, said
        assert not database.exists() or database.parent == writable
    shutil.rmtree(place)
