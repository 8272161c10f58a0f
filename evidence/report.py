"""The human side of a package: the HTML and PDF/A report, VERIFY.md and the shell-only verify.sh.

The report says what was captured, when, how and by which tool, with the hashes and the steps to verify;
all market text in it is escaped (markets are hostile) and the page runs no script (a CSP forbids it).
VERIFY.md and verify.sh give a procedure a third party follows with `sha256sum` and `openssl` alone.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from dnm import __version__
from evidence import package as layout

STYLE = """
body{font-family:Georgia,serif;max-width:1100px;margin:2em auto;color:#111}
table{border-collapse:collapse;width:100%;font-size:13px;margin:1em 0}
td,th{border:1px solid #999;padding:3px 6px;text-align:left;vertical-align:top}
code,.hash{font-family:monospace;font-size:12px;word-break:break-all}
pre{white-space:pre-wrap;font-size:11px}
pre.list{white-space:pre;font-size:6px}
h1{font-size:22px}h2{font-size:17px;margin-top:1.6em}
"""


def render_report(
    work: Path,
    case_id: str,
    selection: str,
    created: datetime,
    operator: str,
    crawls: dict[int, dict[str, Any]],
    rows: dict[str, list[dict[str, Any]]],
    *,
    compact: bool = False,
) -> str:
    """The report of a package being written in `work` (its payload files are in place).

    `compact` lists the captures as preformatted lines instead of a table: the PDF renderer lays out a
    table row in about 35 ms, a line in under 1 ms, and a vendor's package may list thousands."""
    files = sorted(p for p in (work / "data").rglob("*") if p.is_file() and p.name != "report.html")
    e = escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy'",
        " content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>Evidence package {e(case_id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Evidence package {e(case_id)}</h1>",
        "<table>",
        f"<tr><th>Selection</th><td>{e(selection)}</td></tr>",
        f"<tr><th>Exported (UTC)</th><td>{e(created.isoformat())}</td></tr>",
        f"<tr><th>Exported by</th><td>{e(operator)}</td></tr>",
        f"<tr><th>Tool</th><td>dnm-archive {e(__version__)}</td></tr>",
        "<tr><th>Rows</th><td>"
        + ", ".join(f"{len(kind_rows)} {e(kind)}" for kind, kind_rows in rows.items())
        + "</td></tr></table>",
        "<h2>What this package is</h2>",
        "<p>The pages below were fetched from the market by dnm-archive's crawler and stored at capture "
        "time as WARC records with SHA-256 digests, in a raw store whose hash chain was checked before this "
        "export (<code>dnm archive verify</code>). The records are copied into "
        "<code>data/captures/captures.wacz</code> byte for byte; every extracted row names the record its "
        "values were read from and the SHA-256 of the page. The package is a BagIt bag: every file is listed "
        "with its SHA-256 and SHA-512; the list of lists (<code>tagmanifest-sha256.txt</code>) is signed "
        "with "
        "the operator's Ed25519 key, and the signature is timestamped by an RFC 3161 time-stamping "
        "authority.</p>",
        "<h2>Crawls</h2><table><tr><th>crawl</th><th>market</th><th>started / finished (UTC)</th>"
        "<th>status</th>"
        "<th>transport</th><th>tor</th><th>profile</th><th>raw capture file and chain head</th></tr>",
    ]
    for facts in crawls.values():
        parts.append(
            f"<tr><td>{facts['crawl_id']}</td><td>{e(facts['market'])}</td>"
            f"<td>{e(str(facts['started_at']))}<br>{e(str(facts['finished_at']))}</td>"
            f"<td>{e(str(facts['status']))}</td><td>{e(str(facts['transport']))}</td>"
            f"<td>{e(str(facts['tor_version'] or '-'))}</td><td>{e(str(facts['profile_version']))}</td>"
            f"<td class='hash'>{e(str(facts['warc_file']))}<br>{e(str(facts['warc_chain_head']))}</td></tr>"
        )
    parts.append("</table><h2>Captures behind the rows</h2>")
    captures = [
        (
            kind,
            str(row.get("url") or ""),
            str(row.get("observed_at") or row.get("first_seen_at") or ""),
            str(row.get("crawl_id") or row.get("first_crawl_id")),
            str(row.get("page_sha256") or row.get("first_page_sha256") or ""),
        )
        for kind, kind_rows in rows.items()
        for row in kind_rows
    ]
    if compact:
        parts.append("<p>kind, fetched (UTC), crawl, page SHA-256, URL fetched:</p><pre class='list'>")
        parts.append(
            "\n".join(e(f"{k:<9} {at}  {crawl:>5}  {sha}  {url}") for k, url, at, crawl, sha in captures)
        )
        parts.append("</pre>")
    else:
        parts.append(
            "<table><tr><th>kind</th><th>URL fetched</th><th>fetched (UTC)</th><th>crawl</th>"
            "<th>page SHA-256</th></tr>"
        )
        for kind, url, at, crawl, sha in captures:
            parts.append(
                f"<tr><td>{e(kind)}</td><td class='hash'>{e(url)}</td><td>{e(at)}</td>"
                f"<td class='hash'>{e(crawl)}</td><td class='hash'>{e(sha)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Files and their SHA-256</h2><table><tr><th>file</th><th>SHA-256</th></tr>")
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        parts.append(f"<tr><td>{e(str(path.relative_to(work)))}</td><td class='hash'>{digest}</td></tr>")
    parts.append("</table><h2>How to verify</h2><pre>")
    parts.append(e(verify_instructions()))
    parts.append("</pre></body></html>\n")
    return "\n".join(parts)


def write_pdf(html: str, path: Path, attachments: list[Path]) -> None:
    """The report as PDF/A-3b (archival, with `attachments` embedded), for filing with a court.

    WeasyPrint renders the same HTML (no script, no network: it is given no base URL and the page links
    nothing). Not validated with veraPDF here: that tool is not packaged for this machine.
    """
    from weasyprint import HTML, Attachment

    files = [Attachment(filename=str(item), name=item.name) for item in attachments]
    HTML(string=html).write_pdf(str(path), pdf_variant="pdf/a-3b", attachments=files)


def certification(case_id: str, selection: str, created: datetime, crawls: dict[int, dict[str, Any]]) -> str:
    """A draft certification in the form of Federal Rules of Evidence 902(13)/(14), for a qualified person
    to review, complete and sign; the package does not sign it for anyone."""
    crawl_lines = "\n".join(
        f"     - crawl {c['crawl_id']} of {c['market']}: {c['started_at']} to {c['finished_at']} (UTC), "
        f"{c['transport']}, tor {c['tor_version'] or 'n/a'}, status {c['status']}"
        for c in crawls.values()
    )
    return f"""DRAFT - CERTIFICATION OF RECORDS GENERATED BY AN ELECTRONIC PROCESS AND OF DATA COPIED FROM AN
ELECTRONIC FILE (Fed. R. Evid. 902(13) and 902(14); by written certification as in 902(11)/(12))

To be reviewed, completed and signed by a person qualified to describe the process. Nothing in this
draft is asserted until it is signed. Delete what does not apply.

Case: {case_id}
Evidence package: exported {created.isoformat()} (UTC); selection: {selection}

I, ______________________ (name), ______________________ (position, organisation), certify:

1. I am familiar with dnm-archive {__version__}, the system that captured and exported these records,
   and with how it was operated for this case.
2. The records in data/captures/captures.wacz were generated by an electronic process: an automated
   crawler fetched the market's pages and wrote each response, as received, into a WARC/1.1 file with
   SHA-256 digests, at the time recorded in each record (the capturing host's UTC clock). The crawls:
{crawl_lines}
3. The raw store holding those files keeps a hash chain per file, checked before this export; the records
   were copied from it byte for byte, and the extracted rows in data/extracted/ name the record and the
   SHA-256 of the page each was read from.
4. The package was identified by a process of digital identification: every file is listed with its
   SHA-256 and SHA-512 in the BagIt manifests, the tag manifest is signed with the organisation's Ed25519
   key (fingerprint published separately) and the signature is timestamped by an RFC 3161 authority.
   Identical hash values show the copies are exact duplicates of what was exported. The verification
   procedure is in data/VERIFY.md.
5. The process produces an accurate result: ______________________ (describe testing, e.g. the demo
   market's ground-truth comparison and the tamper tests of the tool's test suite, and any validation
   done for this case).

I certify under penalty of perjury under the laws of ______________________ that the foregoing is true
and correct.

Date: ______________   Signature: ______________________________
"""


def verify_instructions() -> str:
    """VERIFY.md: the procedure, for a court expert, with the tool and with sha256sum and openssl alone."""
    return f"""# Verifying this evidence package

You need two values obtained **outside this package**, from the exporting organisation through a channel
you trust: the signer's key fingerprint (SHA-256, 64 hex digits) and the certificate of the time-stamping
authority's root (PEM). Copies of the signer's public key and the TSA certificate are in `signature/` for
convenience only: never trust them without the pinned values.

## With the tool

    dnm evidence verify PACKAGE --signer-fingerprint FINGERPRINT --tsa-cert TSA-ROOT.pem

It checks, offline: the bag (every file against the SHA-256 and SHA-512 manifests, in full; no unlisted
file anywhere), the signature over `tagmanifest-sha256.txt` against the pinned fingerprint, the RFC 3161
token over the signature against the pinned TSA root, the export time against the token's time, the WACZ
(every member listed and hashed, path for path, and nothing else), every WARC record's SHA-256 digests,
that every extracted row's record is in the WACZ with the row's page hash, that every capture is older
than the timestamp, and the custody log's hash chain up to the head bound in `bag-info.txt`. It prints
PASS or FAIL per layer and exits 0 only when all pass.

## With sha256sum and openssl alone

`data/verify.sh` runs these steps (POSIX sh, coreutils, OpenSSL 3):

    sh data/verify.sh PACKAGE FINGERPRINT TSA-ROOT.pem

1. The signer key is the pinned one:
   `openssl pkey -pubin -in {layout.SIGNER_KEY} -outform DER | sha256sum` equals FINGERPRINT.
2. The signature: `openssl pkeyutl -verify -pubin -inkey {layout.SIGNER_KEY} -rawin -in {layout.SIGNED}
   -sigfile {layout.SIGNATURE}` prints "Signature Verified Successfully".
3. The timestamp: `openssl ts -verify -data {layout.SIGNATURE} -in {layout.TIMESTAMP} -CAfile TSA-ROOT.pem
   -untrusted {layout.TSA_CERT}` prints "Verification: OK"; `openssl ts -reply -in {layout.TIMESTAMP} -text`
   shows the time.
4. The manifests: `sha256sum -c --strict tagmanifest-sha256.txt` then `sha256sum -c --strict
   manifest-sha256.txt`: every line OK.
5. No file the manifests do not list (outside `signature/`, which holds exactly the four files above).
6. The custody log (`{layout.CUSTODY}`): each line's `prev` is the SHA-256 of the line before (with its
   newline; 64 zeros for the first), and the SHA-256 of the last line equals `{layout.CUSTODY_HEAD}` in
   `bag-info.txt`.

What this does not check, and the tool does: the records inside the WACZ (their digests and the rows'
links to them). Their bytes are covered by the manifests, hence by the signature: any change to them fails
step 4 or, if the manifests were rewritten, step 2.
"""


def verify_script() -> str:
    """verify.sh: the procedure of VERIFY.md as a POSIX shell script (sha256sum, openssl, coreutils)."""
    return f"""#!/bin/sh
# Verify a dnm-archive evidence package with sha256sum and openssl alone (see VERIFY.md).
# usage: sh verify.sh PACKAGE FINGERPRINT TSA-ROOT.pem     exit 0: every step passed
set -u
[ $# -eq 3 ] || {{ echo "usage: $0 PACKAGE FINGERPRINT TSA-ROOT.pem" >&2; exit 2; }}
root=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
pin=$(printf '%s' "$2" | tr -d ' :' | tr 'A-F' 'a-f' | sed 's/^sha256//')
cd "$1" || exit 2
fail() {{ echo "FAIL: $*"; exit 1; }}
pass() {{ echo "PASS: $*"; }}

fp=$(openssl pkey -pubin -in {layout.SIGNER_KEY} -outform DER | sha256sum | cut -d' ' -f1)
[ "$fp" = "$pin" ] || fail "signer key: fingerprint $fp is not the pinned $pin"
pass "signer key is the pinned one"

openssl pkeyutl -verify -pubin -inkey {layout.SIGNER_KEY} -rawin -in {layout.SIGNED} \\
    -sigfile {layout.SIGNATURE} >/dev/null 2>&1 ||
    fail "signature: {layout.SIGNED} is not what the key signed"
pass "signature over {layout.SIGNED}"

openssl ts -verify -data {layout.SIGNATURE} -in {layout.TIMESTAMP} -CAfile "$root" \\
    -untrusted {layout.TSA_CERT} >/dev/null 2>&1 ||
    fail "timestamp: the token does not verify against the pinned TSA root"
pass "timestamp: $(openssl ts -reply -in {layout.TIMESTAMP} -text 2>/dev/null | grep '^Time stamp:')"

sha256sum -c --quiet --strict tagmanifest-sha256.txt || fail "tag manifest: a tag file changed"
sha256sum -c --quiet --strict manifest-sha256.txt || fail "bag manifest: a payload file changed"
pass "every listed file matches its SHA-256"

listed=$( (sed 's/^[0-9a-f]*  *//' manifest-sha256.txt; sed 's/^[0-9a-f]*  *//' tagmanifest-sha256.txt;
          ls tagmanifest-*.txt) | sort -u)
present=$(find . -type f ! -path './signature/*' | sed 's|^\\./||' | sort)
[ "$listed" = "$present" ] || fail "unlisted file: the bag holds files its manifests do not list"
signature=$(find signature -type f | sort | tr '\\n' ' ')
expected="{" ".join(sorted(layout.SIGNATURE_FILES))} "
[ "$signature" = "$expected" ] || fail "unlisted file in signature/: $signature"
pass "no unlisted file"

prev=0000000000000000000000000000000000000000000000000000000000000000
n=0
while IFS= read -r line; do
    n=$((n + 1))
    got=$(printf '%s' "$line" | grep -o '"prev":"[0-9a-f]*"' | tail -n 1 | cut -d'"' -f4)
    [ "$got" = "$prev" ] || fail "custody log: line $n does not follow line $((n - 1))"
    prev=$(printf '%s\\n' "$line" | sha256sum | cut -d' ' -f1)
done < {layout.CUSTODY}
grep -qx "{layout.CUSTODY_HEAD}: $prev" bag-info.txt ||
    fail "custody log: its head is not the one bound in bag-info.txt"
pass "custody log: $n events chained to the head in bag-info.txt"
echo "PASS: all steps"
"""
