"""Verifying OpenPGP cleartext-signed messages (signed mirror lists) against a pinned public key.

Markets publish their mirror addresses in a message made by ``gpg --clearsign`` (RFC 9580 section 7);
a phishing clone publishes its own address signed by a look-alike key. ``verify_cleartext`` accepts a
message only when a v4 signature over its canonical text (type 0x01) verifies with the given key or
one of its signing subkeys bound to it by a valid binding signature. The caller then compares the
returned primary fingerprint with the one pinned in the market's profile: the key on a page proves
nothing by itself, since a phisher shows his own.

Supported: EdDSALegacy Ed25519 (algorithm 22), Ed25519 (27) and RSA (1, 3; PKCS#1 v1.5), with SHA-224
to SHA-512. The armour and packets are decoded by dnm.normalize.pgp. Every failure raises
``SignatureError`` saying what is wrong (no signature, bad armour or checksum, an unsupported
algorithm, a signature by another key, an altered text, a bad signature).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from dnm.normalize.errors import NormalizationError
from dnm.normalize.pgp import crc24, key_fingerprint, key_packets, packets

BEGIN_MESSAGE = "-----BEGIN PGP SIGNED MESSAGE-----"
BEGIN_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
END_SIGNATURE = "-----END PGP SIGNATURE-----"

TAG_SIGNATURE, TAG_PUBLIC_KEY, TAG_PUBLIC_SUBKEY = 2, 6, 14
SIG_CANONICAL_TEXT, SIG_SUBKEY_BINDING = 0x01, 0x18
SUB_CREATION_TIME, SUB_ISSUER_KEY_ID, SUB_KEY_FLAGS, SUB_ISSUER_FINGERPRINT = 2, 16, 27, 33
KEY_FLAG_SIGN = 0x02
# Hashed subpackets we understand; an unknown one marked critical voids the signature (RFC 9580 5.2.3.7).
_KNOWN_SUBPACKETS = frozenset(
    {2, 3, 4, 5, 9, 11, 12, 16, 20, 21, 22, 23, 25, 26, 27, 28, 30, 31, 32, 33, 34, 35}
)

ALGO_RSA, ALGO_RSA_SIGN, ALGO_EDDSA_LEGACY, ALGO_ED25519 = 1, 3, 22, 27
ALGORITHMS = {
    ALGO_RSA: "RSA",
    ALGO_RSA_SIGN: "RSA",
    ALGO_EDDSA_LEGACY: "EdDSALegacy",
    ALGO_ED25519: "Ed25519",
}
ED25519_OID = bytes.fromhex("2b06010401da470f01")
# OpenPGP hash id -> (armour "Hash:" name, hashlib name, cryptography algorithm).
HASHES: dict[int, tuple[str, str, type[hashes.HashAlgorithm]]] = {
    8: ("SHA256", "sha256", hashes.SHA256),
    9: ("SHA384", "sha384", hashes.SHA384),
    10: ("SHA512", "sha512", hashes.SHA512),
    11: ("SHA224", "sha224", hashes.SHA224),
}
_WEAK_HASHES = {1: "MD5", 2: "SHA1", 3: "RIPEMD160"}
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class SignatureError(ValueError):
    """A signed message could not be verified; the message says why."""


@dataclass(frozen=True)
class SignedText:
    """A verified cleartext-signed message."""

    text: str  # what was signed: dash-escaping undone, trailing blanks dropped, LF line ends, no final LF
    fingerprint: str  # the primary key's fingerprint (compare it with the pinned one)
    signer: str  # the fingerprint of the key that signed: the primary key or one of its subkeys
    created: datetime  # the signature's creation time (UTC)
    hash: str  # "SHA256", ...

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


@dataclass(frozen=True)
class _Key:
    """A v4 public key or subkey packet, parsed."""

    body: bytes
    fingerprint: str
    algorithm: int
    material: bytes  # the algorithm-specific fields after the algorithm octet

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:]

    def hashed_prefix(self) -> bytes:
        """How a key packet enters the data of a signature over it (RFC 9580 5.2.4)."""
        return b"\x99" + len(self.body).to_bytes(2, "big") + self.body


@dataclass(frozen=True)
class _Signature:
    """A v4 signature packet, parsed."""

    sig_type: int
    algorithm: int
    hash_algorithm: int
    hashed_part: bytes  # version .. hashed subpackets: the part the hash covers
    hashed: dict[int, bytes]
    unhashed: dict[int, bytes]
    left16: bytes
    values: bytes  # the algorithm-specific signature fields

    @property
    def issuers(self) -> set[str]:
        """Issuer fingerprints and key ids named by the signature (hashed or not), upper-case hex."""
        found = set()
        for area in (self.hashed, self.unhashed):
            if SUB_ISSUER_FINGERPRINT in area and area[SUB_ISSUER_FINGERPRINT][:1] == b"\x04":
                found.add(area[SUB_ISSUER_FINGERPRINT][1:].hex().upper())
            if SUB_ISSUER_KEY_ID in area:
                found.add(area[SUB_ISSUER_KEY_ID].hex().upper())
        return found

    def names(self, key: _Key) -> bool:
        return key.fingerprint in self.issuers or key.key_id in self.issuers


# --- public API ---------------------------------------------------------------------------------


def fingerprint_of_armored(key: str) -> str:
    """The primary fingerprint of an armoured public key (40 or 64 upper-case hex digits)."""
    try:
        return key_fingerprint(key_packets(key)[0][1])
    except NormalizationError as exc:
        raise SignatureError(f"not a usable public key: {exc}") from exc


def verify_cleartext(signed: str, public_key_armored: str) -> SignedText:
    """Verify a cleartext-signed message with an armoured public key; return what was signed.

    Raises SignatureError when the message has no signature, its armour or CRC is damaged, the
    signature uses an unsupported algorithm or hash, it was made by another key, the text was
    altered, or the signature does not verify.
    """
    lines, hash_names, signature_data = _parse_cleartext(signed)
    primary, subkeys, ignored = _parse_key(public_key_armored)
    keys = [primary, *subkeys]
    signatures = [
        _parse_signature(body) for tag, body in _packets(signature_data, "signature") if tag == TAG_SIGNATURE
    ]
    if not signatures:
        raise SignatureError("the signature block holds no signature packet")
    canonical = "\r\n".join(lines).encode("utf-8")
    failure: SignatureError | None = None
    for signature in signatures:
        matching = [key for key in keys if signature.names(key)] if signature.issuers else keys
        for key in matching:
            try:
                _check_text_signature(signature, key, canonical, hash_names)
            except SignatureError as exc:
                failure = failure or exc
                continue
            return SignedText(
                text="\n".join(lines),
                fingerprint=primary.fingerprint,
                signer=key.fingerprint,
                created=_creation_time(signature),
                hash=HASHES[signature.hash_algorithm][0],
            )
    if failure is not None:
        raise failure
    named = set().union(*(s.issuers for s in signatures))
    # Name each issuer once: by fingerprint when the signature gives one, else by key id.
    issuers = sorted(i for i in named if not any(len(f) > len(i) and f.endswith(i) for f in named))
    note = f" (ignored subkeys without a valid binding signature: {', '.join(ignored)})" if ignored else ""
    raise SignatureError(
        f"wrong key: the message is signed by {', '.join(issuers)}, not by {primary.fingerprint} "
        f"or its signing subkeys{note}"
    )


# --- the cleartext framework --------------------------------------------------------------------


def _parse_cleartext(signed: str) -> tuple[list[str], set[str], bytes]:
    """Split a cleartext-signed message into its signed lines, its Hash header names and the signature."""
    if not isinstance(signed, str):
        raise SignatureError(f"a signed message must be text, got {type(signed).__name__}")
    lines = signed.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    stripped = [line.rstrip(" \t") for line in lines]
    try:
        start = stripped.index(BEGIN_MESSAGE)
    except ValueError:
        raise SignatureError(f"no cleartext-signed message: no {BEGIN_MESSAGE} line") from None
    position = start + 1
    hash_names: set[str] = set()
    while position < len(stripped) and stripped[position]:
        name, sep, value = stripped[position].partition(":")
        if not sep or name.strip() != "Hash":
            raise SignatureError(f"unexpected armour header {stripped[position]!r} in the signed message")
        hash_names.update(v.strip().upper() for v in value.split(",") if v.strip())
        position += 1
    if position >= len(stripped):
        raise SignatureError("the signed message ends in its armour headers: no text, no signature")
    body: list[str] = []
    position += 1  # the empty line after the headers
    while position < len(stripped) and stripped[position] != BEGIN_SIGNATURE:
        line = stripped[position]
        if line.startswith("- "):
            line = line[2:]
        elif line.startswith("-"):
            raise SignatureError(f"line {line!r} of the signed text starts with '-' but is not dash-escaped")
        body.append(line)
        position += 1
    if position >= len(stripped):
        raise SignatureError(f"no signature: the signed text is not followed by {BEGIN_SIGNATURE}")
    try:
        end = stripped.index(END_SIGNATURE, position + 1)
    except ValueError:
        raise SignatureError(f"truncated signature: no {END_SIGNATURE} line") from None
    return body, hash_names, _dearmor(stripped[position + 1 : end])


def _dearmor(lines: list[str]) -> bytes:
    """Decode the inside of an armoured signature block, checking its CRC24 when it has one."""
    lines = [line.strip() for line in lines]
    # Armour headers ("Version: GnuPG v2", "Comment: ...") come first; base64 never holds a ':'.
    while lines and ":" in lines[0]:
        lines.pop(0)
    lines = [line for line in lines if line]
    checksum = None
    if lines and lines[-1].startswith("=") and len(lines[-1]) == 5:
        checksum = lines.pop()[1:]
    data = "".join(lines)
    if not data:
        raise SignatureError("the signature block is empty")
    if not _BASE64.fullmatch(data) or len(data) % 4:
        raise SignatureError("the signature armour is not valid base64 (damaged or truncated)")
    try:
        raw = base64.b64decode(data, validate=True)
        expected = (
            None if checksum is None else int.from_bytes(base64.b64decode(checksum, validate=True), "big")
        )
    except binascii.Error as exc:
        raise SignatureError(f"the signature armour is not valid base64: {exc}") from exc
    if expected is not None and crc24(raw) != expected:
        raise SignatureError("the signature armour's CRC24 checksum does not match its data (altered?)")
    return raw


# --- packets ------------------------------------------------------------------------------------


def _packets(data: bytes, what: str) -> list[tuple[int, bytes]]:
    try:
        return packets(data, data)
    except NormalizationError as exc:
        raise SignatureError(f"malformed {what} packets: expected {exc.expected}") from exc


def _parse_key(armored: str) -> tuple[_Key, list[_Key], list[str]]:
    """The primary key, its subkeys bound by a valid signing-capable binding, and the ignored subkeys."""
    try:
        found = key_packets(armored)
    except NormalizationError as exc:
        raise SignatureError(f"not a usable public key: {exc}") from exc
    primary = _key(found[0][1])
    subkeys: list[_Key] = []
    ignored: list[str] = []
    position = 1
    while position < len(found):
        tag, body = found[position]
        position += 1
        if tag != TAG_PUBLIC_SUBKEY:
            continue
        subkey = _key(body)
        bindings = []
        while position < len(found) and found[position][0] == TAG_SIGNATURE:
            bindings.append(found[position][1])
            position += 1
        if any(_binds(primary, subkey, body) for body in bindings):
            subkeys.append(subkey)
        else:
            ignored.append(subkey.fingerprint)
    return primary, subkeys, ignored


def _binds(primary: _Key, subkey: _Key, signature_body: bytes) -> bool:
    """True when `signature_body` is a valid binding of `subkey` to `primary` allowing signatures."""
    try:
        signature = _parse_signature(signature_body)
        if signature.sig_type != SIG_SUBKEY_BINDING:
            return False
        flags = signature.hashed.get(SUB_KEY_FLAGS)
        if flags is not None and not (flags[:1] and flags[0] & KEY_FLAG_SIGN):
            return False  # bound, but for encryption or authentication only
        _check(signature, primary, primary.hashed_prefix() + subkey.hashed_prefix())
    except SignatureError:
        return False
    return True


def _key(body: bytes) -> _Key:
    try:
        fpr = key_fingerprint(body)
    except NormalizationError as exc:
        raise SignatureError(f"unusable public key packet: {exc.expected}") from exc
    if body[0] != 4:
        raise SignatureError(f"only v4 keys are supported (this key is v{body[0]})")
    return _Key(body=body, fingerprint=fpr, algorithm=body[5], material=body[6:])


def _parse_signature(body: bytes) -> _Signature:
    if not body or body[0] != 4:
        version = body[0] if body else "?"
        raise SignatureError(f"unsupported signature version {version} (only v4 signatures are supported)")
    try:
        hashed_len = int.from_bytes(body[4:6], "big")
        hashed_end = 6 + hashed_len
        unhashed_len = int.from_bytes(body[hashed_end : hashed_end + 2], "big")
        unhashed_end = hashed_end + 2 + unhashed_len
        left16 = body[unhashed_end : unhashed_end + 2]
        if len(left16) != 2:
            raise SignatureError("truncated signature packet")
        return _Signature(
            sig_type=body[1],
            algorithm=body[2],
            hash_algorithm=body[3],
            hashed_part=body[:hashed_end],
            hashed=_subpackets(body[6:hashed_end], hashed=True),
            unhashed=_subpackets(body[hashed_end + 2 : unhashed_end], hashed=False),
            left16=left16,
            values=body[unhashed_end + 2 :],
        )
    except IndexError:
        raise SignatureError("truncated signature packet") from None


def _subpackets(area: bytes, *, hashed: bool) -> dict[int, bytes]:
    """Subpacket type -> data (the first of each type); an unknown critical hashed one is refused."""
    found: dict[int, bytes] = {}
    position = 0
    while position < len(area):
        first = area[position]
        if first < 192:
            length, position = first, position + 1
        elif first < 255:
            length, position = ((first - 192) << 8) + area[position + 1] + 192, position + 2
        else:
            length, position = int.from_bytes(area[position + 1 : position + 5], "big"), position + 5
        chunk = area[position : position + length]
        if length < 1 or len(chunk) != length:
            raise SignatureError("malformed signature subpackets")
        kind, critical = chunk[0] & 0x7F, bool(chunk[0] & 0x80)
        if hashed and critical and kind not in _KNOWN_SUBPACKETS:
            raise SignatureError(f"the signature has a critical subpacket of unknown type {kind}")
        found.setdefault(kind, chunk[1:])
        position += length
    return found


def _creation_time(signature: _Signature) -> datetime:
    raw = signature.hashed.get(SUB_CREATION_TIME)
    if raw is None or len(raw) != 4:
        raise SignatureError("the signature has no hashed creation time")
    return datetime.fromtimestamp(int.from_bytes(raw, "big"), UTC)


# --- verification -------------------------------------------------------------------------------


def _check_text_signature(signature: _Signature, key: _Key, canonical: bytes, hash_names: set[str]) -> None:
    if signature.sig_type != SIG_CANONICAL_TEXT:
        raise SignatureError(
            "a cleartext signature must be of type 0x01 (canonical text), "
            f"this one is 0x{signature.sig_type:02x}"
        )
    name = _hash(signature)[0]
    if hash_names and name not in hash_names:
        raise SignatureError(
            f"the signature uses {name} but the message's Hash header says {sorted(hash_names)}"
        )
    _creation_time(signature)
    _check(signature, key, canonical)


def _hash(signature: _Signature) -> tuple[str, str, type[hashes.HashAlgorithm]]:
    """The signature's hash (armour name, hashlib name, cryptography class); broken ones are refused."""
    if signature.hash_algorithm in _WEAK_HASHES:
        raise SignatureError(
            f"refused: the signature uses the broken hash {_WEAK_HASHES[signature.hash_algorithm]}"
        )
    if signature.hash_algorithm not in HASHES:
        raise SignatureError(
            f"unsupported hash algorithm {signature.hash_algorithm} (supported: SHA-224 to SHA-512)"
        )
    return HASHES[signature.hash_algorithm]


