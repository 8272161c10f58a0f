"""Verifying cleartext-signed mirror lists: demo signatures, real GnuPG signatures, and every refusal."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from demo.mirrors import market_key, phisher_key, signed_mirror_list
from demo.pgp import armor, crc24, packet
from dnm.normalize.pgp import key_packets
from dnm.pgpsig import SignatureError, fingerprint_of_armored, verify_cleartext

WHEN = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
URLS = ["http://aaaa.onion", "http://bbbb.onion"]
# A changed text fails the 16-bit digest prefix, or (1 time in 65536) the signature itself.
ALTERED = r"altered|bad signature"

needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed: apt-get install gnupg")


def demo_signed() -> str:
    return signed_mirror_list(1, "hollowmere", URLS, WHEN)


def test_demo_signature_round_trip() -> None:
    key = market_key(1, "hollowmere")
    result = verify_cleartext(demo_signed(), key.armored)
    assert result.fingerprint == result.signer == key.fingerprint
    assert result.created == WHEN and result.hash == "SHA256"
    assert [line for line in result.lines if line.startswith("http")] == URLS
    assert result.lines[-1] == "-- Hollowmere staff"  # dash-escaping undone
    assert fingerprint_of_armored(key.armored) == key.fingerprint


def test_crlf_and_surrounding_page_text_are_tolerated() -> None:
    page_text = "Our mirrors:\r\n" + demo_signed().replace("\n", "\r\n") + "\r\nstay safe\r\n"
    assert verify_cleartext(page_text, market_key(1, "hollowmere").armored).lines[3] == URLS[0]


def test_phisher_signature_is_refused_with_the_market_key() -> None:
    phished = signed_mirror_list(1, "hollowmere", ["http://evil.onion", *URLS], WHEN, phishing=True)
    phisher = phisher_key(1, "hollowmere")
    assert verify_cleartext(phished, phisher.armored).fingerprint == phisher.fingerprint
    with pytest.raises(SignatureError, match=f"wrong key: the message is signed by {phisher.fingerprint}"):
        verify_cleartext(phished, market_key(1, "hollowmere").armored)
    with pytest.raises(SignatureError, match="wrong key"):
        verify_cleartext(demo_signed(), market_key(1, "copperline").armored)


def test_tampered_text_is_refused() -> None:
    key = market_key(1, "hollowmere").armored
    for tampered in (
        demo_signed().replace("bbbb", "evil"),
        demo_signed().replace("http://aaaa.onion\n", ""),
        demo_signed().replace("official mirrors", "official  mirrors"),
    ):
        with pytest.raises(SignatureError, match=ALTERED):
            verify_cleartext(tampered, key)


def test_trailing_blanks_are_not_signed() -> None:
    # RFC 9580 7.2: trailing spaces and tabs are not part of the signed text, so adding them is harmless.
    padded = demo_signed().replace("http://aaaa.onion\n", "http://aaaa.onion \t\n")
    assert verify_cleartext(padded, market_key(1, "hollowmere").armored).lines[3] == URLS[0]


def _signature_parts(signed: str) -> tuple[str, bytes]:
    """The text part (up to the signature block) and the decoded signature packet data."""
    head, block = signed.split("-----BEGIN PGP SIGNATURE-----\n")
    lines = block.split("\n")
    data = base64.b64decode("".join(lines[1:-2]))
    return head, data


def test_bad_crc_damaged_armour_and_missing_blocks_are_refused() -> None:
    key = market_key(1, "hollowmere").armored
    signed = demo_signed()
    checksum = signed.split("\n")[-2]
    other = "=" + base64.b64encode(crc24(b"x").to_bytes(3, "big")).decode()
    with pytest.raises(SignatureError, match="CRC24"):
        verify_cleartext(signed.replace(checksum, other), key)
    head, data = _signature_parts(signed)
    damaged = bytearray(data)
    damaged[-1] ^= 0x01
    b64 = base64.b64encode(bytes(damaged)).decode()
    with pytest.raises(SignatureError, match="CRC24"):
        verify_cleartext(
            f"{head}-----BEGIN PGP SIGNATURE-----\n\n{b64}\n{checksum}\n-----END PGP SIGNATURE-----", key
        )
    with pytest.raises(SignatureError, match="no cleartext-signed message"):
        verify_cleartext("http://aaaa.onion\nhttp://bbbb.onion\n", key)
    with pytest.raises(SignatureError, match="no signature"):
        verify_cleartext(head, key)
    with pytest.raises(SignatureError, match="truncated signature"):
        verify_cleartext(signed.removesuffix("-----END PGP SIGNATURE-----"), key)
    with pytest.raises(SignatureError, match="not dash-escaped"):
        verify_cleartext(signed.replace("- -- Hollowmere", "-- Hollowmere"), key)
    with pytest.raises(SignatureError, match="Hash header"):
        verify_cleartext(signed.replace("Hash: SHA256", "Hash: SHA512"), key)
    with pytest.raises(SignatureError, match="not a usable public key"):
        verify_cleartext(signed, key.replace("-----END PGP PUBLIC KEY BLOCK-----", ""))


def test_a_forged_signature_value_is_refused() -> None:
    """Right digest prefix, wrong EdDSA value: only the real verification catches it."""
    head, data = _signature_parts(demo_signed())
    forged = bytearray(data)
    forged[-5] ^= 0x40  # inside S, after the digest prefix
    signed = head + armor(bytes(forged), "SIGNATURE")
    with pytest.raises(SignatureError, match="bad signature"):
        verify_cleartext(signed, market_key(1, "hollowmere").armored)


# --- real GnuPG ---------------------------------------------------------------------------------


@dataclass
class Gpg:
    home: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            env=self.env, input=stdin, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        return done.stdout

    def new_key(self, uid: str, algo: str) -> str:
        self.run("--quick-gen-key", uid, algo, "sign", "never")
        return self.fingerprints(uid)[0]

    def fingerprints(self, uid: str) -> list[str]:
        listing = self.run("--with-colons", "--list-keys", uid)
        return [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]

    def export(self, uid: str) -> str:
        return self.run("--armor", "--export", uid)

    def clearsign(self, uid: str, text: str, *extra: str) -> str:
        return self.run("--local-user", uid, *extra, "--clearsign", stdin=text)


@pytest.fixture(scope="module")
def gpg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gpg]:
    if shutil.which("gpg") is None:
        pytest.skip("gpg not installed: apt-get install gnupg")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    try:
        yield Gpg(home, env)
    finally:  # gpg starts an agent for this home; do not leave it running
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], env=env, capture_output=True
        )


TEXT = "Market mirrors\n-----\n- item with a dash\nhttp://cccc.onion   \nFrom the staff\n"


@needs_gpg
def test_gnupg_ed25519_clearsign_is_verified(gpg: Gpg) -> None:
    fpr = gpg.new_key("Ed Staff <ed@test.invalid>", "ed25519")
    key = gpg.export("ed@test.invalid")
    signed = gpg.clearsign("ed@test.invalid", TEXT)
    result = verify_cleartext(signed, key)
    assert result.fingerprint == result.signer == fpr == fingerprint_of_armored(key)
    assert result.text == TEXT.replace("   \n", "\n").removesuffix("\n")
    assert abs((datetime.now(UTC) - result.created).total_seconds()) < 600
    with pytest.raises(SignatureError, match=ALTERED):
        verify_cleartext(signed.replace("cccc", "dddd"), key)
    with pytest.raises(SignatureError, match="wrong key"):
        verify_cleartext(signed, market_key(1, "hollowmere").armored)


@needs_gpg
def test_gnupg_signature_by_a_bound_subkey_and_a_grafted_one(gpg: Gpg) -> None:
    primary = gpg.new_key("Sub Staff <sub@test.invalid>", "ed25519")
    gpg.run("--quick-add-key", primary, "ed25519", "sign", "never")
    fprs = gpg.fingerprints("sub@test.invalid")
    subkey = fprs[1]
    key = gpg.export("sub@test.invalid")
    signed = gpg.clearsign("sub@test.invalid", TEXT)
    result = verify_cleartext(signed, key)
    assert (result.fingerprint, result.signer) == (primary, subkey)

    # A phisher appends his own signing subkey (and its binding, made by *his* primary) to the market's
    # key: the primary fingerprint still matches the pinned one, so the binding must be checked.
    market = market_key(1, "copperline")
    stolen = key_packets(key)
    start = next(i for i, (tag, _) in enumerate(stolen) if tag == 14)
    grafted = b"".join(packet(tag, body) for tag, body in [*key_packets(market.armored), *stolen[start:]])
    grafted_key = armor(grafted)
    assert fingerprint_of_armored(grafted_key) == market.fingerprint
    with pytest.raises(SignatureError, match=f"without a valid binding signature: {subkey}"):
        verify_cleartext(signed, grafted_key)


@needs_gpg
def test_gnupg_rsa_signature_with_sha512(gpg: Gpg) -> None:
    fpr = gpg.new_key("Rsa Staff <rsa@test.invalid>", "rsa2048")
    signed = gpg.clearsign("rsa@test.invalid", TEXT, "--digest-algo", "SHA512")
    assert "Hash: SHA512" in signed
    result = verify_cleartext(signed, gpg.export("rsa@test.invalid"))
    assert result.fingerprint == fpr and result.hash == "SHA512"
    with pytest.raises(SignatureError, match=ALTERED):
        verify_cleartext(signed.replace("staff", "stuff"), gpg.export("rsa@test.invalid"))


@needs_gpg
def test_unsupported_algorithm_and_broken_hash_are_named(gpg: Gpg) -> None:
    gpg.new_key("Ecdsa Staff <ecdsa@test.invalid>", "nistp256")
    signed = gpg.clearsign("ecdsa@test.invalid", TEXT)
    with pytest.raises(SignatureError, match="unsupported public-key algorithm 19"):
        verify_cleartext(signed, gpg.export("ecdsa@test.invalid"))
    gpg.new_key("Sha1 Staff <sha1@test.invalid>", "ed25519")
    sha1 = gpg.clearsign("sha1@test.invalid", TEXT, "--digest-algo", "SHA1")
    with pytest.raises(SignatureError, match="broken hash SHA1"):
        verify_cleartext(sha1, gpg.export("sha1@test.invalid"))
