"""`dnm archive verify`: the raw store checked against its hash chains, its digests and the database.

One demo crawl is captured once; each test tampers with a copy of its raw store and expects the check to
name the crawl and what is wrong, while the untouched copy passes."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.server import DemoServer
from dnm.archive_check import verify_archive
from dnm.rawstore import CHAIN_SUFFIX
from models.db import open_engine
from tests.conftest import archive_url, crawl_demo, latest_crawl, run_dnm

MARKET = "hollowmere"


@dataclass
class Captured:
    url: str
    raw: Path
    crawl_id: int
    warc: str


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Captured:
    directory = tmp_path_factory.mktemp("archive-verify")
    url, raw = archive_url(directory), directory / "warc"
    with DemoServer(MARKET, 1, scale="small") as server:
        result = crawl_demo(url, MARKET, server.url, "--set", f"DNM_RAW_DIR={raw}")
    assert result.returncode == 0, result.stderr[-3000:]
    crawl = latest_crawl(open_engine(url), MARKET)
    return Captured(url, raw, crawl.id, (crawl.stats or {})["dnm/warc/file"])


@pytest.fixture
def store(captured: Captured, tmp_path: Path) -> Path:
    """A copy of the raw store to tamper with."""
    copy = tmp_path / "warc"
    shutil.copytree(captured.raw, copy)
    return copy


def problems(captured: Captured, raw: Path) -> list[str]:
    (check,) = verify_archive(open_engine(captured.url), raw, crawl_id=captured.crawl_id)
    return check.problems


def chain_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_an_untouched_store_passes(captured: Captured, store: Path) -> None:
    (check,) = verify_archive(open_engine(captured.url), store, crawl_id=captured.crawl_id)
    assert check.ok, check.problems
    assert check.records > 100 and check.warc_file == captured.warc
    result = run_dnm("archive", "verify", "--database", captured.url, "--raw-dir", str(store))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"OK   crawl {captured.crawl_id} ({MARKET})" in result.stdout
        and "1 of 1 crawls intact" in result.stdout
    )


def test_a_changed_byte_inside_a_record_is_found(captured: Captured, store: Path) -> None:
    path = store / captured.warc
    data = bytearray(path.read_bytes())
    line = chain_lines(path.with_name(path.name + CHAIN_SUFFIX))[5]
    data[line["offset"] + line["length"] // 2] ^= 0x01  # same size
    path.write_bytes(bytes(data))
    found = problems(captured, store)
    assert any(f"record 5 ({line['type']} {line['record_id']}) was changed" in p for p in found), found
    result = run_dnm("archive", "verify", "--database", captured.url, "--raw-dir", str(store))
    assert result.returncode == 1 and "FAIL crawl" in result.stdout and "FAILED" in result.stdout


def test_a_record_rewritten_with_its_chain_recomputed_is_found_by_the_head(
    captured: Captured, store: Path
) -> None:
    # The forger changes a page, re-gzips its record with fresh digests' worth of effort, and rewrites the
    # chain file to match: only the head kept in the database tells.
    path = store / captured.warc
    chain = path.with_name(path.name + CHAIN_SUFFIX)
    lines = chain_lines(chain)
    target = next(line for line in lines if line["type"] == "response")
    data = path.read_bytes()
    member = gzip.decompress(data[target["offset"] : target["offset"] + target["length"]])
    forged = gzip.compress(member.replace(b"<html", b"<HTML", 1))
    data = data[: target["offset"]] + forged + data[target["offset"] + target["length"] :]
    path.write_bytes(data)
    shift, previous, out = len(forged) - target["length"], "0" * 64, b""
    for line in lines:
        if line["n"] == target["n"]:
            line["length"], line["sha256"] = len(forged), hashlib.sha256(forged).hexdigest()
        elif line["n"] > target["n"]:
            line["offset"] += shift
        line["prev"] = previous
        raw = json.dumps(line, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        previous, out = hashlib.sha256(raw).hexdigest(), out + raw
    chain.write_bytes(out)
    found = problems(captured, store)
    assert any("the chain file was rewritten or cut" in p for p in found), found


@pytest.mark.parametrize("how", ["truncated", "appended", "chain edited", "chain missing", "warc missing"])
def test_cut_appended_or_missing_captures_are_found(captured: Captured, store: Path, how: str) -> None:
    path = store / captured.warc
    chain = path.with_name(path.name + CHAIN_SUFFIX)
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:-50])
        expected = "cut short"
    elif how == "appended":
        path.write_bytes(path.read_bytes() + gzip.compress(b"WARC/1.1\r\n\r\n"))
        expected = "after the last chained record"
    elif how == "chain edited":
        lines = chain.read_bytes().splitlines(keepends=True)
        lines[3] = lines[3].replace(b'"type":"', b'"type":"x')
        chain.write_bytes(b"".join(lines))
        expected = "line 5 does not follow line 4"
    elif how == "chain missing":
        chain.unlink()
        expected = "hash chain"
    else:
        path.unlink()
        expected = "is missing"
    found = problems(captured, store)
    assert any(expected in p for p in found), found
