"""Deterministic onion keys and the v3 address validator (no tor needed; tor's view is in test_tornet)."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transport.onion_keys import (
    PUBLIC_KEY_HEADER,
    SECRET_KEY_HEADER,
    add_onion_key_blob,
    check_v3_onion,
    is_valid_v3_onion,
    onion_key_for,
    write_hidden_service_dir,
)

# A published v3 address (DuckDuckGo), computed by tor, not by this code.
KNOWN_GOOD = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion"


def test_same_label_and_seed_give_the_same_key() -> None:
    assert onion_key_for("hollowmere") == onion_key_for("hollowmere", seed=1)
    assert onion_key_for("hollowmere").address != onion_key_for("copperline").address
    assert onion_key_for("hollowmere", seed=2).address != onion_key_for("hollowmere").address


def test_key_parts_are_consistent() -> None:
    key = onion_key_for("hollowmere")
    assert check_v3_onion(key.address) == key.address
    assert len(key.expanded_secret) == 64 and len(key.public) == 32
    assert base64.b32decode(key.service_id.upper())[:32] == key.public
    # The scalar half is clamped as RFC 8032 says; the whole is SHA-512 of the derived seed.
    scalar = key.expanded_secret[:32]
    assert scalar[0] & 7 == 0 and scalar[31] & 128 == 0 and scalar[31] & 64 == 64
    seed = hashlib.sha256(b"dnm-demo-onion:hollowmere:1").digest()
    assert key.expanded_secret[32:] == hashlib.sha512(seed).digest()[32:]
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert public == key.public


def test_hidden_service_dir_files(tmp_path: Path) -> None:
    key = onion_key_for("copperline")
    hs = write_hidden_service_dir(tmp_path / "hs", key)
    assert stat.S_IMODE(hs.stat().st_mode) == 0o700
    assert (hs / "hs_ed25519_secret_key").read_bytes() == SECRET_KEY_HEADER + key.expanded_secret
    assert (hs / "hs_ed25519_public_key").read_bytes() == PUBLIC_KEY_HEADER + key.public
    assert (hs / "hostname").read_text() == key.address + "\n"
    assert len(SECRET_KEY_HEADER) == len(PUBLIC_KEY_HEADER) == 32
    for name in ("hs_ed25519_secret_key", "hs_ed25519_public_key", "hostname"):
        assert stat.S_IMODE((hs / name).stat().st_mode) == 0o600


def test_add_onion_blob() -> None:
    key = onion_key_for("copperline")
    kind, blob = add_onion_key_blob(key).split(":", 1)
    assert kind == "ED25519-V3"
    assert base64.b64decode(blob) == key.expanded_secret


def test_validator_accepts_real_and_normalises() -> None:
    assert is_valid_v3_onion(KNOWN_GOOD)
    assert check_v3_onion(KNOWN_GOOD.upper()) == KNOWN_GOOD
    assert check_v3_onion("www." + KNOWN_GOOD + ".") == KNOWN_GOOD


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("example.com", "does not end in .onion"),
        ("http://" + KNOWN_GOOD + "/", "pass only the host part"),
        ("expyuzz4wqqyqhjn.onion", "v2 onion address"),
        (KNOWN_GOOD[:-7] + ".onion", "has 55"),
        ("duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzcza1.onion", "'1' not in the base32"),
        ("duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczac.onion", "version byte is 2"),
        ("duckduckgogg42xjoc72x3sjasowoarfcgcmvfimaftt6twagswzczad.onion", "checksum mismatch"),
        ("duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad", "does not end in .onion"),
    ],
)
def test_validator_says_what_is_wrong(host: str, message: str) -> None:
    assert not is_valid_v3_onion(host)
    with pytest.raises(ValueError, match=message):
        check_v3_onion(host)
