"""RFC 3161 trusted time against a local openssl TSA: fetching fails closed, verification names the cause."""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

from evidence.timestamp import (
    TimestampError,
    TimestampInfo,
    check_time,
    fetch_timestamp,
    timestamp_request,
    verify_timestamp,
)
from tests.evidence.tsa import (
    POLICY,
    LocalTSA,
    free_port_url,
    make_root_ca,
    make_tsa_certificate,
    run_openssl,
)

# What a package timestamps: the bytes of its detached signature.
SIGNATURE = os.urandom(64)


@pytest.fixture(scope="module")
def token(local_tsa: LocalTSA) -> bytes:
    """A token over SIGNATURE from the behaving local TSA."""
    local_tsa.mode = "ok"
    return fetch_timestamp(SIGNATURE, local_tsa.url)


@pytest.fixture(scope="module")
def other_root(openssl: str, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A look-alike root: same name as the TSA's root, another key."""
    return make_root_ca(openssl, tmp_path_factory.mktemp("other-root")).pem


def failure(*args: object, **kwargs: object) -> TimestampError:
    with pytest.raises(TimestampError) as caught:
        verify_timestamp(*args, **kwargs)  # type: ignore[arg-type]
    return caught.value


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_token_from_local_tsa_verifies(tsa: LocalTSA) -> None:
    before = datetime.now(UTC)
    tsr = fetch_timestamp(SIGNATURE, tsa.url)
    after = datetime.now(UTC)
    info = verify_timestamp(tsr, SIGNATURE, tsa.root_pem)
    # genTime is whole seconds, truncated.
    assert before - timedelta(seconds=1) <= info.gen_time <= after
    assert info.gen_time.tzinfo is not None and info.gen_time.utcoffset() == timedelta(0)
    assert info.accuracy == timedelta(seconds=1, milliseconds=500)
    assert info.policy == POLICY
    assert info.tsa_name == "CN=Evidence Test TSA"
    assert info.signer == "CN=Evidence Test TSA"
    assert info.hash_algorithm == "sha256"
    # Pinning the TSA certificate as well gives the same answer.
    assert verify_timestamp(tsr, SIGNATURE, tsa.root_pem, tsa.cert_pem) == info
    # Each token has its own serial.
    assert (
        verify_timestamp(fetch_timestamp(SIGNATURE, tsa.url), SIGNATURE, tsa.root_pem).serial != info.serial
    )


def test_wrong_data_flipped_token_and_wrong_root_fail_distinctly(
    token: bytes, local_tsa: LocalTSA, other_root: bytes
) -> None:
    wrong_data = failure(token, flip(SIGNATURE, 0), local_tsa.root_pem)
    assert wrong_data.cause == "wrong-data"
    assert "other data" in str(wrong_data)

    info = verify_timestamp(token, SIGNATURE, local_tsa.root_pem)
    gen_time = b"\x18\x0f" + info.gen_time.strftime("%Y%m%d%H%M%SZ").encode()
    assert token.count(gen_time) == 1
    # The last digit of the seconds: flipped it is still a valid time (an hour digit flipped can make the
    # time unreadable, a corrupt token rather than a bad signature, at some hours of the day).
    in_gen_time = failure(flip(token, token.index(gen_time) + 2 + 13), SIGNATURE, local_tsa.root_pem)
    assert in_gen_time.cause == "bad-signature"
    assert "does not verify" in str(in_gen_time)
    # openssl writes the signature value last.
    assert failure(flip(token, len(token) - 3), SIGNATURE, local_tsa.root_pem).cause == "bad-signature"

    wrong_root = failure(token, SIGNATURE, other_root)
    assert wrong_root.cause == "untrusted"
    assert "does not chain to the pinned TSA root" in str(wrong_root)

    messages = {str(wrong_data), str(in_gen_time), str(wrong_root)}
    assert len(messages) == 3


@pytest.mark.parametrize("pin_tsa_cert", [False, True])
def test_every_flipped_byte_fails_or_changes_nothing(
    token: bytes, local_tsa: LocalTSA, pin_tsa_cert: bool
) -> None:
    """No single-byte change alters what a token vouches for and still verifies.

    Some flips do verify: CMS leaves a few fields outside the signature (the SignedData and
    SignerInfo version numbers, the signatureAlgorithm OID, which OpenSSL derives from the key). The
    test holds them to changing nothing that verify_timestamp reports.
    """
    pins = (local_tsa.root_pem, local_tsa.cert_pem if pin_tsa_cert else None)
    original = verify_timestamp(token, SIGNATURE, *pins)
    verified: list[int] = []
    for index in range(len(token)):
        try:
            info = verify_timestamp(flip(token, index), SIGNATURE, *pins)
        except TimestampError:
            continue
        assert info == original, f"byte {index} flipped: {info}"
        verified.append(index)
    assert len(verified) < len(token) // 20, verified


def test_corrupt_and_refused_tokens(token: bytes, local_tsa: LocalTSA) -> None:
    assert failure(os.urandom(200), SIGNATURE, local_tsa.root_pem).cause == "corrupt"
    assert failure(token[:-40], SIGNATURE, local_tsa.root_pem).cause == "corrupt"
    assert failure(b"", SIGNATURE, local_tsa.root_pem).cause == "corrupt"

    query = TimestampRequestBuilder().data(SIGNATURE).hash_algorithm(HashAlgorithm.SHA256).build()
    rejected = failure(local_tsa.reply(query.as_bytes(), "tsa_reject"), SIGNATURE, local_tsa.root_pem)
    assert rejected.cause == "not-granted"
    assert "rejection" in str(rejected)


def test_pinned_tsa_certificate(token: bytes, local_tsa: LocalTSA, openssl: str, tmp_path: Path) -> None:
    # Another TSA under the same root: the token is not its.
    other_tsa = make_tsa_certificate(openssl, local_tsa.ca, tmp_path, name="Other TSA", serial=7)
    verify_timestamp(token, SIGNATURE, local_tsa.root_pem, local_tsa.cert_pem)
    mismatch = failure(token, SIGNATURE, local_tsa.root_pem, other_tsa.pem)
    assert mismatch.cause == "tsa-cert-mismatch"
    assert "CN=Other TSA" in str(mismatch)


def test_token_without_certificate_needs_the_pinned_tsa_certificate(local_tsa: LocalTSA) -> None:
    query = (
        TimestampRequestBuilder()
        .data(SIGNATURE)
        .hash_algorithm(HashAlgorithm.SHA256)
        .cert_request(cert_request=False)
        .build()
    )
    # The "plain" TSA section also leaves out accuracy and the TSA name (both optional).
    tsr = local_tsa.reply(query.as_bytes(), "tsa_plain")
    missing = failure(tsr, SIGNATURE, local_tsa.root_pem)
    assert missing.cause == "no-tsa-cert"
    assert "pass the TSA certificate" in str(missing)
    info = verify_timestamp(tsr, SIGNATURE, local_tsa.root_pem, local_tsa.cert_pem)
    assert info.accuracy is None and info.tsa_name is None
    assert info.signer == "CN=Evidence Test TSA"


def test_bad_pins(token: bytes, local_tsa: LocalTSA) -> None:
    assert failure(token, SIGNATURE, b"not a certificate").cause == "bad-pin"
    assert failure(token, SIGNATURE, local_tsa.root_pem, b"").cause == "bad-pin"


def test_openssl_verifies_the_same_token(
    token: bytes, local_tsa: LocalTSA, openssl: str, tmp_path: Path
) -> None:
    """What VERIFY.md tells a third party to run, with openssl alone."""
    sig, tsr = tmp_path / "tagmanifest-sha256.txt.sig", tmp_path / "tagmanifest-sha256.txt.sig.tsr"
    root, tsa_crt, other = tmp_path / "tsa-root.crt", tmp_path / "tsa.crt", tmp_path / "other.sig"
    sig.write_bytes(SIGNATURE)
    tsr.write_bytes(token)
    root.write_bytes(local_tsa.root_pem)
    tsa_crt.write_bytes(local_tsa.cert_pem)
    other.write_bytes(flip(SIGNATURE, 0))

    def openssl_verify(data: Path, ca: Path) -> bool:
        done = run_openssl(
            openssl, "ts", "-verify", "-data", data, "-in", tsr, "-CAfile", ca, "-untrusted", tsa_crt
        )
        return done.returncode == 0 and b"Verification: OK" in done.stdout

    assert openssl_verify(sig, root)
    assert not openssl_verify(other, root)
    assert not openssl_verify(sig, tsa_crt)  # the TSA certificate is not a trust anchor

    text = run_openssl(openssl, "ts", "-reply", "-in", tsr, "-text")
    assert text.returncode == 0, text.stderr
    lines = dict(line.split(": ", 1) for line in text.stdout.decode().splitlines() if ": " in line)
    stamped = datetime.strptime(" ".join(lines["Time stamp"].split()), "%b %d %H:%M:%S %Y GMT")
    info = verify_timestamp(token, SIGNATURE, local_tsa.root_pem)
    assert stamped.replace(tzinfo=UTC) == info.gen_time
    assert lines["Policy OID"] == info.policy


def test_timestamp_request_as_openssl_reads_it(openssl: str, tmp_path: Path) -> None:
    query = tmp_path / "request.tsq"
    query.write_bytes(timestamp_request(SIGNATURE))
    done = run_openssl(openssl, "ts", "-query", "-in", query, "-text")
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert "Hash Algorithm: sha256" in text
    assert "Certificate required: yes" in text
    dump = "".join(
        line.split(" - ", 1)[1][:48].replace("-", " ").replace(" ", "")
        for line in text.splitlines()
        if " - " in line
    )
    assert dump == hashlib.sha256(SIGNATURE).hexdigest()
    assert "Nonce: 0x" in text
    # A fresh nonce per request.
    assert timestamp_request(SIGNATURE) != timestamp_request(SIGNATURE)


@pytest.mark.parametrize(
    ("mode", "cause", "words"),
    [
        ("http-500", "http", "HTTP 500"),
        ("garbage", "corrupt", "not a TimeStampResp"),
        ("wrong-content-type", "not-a-reply", "text/html"),
        ("hangup", "unreachable", "cannot reach TSA"),
        ("reject", "not-granted", "refused the request (status rejection"),
        ("wrong-imprint", "wrong-data", "other bytes"),
        ("redirect", "http", "HTTP 302 Found (redirect to /moved/tsr: configure that URL)"),
    ],
)
def test_misbehaving_tsa_fails_closed(tsa: LocalTSA, mode: str, cause: str, words: str) -> None:
    tsa.mode = mode
    with pytest.raises(TimestampError, match=re.escape(words)) as caught:
        fetch_timestamp(SIGNATURE, tsa.url)
    assert caught.value.cause == cause


def test_replayed_reply_is_refused(tsa: LocalTSA) -> None:
    fetch_timestamp(SIGNATURE, tsa.url)
    tsa.mode = "replay"
    with pytest.raises(TimestampError, match="nonce") as caught:
        fetch_timestamp(SIGNATURE, tsa.url)
    assert caught.value.cause == "nonce-mismatch"


def test_tsa_down_or_slow(tsa: LocalTSA) -> None:
    with pytest.raises(TimestampError, match="cannot reach TSA") as caught:
        fetch_timestamp(SIGNATURE, free_port_url())
    assert caught.value.cause == "unreachable"

    tsa.mode = "slow"
    tsa.delay = 3.0
    started = time.monotonic()
    with pytest.raises(TimestampError, match=r"did not answer within 0\.5 s") as caught:
        fetch_timestamp(SIGNATURE, tsa.url, timeout=0.5)
    assert caught.value.cause == "timeout"
    assert time.monotonic() - started < 2.5


def test_empty_data_is_refused(tsa: LocalTSA) -> None:
    requests_before = tsa.requests
    with pytest.raises(TimestampError, match="empty") as caught:
        fetch_timestamp(b"", tsa.url)
    assert caught.value.cause == "empty"
    assert tsa.requests == requests_before


GEN = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TOLERANCE = timedelta(minutes=10)
US = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("accuracy", "claimed", "cause"),
    [
        # The case met in the prototype: a µs export time 0.3 s after a whole-second genTime.
        (None, GEN + timedelta(seconds=0.3), None),
        (None, GEN + timedelta(seconds=1), None),
        (None, GEN + timedelta(seconds=1) + US, "time-after"),
        (timedelta(seconds=1, milliseconds=500), GEN + timedelta(seconds=2.5), None),
        (timedelta(seconds=1, milliseconds=500), GEN + timedelta(seconds=2.5) + US, "time-after"),
        (None, GEN - TOLERANCE, None),
        (None, GEN - TOLERANCE - US, "time-before"),
        (timedelta(seconds=1, milliseconds=500), GEN - TOLERANCE - timedelta(seconds=1.5), None),
        (
            timedelta(seconds=1, milliseconds=500),
            GEN - TOLERANCE - timedelta(seconds=1.5) - US,
            "time-before",
        ),
        (None, GEN + timedelta(hours=2), "time-after"),
        (None, GEN - timedelta(days=1), "time-before"),
    ],
)
def test_check_time_bounds(accuracy: timedelta | None, claimed: datetime, cause: str | None) -> None:
    if cause is None:
        check_time(GEN, accuracy, claimed, TOLERANCE)
        return
    with pytest.raises(TimestampError) as caught:
        check_time(GEN, accuracy, claimed, TOLERANCE)
    assert caught.value.cause == cause
    drift = abs(claimed - GEN).total_seconds()
    assert f"{drift:.6f} s {'after' if cause == 'time-after' else 'before'}" in str(caught.value)


