"""A local RFC 3161 Time-Stamp Authority for the evidence tests, made from the openssl CLI alone.

`LocalTSA` makes a root CA and a TSA certificate (EC P-256, critical extendedKeyUsage timeStamping)
in a directory, and answers HTTP POSTs of a TimeStampReq on 127.0.0.1 with `openssl ts -reply`.
rfc3161-client verifies EC P-256 tokens, so no RSA fallback is needed. The TSA includes only its
own certificate in a token (no `certs=` line): with its chain, openssl writes a certificate SET
that is not DER-sorted, and rfc3161-client refuses such a token (InvalidSetOrdering).

For failure tests, `mode` makes it misbehave: "http-500", "garbage" (random bytes, right content
type), "wrong-content-type", "hangup" (closes the connection without a reply), "slow" (answers
after `delay` seconds), "replay" (the previous reply again), "reject" (a genuine openssl rejection:
its policy accepts only SHA-512 imprints), "wrong-imprint" (a valid token over other bytes),
"redirect" (302 to another path).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

MODES = (
    "ok",
    "http-500",
    "garbage",
    "wrong-content-type",
    "hangup",
    "slow",
    "replay",
    "reject",
    "wrong-imprint",
    "redirect",
)
POLICY = "1.3.6.1.4.1.99999.1"
# DER of AlgorithmIdentifier sha256 (with NULL parameters) then the OCTET STRING header of a 32-byte
# digest, as in a TimeStampReq's messageImprint.
SHA256_IMPRINT_PREFIX = bytes.fromhex("300d060960864801650304020105000420")

_REQ_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[tsa_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_TS_SECTION = """\
[{name}]
serial = {serial}
crypto_device = builtin
signer_cert = {cert}
signer_key = {key}
signer_digest = sha256
default_policy = {policy}
digests = {digests}
{accuracy}ordering = no
tsa_name = {tsa_name}
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def require_openssl() -> str:
    """The openssl binary, or skip the test; under CI=true a missing openssl fails it instead."""
    found = shutil.which("openssl")
    if found is None:
        reason = "openssl not found on PATH: install Debian's openssl package"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the evidence tests must run, not skip)", pytrace=False)
        pytest.skip(reason)
    return found


