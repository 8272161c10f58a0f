"""PGP key blocks and fingerprints, cross-checked against GnuPG."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dnm.normalize import NormalizationError, extract_key_blocks, fingerprint, normalize_fingerprint
from dnm.normalize.pgp import crc24

GPG = shutil.which("gpg")

# RFC 9580 appendix A.3: the sample v6 Ed25519 certificate and its published fingerprint.
RFC9580_V6_CERT = """-----BEGIN PGP PUBLIC KEY BLOCK-----

xioGY4d/4xsAAAAg+U2nu0jWCmHlZ3BqZYfQMxmZu52JGggkLq2EVD34laPCsQYf
GwoAAABCBYJjh3/jAwsJBwUVCg4IDAIWAAKbAwIeCSIhBssYbE8GCaaX5NUt+mxy
KwwfHifBilZwj2Ul7Ce62azJBScJAgcCAAAAAK0oIBA+LX0ifsDm185Ecds2v8lw
gyU2kCcUmKfvBXbAf6rhRYWzuQOwEn7E/aLwIwRaLsdry0+VcallHhSu4RN6HWaE
QsiPlR4zxP/TP7mhfVEe7XWPxtnMUMtf15OyA51YBM4qBmOHf+MZAAAAIIaTJINn
+eUBXbki+PSAld2nhJh/LVmFsS+60WyvXkQ1wpsGGBsKAAAALAWCY4d/4wKbDCIh
BssYbE8GCaaX5NUt+mxyKwwfHifBilZwj2Ul7Ce62azJAAAAAAQBIKbpGG2dWTX8
j+VjFM21J0hqWlEg+bdiojWnKfA5AQpWUWtnNwDEM0g12vYxoWM8Y81W+bHBw805
I8kWVkXU6vFOi+HWvv/ira7ofJu16NnoUkhclkUrk0mXubZvyl4GBg==
-----END PGP PUBLIC KEY BLOCK-----
"""
RFC9580_V6_FINGERPRINT = "CB186C4F0609A697E4D52DFA6C722B0C1F1E27C18A56708F6525EC27BAD9ACC9"


@dataclass(frozen=True)
class GpgKey:
    armored: str
    binary: bytes
    fingerprint: str


def _gpg(home: str, *args: str) -> bytes:
    command = [GPG or "gpg", "--homedir", home, "--batch", "--no-tty", "--quiet", *args]
    return subprocess.run(command, check=True, capture_output=True, timeout=60).stdout


def _remove_home(home: str) -> None:
    """Stop the gpg-agent GnuPG started for ``home`` (if any), then delete ``home``."""
    subprocess.run(
        ["gpgconf", "--homedir", home, "--kill", "gpg-agent"],
        check=False,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": home},
    )
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def gpg_keys() -> Iterator[dict[str, GpgKey]]:
    """An RSA and an Ed25519 key made by GnuPG in a throw-away home, with GnuPG's own fingerprints."""
    if GPG is None:
        pytest.skip("gpg is not installed: install Debian's gnupg package to cross-check fingerprints")
    # A short path: gpg-agent's socket path must fit in sockaddr_un.
    home = tempfile.mkdtemp(prefix="dnmgpg")
    try:
        keys = {}
        for name, algorithm in (("rsa", "rsa2048"), ("ed25519", "ed25519")):
            uid = f"{name} test <{name}@example.org>"
            _gpg(
                home,
                "--passphrase",
                "",
                "--pinentry-mode",
                "loopback",
                "--quick-gen-key",
                uid,
                algorithm,
                "default",
                "never",
            )
            colons = _gpg(home, "--with-colons", "--list-keys", uid).decode()
            fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
            keys[name] = GpgKey(
                _gpg(home, "--armor", "--export", uid).decode(), _gpg(home, "--export", uid), fpr
            )
        yield keys
    finally:
        _remove_home(home)


@pytest.fixture(params=["rsa", "ed25519"])
def key(request: pytest.FixtureRequest, gpg_keys: dict[str, GpgKey]) -> GpgKey:
    return gpg_keys[request.param]


def _with_headers(armored: str) -> str:
    return armored.replace(
        "-----\n\n", "-----\nVersion: GnuPG v2\nComment: GPGTools - https://gpgtools.org\n\n", 1
    )


def _flip_one_body_character(armored: str) -> str:
    lines = armored.split("\n")
    line = lines[3]
    lines[3] = line[:10] + ("A" if line[10] != "A" else "B") + line[11:]
    return "\n".join(lines)


def test_fingerprint_matches_gnupg(key: GpgKey) -> None:
    assert fingerprint(key.armored) == key.fingerprint
    assert len(key.fingerprint) == 40


