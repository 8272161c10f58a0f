"""Deterministic OpenPGP v4 keys (Ed25519, self-certified, ASCII-armoured) and cleartext signatures.

Real vendors publish an armoured public key; researchers link accounts across markets by its
fingerprint. Markets sign their mirror lists with a cleartext signature (RFC 9580 section 7) so
that users can tell them from a phisher's. The demo needs keys and signatures that GnuPG accepts but
that are reproducible from a seed, so the key material, creation times and signatures are all
derived from seed bytes and given instants (Ed25519 signatures are deterministic, RFC 8032), never
from the wall clock or the OS random source.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# RFC 4880bis "EdDSALegacy": algorithm 22 with the Ed25519 curve OID 1.3.6.1.4.1.11591.15.1.
PUBKEY_ALGO_EDDSA = 22
HASH_ALGO_SHA256 = 8
SIG_POSITIVE_CERT = 0x13
SIG_CANONICAL_TEXT = 0x01
ED25519_OID = bytes.fromhex("2b06010401da470f01")

TAG_SIGNATURE = 2
TAG_PUBLIC_KEY = 6
TAG_USER_ID = 13

SUB_CREATION_TIME = 2
SUB_ISSUER_KEY_ID = 16
SUB_KEY_FLAGS = 27
SUB_ISSUER_FINGERPRINT = 33
KEY_FLAGS_CERTIFY_SIGN = 0x03


@dataclass(frozen=True)
class PgpKey:
    """An armoured public key and the facts a parser could recover from it."""

    armored: str
    fingerprint: str  # 40 upper-case hex digits, v4 (SHA-1)
    user_id: str
    created: datetime

    @property
    def key_id(self) -> str:
        """Long key id: the low 64 bits of the fingerprint."""
        return self.fingerprint[-16:]


def mpi(data: bytes) -> bytes:
    """Encode big-endian bytes as an OpenPGP multiprecision integer (bit count, no leading zeros)."""
    stripped = data.lstrip(b"\x00")
    bits = len(stripped) * 8 - (8 - stripped[0].bit_length()) if stripped else 0
    return struct.pack(">H", bits) + stripped


def packet(tag: int, body: bytes) -> bytes:
    """Wrap a body in a new-format packet header."""
    n = len(body)
    if n < 192:
        length = bytes([n])
    elif n < 8384:
        n -= 192
        length = bytes([(n >> 8) + 192, n & 0xFF])
    else:
        length = b"\xff" + struct.pack(">I", n)
    return bytes([0xC0 | tag]) + length + body


def subpacket(kind: int, data: bytes) -> bytes:
    """Encode one signature subpacket (all of ours are shorter than 192 bytes)."""
    return bytes([len(data) + 1, kind]) + data


def crc24(data: bytes) -> int:
    """CRC-24 of RFC 4880 section 6.1, used for the armour checksum."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor(data: bytes, block: str = "PUBLIC KEY BLOCK") -> str:
    """ASCII-armour OpenPGP data: a transferable public key by default, or e.g. block="SIGNATURE"."""
    b64 = base64.b64encode(data).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    checksum = base64.b64encode(crc24(data).to_bytes(3, "big")).decode("ascii")
    return "\n".join(
        [
            f"-----BEGIN PGP {block}-----",
            "",
            *lines,
            "=" + checksum,
            f"-----END PGP {block}-----",
        ]
    )


def fingerprint_of(pubkey_body: bytes) -> str:
    """v4 fingerprint: SHA-1 over 0x99, a two-octet length and the public-key packet body."""
    return hashlib.sha1(b"\x99" + struct.pack(">H", len(pubkey_body)) + pubkey_body).hexdigest().upper()


