"""End to end against the hostile demo market on loopback: every barrier on, 10% faults, exact ground truth.

The same comparison as the friendly crawl's (tests/test_demo_crawl.py), with the skins' hostile presets:
wait page, EndGame-style queue and CAPTCHAs, login with decoys and an anti-phishing check, sessions that
expire, killed circuits, maintenance, transient faults, three mirrors (one dying mid-crawl) and a
phishing clone. The same over the private Tor network is in tests/tor/test_hostile_over_tor.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from demo.hostile.accounts import demo_accounts, secrets_toml
from demo.hostile.config import Hostility
from demo.server import DemoServer
from demo.skins import hostility_for
from demo.truth import MARKETS, truth
from dnm.export import ExportFilter, export_rows
from models import Crawl, Page
from models.db import open_engine
from tests.conftest import DnmResult, archive_url, crawl_demo, latest_crawl
from tests.groundtruth import compare_feedback, compare_listings, compare_vendors

COMPARE = {"listings": compare_listings, "vendors": compare_vendors, "feedback": compare_feedback}
# On loopback every keep-alive connection counts as a circuit: a small budget makes kills happen.
LOOPBACK = {"circuit_budget": 20}


def write_accounts(directory: Path, markets: tuple[str, ...] = MARKETS, text: str | None = None) -> Path:
    """A secrets file of the demo accounts, private as the crawler requires."""
    path = directory / "accounts.toml"
    path.write_text(text if text is not None else secrets_toml(1, markets))
    os.chmod(path, 0o600)
    return path


def hostile_crawl(
    database: str, server: DemoServer, accounts: Path, *mirrors: str, extra: tuple[str, ...] = ()
) -> DnmResult:
    """Crawl the served market with the demo CAPTCHA solver and the given accounts."""
    chosen = mirrors or (server.url,)
    return crawl_demo(
        database, server.market, chosen[0], *(a for m in chosen[1:] for a in ("--mirror", m)),
        "--accounts", str(accounts), "--captcha-solver", "demo", *extra,
    )  # fmt: skip


@dataclass
class HostileArchive:
    url: str
    results: dict[str, DnmResult]

    def crawl(self, market: str) -> Crawl:
        return latest_crawl(open_engine(self.url), market)

    def export(self, kind: str, market: str) -> list[dict[str, Any]]:
        return list(export_rows(open_engine(self.url), kind, ExportFilter(crawl_id=self.crawl(market).id)))


@pytest.fixture(scope="module")
def hostile_archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileArchive]:
    directory = tmp_path_factory.mktemp("hostile")
    url = archive_url(directory)
    accounts = write_accounts(directory)
    archive = HostileArchive(url, {})
    for market in MARKETS:
        hostility = hostility_for(market).with_overrides(**LOOPBACK)
        with DemoServer(market, 1, hostility=hostility) as server:
            archive.results[market] = hostile_crawl(url, server, accounts)
    yield archive


@pytest.mark.parametrize("kind", COMPARE)
@pytest.mark.parametrize("market", MARKETS)
def test_hostile_export_equals_ground_truth(hostile_archive: HostileArchive, market: str, kind: str) -> None:
    result = hostile_archive.results[market]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert COMPARE[kind](hostile_archive.export(kind, market), truth(market, 1, kind=kind)) == []


@pytest.mark.parametrize("market", MARKETS)
def test_every_barrier_was_met_and_passed(hostile_archive: HostileArchive, market: str) -> None:
    crawl = hostile_archive.crawl(market)
    stats = crawl.stats or {}
    assert crawl.status == "complete", crawl.status_reason
    hostility = hostility_for(market)
    expected = {"captcha", "login", "maintenance", "queue", "killed"} | (
        {"wait"} if hostility.wait_seconds else set()
    )
    met = {key.removeprefix("dnm/barriers/") for key in stats if key.startswith("dnm/barriers/")}
    assert expected <= met, met
    assert not any(key.startswith("dnm/barriers/unpassed") for key in stats)
    assert (
        stats["dnm/captcha/solved"] >= 2 and stats["dnm/login/succeeded"] >= 2
    )  # sessions expired: re-login
    assert stats["dnm/login/accounts_retired"] >= 1  # the banned demo account was dropped from the pool
    # Coverage is complete for every page type, and barrier pages were archived but never parsed.
    assert all(
        stats[f"dnm/coverage/{t}/parsed"]
        == max(stats[f"dnm/coverage/{t}/discovered"], stats.get(f"dnm/coverage/{t}/claimed", 0))
        for t in ("home", "category", "listing", "vendor", "feedback")
    )
    with Session(open_engine(hostile_archive.url)) as session:
        gates = session.scalars(
            select(Page).where(Page.crawl_id == crawl.id, Page.page_type.like("gate:%"))
        ).all()
        assert gates and all(page.extraction_errors == 0 for page in gates)
    printed = hostile_archive.results[market].stdout
    assert "coverage listing" in printed and "100.0%" in printed and "barriers" in printed


def test_the_dying_primary_mirror_is_left_for_the_others(hostile_archive: HostileArchive) -> None:
    """Hollowmere's primary mirror dies after 200 requests: the crawl carries on on the next one."""
    mirrors = {m["url"]: m for m in hostile_archive.crawl("hollowmere").stats["dnm/mirrors"]}
    states = [m["state"] for m in mirrors.values() if m["url"].startswith("http://127.0.0.1")]
    assert states[0] == "down" and "trusted" in states[1:]
    assert sum(m["ok"] for m in list(mirrors.values())[1:]) > 0


