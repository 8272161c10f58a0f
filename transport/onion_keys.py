"""Deterministic v3 onion service keys, as HiddenServiceDir files or ADD_ONION blobs; v3 address checks.

A demo market gets the same .onion address in every run because its key is derived from a label and
a seed. The validator is what market profiles use to reject a mistyped or truncated onion address.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_KEY_HEADER = b"== ed25519v1-secret: type0 ==\x00\x00\x00"
PUBLIC_KEY_HEADER = b"== ed25519v1-public: type0 ==\x00\x00\x00"
ONION_VERSION = 3
_CHECKSUM_PREFIX = b".onion checksum"
# 32-byte key + 2-byte checksum + 1-byte version = 35 bytes = 56 base32 characters, no padding.
V3_LABEL_LENGTH = 56
_BASE32_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


@dataclass(frozen=True)
class OnionKey:
    """A v3 onion service identity: its address, tor's 64-byte expanded secret key, the public key."""

    address: str  # "<56 base32 chars>.onion"
    expanded_secret: bytes
    public: bytes

    @property
    def service_id(self) -> str:
        """The address without ".onion", as tor's control port names the service."""
        return self.address.removesuffix(".onion")

    @property
    def url(self) -> str:
        """The service's base URL on virtual port 80."""
        return f"http://{self.address}"


def onion_key_for(label: str, seed: int | str = 1) -> OnionKey:
    """The onion key of `label` (e.g. a market name) under `seed`: the same inputs give the same address."""
    ed_seed = hashlib.sha256(f"dnm-demo-onion:{label}:{seed}".encode()).digest()
    return onion_key_from_seed(ed_seed)


def onion_key_from_seed(ed_seed: bytes) -> OnionKey:
    """The onion key of a 32-byte Ed25519 seed (RFC 8032 private key)."""
    if len(ed_seed) != 32:
        raise ValueError(f"an Ed25519 seed is 32 bytes, got {len(ed_seed)}")
    # Tor stores the expanded form, not the seed: SHA-512 of the seed with the scalar half clamped as
    # RFC 8032 does. The second half is the nonce prefix used when signing.
    h = bytearray(hashlib.sha512(ed_seed).digest())
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    public = (
        Ed25519PrivateKey.from_private_bytes(ed_seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return OnionKey(address=onion_address(public), expanded_secret=bytes(h), public=public)


def onion_address(public: bytes) -> str:
    """The v3 address of an Ed25519 public key (rend-spec-v3: base32(pubkey | checksum[:2] | 0x03))."""
    if len(public) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public)}")
    version = bytes([ONION_VERSION])
    checksum = hashlib.sha3_256(_CHECKSUM_PREFIX + public + version).digest()[:2]
    return base64.b32encode(public + checksum + version).decode("ascii").lower() + ".onion"


def write_hidden_service_dir(path: Path, key: OnionKey) -> Path:
    """Write `key` as a HiddenServiceDir tor can load (keys, hostname; mode 0700 as tor insists)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)  # mkdir's mode is masked by the umask, and tor refuses a group-readable dir
    _write_private(path / "hs_ed25519_secret_key", SECRET_KEY_HEADER + key.expanded_secret)
    _write_private(path / "hs_ed25519_public_key", PUBLIC_KEY_HEADER + key.public)
    _write_private(path / "hostname", (key.address + "\n").encode("ascii"))
    return path


def add_onion_key_blob(key: OnionKey) -> str:
    """The key argument of ADD_ONION ("ED25519-V3:<base64 expanded key>")."""
    return "ED25519-V3:" + base64.b64encode(key.expanded_secret).decode("ascii")


def check_v3_onion(host: str) -> str:
    """Check that `host` is a v3 onion host name and return it normalised ("<56 chars>.onion").

    A sub-domain ("www.<addr>.onion") is accepted and dropped; case is ignored. Raises ValueError
    saying exactly what is wrong: missing ".onion", wrong length, a non-base32 character, the version
    byte, or the checksum (which catches most typos).
    """
    if not isinstance(host, str):
        raise ValueError(f"an onion host name must be a string, got {type(host).__name__}")
    if "/" in host or ":" in host:
        raise ValueError(f"{host!r} is not a host name: pass only the host part of the URL")
    name = host.strip().rstrip(".").lower()
    if not name.endswith(".onion"):
        raise ValueError(f"{host!r} does not end in .onion")
    label = name.removesuffix(".onion").rsplit(".", 1)[-1]
    if len(label) == 16:
        raise ValueError(f"{host!r} is a v2 onion address (16 characters); Tor no longer serves v2 onions")
    if len(label) != V3_LABEL_LENGTH:
        raise ValueError(
            f"{host!r}: a v3 onion address has {V3_LABEL_LENGTH} base32 characters before .onion, "
            f"this one has {len(label)}"
        )
    bad = sorted(set(label) - _BASE32_ALPHABET)
    if bad:
        raise ValueError(f"{host!r}: {''.join(bad)!r} not in the base32 alphabet (a-z, 2-7)")
    raw = base64.b32decode(label.upper())
    public, checksum, version = raw[:32], raw[32:34], raw[34]
    if version != ONION_VERSION:
        raise ValueError(f"{host!r}: version byte is {version}, a v3 onion address has {ONION_VERSION}")
    expected = hashlib.sha3_256(_CHECKSUM_PREFIX + public + bytes([version])).digest()[:2]
    if checksum != expected:
        raise ValueError(f"{host!r}: checksum mismatch (a mistyped or truncated address)")
    return label + ".onion"


def is_valid_v3_onion(host: str) -> bool:
    """True when `host` is a well-formed v3 onion host name (see check_v3_onion)."""
    try:
        check_v3_onion(host)
    except ValueError:
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner (tor warns about, or refuses, looser key files)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(0o600)