def group_fingerprint(fingerprint: str) -> str:
    """Print a fingerprint in the usual groups of four ("ABCD 1234 ...")."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


@dataclass(frozen=True)
class PgpSigningKey:
    """A demo key with its Ed25519 seed, so the demo can sign with it; only the public half is shown."""

    public: PgpKey
    seed: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    @property
    def armored(self) -> str:
        """The armoured public key."""
        return self.public.armored

    def clearsign(self, text: str, created: datetime) -> str:
        """A cleartext-signed message of `text`, signed at `created` (see `clearsign`)."""
        return clearsign(self, text, created)


def make_key(seed: bytes, user_id: str, created: datetime) -> PgpKey:
    """Build a self-certified Ed25519 public key from 32 seed bytes; same inputs give the same bytes."""
    return make_signing_key(seed, user_id, created).public


def key_for(label: str, user_id: str, created: datetime) -> PgpKey:
    """Derive the seed bytes from a stable label (e.g. "1:actor:7") and build the key."""
    return signing_key_for(label, user_id, created).public


def signing_key_for(label: str, user_id: str, created: datetime) -> PgpSigningKey:
    """The key of `key_for(label, ...)` with its seed, for signing."""
    return make_signing_key(hashlib.sha256(f"pgp:{label}".encode()).digest(), user_id, created)


def make_signing_key(seed: bytes, user_id: str, created: datetime) -> PgpSigningKey:
    """Build the key of `make_key(seed, ...)` and keep its seed, for signing."""
    if len(seed) != 32:
        raise ValueError(f"Ed25519 needs a 32-byte seed, got {len(seed)} bytes")
    timestamp = _timestamp(created, "key creation time")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    # The 0x40 prefix marks a native (compressed) EdDSA point in the MPI.
    pub_body = (
        bytes([4])
        + struct.pack(">I", timestamp)
        + bytes([PUBKEY_ALGO_EDDSA, len(ED25519_OID)])
        + ED25519_OID
        + mpi(b"\x40" + public)
    )
    fpr = fingerprint_of(pub_body)
    uid = user_id.encode("utf-8")
    signed = (
        b"\x99" + struct.pack(">H", len(pub_body)) + pub_body + b"\xb4" + struct.pack(">I", len(uid)) + uid
    )
    sig_body = _signature(
        private,
        SIG_POSITIVE_CERT,
        signed,
        fpr,
        timestamp,
        extra_hashed=subpacket(SUB_KEY_FLAGS, bytes([KEY_FLAGS_CERTIFY_SIGN])),
    )
    data = packet(TAG_PUBLIC_KEY, pub_body) + packet(TAG_USER_ID, uid) + packet(TAG_SIGNATURE, sig_body)
    key = PgpKey(armored=armor(data), fingerprint=fpr, user_id=user_id, created=created.astimezone(UTC))
    return PgpSigningKey(public=key, seed=seed)


def clearsign(key: PgpSigningKey, text: str, created: datetime) -> str:
    """Sign `text` as an OpenPGP cleartext-signed message (RFC 9580 section 7), as `gpg --clearsign`.

    The signature is a v4 canonical-text signature (type 0x01), SHA-256, with the creation time and
    issuer fingerprint hashed and the issuer key id unhashed. Trailing spaces and tabs of each line are
    dropped (they are not signed, RFC 9580 section 7.2), lines starting with "-" are dash-escaped,
    and a final line break of `text` is the one before the signature block. Same inputs, same bytes.
    """
    lines = signed_lines(text)
    timestamp = _timestamp(created, "signature creation time")
    private = Ed25519PrivateKey.from_private_bytes(key.seed)
    canonical = "\r\n".join(lines).encode("utf-8")
    sig_body = _signature(private, SIG_CANONICAL_TEXT, canonical, key.fingerprint, timestamp)
    escaped = ["- " + line if line.startswith("-") else line for line in lines]
    return "\n".join(
        [
            "-----BEGIN PGP SIGNED MESSAGE-----",
            "Hash: SHA256",
            "",
            *escaped,
            armor(packet(TAG_SIGNATURE, sig_body), "SIGNATURE"),
        ]
    )


def signed_lines(text: str) -> list[str]:
    """The lines a cleartext signature covers: LF or CRLF ends, trailing blanks dropped."""
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        raise ValueError("a cleartext-signed text cannot hold a bare carriage return")
    text = text.removesuffix("\n")
    return [line.rstrip(" \t") for line in text.split("\n")]


def _timestamp(instant: datetime, what: str) -> int:
    if instant.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (UTC)")
    return int(instant.timestamp())


def _signature(
    private: Ed25519PrivateKey,
    sig_type: int,
    signed: bytes,
    fpr: str,
    timestamp: int,
    extra_hashed: bytes = b"",
) -> bytes:
    """A v4 EdDSA/SHA-256 signature packet body over `signed` (creation time and issuer hashed)."""
    hashed = (
        subpacket(SUB_CREATION_TIME, struct.pack(">I", timestamp))
        + subpacket(SUB_ISSUER_FINGERPRINT, b"\x04" + bytes.fromhex(fpr))
        + extra_hashed
    )
    sig_head = bytes([4, sig_type, PUBKEY_ALGO_EDDSA, HASH_ALGO_SHA256]) + struct.pack(">H", len(hashed))
    sig_head += hashed
    digest = hashlib.sha256(signed + sig_head + b"\x04\xff" + struct.pack(">I", len(sig_head))).digest()
    # EdDSA in OpenPGP signs the hash value itself, then stores R and S as two MPIs.
    signature = private.sign(digest)
    unhashed = subpacket(SUB_ISSUER_KEY_ID, bytes.fromhex(fpr[-16:]))
    return (
        sig_head
        + struct.pack(">H", len(unhashed))
        + unhashed
        + digest[:2]
        + mpi(signature[:32])
        + mpi(signature[32:])
    )