def test_credentials_never_reach_the_output(hostile_archive: HostileArchive) -> None:
    for market, result in hostile_archive.results.items():
        for account in demo_accounts(1, market):
            assert account.password not in result.stdout + result.stderr
            assert account.username not in result.stdout + result.stderr
        for row in hostile_archive.export("listings", market) + hostile_archive.export("vendors", market):
            assert not any(a.password in str(row) for a in demo_accounts(1, market))


def test_phishing_mirror_is_refused_and_reported(tmp_path: Path) -> None:
    """The clone serves the phisher's key: refused before any content is fetched from it."""
    url = archive_url(tmp_path)
    hostility = Hostility(mirrors=2, phishing=True)
    with DemoServer("copperline", 1, hostility=hostility) as server:
        assert server.phishing_url
        result = hostile_crawl(url, server, write_accounts(tmp_path), server.phishing_url, server.url)
    assert result.returncode == 0, result.stderr[-3000:]
    crawl = latest_crawl(open_engine(url), "copperline")
    phishing = next(m for m in crawl.stats["dnm/mirrors"] if m["url"] == server.phishing_url)
    assert (
        phishing["state"] == "refused"
        and "the profile pins 847B76B572059DF987BE55DB72355EE4D0A142AC" in phishing["refused"]
    )
    assert "refused" in result.stdout and server.phishing_url in result.stdout
    with Session(open_engine(url)) as session:
        hosts = {p.url.split("/")[2] for p in session.scalars(select(Page).where(Page.crawl_id == crawl.id))}
    content_hosts = {h for h in hosts if h != server.phishing_url.split("/")[2]}
    assert server.phishing_url.split("/")[2] not in content_hosts
    # Nothing but its key and mirror-list pages came from the clone.
    with Session(open_engine(url)) as session:
        from_clone = session.scalars(
            select(Page.page_type).where(Page.crawl_id == crawl.id, Page.url.startswith(server.phishing_url))
        ).all()
    assert set(from_clone) <= {"mirrors:key", "mirrors:list"} and from_clone
    assert (
        COMPARE["vendors"](
            list(export_rows(open_engine(url), "vendors", ExportFilter(crawl_id=crawl.id))),
            truth("copperline", 1, kind="vendors"),
        )
        == []
    )


def test_only_a_phishing_mirror_means_no_crawl(tmp_path: Path) -> None:
    url = archive_url(tmp_path)
    with DemoServer("hollowmere", 1, hostility=Hostility(phishing=True)) as server:
        assert server.phishing_url
        result = hostile_crawl(url, server, write_accounts(tmp_path), server.phishing_url)
    assert result.returncode == 1
    crawl = latest_crawl(open_engine(url), "hollowmere")
    assert crawl.status == "failed" and "no_trusted_mirror" in (crawl.status_reason or "")


def test_market_shut_mid_crawl_is_partial_never_complete(tmp_path: Path) -> None:
    """Every mirror stops answering after 120 requests: what was fetched is kept, the crawl is partial."""
    url = archive_url(tmp_path)
    hostility = Hostility(mirrors=2, mirror_down={0: (120, -1), 1: (120, -1)})
    with DemoServer("copperline", 1, hostility=hostility) as server:
        result = hostile_crawl(url, server, write_accounts(tmp_path), extra=("--set", "RETRY_TIMES=1"))
    assert result.returncode == 3, result.stderr[-3000:]
    crawl = latest_crawl(open_engine(url), "copperline")
    assert crawl.status == "partial" and "coverage" in (crawl.status_reason or "")
    listings = list(export_rows(open_engine(url), "listings", ExportFilter(crawl_id=crawl.id)))
    assert 0 < len(listings) < len(truth("copperline", 1, kind="listings"))
    truth_by_id = {row["listing_id"]: row for row in truth("copperline", 1, kind="listings")}
    assert compare_listings(listings, [truth_by_id[row["listing_id"]] for row in listings]) == []