def run_openssl(openssl: str, *args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run openssl; return the finished process whatever its exit status (tests assert on it)."""
    return subprocess.run(
        [openssl, *map(str, args)], input=stdin, capture_output=True, timeout=60, check=False
    )


def _openssl_ok(openssl: str, *args: str | Path, stdin: bytes | None = None) -> bytes:
    done = run_openssl(openssl, *args, stdin=stdin)
    if done.returncode != 0:
        raise RuntimeError(
            f"openssl {' '.join(map(str, args))} failed: {done.stderr.decode(errors='replace')}"
        )
    return done.stdout


@dataclass(frozen=True)
class Issued:
    """A key and its certificate, as files."""

    key: Path
    cert: Path

    @property
    def pem(self) -> bytes:
        return self.cert.read_bytes()


def make_root_ca(openssl: str, directory: Path, name: str = "Evidence Test TSA Root") -> Issued:
    """A self-signed EC P-256 root CA valid for ten years."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "req.cnf"
    config.write_text(_REQ_CONFIG)
    key, cert = directory / "root.key", directory / "root.pem"
    _openssl_ok(
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "3650", "-subj", f"/CN={name}",
        "-config", config, "-extensions", "root_ext",
    )  # fmt: skip
    return Issued(key, cert)


def make_tsa_certificate(
    openssl: str, ca: Issued, directory: Path, name: str = "Evidence Test TSA", serial: int = 2
) -> Issued:
    """A TSA certificate issued by `ca`: EC P-256, critical extendedKeyUsage timeStamping."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "req.cnf"
    config.write_text(_REQ_CONFIG)
    stem = name.lower().replace(" ", "-")
    key, csr, cert = directory / f"{stem}.key", directory / f"{stem}.csr", directory / f"{stem}.pem"
    _openssl_ok(
        openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}", "-config", config,
    )  # fmt: skip
    _openssl_ok(
        openssl, "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", str(serial),
        "-days", "3650", "-extfile", config, "-extensions", "tsa_ext", "-out", cert,
    )  # fmt: skip
    return Issued(key, cert)


def free_port_url() -> str:
    """A TSA URL on 127.0.0.1 where nothing listens (a TSA that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsr"


class LocalTSA:
    """A root CA, a TSA certificate and an HTTP timestamp service on 127.0.0.1 (start/stop)."""

    def __init__(self, openssl: str, directory: Path) -> None:
        self.openssl = openssl
        self.directory = directory
        self.ca = make_root_ca(openssl, directory / "root")
        self.tsa = make_tsa_certificate(openssl, self.ca, directory / "tsa")
        self.config = directory / "ts.cnf"
        serial = directory / "serial"
        serial.write_text("01\n")
        common = {"serial": serial, "cert": self.tsa.cert, "key": self.tsa.key, "policy": POLICY}
        self.config.write_text(
            "[tsa]\ndefault_tsa = tsa_ok\n"
            + _TS_SECTION.format(
                name="tsa_ok", digests="sha256, sha384, sha512",
                accuracy="accuracy = secs:1, millisecs:500\n", tsa_name="yes", **common,
            )
            # Same TSA, no accuracy and no TSA name: the optional fields absent.
            + _TS_SECTION.format(
                name="tsa_plain", digests="sha256, sha384, sha512", accuracy="", tsa_name="no", **common
            )
            # Refuses SHA-256 imprints, so openssl itself writes a rejection (badAlg).
            + _TS_SECTION.format(
                name="tsa_reject", digests="sha512", accuracy="", tsa_name="yes", **common
            )
        )  # fmt: skip
        self.mode = "ok"
        self.delay = 2.0
        self.requests = 0
        self._last_reply: bytes | None = None
        # openssl ts -reply increments the serial file: one reply at a time.
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_pem(self) -> bytes:
        return self.ca.pem

    @property
    def cert_pem(self) -> bytes:
        return self.tsa.pem

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local TSA is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/tsr"

    def reply(self, query: bytes, section: str = "tsa_ok") -> bytes:
        """The DER TimeStampResp openssl gives for the DER TimeStampReq `query` (no HTTP)."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.directory) as scratch:
            query_file, reply_file = Path(scratch) / "query.tsq", Path(scratch) / "reply.tsr"
            query_file.write_bytes(query)
            _openssl_ok(
                self.openssl, "ts", "-reply", "-config", self.config, "-section", section,
                "-queryfile", query_file, "-out", reply_file,
            )  # fmt: skip
            return reply_file.read_bytes()

    def start(self) -> None:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                tsa.requests += 1
                tsa.answer(self, body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-tsa", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def answer(self, handler: BaseHTTPRequestHandler, query: bytes) -> None:
        """Reply to one POST according to `mode`."""
        mode = self.mode
        if mode not in MODES:
            raise ValueError(f"unknown TSA mode {mode!r}: one of {', '.join(MODES)}")
        if mode == "hangup":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "http-500":
            self._send(handler, 500, "text/plain", b"internal error\n")
            return
        if mode == "redirect":
            handler.send_response(302)
            handler.send_header("Location", "/moved/tsr")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if mode == "garbage":
            self._send(handler, 200, "application/timestamp-reply", os.urandom(300))
            return
        # A real TSA refuses a body that is not announced as a timestamp query.
        if handler.headers.get("Content-Type") != "application/timestamp-query":
            self._send(handler, 415, "text/plain", b"expected application/timestamp-query\n")
            return
        if mode == "slow":
            time.sleep(self.delay)
        if mode == "replay" and self._last_reply is not None:
            self._send(handler, 200, "application/timestamp-reply", self._last_reply)
            return
        if mode == "wrong-imprint":
            query = _other_imprint(query)
        reply = self.reply(query, "tsa_reject" if mode == "reject" else "tsa_ok")
        self._last_reply = reply
        content_type = "text/html" if mode == "wrong-content-type" else "application/timestamp-reply"
        self._send(handler, 200, content_type, reply)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _other_imprint(query: bytes) -> bytes:
    """The same TimeStampReq (same nonce) with every bit of its SHA-256 imprint inverted."""
    start = query.index(SHA256_IMPRINT_PREFIX) + len(SHA256_IMPRINT_PREFIX)
    digest = query[start : start + 32]
    return query[:start] + bytes(b ^ 0xFF for b in digest) + query[start + 32 :]
