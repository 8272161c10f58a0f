"""Kill points: the moments the crash tests SIGKILL a crawl at (tests only, off by default)."""

from __future__ import annotations

import os
import signal
from typing import Any


class KillPoint:
    """Tests only: `DNM_TEST_KILL_AT="stage:N"` SIGKILLs the crawl process the Nth time it reaches
    `stage`, to test what a crash at that precise point leaves (tests/reliability/test_crash.py).
    Unset (the default), it never fires. Stages: `begin` (crawl row made), `warc` (a page's records
    written, its transaction not begun), `member` (halfway through the first record written from the
    Nth page on), `commit` (a page committed), `close` (raw capture closed, crawl row not), `finish`
    (the crawl row's update sent, not committed)."""

    def __init__(self, spec: str | None) -> None:
        stage, _, count = (spec or "").partition(":")
        self.stage, self.at, self.seen = stage, int(count or 1), 0

    def due(self, stage: str) -> bool:
        """True the Nth time `stage` is reached (for a kill armed to fire a moment later)."""
        if stage != self.stage:
            return False
        self.seen += 1
        return self.seen == self.at

    def reached(self, stage: str) -> None:
        if self.due(stage):
            kill_now()


def kill_now(*_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)
