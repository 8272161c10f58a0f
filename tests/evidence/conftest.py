"""Fixtures of the evidence tests: the openssl binary and a local RFC 3161 TSA (tests/evidence/tsa.py).

Without openssl the tests that need it skip with the install hint, except under CI=true, where a
missing openssl fails them: third parties verify packages with openssl, so CI must run those checks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