def _check(signature: _Signature, key: _Key, data: bytes) -> None:
    """Verify `signature` by `key` over `data` (the signed data before the v4 trailer)."""
    if signature.algorithm != key.algorithm:
        raise SignatureError(
            f"the signature's algorithm {signature.algorithm} is not that of "
            f"key {key.fingerprint} ({key.algorithm})"
        )
    _, hashlib_name, algorithm = _hash(signature)
    trailer = b"\x04\xff" + len(signature.hashed_part).to_bytes(4, "big")
    digest = hashlib.new(hashlib_name, data + signature.hashed_part + trailer).digest()
    if digest[:2] != signature.left16:
        raise SignatureError(
            "digest-prefix mismatch: the signed text was altered, or the signature was made for another text"
        )
    try:
        if key.algorithm in (ALGO_EDDSA_LEGACY, ALGO_ED25519):
            _check_ed25519(signature, key, digest)
            return
        if key.algorithm in (ALGO_RSA, ALGO_RSA_SIGN):
            _check_rsa(signature, key, digest, algorithm())
            return
    except IndexError:
        raise SignatureError(f"truncated key {key.fingerprint} or signature") from None
    supported = ", ".join(f"{name} ({number})" for number, name in sorted(ALGORITHMS.items()))
    raise SignatureError(f"unsupported public-key algorithm {key.algorithm} (supported: {supported})")


