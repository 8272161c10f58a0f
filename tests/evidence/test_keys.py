"""The operator's signing key: file safety, the fingerprint and signatures as openssl sees them."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence.keys import (
    SignatureError,
    SigningKeyError,
    display_fingerprint,
    fingerprint,
    init_key,
    load_private_key,
    normalize_fingerprint,
    public_pem,
    sign,
    verify_signature,
)
from tests.evidence.tsa import run_openssl

DATA = b"tagmanifest-sha256.txt contents\n" * 20


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0 for the test: a mode 0600 then comes from the code, not from a cautious umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "signer.pem"
    init_key(path)
    return path


def write_private(path: Path, pem: bytes) -> Path:
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def test_init_key_creates_0600_key_in_0700_dir(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "secrets" / "signer.pem"
    fp = init_key(path)
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    key = load_private_key(path)
    assert fp == fingerprint(key.public_key())
    assert len(fp) == 64 and fp == fp.lower()


def test_init_key_refuses_to_overwrite(key_path: Path) -> None:
    before = key_path.read_bytes()
    with pytest.raises(SigningKeyError, match="already exists"):
        init_key(key_path)
    assert key_path.read_bytes() == before

    new_fp = init_key(key_path, overwrite=True)
    assert key_path.read_bytes() != before
    assert new_fp == fingerprint(load_private_key(key_path).public_key())
    assert mode_of(key_path) == 0o600
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["signer.pem"]  # no temporary left


def test_init_key_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.pem"
    path = tmp_path / "signer.pem"
    path.symlink_to(elsewhere)  # dangling: path.exists() is False
    with pytest.raises(SigningKeyError, match="exists"):
        init_key(path)
    assert not elsewhere.exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o660])
def test_key_accessible_by_others_is_refused(key_path: Path, mode: int) -> None:
    key_path.chmod(mode)
    with pytest.raises(SigningKeyError, match=f"mode {mode:04o}.*chmod 600 {key_path}"):
        load_private_key(key_path)
    key_path.chmod(0o600)
    load_private_key(key_path)


def test_load_private_key_errors(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="not found"):
        load_private_key(tmp_path / "missing.pem")

    garbage = write_private(tmp_path / "garbage.pem", b"not a key\n")
    with pytest.raises(SigningKeyError, match="not a PEM private key"):
        load_private_key(garbage)

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_private_key(write_private(tmp_path / "ec.pem", ec_pem))

    encrypted = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(SigningKeyError, match="passphrase-protected"):
        load_private_key(write_private(tmp_path / "encrypted.pem", encrypted))

    directory = tmp_path / "dir.pem"
    directory.mkdir(mode=0o700)
    with pytest.raises(SigningKeyError, match="not a regular file"):
        load_private_key(directory)


def test_fingerprint_is_what_openssl_computes(key_path: Path, openssl: str, tmp_path: Path) -> None:
    key = load_private_key(key_path)
    pub = tmp_path / "signer.pub.pem"
    pub.write_bytes(public_pem(key))
    # The commands a third party runs (the docstring of evidence.keys and VERIFY.md).
    for command in (
        f"{openssl} pkey -pubin -in {pub} -outform DER | sha256sum",
        f"{openssl} pkey -pubin -in {pub} -outform DER | {openssl} dgst -sha256",
    ):
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, check=True
        )
        digest = done.stdout.split()[0] if "sha256sum" in command else done.stdout.split("=")[-1].strip()
        assert digest == fingerprint(key.public_key()), command
    # openssl reads the PKCS#8 key file and derives the same public key.
    derived = run_openssl(openssl, "pkey", "-in", key_path, "-pubout")
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout == public_pem(key)


def test_signature_verifies_with_openssl(key_path: Path, openssl: str, tmp_path: Path) -> None:
    key = load_private_key(key_path)
    pub, data, sig = tmp_path / "signer.pub.pem", tmp_path / "data", tmp_path / "data.sig"
    pub.write_bytes(public_pem(key))
    data.write_bytes(DATA)
    signature = sign(key, DATA)
    assert len(signature) == 64
    sig.write_bytes(signature)

    def openssl_verify() -> subprocess.CompletedProcess:
        return run_openssl(
            openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", data, "-sigfile", sig
        )

    done = openssl_verify()
    assert done.returncode == 0, done.stderr
    assert b"Signature Verified Successfully" in done.stdout
    data.write_bytes(DATA[:-1] + b"!")
    assert openssl_verify().returncode != 0


def test_openssl_signature_verifies_here(key_path: Path, openssl: str, tmp_path: Path) -> None:
    """The other direction: a signature made by openssl with the key file passes verify_signature."""
    data, sig = tmp_path / "data", tmp_path / "data.sig"
    data.write_bytes(DATA)
    done = run_openssl(openssl, "pkeyutl", "-sign", "-inkey", key_path, "-rawin", "-in", data, "-out", sig)
    assert done.returncode == 0, done.stderr
    key = load_private_key(key_path)
    verify_signature(public_pem(key), sig.read_bytes(), DATA, fingerprint(key.public_key()))


def test_verify_signature_failures_name_the_cause() -> None:
    signer, forger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pem, fp = public_pem(signer), fingerprint(signer.public_key())
    signature = sign(signer, DATA)
    verify_signature(pem, signature, DATA, fp)

    failures: dict[str, SignatureError] = {}

    def failure(name: str, *args: object) -> SignatureError:
        with pytest.raises(SignatureError) as caught:
            verify_signature(*args)  # type: ignore[arg-type]
        failures[name] = caught.value
        return caught.value

    # The forger re-signs and ships his own key: caught by the pin, whatever the signature.
    forged = failure("forged", public_pem(forger), sign(forger, DATA), DATA, fp)
    assert forged.cause == "fingerprint-mismatch"
    assert fingerprint(forger.public_key()) in str(forged) and fp in str(forged)
    # The pinned key, but a signature by another key.
    wrong_key = failure("wrong key", pem, sign(forger, DATA), DATA, fp)
    assert wrong_key.cause == "bad-signature"
    flipped = bytearray(signature)
    flipped[10] ^= 0x01
    assert failure("flipped signature", pem, bytes(flipped), DATA, fp).cause == "bad-signature"
    altered = DATA[:5] + bytes([DATA[5] ^ 0x01]) + DATA[6:]
    assert failure("altered data", pem, signature, altered, fp).cause == "bad-signature"
    assert failure("truncated", pem, signature[:63], DATA, fp).cause == "bad-signature"
    # The right key pinned, a wrong fingerprint given.
    wrong_pin = fingerprint(forger.public_key())
    assert failure("wrong pin", pem, signature, DATA, wrong_pin).cause == "fingerprint-mismatch"
    assert failure("short pin", pem, signature, DATA, fp[:40]).cause == "bad-pin"
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert failure("not ed25519", ec_pem, signature, DATA, fp).cause == "bad-key"
    assert failure("not pem", b"garbage", signature, DATA, fp).cause == "bad-key"

    assert "fingerprint mismatch" in str(failures["forged"])
    assert "bad signature" in str(failures["wrong key"])
    assert str(failures["forged"]) != str(failures["wrong key"])


def test_fingerprint_display_and_pins_as_people_write_them() -> None:
    key = Ed25519PrivateKey.generate()
    fp = fingerprint(key.public_key())
    shown = display_fingerprint(fp)
    assert len(shown.split()) == 16 and all(len(group) == 4 for group in shown.split())
    assert shown.replace(" ", "") == fp
    for written in (shown, shown.upper(), f"SHA256:{fp}", ":".join(shown.split())):
        assert normalize_fingerprint(written) == fp
        verify_signature(public_pem(key), sign(key, DATA), DATA, written)
    for bad in ("", fp[:-1], fp + "0", fp[:-1] + "g"):
        with pytest.raises(SignatureError, match="64 hex digits"):
            normalize_fingerprint(bad)
