"""The suite's two passes, SQLite and PostgreSQL, run side by side: what `make test` (and so CI) runs.

Most of a pass is waiting (demo markets answering, tors bootstrapping, crawl processes starting), so the
two passes share the machine's cores well and take little more together than the longer one alone; run
one after the other they no longer fit CI's half hour. They are kept apart: each pass has its own
PostgreSQL databases, its own Redis database (tests/conftest.py), its own private Tor networks and
temporary folders. Each pass writes its output to var/test-logs/<backend>.log; a line per pass is
printed when it ends, and the whole output of a pass that failed. Each log ends with the pass's 40 slowest
tests, to keep CI's half hour in view. Exit status: 0 when both passed.

    python -m tests.passes [PYTEST ARGS...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "postgresql")


def main(argv: list[str]) -> int:
    logs = ROOT / "var" / "test-logs"
    logs.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    running = {}
    for backend in BACKENDS:
        log = logs / f"{backend}.log"
        with log.open("wb") as out:
            running[backend] = (
                subprocess.Popen(
                    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--durations=40", *argv],
                    cwd=ROOT,
                    env={**os.environ, "DNM_TEST_DATABASE": backend},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        print(f"{backend} pass started: {log.relative_to(ROOT)}", flush=True)
    failed = []
    for backend, (process, log) in running.items():
        status = process.wait()
        lines = log.read_text(errors="replace").splitlines()
        print(f"{backend} pass ({time.monotonic() - began:.0f} s): {lines[-1] if lines else 'no output'}")
        if status != 0:
            failed.append((backend, log))
    for backend, log in failed:
        print(f"\n===== {backend} pass failed: its output =====\n{log.read_text(errors='replace')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