@pytest.mark.parametrize(
    "damage",
    [
        lambda a: a.replace("\n", "\r\n"),  # CRLF
        lambda a: "\n".join("    " + line for line in a.split("\n")),  # indented in the page source
        lambda a: a.replace("\n", "<br>\n"),  # <br> tags left in
        lambda a: a.replace("\n", "<br />"),  # only <br> tags, no line breaks
        lambda a: a.replace("\n", " "),  # textarea text flattened to one line
        lambda a: a.replace("\n", "\u00a0\n"),  # NBSP at line ends
        lambda a: a.replace("+", "&#43;").replace("/", "&#x2F;"),  # HTML entities
        lambda a: _with_headers(a),
        lambda a: _with_headers(a).replace("\n", " "),  # "GnuPG v2" then base64 on one line
        lambda a: _with_headers(a).replace("\n", "\r\n  "),
        lambda a: "\n".join(line for line in a.split("\n") if not line.startswith("=")),  # no checksum
        lambda a: a.replace("-----\n\n", "-----\n", 1),  # no blank line after BEGIN
    ],
)
def test_mangled_armour_still_gives_gnupg_fingerprint(key: GpgKey, damage) -> None:  # type: ignore[no-untyped-def]
    assert fingerprint(damage(key.armored)) == key.fingerprint


def test_extract_key_blocks_from_a_page(gpg_keys: dict[str, GpgKey]) -> None:
    rsa, ed = gpg_keys["rsa"], gpg_keys["ed25519"]
    page = (
        "<div class='pgp'><textarea>\r\n  " + rsa.armored.replace("\n", "\r\n  ") + "</textarea></div>"
        "<p>Old key:</p><pre>" + _with_headers(ed.armored).replace("\n", "<br>") + "</pre>"
        "<p>-----BEGIN PGP PUBLIC KEY BLOCK----- cut off by the market"
    )
    blocks = extract_key_blocks(page)
    assert [fingerprint(block) for block in blocks] == [rsa.fingerprint, ed.fingerprint]
    assert blocks[0].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n")
    assert blocks[0].endswith("-----END PGP PUBLIC KEY BLOCK-----\n")
    assert "\r" not in blocks[0] and "\n " not in blocks[0]
    assert blocks[1].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\nVersion: GnuPG v2\nComment: ")


def test_extracted_block_imports_into_gnupg(gpg_keys: dict[str, GpgKey], tmp_path: Path) -> None:
    ed = gpg_keys["ed25519"]
    (block,) = extract_key_blocks(ed.armored.replace("\n", "\r\n   "))
    home = tempfile.mkdtemp(prefix="dnmgpg")
    try:
        path = tmp_path / "key.asc"
        path.write_text(block)
        _gpg(home, "--import", str(path))
        colons = _gpg(home, "--with-colons", "--list-keys").decode()
        assert f"fpr:::::::::{ed.fingerprint}:" in colons
    finally:
        _remove_home(home)


def test_no_blocks() -> None:
    assert extract_key_blocks("no key here") == []
    assert extract_key_blocks("-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQIN") == []  # truncated: left out


def test_flipped_byte_fails_the_crc(key: GpgKey) -> None:
    with pytest.raises(NormalizationError, match="CRC24 checksum"):
        fingerprint(_flip_one_body_character(key.armored))


