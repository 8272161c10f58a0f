"""RFC 3161 trusted time: asking a TSA for a token over some bytes, verifying a token against a pinned root.

An evidence package is timestamped by a Time-Stamp Authority over the bytes of its signature
(`tagmanifest-sha256.txt.sig`), which proves the signature, and so the whole package, existed at
the token's `genTime`. The export fails closed: `fetch_timestamp` raises `TimestampError` on any
doubt (TSA unreachable or slow, HTTP error, not a TSA reply, refused, reply to another request or
over other bytes), and the caller must not write a package without a token.

`verify_timestamp` trusts only the pinned TSA root (and, optionally, a pinned TSA certificate):
certificates inside the token are candidates for the chain, never anchors. The full check is done by
rfc3161-client (signature, chain valid at genTime, critical timeStamping EKU, ESS signing
certificate); this module checks first what lets its error name the cause, and checks the message
imprint itself. A third party repeats the check with openssl alone:

    openssl ts -verify -data FILE.sig -in FILE.sig.tsr -CAfile tsa-root.crt -untrusted tsa.crt
    openssl ts -reply -in FILE.sig.tsr -text          # shows genTime, accuracy, serial, policy, TSA

What a TSA must send for rfc3161-client to read its token: the token's certificate SET must be
DER-sorted when it holds several certificates (openssl's TSA with `certs=` does not sort it and the
token is refused as `InvalidSetOrdering`). A TSA that includes only its own certificate (openssl:
no `certs=` line, `ess_cert_id_chain = no`) or none (then pass `tsa_cert_pem`) works; intermediates
go in `tsa_cert_pem` after the TSA certificate.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    SignerInfo,
    TimeStampRequest,
    TimestampRequestBuilder,
    TimeStampResponse,
    TimeStampTokenInfo,
    VerifierBuilder,
    decode_timestamp_response,
)

QUERY_CONTENT_TYPE = "application/timestamp-query"
# RFC 3161 section 3.4 names the reply type; some TSAs still send the pre-RFC draft's name.
REPLY_CONTENT_TYPES = ("application/timestamp-reply", "application/timestamp-response")
# A reply is a few KB (a token with a certificate chain); more is not a TSA talking.
MAX_REPLY_BYTES = 1 << 20
# genTime is often whole seconds, truncated (openssl's TSA by default): the stamped instant may be
# up to a second after it.
GENTIME_TRUNCATION = timedelta(seconds=1)

SHA256_OID = "2.16.840.1.101.3.4.2.1"
_HASHES = {
    SHA256_OID: "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}


class TimestampError(Exception):
    """No trusted time: the TSA failed, or a token does not verify; `cause` says which check failed.

    Causes when fetching: "empty", "timeout", "unreachable", "http", "not-a-reply", "corrupt",
    "not-granted", "nonce-mismatch", "wrong-data". When verifying: "bad-pin", "corrupt",
    "not-granted", "no-tsa-cert", "tsa-cert-mismatch", "untrusted", "bad-signature",
    "unsupported-hash", "wrong-data". From check_time: "time-after", "time-before".
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says: when (genTime, UTC), how precisely, and who said it."""

    gen_time: datetime
    accuracy: timedelta | None
    serial: int
    policy: str
    tsa_name: str | None
    # Subject of the certificate that signed the token (tsa_name is only an optional claim in it).
    signer: str
    hash_algorithm: str


def _build_request(data: bytes) -> TimeStampRequest:
    if not data:
        raise TimestampError("nothing to timestamp: the data is empty", "empty")
    return (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )


def timestamp_request(data: bytes) -> bytes:
    """A DER TimeStampReq over SHA-256(data), with a random nonce and certReq set."""
    return _build_request(data).as_bytes()


def fetch_timestamp(data: bytes, tsa_url: str, *, timeout: float = 30) -> bytes:
    """Ask the TSA at `tsa_url` for a token over `data`; return its DER TimeStampResp (the .tsr bytes).

    One attempt, no retry: a nightly export that cannot get a token fails, and its operator (or a
    caller holding a second TSA) decides what next. The reply is checked to be granted, to answer
    this request (nonce) and to be over these bytes; its signature and chain are checked by
    `verify_timestamp`, which the caller runs with its pinned root before writing the package.
    """
    request = _build_request(data)
    deadline = time.monotonic() + timeout
    try:
        # Redirects are refused: requests would turn the POST into a GET, and a TSA URL that moved
        # should be corrected in the configuration, not followed every night.
        with requests.post(
            tsa_url,
            data=request.as_bytes(),
            headers={"Content-Type": QUERY_CONTENT_TYPE, "Accept": REPLY_CONTENT_TYPES[0]},
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as reply:
            if reply.status_code != 200:
                where = reply.headers.get("Location")
                raise TimestampError(
                    f"TSA {tsa_url} answered HTTP {reply.status_code} {reply.reason}"
                    + (f" (redirect to {where}: configure that URL)" if where else ""),
                    "http",
                )
            content_type = reply.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type not in REPLY_CONTENT_TYPES:
                raise TimestampError(
                    f"TSA {tsa_url} answered Content-Type {content_type or 'none'!r}, not "
                    f"{REPLY_CONTENT_TYPES[0]}: is this URL a timestamp service?",
                    "not-a-reply",
                )
            body = _read_reply(reply, tsa_url, deadline, timeout)
    except requests.Timeout as exc:
        raise TimestampError(f"TSA {tsa_url} did not answer within {timeout:g} s", "timeout") from exc
    except requests.RequestException as exc:
        raise TimestampError(f"cannot reach TSA {tsa_url}: {exc}", "unreachable") from exc

    try:
        _check_reply(body, request, tsa_url)
    except TimestampError:
        raise
    # Broad on purpose: whatever a mangled reply makes the parser raise, there is no timestamp.
    except Exception as exc:
        raise TimestampError(
            f"TSA {tsa_url} sent a reply that is not a TimeStampResp: {exc}", "corrupt"
        ) from exc
    return body


def _check_reply(body: bytes, request: TimeStampRequest, tsa_url: str) -> None:
    """Granted, answering this request (nonce), over these bytes (SHA-256 imprint)."""
    response = decode_timestamp_response(body)
    _require_granted(response, f"TSA {tsa_url} refused the request")
    info = response.tst_info
    if info.nonce != request.nonce:
        raise TimestampError(
            f"TSA {tsa_url} sent a reply to another request (nonce {info.nonce}, asked {request.nonce}): "
            f"a replayed or misrouted reply",
            "nonce-mismatch",
        )
    imprint = info.message_imprint
    if imprint.hash_algorithm.dotted_string != SHA256_OID or not hmac.compare_digest(
        imprint.message, request.message_imprint.message
    ):
        raise TimestampError(
            f"TSA {tsa_url} timestamped other bytes than the ones sent (message imprint mismatch)",
            "wrong-data",
        )


def _read_reply(reply: requests.Response, tsa_url: str, deadline: float, timeout: float) -> bytes:
    """The reply body, bounded in size and in total time (a TSA trickling bytes would hold the export)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in reply.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise TimestampError(
                f"TSA {tsa_url} sent over {MAX_REPLY_BYTES} bytes: not a TSA reply", "not-a-reply"
            )
        if time.monotonic() > deadline:
            raise TimestampError(f"TSA {tsa_url} did not finish its reply within {timeout:g} s", "timeout")
        chunks.append(chunk)
    return b"".join(chunks)


