"""Fixtures of the evidence tests: the openssl binary and a local RFC 3161 TSA (tests/evidence/tsa.py).

Without openssl the tests that need it skip with the install hint, except under CI=true, where a
missing openssl fails them: third parties verify packages with openssl, so CI must run those checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.server import DemoServer
from evidence.export import Signer
from evidence.keys import init_key
from tests.conftest import archive_url, crawl_demo
from tests.evidence.support import MARKET, Archive, Operator, export, vendor_of
from tests.evidence.tsa import LocalTSA, require_openssl


@pytest.fixture(scope="session")
def openssl() -> str:
    """Path of the openssl binary."""
    return require_openssl()


@pytest.fixture(scope="session")
def local_tsa(openssl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    """One local TSA for the session (its CA and certificates cost a few openssl runs)."""
    tsa = LocalTSA(openssl, tmp_path_factory.mktemp("tsa"))
    tsa.start()
    try:
        yield tsa
    finally:
        tsa.stop()


@pytest.fixture
def tsa(local_tsa: LocalTSA) -> Iterator[LocalTSA]:
    """The session's TSA, behaving; a test may set `mode` and `delay`, which are put back afterwards."""
    local_tsa.mode, local_tsa.delay = "ok", 2.0
    try:
        yield local_tsa
    finally:
        local_tsa.mode, local_tsa.delay = "ok", 2.0


# -- a demo archive and a clean package, shared by the package tests (tests/evidence/support.py) -----


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """Two nights of the same demo day: the second finds every page unchanged (fetch-log lines)."""
    directory = tmp_path_factory.mktemp("evidence-archive")
    found = Archive(archive_url(directory), directory / "warc")
    with DemoServer(MARKET, 1) as server:
        for _ in range(2):
            result = crawl_demo(found.url, MARKET, server.url, "--set", f"DNM_RAW_DIR={found.raw}")
            assert result.returncode == 0, result.stderr[-3000:]
    return found


@pytest.fixture(scope="session")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Operator:
    key = tmp_path_factory.mktemp("keys") / "operator.key"
    return Operator(key, init_key(key))


@pytest.fixture
def signer(operator: Operator, tsa: LocalTSA) -> Signer:
    return Signer(operator.key, tsa.url, tsa.root_pem, tsa.cert_pem)


@pytest.fixture(scope="session")
def clean(
    archive: Archive, operator: Operator, local_tsa: LocalTSA, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    signer = Signer(operator.key, local_tsa.url, local_tsa.root_pem, local_tsa.cert_pem)
    return export(archive, signer, tmp_path_factory.mktemp("packages"), vendor=vendor_of(archive))