def test_truncated_block_raises(key: GpgKey) -> None:
    half = key.armored[: len(key.armored) // 2]
    with pytest.raises(NormalizationError, match="truncated"):
        fingerprint(half)
    # The END line kept but the body cut and its checksum gone: the packets themselves are short.
    lines = key.armored.strip().split("\n")
    cut = "\n".join([*lines[:4], lines[-1]])
    with pytest.raises(NormalizationError, match=r"truncated|packet"):
        fingerprint(cut)


def test_missing_block_raises() -> None:
    with pytest.raises(
        NormalizationError, match="expected a block starting with -----BEGIN PGP PUBLIC KEY BLOCK"
    ):
        fingerprint("Contact me on jabber")


def test_rfc9580_v6_certificate() -> None:
    assert fingerprint(RFC9580_V6_CERT) == RFC9580_V6_FINGERPRINT


# Re-framing GnuPG's primary key packet in every header format must not change the fingerprint.


def _primary_body(binary: bytes) -> bytes:
    """The body of the first packet of a GnuPG export (old format, as GnuPG writes keys)."""
    header = binary[0]
    assert header & 0xC0 == 0x80 and (header >> 2) & 0x0F == 6
    size = (1, 2, 4)[header & 3]
    length = int.from_bytes(binary[1 : 1 + size], "big")
    return binary[1 + size : 1 + size + length]


def _armour(data: bytes, *, checksum: bool = True) -> str:
    text = base64.b64encode(data).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    if checksum:
        lines.append("=" + base64.b64encode(crc24(data).to_bytes(3, "big")).decode())
    return "\n".join(
        ["-----BEGIN PGP PUBLIC KEY BLOCK-----", "", *lines, "-----END PGP PUBLIC KEY BLOCK-----"]
    )


def _old(tag: int, body: bytes, length_type: int) -> bytes:
    if length_type == 3:
        return bytes([0x80 | tag << 2 | 3]) + body
    size = (1, 2, 4)[length_type]
    return bytes([0x80 | tag << 2 | length_type]) + len(body).to_bytes(size, "big") + body


def _new(tag: int, body: bytes, form: str) -> bytes:
    header = bytes([0xC0 | tag])
    if form == "one" and len(body) < 192:
        return header + bytes([len(body)]) + body
    if form == "two" and 192 <= len(body) < 8384:
        value = len(body) - 192
        return header + bytes([(value >> 8) + 192, value & 0xFF]) + body
    if form == "five":
        return header + b"\xff" + len(body).to_bytes(4, "big") + body
    # partial: 32-octet chunks, then the rest with a one- or two-octet length
    out, rest = header, body
    while len(rest) > 32:
        out, rest = out + bytes([0xE0 | 5]) + rest[:32], rest[32:]
    return out + bytes([len(rest)]) + rest


@pytest.mark.parametrize(
    "frame",
    [
        lambda body: _old(6, body, 0) if len(body) < 256 else _old(6, body, 1),
        lambda body: _old(6, body, 1),
        lambda body: _old(6, body, 2),
        lambda body: _old(6, body, 3),
        lambda body: _new(6, body, "one") if len(body) < 192 else _new(6, body, "two"),
        lambda body: _new(6, body, "five"),
        lambda body: _new(6, body, "partial"),
        lambda body: _new(6, body, "five") + _old(13, b"uid", 0),  # packets after the key are walked too
    ],
)
def test_every_length_encoding(key: GpgKey, frame) -> None:  # type: ignore[no-untyped-def]
    data = frame(_primary_body(key.binary))
    assert fingerprint(_armour(data)) == key.fingerprint
    assert fingerprint(_armour(data, checksum=False)) == key.fingerprint


def test_v5_key_uses_sha256_with_0x9a() -> None:
    material = bytes(range(33))
    body = b"\x05" + bytes(4) + b"\x1b" + len(material).to_bytes(4, "big") + material
    expected = hashlib.sha256(b"\x9a" + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    assert fingerprint(_armour(_new(6, body, "one"))) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_old(6, b"\x03" + bytes(20), 0), "v3 keys use obsolete MD5"),
        (_old(5, b"\x04" + bytes(20), 0), "a public key, not a secret key"),
        (_old(13, b"uid", 0), "a public-key packet first"),
        (_old(6, b"\x07" + bytes(20), 0), "found version 7"),
        (_old(6, b"", 0), "found version None"),
        (_new(6, b"\x06" + bytes(5) + (99).to_bytes(4, "big"), "one"), "well-formed"),  # wrong v6 length
        (b"\x00\x01\x02", "bit 7 clear"),
        (b"\x99\x01", "truncated"),
        (b"\xc6\xff\x00", "truncated"),
        (b"", "base64 data"),
    ],
)
def test_malformed_packets(data: bytes, message: str) -> None:
    with pytest.raises(NormalizationError, match=message):
        fingerprint(_armour(data))


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("3E58 85CC C41D 7C9A D09E  B8F3 9C2E 181C DB02 3AC9", "3E5885CCC41D7C9AD09EB8F39C2E181CDB023AC9"),
        ("3e5885ccc41d7c9ad09eb8f39c2e181cdb023ac9", "3E5885CCC41D7C9AD09EB8F39C2E181CDB023AC9"),
        ("0x3E5885CCC41D7C9AD09EB8F39C2E181CDB023AC9", "3E5885CCC41D7C9AD09EB8F39C2E181CDB023AC9"),
        (
            "Key fingerprint = 3E58 85CC C41D 7C9A D09E  B8F3 9C2E 181C DB02 3AC9",
            "3E5885CCC41D7C9AD09EB8F39C2E181CDB023AC9",
        ),
        (
            "Fingerprint: 3E:58:85:CC:C4:1D:7C:9A:D0:9E:B8:F3:9C:2E:18:1C:DB:02:3A:C9",
            "3E5885CCC41D7C9AD09EB8F39C2E181CDB023AC9",
        ),
        (RFC9580_V6_FINGERPRINT.lower(), RFC9580_V6_FINGERPRINT),
    ],
)
def test_normalize_fingerprint(shown: str, expected: str) -> None:
    assert normalize_fingerprint(shown) == expected


@pytest.mark.parametrize(
    ("shown", "message"),
    [
        ("9C2E181CDB023AC9", "that is a key ID"),
        ("0x9C2E181C", "that is a key ID"),
        ("3E5885CCC41D7C9AD09EB8F39C2E181CDB023AC", "40 or 64 hexadecimal digits"),
        ("ZZ5885CCC41D7C9AD09EB8F39C2E181CDB023AC9", "40 or 64 hexadecimal digits"),
        ("", "40 or 64"),
    ],
)
def test_normalize_fingerprint_rejects(shown: str, message: str) -> None:
    with pytest.raises(NormalizationError, match=message):
        normalize_fingerprint(shown)


def test_gnupg_printed_fingerprint_normalizes_to_the_computed_one(gpg_keys: dict[str, GpgKey]) -> None:
    ed = gpg_keys["ed25519"]
    printed = " ".join(ed.fingerprint[i : i + 4] for i in range(0, 40, 4))
    assert normalize_fingerprint(printed) == fingerprint(ed.armored)