def test_no_account_for_a_login_wall_says_so(tmp_path: Path) -> None:
    url = archive_url(tmp_path)
    empty = write_accounts(tmp_path, text="# no accounts\n")
    with DemoServer("copperline", 1, hostility=Hostility(login_required=True)) as server:
        result = hostile_crawl(url, server, empty)
    assert result.returncode == 1
    assert "no account is configured for copperline" in result.stderr
    assert "barrier not passed: login" in result.stdout


def test_only_a_banned_account_is_refused_clearly(tmp_path: Path) -> None:
    url = archive_url(tmp_path)
    banned = next(a for a in demo_accounts(1, "hollowmere") if a.banned)
    text = f'[[hollowmere]]\nusername = "{banned.username}"\npassword = "{banned.password}"\n'
    with DemoServer("hollowmere", 1, hostility=Hostility(login_required=True)) as server:
        result = hostile_crawl(url, server, write_accounts(tmp_path, text=text))
    assert result.returncode == 1
    assert "hollowmere#1 retired for this crawl: This account has been banned" in result.stderr
    assert banned.password not in result.stdout + result.stderr


def test_unsolved_captcha_fails_clearly(tmp_path: Path) -> None:
    url = archive_url(tmp_path)
    with DemoServer("copperline", 1, hostility=Hostility(gate_captcha="image")) as server:
        result = hostile_crawl(url, server, write_accounts(tmp_path), extra=("--captcha-solver", "none"))
    assert result.returncode == 1
    assert "DNM_CAPTCHA_SOLVER is 'none'" in result.stderr


def test_sessions_are_kept_between_crawls_privately(tmp_path: Path) -> None:
    """The second nightly crawl resumes the first one's session: no queue, no CAPTCHA, no login."""
    url = archive_url(tmp_path)
    sessions = tmp_path / "sessions"
    hostility = Hostility(queue_seconds=1, gate_captcha="image", login_required=True)
    accounts = write_accounts(tmp_path)
    with DemoServer("copperline", 1, hostility=hostility) as server:
        first, second = (
            crawl_demo(url, "copperline", server.url, "--accounts", str(accounts), "--captcha-solver", "demo",
                       sessions=str(sessions))
            for _ in range(2)
        )  # fmt: skip
        assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    crawls = [latest_crawl(open_engine(url), "copperline")]
    stats = crawls[0].stats or {}
    assert stats["dnm/sessions/loaded"] > 0
    assert not any(key.startswith(("dnm/barriers/queue", "dnm/barriers/captcha")) for key in stats)
    # Only the banned account, met once more, shows a login form: the working ones are still logged in.
    assert "dnm/login/succeeded" not in stats
    files = list((sessions / "copperline").glob("*.json"))
    assert files and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert (sessions / "copperline").stat().st_mode & 0o777 == 0o700
    saved = "".join(f.read_text() for f in files)
    assert "sid" in saved and not any(a.password in saved for a in demo_accounts(1, "copperline"))
    assert not any(a.password in first.stderr + second.stderr for a in demo_accounts(1, "copperline"))


def test_refused_captcha_answers_are_retried(tmp_path: Path) -> None:
    """Every first answer wrong: each challenge is refused once, then passed; nothing is lost."""
    url = archive_url(tmp_path)
    hostility = Hostility(queue_seconds=1, gate_captcha="clock", login_required=True, login_captcha="image")
    with DemoServer("hollowmere", 1, hostility=hostility) as server:
        result = hostile_crawl(
            url, server, write_accounts(tmp_path), extra=("--set", "DNM_DEMO_CAPTCHA_WRONG_FIRST=true")
        )
    assert result.returncode == 0, result.stderr[-3000:]
    crawl = latest_crawl(open_engine(url), "hollowmere")
    stats = crawl.stats or {}
    assert (
        crawl.status == "complete" and stats["dnm/captcha/refused"] >= 1 and stats["dnm/captcha/solved"] >= 1
    )
    assert (
        compare_listings(
            list(export_rows(open_engine(url), "listings", ExportFilter(crawl_id=crawl.id))),
            truth("hollowmere", 1, kind="listings"),
        )
        == []
    )
