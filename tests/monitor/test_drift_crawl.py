"""Drift alarms for real: the demo market crawled on a normal day raises none, and on the day it changes
its layout (demo `layout_change_day`) the crawl exits 4, names the fields that fell in its summary, and
runs the notification hook; the alarmed crawl is not used as the next baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from demo.server import DemoServer
from models.db import open_engine
from tests.conftest import archive_url, crawl_demo, latest_crawl, run_dnm

DRIFT_EXIT = 4


@pytest.mark.parametrize("market", ["hollowmere", "copperline"])
def test_a_layout_change_raises_the_alarm_and_a_normal_day_does_not(market: str, tmp_path: Path) -> None:
    url = archive_url(tmp_path)
    hook_out = tmp_path / "alarms.json"
    hook = tmp_path / "hook.py"
    hook.write_text(f"import sys, pathlib; pathlib.Path({str(hook_out)!r}).write_text(sys.stdin.read())\n")
    hook_setting = f"DNM_DRIFT_HOOK={sys.executable} {hook}"

    def night(day: int, change: int | None = None) -> tuple[int, str]:
        with DemoServer(market, day, layout_change_day=change) as server:
            result = crawl_demo(url, market, server.url, "--set", hook_setting)
        return result.returncode, result.stdout

    code, out = night(1)
    assert code == 0, out
    code, out = night(2)
    first = latest_crawl(open_engine(url), market).id - 1
    assert code == 0 and f"none (compared with crawl {first})" in out, out
    assert not hook_out.exists()

    code, out = night(3, change=3)
    assert code == DRIFT_EXIT, out
    assert "DRIFT ALARMS" in out and "ships_to fill rate fell from" in out
    alarms = json.loads(hook_out.read_text())
    crawl = latest_crawl(open_engine(url), market)
    assert alarms["market"] == market and alarms["crawl_id"] == crawl.id
    assert {a["key"] for a in alarms["alarms"]} >= {"listing/listing.ships_to", "listing/listing.ships_from"}
    assert all(a["baseline_crawl"] == crawl.id - 1 and a["now"] < a["before"] for a in alarms["alarms"])
    report = (crawl.stats or {})["dnm/run_report"]
    assert report["fill"]["listing/listing.ships_to"]["rate"] == 0.0 and report["coverage"]["listing"] == 1.0

    # The next normal-looking night is still compared with the last good crawl, not the alarmed one.
    code, out = night(4, change=3)
    assert code == DRIFT_EXIT and f"(last good crawl {crawl.id - 1})" in out, out
    summary = run_dnm("summary", "--database", url, "--crawl", str(crawl.id))
    assert "DRIFT ALARMS" in summary.stdout
    status = run_dnm("status", "--database", url)
    assert status.returncode == DRIFT_EXIT and market in status.stdout
    lines = [line for line in status.stdout.splitlines() if line.strip().startswith("crawl")]
    assert len(lines) == 4 and "DRIFT:" in lines[0] and "DRIFT:" in lines[1] and "DRIFT" not in lines[2]
