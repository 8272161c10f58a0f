"""The `dnm` command: help everywhere, clear errors, exports, ground truth, and the main demo job."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from demo.truth import MARKETS, truth
from dnm.cli import build_parser, main
from dnm.summary import errors_from_stats
from models.db import open_engine
from tests.conftest import DemoArchive, archive_url, latest_crawl, run_dnm
from tests.tor.support import require_tor
from transport.onion_keys import onion_key_for

COMMANDS = [
    [],
    ["crawl"],
    ["export"],
    ["summary"],
    ["demo"],
    ["demo", "serve"],
    ["demo", "truth"],
    ["demo", "run"],
]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "dnm")
def test_help_on_every_command(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*words, "--help"])
    assert exit_.value.code == 0
    assert "usage: dnm" in capsys.readouterr().out


def test_unknown_market_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crawl", "atlantis", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no profile for market 'atlantis'" in err and "copperline" in err


def test_broken_profile_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "market: broken\nversion: 1\npages:\n  - type: home\n    match: {}\n"
    )
    result = run_dnm("crawl", "broken", "--no-progress", env={"DNM_PROFILE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "broken.yaml: pages.home.match: give a url regex and/or a css selector" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crawl", "hollowmere", "--set", "NOEQUALS"]) == 2
    assert "--set takes NAME=VALUE" in capsys.readouterr().err


def test_export_jsonl_and_csv(demo_archive: DemoArchive, tmp_path: Path) -> None:
    crawl_id = str(demo_archive.crawls["copperline", 1])
    out = tmp_path / "listings.csv"
    result = run_dnm("export", "listings", "--format", "csv", "--crawl", crawl_id, "-o", str(out),
                     "--database", demo_archive.url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    jsonl = run_dnm("export", "listings", "--crawl", crawl_id, "--database", demo_archive.url)
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(rows) == len(records) == len(demo_archive.export("listings", "copperline", 1)) > 100
    assert rows[0]["listing_id"] == records[0]["listing_id"]
    assert json.loads(rows[0]["ships_to"]) == records[0]["ships_to"]
    assert f"{len(rows)} listings rows written" in result.stderr


def test_export_filters_by_time(demo_archive: DemoArchive) -> None:
    everything = run_dnm("export", "vendors", "--market", "hollowmere", "--database", demo_archive.url)
    nothing = run_dnm("export", "vendors", "--since", "2999-01-01", "--database", demo_archive.url)
    expected = sum(len(truth("hollowmere", day, kind="vendors")) for day in (1, 2))
    assert len(everything.stdout.splitlines()) == expected
    assert nothing.stdout == ""
    bad = run_dnm("export", "vendors", "--since", "yesterday-ish", "--database", demo_archive.url)
    assert bad.returncode == 2 and "not an ISO date or time" in bad.stderr


def test_demo_truth_writes_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "truth.jsonl"
    assert (
        main(["demo", "truth", "--market", "hollowmere", "--day", "1", "--kind", "vendors", "-o", str(out)])
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == json.loads(json.dumps(truth("hollowmere", 1, kind="vendors")))


def test_the_main_job_crawls_every_demo_market_over_tor(tmp_path: Path) -> None:
    """`make demo` runs `dnm demo run`: the demo markets as onions on a private Tor network, crawled."""
    require_tor()
    url = archive_url(tmp_path, "demo")
    result = run_dnm("demo", "run", "--database", url, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "as onion services on a private Tor network" in result.stdout
    engine = open_engine(url)
    for market in MARKETS:
        assert f"of {market}: complete" in result.stdout
        crawl = latest_crawl(engine, market)
        assert crawl.status == "complete" and crawl.transport == "tor"
        assert crawl.mirror == f"http://{onion_key_for(market).address}"
        assert errors_from_stats(crawl.stats or {}) == {}
    assert len(re.findall(r"│ errors +│ none", result.stdout)) == len(MARKETS)