def test_check_time_zones_and_bad_input() -> None:
    # The same instant written in another zone is the same instant.
    check_time(GEN, None, (GEN + timedelta(seconds=0.5)).astimezone(timezone(timedelta(hours=2))), TOLERANCE)
    with pytest.raises(TimestampError):
        check_time(
            GEN, None, (GEN + timedelta(seconds=2)).astimezone(timezone(timedelta(hours=-5))), TOLERANCE
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        check_time(GEN, None, datetime(2026, 3, 1, 12, 0, 0), TOLERANCE)
    with pytest.raises(ValueError, match="timezone-aware"):
        check_time(GEN.replace(tzinfo=None), None, GEN, TOLERANCE)
    with pytest.raises(ValueError, match="negative"):
        check_time(GEN, None, GEN, -TOLERANCE)


def test_check_time_with_a_real_token(tsa: LocalTSA) -> None:
    claimed = datetime.now(UTC)  # the export's time, taken before signing and stamping
    info: TimestampInfo = verify_timestamp(fetch_timestamp(SIGNATURE, tsa.url), SIGNATURE, tsa.root_pem)
    check_time(info.gen_time, info.accuracy, claimed, timedelta(minutes=1))
    with pytest.raises(TimestampError) as caught:
        check_time(info.gen_time, info.accuracy, claimed + timedelta(seconds=5), timedelta(minutes=1))
    assert caught.value.cause == "time-after"
