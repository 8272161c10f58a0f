"""Secrets: a hostile crawl with known accounts, then every artefact the tool makes, scanned for them.

The hostile demo market (login, sessions, CAPTCHAs, faults) is crawled with its demo accounts at
DEBUG log level; the market's server records every cookie value it sets. Then every artefact a
crawl leads to is produced: the crawl's log, exports in every format, the HTML report, summary,
status, `archive verify`, a signed evidence package, the WARC files and the archive database itself.
Every byte of them (inside gzip, zip and Parquet too) is searched for the passwords, the session
cookie values and the usernames: none may appear. Secret files readable by others are refused.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import make_url

from demo.hostile.accounts import demo_accounts, secrets_toml
from demo.server import DemoServer
from demo.skins import hostility_for
from evidence.keys import init_key
from models.db import open_engine
from tests.conftest import DnmResult, archive_url, crawl_demo, latest_crawl, run_dnm
from tests.evidence.conftest import local_tsa, openssl
from tests.evidence.tsa import LocalTSA

__all__ = ["local_tsa", "openssl"]

MARKET = "hollowmere"
# On loopback every keep-alive connection is a circuit: a small budget makes the market kill some.
HOSTILE = {"circuit_budget": 20}
MIN_SECRET = 8  # cookie values shorter than this ("1", "ok") would match by chance and protect nothing


@dataclass
class SecretCrawl:
    directory: Path
    database: str
    raw: Path
    sessions: Path
    crawl: DnmResult
    passwords: set[str]
    usernames: set[str]
    cookies: set[str]  # every cookie value the market set, and every value in the saved jars


def set_cookie_values(headers: list[tuple[str, str]]) -> set[str]:
    values = set()
    for name, value in headers:
        if name.lower() == "set-cookie":
            values.add(value.split(";", 1)[0].partition("=")[2])
    return values


def jar_values(sessions: Path) -> set[str]:
    values = set()
    for path in sessions.rglob("*.json"):
        values |= {cookie["value"] for cookie in json.loads(path.read_text())["cookies"]}
    return values


@pytest.fixture(scope="module")
def secret_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretCrawl]:
    directory = tmp_path_factory.mktemp("secrets")
    database, raw, sessions = archive_url(directory), directory / "warc", directory / "sessions"
    accounts = directory / "accounts.toml"
    accounts.write_text(secrets_toml(1, [MARKET]))
    os.chmod(accounts, 0o600)
    issued: set[str] = set()
    with DemoServer(MARKET, 1, hostility=hostility_for(MARKET).with_overrides(**HOSTILE)) as server:
        for app in (server.app,):
            inner = app.wsgi_app

            def record(environ: dict[str, Any], start_response: Any, inner: Any = inner) -> Any:
                def watch(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                    issued.update(set_cookie_values(headers))
                    return start_response(status, headers, *rest)

                return inner(environ, watch)

            app.wsgi_app = record  # type: ignore[method-assign]
        result = crawl_demo(
            database, MARKET, server.url, "--accounts", str(accounts), "--captcha-solver", "demo",
            "--verbose", "--set", "LOG_LEVEL=DEBUG", "--set", f"DNM_RAW_DIR={raw}", sessions=str(sessions),
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    known = demo_accounts(1, MARKET)
    cookies = {value for value in issued | jar_values(sessions) if len(value) >= MIN_SECRET}
    yield SecretCrawl(
        directory, database, raw, sessions, result,
        {a.password for a in known}, {a.username for a in known}, cookies,
    )  # fmt: skip


def expand(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """The bytes of an artefact and of everything packed inside it (gzip members, zip members, Parquet)."""
    yield name, data
    if data[:2] == b"\x1f\x8b":
        yield from expand(f"{name}!gunzip", gzip.decompress(data))
    elif data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from expand(f"{name}!{member}", archive.read(member))
    elif data[:4] == b"PAR1":
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
        yield f"{name}!rows", json.dumps(rows, default=str).encode()


def artefacts(secret: SecretCrawl, tsa: LocalTSA) -> dict[str, bytes]:
    """Every output a crawl leads to: files written and what each command printed."""
    out = secret.directory / "out"
    out.mkdir(exist_ok=True)
    printed: dict[str, bytes] = {
        "crawl stdout": secret.crawl.stdout.encode(),
        "crawl stderr": secret.crawl.stderr.encode(),
    }
    db = ("--database", secret.database)
    commands: list[tuple[str, ...]] = [
        ("summary", *db),
        ("status", *db),
        ("archive", "verify", *db, "--raw-dir", str(secret.raw)),
        ("report", MARKET, *db, "-o", str(out / "report.html")),
    ]
    for kind in ("listings", "vendors", "feedback"):
        commands.append(("export", kind, *db, "--format", "jsonl"))
        for fmt in ("csv", "parquet"):
            commands.append(("export", kind, *db, "--format", fmt, "-o", str(out / f"{kind}.{fmt}")))
    key = secret.directory / "keys" / "operator.key"
    if not key.exists():
        init_key(key)
    (out / "tsa-root.pem").write_bytes(tsa.root_pem)
    (out / "tsa-cert.pem").write_bytes(tsa.cert_pem)
    commands.append(
        ("evidence", "export", "--case", "S-4", "--market", MARKET, *db, "--raw-dir", str(secret.raw),
         "--key", str(key), "--tsa-url", tsa.url, "--tsa-cert", str(out / "tsa-root.pem"),
         "--tsa-chain", str(out / "tsa-cert.pem"), "--output", str(out / "evidence"))
    )  # fmt: skip
    for command in commands:
        result = run_dnm(*command)
        assert result.returncode in (0, 3, 4), (command, result.stderr[-2000:])
        printed[" ".join(command[:2]) + " stdout"] = result.stdout.encode()
        printed[" ".join(command[:2]) + " stderr"] = result.stderr.encode()
    assert list((out / "evidence").iterdir()), "no evidence package was written"
    files = [p for root in (out, secret.raw) for p in root.rglob("*") if p.is_file()]
    url = make_url(secret.database)
    if url.get_backend_name() == "sqlite":
        files += [
            Path(f"{url.database}{suffix}")
            for suffix in ("", "-wal")
            if Path(f"{url.database}{suffix}").exists()
        ]
    return {**printed, **{str(p): p.read_bytes() for p in files}}


def test_no_artefact_holds_a_password_cookie_or_username(
    secret_crawl: SecretCrawl, local_tsa: LocalTSA
) -> None:
    assert secret_crawl.cookies, "the market set no session cookie: nothing was tested"
    produced = artefacts(secret_crawl, local_tsa)
    assert any(".warc" in name for name in produced)
    needles = {
        **{f"password {p[:3]}...": p.encode() for p in secret_crawl.passwords},
        **{f"cookie {c[:6]}...": c.encode() for c in secret_crawl.cookies},
        **{f"username {u}": u.encode() for u in secret_crawl.usernames},
    }
    found = []
    scanned = 0
    for name, data in produced.items():
        for part, content in expand(name, data):
            scanned += len(content)
            found += [f"{what} in {part}" for what, needle in needles.items() if needle in content]
    assert found == [], found
    assert scanned > 1_000_000  # the WARC files and the database were read, not only the logs


def test_the_session_files_are_private(secret_crawl: SecretCrawl) -> None:
    files = list(secret_crawl.sessions.rglob("*.json"))
    assert files
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files)
    assert all(path.stat().st_mode & 0o777 == 0o700 for path in {p.parent for p in files})


def test_a_session_file_others_can_read_is_not_used(secret_crawl: SecretCrawl) -> None:
    """A jar file made readable by others is refused: not loaded, removed, and the fix named."""
    files = list(secret_crawl.sessions.rglob("*.json"))
    for path in files:
        os.chmod(path, 0o644)
    with DemoServer(MARKET, 1, hostility=hostility_for(MARKET).with_overrides(**HOSTILE)) as server:
        result = crawl_demo(
            secret_crawl.database, MARKET, server.url,
            "--accounts", str(secret_crawl.directory / "accounts.toml"), "--captcha-solver", "demo",
            "--set", "CLOSESPIDER_PAGECOUNT=10", sessions=str(secret_crawl.sessions),
        )  # fmt: skip
    assert result.returncode in (0, 3), result.stderr[-3000:]
    assert "accessible by group or others" in result.stderr and "chmod 600" in result.stderr
    stats = latest_crawl(open_engine(secret_crawl.database), MARKET).stats or {}
    assert stats.get("dnm/sessions/refused") == len(files)
    assert stats.get("dnm/sessions/loaded") == 0
    # Removed, or written afresh (0600) by this crawl's own session: none is left readable.
    left = list(secret_crawl.sessions.rglob("*.json"))
    assert left and all(path.stat().st_mode & 0o777 == 0o600 for path in left)


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(secrets_toml(1, [MARKET]))
    os.chmod(accounts, 0o640)
    result = run_dnm(
        "crawl", MARKET, "--mirror", "http://127.0.0.1:9", "--transport", "direct",
        "--allow-host", "127.0.0.1",
        "--database", archive_url(tmp_path), "--accounts", str(accounts), "--no-progress",
    )  # fmt: skip
    assert result.returncode != 0
    assert f"chmod 600 {accounts}" in result.stdout + result.stderr
    assert not any(a.password in result.stdout + result.stderr for a in demo_accounts(1, MARKET))


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_a_signing_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "keys" / "operator.key"
    init_key(key)
    os.chmod(key, mode)
    (tmp_path / "root.pem").write_text("unused: the key is refused first\n")
    result = run_dnm(
        "evidence", "export", "--case", "S-4", "--market", MARKET, "--database", archive_url(tmp_path),
        "--key", str(key), "--tsa-url", "http://127.0.0.1:9/tsr", "--tsa-cert", str(tmp_path / "root.pem"),
        "--output", str(tmp_path / "evidence"),
    )  # fmt: skip
    assert result.returncode != 0
    assert f"chmod 600 {key}" in result.stdout + result.stderr
    assert not (tmp_path / "evidence").exists() or not list((tmp_path / "evidence").iterdir())