def _require_granted(response: TimeStampResponse, what: str) -> None:
    # grantedWithMods is refused too: rfc3161-client's verifier accepts only "granted", and a
    # package whose token its own verifier rejects must not be written.
    if response.status != PKIStatus.GRANTED:
        try:
            status = PKIStatus(response.status).name.lower()
        except ValueError:
            status = str(response.status)
        text = "; ".join(response.status_string)
        raise TimestampError(f"{what} (status {status}{': ' + text if text else ''})", "not-granted")


def verify_timestamp(
    tsr: bytes, data: bytes, tsa_root_pem: bytes, tsa_cert_pem: bytes | None = None
) -> TimestampInfo:
    """Verify the token `tsr` over `data` against the pinned TSA root; TimestampError names the cause.

    `tsa_root_pem` may hold several roots. `tsa_cert_pem`, when given, pins the TSA certificate
    (first PEM block; further blocks are intermediates) and lets a token that carries no
    certificate be verified.
    """
    roots = _load_certificates(tsa_root_pem, "pinned TSA root")
    pinned = _load_certificates(tsa_cert_pem, "pinned TSA certificate") if tsa_cert_pem is not None else []
    try:
        response = decode_timestamp_response(tsr)
    except Exception as exc:  # broad on purpose, as below
        raise TimestampError(
            f"timestamp token is corrupt (not a DER TimeStampResp): {exc}", "corrupt"
        ) from exc
    try:
        _require_granted(response, "timestamp token was not granted by the TSA")
        info = response.tst_info
        signer_infos = list(response.signed_data.signer_infos)
        embedded = [x509.load_der_x509_certificate(der) for der in response.signed_data.certificates]
    # Broad on purpose: whatever a mangled token makes the parsers raise (ValueError, InvalidVersion,
    # UnsupportedAlgorithm, ...), the token is unusable, and that must be a TimestampError.
    except TimestampError:
        raise
    except Exception as exc:
        raise TimestampError(f"timestamp token is corrupt: {exc}", "corrupt") from exc
    if len(signer_infos) != 1:
        raise TimestampError(
            f"timestamp token is corrupt: {len(signer_infos)} signers, a token has one", "corrupt"
        )
    try:
        signer = _signer_certificate(signer_infos[0], embedded, pinned[0] if pinned else None)
        trusted = _chains_to(signer, roots, pinned[1:] + embedded)
        signer_name, issuer_name = signer.subject.rfc4514_string(), signer.issuer.rfc4514_string()
    except TimestampError:
        raise
    except Exception as exc:  # certificates are parsed lazily: a mangled one fails here
        raise TimestampError(f"timestamp token is corrupt: {exc}", "corrupt") from exc
    if not trusted:
        raise TimestampError(
            f"timestamp token is signed by {signer_name} (issuer {issuer_name}), which does not chain "
            f"to the pinned TSA root ({', '.join(root.subject.rfc4514_string() for root in roots)}): "
            f"an untrusted TSA",
            "untrusted",
        )

    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    if pinned:
        builder = builder.tsa_certificate(pinned[0])
        for intermediate in pinned[1:]:
            builder = builder.add_intermediate_certificate(intermediate)
    try:
        # Verified against the token's own imprint, so that a failure here is about the token
        # (signature, chain at genTime, EKU) and the imprint comparison below is about the data.
        builder.build().verify(response, info.message_imprint.message)
    except Exception as exc:  # a verifier failure of any kind is a token that does not verify
        detail = str(exc).split(": ErrorStack")[0]
        raise TimestampError(
            f"timestamp token does not verify (altered or corrupt token): {detail}", "bad-signature"
        ) from exc

    algorithm = _HASHES.get(info.message_imprint.hash_algorithm.dotted_string)
    if algorithm is None:
        raise TimestampError(
            f"timestamp token uses hash {info.message_imprint.hash_algorithm.dotted_string}, not "
            f"SHA-256/384/512",
            "unsupported-hash",
        )
    if not hmac.compare_digest(info.message_imprint.message, hashlib.new(algorithm, data).digest()):
        raise TimestampError(
            "timestamp token is over other data (message imprint mismatch): it does not belong to this "
            "file, or the file was altered",
            "wrong-data",
        )
    return TimestampInfo(
        gen_time=_utc(info.gen_time),
        accuracy=_accuracy(info),
        serial=info.serial_number,
        policy=info.policy.dotted_string,
        tsa_name=_general_name(info.name),
        signer=signer_name,
        hash_algorithm=algorithm,
    )


