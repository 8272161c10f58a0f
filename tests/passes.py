"""The suite's passes, SQLite and PostgreSQL, run side by side: what `make test` (and so CI) runs.

Most of a pass is waiting (demo markets answering, tors bootstrapping, crawl processes starting), so the
passes share the machine's cores well and take little more together than the longest alone; run one after
the other they no longer fit CI's half hour. The SQLite pass is the longer (the Tor tests run in it only,
tests/conftest.py), so it runs as two processes: its Tor tests (DNM_TEST_PART=tor) and the rest
(DNM_TEST_PART=no-tor). They are kept apart: each has its own PostgreSQL databases, its own Redis database
(tests/conftest.py), its own private Tor networks and temporary folders. Each writes its output to
var/test-logs/<name>.log, ending with its 40 slowest tests to keep CI's half hour in view; a line per run
is printed when it ends, and the whole output of a run that failed. Exit status: 0 when all passed.

    python -m tests.passes [PYTEST ARGS...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (log name, DNM_TEST_DATABASE, DNM_TEST_PART)
RUNS = (
    ("sqlite", "sqlite", "no-tor"),
    ("sqlite-tor", "sqlite", "tor"),
    ("postgresql", "postgresql", ""),
)


def main(argv: list[str]) -> int:
    logs = ROOT / "var" / "test-logs"
    logs.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    running = {}
    for name, backend, part in RUNS:
        log = logs / f"{name}.log"
        with log.open("wb") as out:
            running[name] = (
                subprocess.Popen(
                    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--durations=40", *argv],
                    cwd=ROOT,
                    env={**os.environ, "DNM_TEST_DATABASE": backend, "DNM_TEST_PART": part},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        print(f"{name} started: {log.relative_to(ROOT)}", flush=True)
    failed = []
    for name, (process, log) in running.items():
        status = process.wait()
        lines = log.read_text(errors="replace").splitlines()
        print(f"{name} ({time.monotonic() - began:.0f} s): {lines[-1] if lines else 'no output'}")
        if status != 0:
            failed.append((name, log))
    for name, log in failed:
        print(f"\n===== {name} failed: its output =====\n{log.read_text(errors='replace')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