def _check_ed25519(signature: _Signature, key: _Key, digest: bytes) -> None:
    if key.algorithm == ALGO_ED25519:
        public, value = key.material[:32], signature.values[:64]
    else:
        oid_len = key.material[0]
        if key.material[1 : 1 + oid_len] != ED25519_OID:
            raise SignatureError(f"unsupported EdDSALegacy curve in key {key.fingerprint} (only Ed25519)")
        point, _ = _mpi(key.material, 1 + oid_len)
        if len(point) != 33 or point[0] != 0x40:
            raise SignatureError(f"malformed Ed25519 point in key {key.fingerprint}")
        public = point[1:]
        r, position = _mpi(signature.values, 0)
        s, _ = _mpi(signature.values, position)
        if len(r) > 32 or len(s) > 32:
            raise SignatureError("malformed EdDSA signature values")
        value = r.rjust(32, b"\x00") + s.rjust(32, b"\x00")
    if len(public) != 32 or len(value) != 64:
        raise SignatureError("truncated Ed25519 key or signature")
    try:
        # EdDSA in OpenPGP signs the digest itself, not the data (RFC 9580 5.2.4).
        Ed25519PublicKey.from_public_bytes(public).verify(value, digest)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"bad signature: it does not verify with key {key.fingerprint}") from None


def _check_rsa(signature: _Signature, key: _Key, digest: bytes, algorithm: hashes.HashAlgorithm) -> None:
    n, position = _mpi(key.material, 0)
    e, _ = _mpi(key.material, position)
    value, _ = _mpi(signature.values, 0)
    try:
        public = RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
        public.verify(value.rjust(len(n), b"\x00"), digest, PKCS1v15(), Prehashed(algorithm))
    except (InvalidSignature, ValueError):
        raise SignatureError(f"bad signature: it does not verify with key {key.fingerprint}") from None


def _mpi(data: bytes, position: int) -> tuple[bytes, int]:
    """Read a multiprecision integer: (its big-endian bytes, the position after it)."""
    if position + 2 > len(data):
        raise SignatureError("truncated key or signature (a number is missing)")
    size = (int.from_bytes(data[position : position + 2], "big") + 7) // 8
    value = data[position + 2 : position + 2 + size]
    if len(value) != size:
        raise SignatureError("truncated key or signature (a number is cut short)")
    return value, position + 2 + size