def _load_certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise TimestampError(f"{what} is not a PEM certificate: {exc}", "bad-pin") from exc
    if not certificates:
        raise TimestampError(f"{what} holds no certificate", "bad-pin")
    return certificates


def _signer_certificate(
    signer_info: SignerInfo, embedded: list[x509.Certificate], pinned: x509.Certificate | None
) -> x509.Certificate:
    """The certificate named by the SignerInfo (issuer and serial, covered by the signature)."""

    def names_signer(cert: x509.Certificate) -> bool:
        return cert.issuer == signer_info.issuer and cert.serial_number == signer_info.serial_number

    signer = next((cert for cert in embedded if names_signer(cert)), None)
    if signer is None and pinned is not None and names_signer(pinned):
        signer = pinned
    if signer is None:
        if not embedded and pinned is None:
            raise TimestampError(
                "timestamp token carries no TSA certificate: pass the TSA certificate (tsa.crt) to verify it",
                "no-tsa-cert",
            )
        raise TimestampError(
            f"timestamp token is signed by serial {signer_info.serial_number} of "
            f"{signer_info.issuer.rfc4514_string()}, "
            + (
                f"not by the pinned TSA certificate {pinned.subject.rfc4514_string()}"
                if pinned is not None
                else "whose certificate the token does not carry"
            ),
            "tsa-cert-mismatch" if pinned is not None else "no-tsa-cert",
        )
    if pinned is not None and signer != pinned:
        raise TimestampError(
            f"timestamp token is signed by {signer.subject.rfc4514_string()} "
            f"(serial {signer.serial_number}), not by the pinned TSA certificate "
            f"{pinned.subject.rfc4514_string()} (serial {pinned.serial_number})",
            "tsa-cert-mismatch",
        )
    return signer


