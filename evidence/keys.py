"""The operator's Ed25519 signing key: creating it, loading it safely, signing, verifying against a pin.

An evidence package carries a detached Ed25519 signature and a copy of the signer's public key
(`signer.pub.pem`). The copy proves nothing by itself (a forger ships his own key with his own
signature): the trust anchor is the key's fingerprint, published out of band and pinned by whoever
verifies. `verify_signature` therefore checks the shipped key against the pinned fingerprint first,
then the signature.

Fingerprint scheme: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of the public key (44 bytes
for Ed25519), which a third party recomputes with openssl alone:

    openssl pkey -pubin -in signer.pub.pem -outform DER | sha256sum
    openssl pkey -pubin -in signer.pub.pem -outform DER | openssl dgst -sha256      # no sha256sum

and the signature (raw Ed25519 over the file's bytes, no pre-hash) is checked with:

    openssl pkeyutl -verify -pubin -inkey signer.pub.pem -rawin -in FILE -sigfile FILE.sig
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_BYTES = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")


class SigningKeyError(Exception):
    """The operator's private key cannot be created or used (exists, missing, unsafe mode, wrong type)."""


class SignatureError(Exception):
    """A signature does not verify; `cause` says which check failed.

    Causes: "bad-pin" (the pinned fingerprint is malformed), "bad-key" (the shipped public key is not
    an Ed25519 PEM key), "fingerprint-mismatch" (the shipped key is not the pinned one),
    "bad-signature" (the signature does not match the data under the pinned key).
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


def init_key(path: Path, *, overwrite: bool = False) -> str:
    """Create a new Ed25519 signing key at `path` (PKCS#8 PEM, mode 0600); return its fingerprint.

    The parent directory is created with mode 0700 when missing. An existing key is kept unless
    `overwrite` is true: packages already signed stay verifiable with the old key's fingerprint, but
    a silently replaced key would sign tomorrow's packages under a fingerprint nobody has pinned.
    """
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        # mkdir's mode is filtered by the umask; state it exactly.
        os.chmod(path.parent, 0o700)
    if path.exists() and not overwrite:
        raise SigningKeyError(
            f"signing key {path} already exists; refusing to replace it (packages signed from now on "
            f"would carry a new fingerprint): move it away first, or pass overwrite=True"
        )
    key = Ed25519PrivateKey.generate()
    # Unencrypted on purpose: the nightly export runs unattended, and a passphrase it could read
    # would sit next to the key anyway. The key is protected by its file mode (0600 from the first
    # byte, never widened) and by the disk it lives on (use an encrypted volume).
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # A new file is made with O_EXCL so no other file (or symlink planted there) is ever written
    # through; replacing goes through such a file and an atomic rename.
    target = path.with_name(f".{path.name}.new") if overwrite else path
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise SigningKeyError(
            f"cannot create signing key {target}: the file exists (a concurrent init, or a leftover: "
            f"remove it)"
        ) from exc
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(target, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    _fsync_dir(path.parent)
    return fingerprint(key.public_key())


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable (a key lost in a crash after reporting its fingerprint)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load the operator's key, refusing a file readable or writable by group or others."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise SigningKeyError(f"signing key {path} not found: create one with init_key") from exc
    except OSError as exc:
        raise SigningKeyError(f"cannot open signing key {path}: {exc.strerror}") from exc
    # The mode is read from the opened file, so it is the mode of the bytes actually read.
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SigningKeyError(f"signing key {path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_mode & 0o077:
            raise SigningKeyError(
                f"signing key {path} is accessible by group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
            )
        data = handle.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise SigningKeyError(
            f"signing key {path} is passphrase-protected; this tool uses an unencrypted key protected "
            f"by its file mode (make one with init_key)"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"signing key {path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"signing key {path} is a {type(key).__name__.removeprefix('_')}, not an Ed25519 key"
        )
    return key


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo (64 characters).

    Recompute with: `openssl pkey -pubin -in signer.pub.pem -outform DER | sha256sum`.
    """
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def display_fingerprint(fp: str) -> str:
    """The fingerprint in groups of four hex digits, for reports and reading aloud."""
    fp = normalize_fingerprint(fp)
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


def normalize_fingerprint(text: str) -> str:
    """A pinned fingerprint as written by a person (any case, spaces or colons, "SHA256:" prefix) -> hex.

    Raises SignatureError (cause "bad-pin") when it is not 64 hex digits: a truncated pin must not
    silently match nothing, or worse, be compared by prefix.
    """
    cleaned = re.sub(r"[\s:]", "", text.strip().lower().removeprefix("sha256:"))
    if not _HEX64.fullmatch(cleaned):
        raise SignatureError(
            f"pinned signer fingerprint {text!r} is not a SHA-256 fingerprint (64 hex digits)", "bad-pin"
        )
    return cleaned


def sign(private_key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The raw 64-byte Ed25519 signature of `data` (openssl pkeyutl -rawin checks it)."""
    return private_key.sign(data)


def public_pem(private_key: Ed25519PrivateKey) -> bytes:
    """The public half as SubjectPublicKeyInfo PEM (the `signer.pub.pem` shipped in a package)."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_pem(pem: bytes) -> Ed25519PublicKey:
    """Parse a shipped `signer.pub.pem`; SignatureError (cause "bad-key") when it is not Ed25519 PEM."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"signer public key is not a PEM public key: {exc}", "bad-key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(
            f"signer public key is a {type(key).__name__.removeprefix('_')}, not an Ed25519 key", "bad-key"
        )
    return key


def verify_signature(public_pem: bytes, signature: bytes, data: bytes, expected_fingerprint: str) -> None:
    """Check that `signature` is the pinned signer's signature of `data`; SignatureError otherwise.

    The key in `public_pem` (the package's copy) is used only once its fingerprint equals the pinned
    `expected_fingerprint`; the error says whether the key or the signature failed.
    """
    expected = normalize_fingerprint(expected_fingerprint)
    key = load_public_pem(public_pem)
    actual = fingerprint(key)
    if not hmac.compare_digest(actual, expected):
        raise SignatureError(
            f"signer key fingerprint mismatch: the package's key is {actual}, the pinned key is {expected} "
            f"(signed by another key than the one you trust)",
            "fingerprint-mismatch",
        )
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureError(
            f"bad signature: {len(signature)} bytes, an Ed25519 signature has {SIGNATURE_BYTES}",
            "bad-signature",
        )
    try:
        key.verify(signature, data)
    except InvalidSignature as exc:
        raise SignatureError(
            "bad signature: it does not match the signed file under the pinned key (the file or the "
            "signature was altered)",
            "bad-signature",
        ) from exc
