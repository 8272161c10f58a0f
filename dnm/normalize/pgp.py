"""OpenPGP public keys on vendor pages: finding armoured key blocks and computing key fingerprints.

Vendor identity across markets rests on PGP fingerprints, so they are computed here from the key
itself rather than trusted from the page. The armour is decoded by hand (RFC 9580 section 6), the
CRC24 checksum is verified when present, and the packet stream is parsed in both the old and new
formats with every length encoding (including partial lengths) before hashing the primary key:

* v4: SHA-1 over 0x99, a 2-octet length and the public-key packet body (40 hex digits);
* v6 (RFC 9580): SHA-256 over 0x9B, a 4-octet length and the body (64 hex digits);
* v5 (LibrePGP, GnuPG 2.4+): SHA-256 with 0x9A instead of 0x9B;
* v3 keys (MD5 fingerprints) are refused.

Pages mangle armour: CRLF, indentation, ``<br>`` tags, HTML entities, and textarea text whose line
breaks were collapsed to spaces. Decoding therefore works on whitespace-separated tokens; when a
header value ("Version: GnuPG v2") cannot be told from the first base64 line, each split is tried and
the one whose checksum (or, without a checksum, whose packets) verifies is used. Whatever the input,
only ``NormalizationError`` is raised.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from collections.abc import Iterator
from itertools import takewhile

from dnm.normalize.errors import NormalizationError, require_text
from dnm.normalize.text import clean_text

BEGIN_LINE = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
END_LINE = "-----END PGP PUBLIC KEY BLOCK-----"

_BEGIN = re.compile(r"-{3,}\s*BEGIN PGP PUBLIC KEY BLOCK\s*-{3,}")
_END = re.compile(r"-{3,}\s*END PGP PUBLIC KEY BLOCK\s*-{3,}")
_TAG = re.compile(r"<[^<>]*>")
_CHECKSUM = re.compile(r"=[A-Za-z0-9+/]{4}")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+")
# A header value is a few words; trying more splits than this only costs time on hostile input.
_MAX_SPLITS = 16

_PUBLIC_KEY_TAG, _SECRET_KEY_TAG = 6, 5
_FINGERPRINT_LABEL = re.compile(r"^(?:(?:primary\s+)?(?:key\s+)?fingerprint|fpr)\s*[:=]?\s*", re.I)
_FINGERPRINT_SEPARATORS = re.compile(r"[\s:\-]")

KEY = "a PGP public key"


def _crc24_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc = (crc << 1) ^ (0x1864CFB if crc & 0x800000 else 0)
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _crc24_table()


def crc24(data: bytes) -> int:
    """The OpenPGP armour checksum (RFC 9580 section 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ _CRC24_TABLE[(crc >> 16) ^ byte]
    return crc


def _unmangle(text: str) -> str:
    """Undo HTML damage: tags become line breaks, entities are decoded, CR/CRLF become LF."""
    text = html.unescape(_TAG.sub("\n", text))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _blocks(text: str) -> Iterator[str | None]:
    """Yield the inside of each BEGIN...END block in ``text``; None for a BEGIN without its END."""
    position = 0
    while (begin := _BEGIN.search(text, position)) is not None:
        end = _END.search(text, begin.end())
        following = _BEGIN.search(text, begin.end())
        if end is None or (following is not None and following.start() < end.start()):
            yield None
            if following is None:
                return
            position = following.start()
            continue
        yield text[begin.end() : end.start()]
        position = end.end()


def extract_key_blocks(text: str) -> list[str]:
    """Return every complete armoured public-key block in ``text``, in order, with whitespace tidied.

    Each block is returned with canonical BEGIN/END lines, lines stripped of indentation and line
    ends normalised to LF; its content is not checked (``fingerprint`` does that). A BEGIN line without
    a matching END line (a truncated block) is left out.
    """
    blocks = []
    for inner in _blocks(_unmangle(require_text(text, KEY))):
        if inner is None:
            continue
        lines = [line for line in map(clean_text, inner.split("\n")) if line]
        headers = list(takewhile(lambda line: ":" in line, lines))
        blocks.append("\n".join([BEGIN_LINE, *headers, "", *lines[len(headers) :], END_LINE, ""]))
    return blocks


def fingerprint(armored: str) -> str:
    """Compute the primary key fingerprint of the first armoured public-key block in ``armored``.

    Returns 40 upper-case hex digits for a v4 key, 64 for v5/v6. Raises ``NormalizationError`` for a
    missing or truncated block, bad base64, a CRC24 mismatch, malformed packets or a v3 key.
    """
    return _key_fingerprint(key_packets(armored)[0][1], armored)


def key_packets(armored: str) -> list[tuple[int, bytes]]:
    """The (tag, body) packets of the first armoured public-key block, checked as ``fingerprint`` does.

    The first packet is the primary public key; user ids, signatures and subkeys follow. Signature
    verification (dnm.pgpsig) needs them all. Raises ``NormalizationError`` like ``fingerprint``.
    """
    text = _unmangle(require_text(armored, KEY))
    inner = next(_blocks(text), "no block")
    if inner == "no block":
        raise NormalizationError(KEY, armored, f"a block starting with {BEGIN_LINE}")
    if inner is None:
        raise NormalizationError(KEY, armored, f"a complete block ending with {END_LINE} (truncated?)")
    failure = None
    for data in _payloads(inner, armored):
        try:
            found = list(_packets(data, armored))  # walk them all so a truncated stream is caught
            _fingerprint_of_packets(found, armored)
            return found
        except NormalizationError as error:
            failure = failure or error
    raise failure or NormalizationError(KEY, armored, "base64 data between the BEGIN and END lines")


def key_fingerprint(body: bytes) -> str:
    """The fingerprint of a public-key or public-subkey packet body (v4, v5 or v6)."""
    return _key_fingerprint(body, body)


def packets(data: bytes, source: object) -> list[tuple[int, bytes]]:
    """Parse binary OpenPGP data (e.g. a de-armoured signature) into (tag, body) packets.

    ``source`` is what an error message shows. Raises ``NormalizationError`` for malformed packets.
    """
    return list(_packets(data, source))


def _payloads(inner: str, armored: str) -> Iterator[bytes]:
    """Yield the decoded key data for each plausible header/body split of the armour's inside.

    Raises a CRC error if a checksum is present and no split matches it.
    """
    tokens = [(number, token) for number, line in enumerate(inner.split("\n")) for token in line.split()]
    checksum = None
    if tokens and _CHECKSUM.fullmatch(tokens[-1][1]):
        checksum = int.from_bytes(base64.b64decode(tokens.pop()[1][1:]), "big")
    decoded_any = matched = False
    for start in _body_starts(tokens):
        body = "".join(token for _, token in tokens[start:])
        if not _BASE64.fullmatch(body) or len(body) % 4:
            continue
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error:
            continue
        decoded_any = True
        if checksum is None or crc24(data) == checksum:
            matched = True
            yield data
    if decoded_any and not matched:
        raise NormalizationError(KEY, armored, "armour whose CRC24 checksum matches its data (altered?)")


def _body_starts(tokens: list[tuple[int, str]]) -> list[int]:
    """Token indexes where the base64 body may start, most likely first.

    Base64 never contains ':', so the body starts after the last token holding one (the last header).
    If the header's line also holds the body (line breaks collapsed), the split is ambiguous.
    """
    headers = [i for i, (_, token) in enumerate(tokens) if ":" in token]
    if not headers:
        return [0]
    last = headers[-1]
    header_line = tokens[last][0]
    next_line = next((i for i in range(last + 1, len(tokens)) if tokens[i][0] != header_line), None)
    if next_line is None:
        return list(range(last + 1, min(len(tokens), last + 1 + _MAX_SPLITS)))
    return [next_line, *range(last + 1, min(next_line, last + 1 + _MAX_SPLITS))]


def _fingerprint_of_packets(found: list[tuple[int, bytes]], armored: str) -> str:
    if not found:
        raise NormalizationError(KEY, armored, "at least one OpenPGP packet")
    tag, body = found[0]
    if tag == _SECRET_KEY_TAG:
        raise NormalizationError(KEY, armored, "a public key, not a secret key")
    if tag != _PUBLIC_KEY_TAG:
        raise NormalizationError(KEY, armored, f"a public-key packet first (found packet type {tag})")
    return _key_fingerprint(body, armored)


def _key_fingerprint(body: bytes, armored: object) -> str:
    """Hash a public-key packet body into its fingerprint according to the key version."""
    version = body[0] if body else None
    if version == 4 and 6 <= len(body) <= 0xFFFF:
        return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()
    if version in (5, 6) and len(body) >= 10 and int.from_bytes(body[6:10], "big") == len(body) - 10:
        prefix = b"\x9b" if version == 6 else b"\x9a"
        return hashlib.sha256(prefix + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    if version in (2, 3):
        raise NormalizationError(KEY, armored, "a v4 or v6 key (v3 keys use obsolete MD5 fingerprints)")
    expected = f"a well-formed v4, v5 or v6 public-key packet (found version {version})"
    raise NormalizationError(KEY, armored, expected)


def _packets(data: bytes, armored: object) -> Iterator[tuple[int, bytes]]:
    """Yield (tag, body) for each packet, in old or new format, checking every length."""
    position = 0
    while position < len(data):
        header = data[position]
        position += 1
        if not header & 0x80:
            raise NormalizationError(KEY, armored, "OpenPGP packets (a packet header has bit 7 clear)")
        if header & 0x40:
            tag = header & 0x3F
            chunks = []
            partial = True
            while partial:
                length, partial, position = _new_length(data, position, armored)
                chunks.append(_take(data, position, length, armored))
                position += length
            yield tag, b"".join(chunks)
        else:
            tag, length_type = (header >> 2) & 0x0F, header & 0x03
            if length_type == 3:  # indeterminate: the packet runs to the end of the data
                length = len(data) - position
            else:
                size = (1, 2, 4)[length_type]
                length = int.from_bytes(_take(data, position, size, armored), "big")
                position += size
            yield tag, _take(data, position, length, armored)
            position += length


def _new_length(data: bytes, position: int, armored: object) -> tuple[int, bool, int]:
    """Read a new-format length: returns (length, is_partial, position after the length octets)."""
    first = _take(data, position, 1, armored)[0]
    if first < 192:
        return first, False, position + 1
    if first < 224:
        second = _take(data, position + 1, 1, armored)[0]
        return ((first - 192) << 8) + second + 192, False, position + 2
    if first == 255:
        return int.from_bytes(_take(data, position + 1, 4, armored), "big"), False, position + 5
    return 1 << (first & 0x1F), True, position + 1


def _take(data: bytes, position: int, length: int, armored: object) -> bytes:
    chunk = data[position : position + length]
    if len(chunk) != length:
        raise NormalizationError(KEY, armored, "complete OpenPGP packets (the key data is truncated)")
    return chunk


def normalize_fingerprint(text: str) -> str:
    """Normalise a printed fingerprint ("ABCD 1234 ...", "0xabcd...", "Key fingerprint = ...").

    Returns 40 (v4) or 64 (v5/v6) upper-case hex digits; key IDs and other lengths raise.
    """
    value = _FINGERPRINT_LABEL.sub("", clean_text(require_text(text, "a PGP fingerprint")))
    if value[:2].casefold() == "0x":
        value = value[2:]
    value = _FINGERPRINT_SEPARATORS.sub("", value)
    if not re.fullmatch(r"[0-9A-Fa-f]*", value) or len(value) not in (40, 64):
        hint = " (that is a key ID, which many keys share)" if len(value) in (8, 16) else ""
        raise NormalizationError("a PGP fingerprint", text, f"40 or 64 hexadecimal digits{hint}")
    return value.upper()
