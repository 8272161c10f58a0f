"""Deterministic OpenPGP v4 public keys (Ed25519, self-certified, ASCII-armoured) for demo vendors.

Real vendors publish an armoured public key; researchers link accounts across markets by its
fingerprint. The demo needs keys that GnuPG accepts but that are reproducible from a seed, so the
key material, creation time and signature are all derived from seed bytes (Ed25519 signatures
are deterministic, RFC 8032), never from the wall clock or the OS random source.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# RFC 4880bis "EdDSALegacy": algorithm 22 with the Ed25519 curve OID 1.3.6.1.4.1.11591.15.1.
PUBKEY_ALGO_EDDSA = 22
HASH_ALGO_SHA256 = 8
SIG_POSITIVE_CERT = 0x13
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


def armor(data: bytes) -> str:
    """ASCII-armour a transferable public key."""
    b64 = base64.b64encode(data).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    checksum = base64.b64encode(crc24(data).to_bytes(3, "big")).decode("ascii")
    return "\n".join(
        [
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "",
            *lines,
            "=" + checksum,
            "-----END PGP PUBLIC KEY BLOCK-----",
        ]
    )


def fingerprint_of(pubkey_body: bytes) -> str:
    """v4 fingerprint: SHA-1 over 0x99, a two-octet length and the public-key packet body."""
    return hashlib.sha1(b"\x99" + struct.pack(">H", len(pubkey_body)) + pubkey_body).hexdigest().upper()


def group_fingerprint(fingerprint: str) -> str:
    """Print a fingerprint in the usual groups of four ("ABCD 1234 ...")."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def make_key(seed: bytes, user_id: str, created: datetime) -> PgpKey:
    """Build a self-certified Ed25519 public key from 32 seed bytes; same inputs give the same bytes."""
    if len(seed) != 32:
        raise ValueError(f"Ed25519 needs a 32-byte seed, got {len(seed)} bytes")
    if created.tzinfo is None:
        raise ValueError("key creation time must be timezone-aware (UTC)")
    timestamp = int(created.timestamp())
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

    hashed = (
        subpacket(SUB_CREATION_TIME, struct.pack(">I", timestamp))
        + subpacket(SUB_ISSUER_FINGERPRINT, b"\x04" + bytes.fromhex(fpr))
        + subpacket(SUB_KEY_FLAGS, bytes([KEY_FLAGS_CERTIFY_SIGN]))
    )
    sig_head = bytes([4, SIG_POSITIVE_CERT, PUBKEY_ALGO_EDDSA, HASH_ALGO_SHA256]) + struct.pack(
        ">H", len(hashed)
    )
    sig_head += hashed
    digest = hashlib.sha256(
        b"\x99"
        + struct.pack(">H", len(pub_body))
        + pub_body
        + b"\xb4"
        + struct.pack(">I", len(uid))
        + uid
        + sig_head
        + b"\x04\xff"
        + struct.pack(">I", len(sig_head))
    ).digest()
    # EdDSA in OpenPGP signs the hash value itself, then stores R and S as two MPIs.
    signature = private.sign(digest)
    unhashed = subpacket(SUB_ISSUER_KEY_ID, bytes.fromhex(fpr[-16:]))
    sig_body = (
        sig_head
        + struct.pack(">H", len(unhashed))
        + unhashed
        + digest[:2]
        + mpi(signature[:32])
        + mpi(signature[32:])
    )

    data = packet(TAG_PUBLIC_KEY, pub_body) + packet(TAG_USER_ID, uid) + packet(TAG_SIGNATURE, sig_body)
    return PgpKey(armored=armor(data), fingerprint=fpr, user_id=user_id, created=created.astimezone(UTC))


def key_for(label: str, user_id: str, created: datetime) -> PgpKey:
    """Derive the seed bytes from a stable label (e.g. "1:actor:7") and build the key."""
    return make_key(hashlib.sha256(f"pgp:{label}".encode()).digest(), user_id, created)