def _chains_to(
    cert: x509.Certificate, roots: list[x509.Certificate], candidates: list[x509.Certificate], depth: int = 0
) -> bool:
    """Whether `cert` is issued by a root, directly or through candidate intermediates (signatures checked).

    Only names the cause of a failure: the verdict is rfc3161-client's, which also checks validity
    periods and extensions.
    """
    if any(_issued_by(cert, root) for root in roots):
        return True
    if depth >= 5:
        return False
    for ca in candidates:
        if ca != cert and _issued_by(cert, ca):
            rest = [other for other in candidates if other != ca]
            if _chains_to(ca, roots, rest, depth + 1):
                return True
    return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _utc(moment: datetime) -> datetime:
    # ASN.1 GeneralizedTime in a token is UTC ("Z"); a naive value from the parser means UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _accuracy(info: TimeStampTokenInfo) -> timedelta | None:
    try:
        accuracy = info.accuracy
    except ValueError:
        return None
    if accuracy is None:
        return None
    return timedelta(
        seconds=accuracy.seconds or 0, milliseconds=accuracy.millis or 0, microseconds=accuracy.micros or 0
    )


def _general_name(name: x509.GeneralName | None) -> str | None:
    if name is None:
        return None
    if isinstance(name, x509.DirectoryName):
        return name.value.rfc4514_string()
    return str(name.value)


def check_time(
    gen_time: datetime, accuracy: timedelta | None, claimed: datetime, tolerance: timedelta
) -> None:
    """Check a package's claimed export time against its token's genTime; TimestampError names the drift.

    The stamped instant lies in [genTime - accuracy, genTime + accuracy + 1 s] (the second for a
    truncated genTime; a missing accuracy counts as zero). The export happened before its signature
    was stamped, so the claim may not be later than that interval, and may precede it by at most
    `tolerance` (the time an export takes, plus the exporter's clock error).
    """
    for name, moment in (("gen_time", gen_time), ("claimed", claimed)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    if tolerance < timedelta(0):
        raise ValueError(f"tolerance must not be negative, got {tolerance}")
    accuracy = accuracy or timedelta(0)
    latest = gen_time + accuracy + GENTIME_TRUNCATION
    earliest = gen_time - accuracy - tolerance
    gen, claim = gen_time.astimezone(UTC).isoformat(), claimed.astimezone(UTC).isoformat()
    if claimed > latest:
        raise TimestampError(
            f"claimed time {claim} is {(claimed - gen_time).total_seconds():.6f} s after the TSA time {gen} "
            f"(at most {(accuracy + GENTIME_TRUNCATION).total_seconds():.6f} s allowed: accuracy + 1 s "
            f"truncation): the package claims a time after its own timestamp",
            "time-after",
        )
    if claimed < earliest:
        raise TimestampError(
            f"claimed time {claim} is {(gen_time - claimed).total_seconds():.6f} s before the TSA time {gen} "
            f"(at most {(tolerance + accuracy).total_seconds():.6f} s allowed: tolerance + accuracy): "
            f"the package was stamped too long after it was made, or the exporter's clock was off",
            "time-before",
        )
