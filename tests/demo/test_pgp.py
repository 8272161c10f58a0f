"""OpenPGP keys: format, determinism, and acceptance by GnuPG."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from demo.pgp import (
    clearsign,
    crc24,
    group_fingerprint,
    key_for,
    make_key,
    mpi,
    signed_lines,
    signing_key_for,
)
from demo.world import world_for

from .extract import fingerprint_of_armor

CREATED = datetime(2024, 5, 17, 8, 30, tzinfo=UTC)


def test_crc24_and_mpi_encodings() -> None:
    assert crc24(b"") == 0xB704CE
    assert mpi(b"\x00\x01") == b"\x00\x01\x01"
    assert mpi(b"\x40" + b"\xff" * 32)[:2] == (263).to_bytes(2, "big")


def test_same_seed_same_key_and_different_seed_different_key() -> None:
    a = key_for("t:1", "Alpha <alpha@demo.invalid>", CREATED)
    b = key_for("t:1", "Alpha <alpha@demo.invalid>", CREATED)
    c = key_for("t:2", "Alpha <alpha@demo.invalid>", CREATED)
    assert a == b
    assert c.fingerprint != a.fingerprint
    assert re.fullmatch(r"[0-9A-F]{40}", a.fingerprint)
    assert a.armored.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n")
    assert a.armored.endswith("-----END PGP PUBLIC KEY BLOCK-----")
    assert fingerprint_of_armor(a.armored) == a.fingerprint
    assert group_fingerprint(a.fingerprint).replace(" ", "") == a.fingerprint


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        make_key(b"short", "x", CREATED)
    with pytest.raises(ValueError, match="timezone"):
        make_key(b"\x00" * 32, "x", datetime(2024, 1, 1))


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed: apt-get install gnupg")
def test_gnupg_accepts_fingerprint_and_self_signature(tmp_path: Path) -> None:
    world = world_for(1)
    keys = [a.key for a in world.actors if a.key is not None][:3]
    keys.append(key_for("t:gpg", "Zeta Ünïcode <zeta@demo.invalid>", CREATED))
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    try:
        _check_with_gnupg(keys, tmp_path, env)
    finally:  # importing starts a gpg-agent for this home; do not leave it running
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], env=env, capture_output=True
        )


def _check_with_gnupg(keys: list, tmp_path: Path, env: dict[str, str]) -> None:
    for i, key in enumerate(keys):
        path = tmp_path / f"k{i}.asc"
        path.write_text(key.armored + "\n")
        shown = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--show-keys", str(path)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        fprs = [line.split(":")[9] for line in shown.stdout.splitlines() if line.startswith("fpr:")]
        assert fprs == [key.fingerprint]
        subprocess.run(["gpg", "--batch", "--import", str(path)], env=env, capture_output=True, check=True)
        checked = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--check-sigs", key.fingerprint],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        sigs = [line.split(":") for line in checked.stdout.splitlines() if line.startswith("sig:")]
        assert len(sigs) == 1
        assert sigs[0][1] == "!", checked.stdout  # "!" = signature verified
        assert sigs[0][10] == "13x"  # positive certification, exportable
        pub = next(line.split(":") for line in checked.stdout.splitlines() if line.startswith("pub:"))
        assert pub[3] == "22" and pub[5] == str(int(key.created.timestamp()))


def test_signing_key_is_the_published_key_and_clearsign_is_deterministic() -> None:
    signer = signing_key_for("t:1", "Alpha <alpha@demo.invalid>", CREATED)
    assert signer.public == key_for("t:1", "Alpha <alpha@demo.invalid>", CREATED)
    assert "seed" not in repr(signer)  # the private half never lands in a log line
    text = "-first\r\nkept  \t\n\nFrom here\n"
    signed = signer.clearsign(text, CREATED)
    assert signed == clearsign(signer, text, CREATED)
    assert signed.startswith(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- -first\nkept\n\nFrom here\n"
    )
    assert signed.endswith("-----END PGP SIGNATURE-----")
    assert signed != signer.clearsign(text, CREATED.replace(minute=31))
    assert signed_lines(text) == ["-first", "kept", "", "From here"]
    with pytest.raises(ValueError, match="timezone"):
        signer.clearsign(text, datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="carriage return"):
        signer.clearsign("a\rb", CREATED)
