"""The evidence package's layout: the names every writer and checker of a package agrees on.

```
<package>/                               a BagIt 1.0 bag (RFC 8493), SHA-256 and SHA-512 manifests
  bagit.txt  bag-info.txt  manifest-*.txt  tagmanifest-*.txt
  data/captures/captures.wacz            the raw captures: WARC/1.1 records copied byte for byte
                                         from the archive's raw store, plus a network-path record
  data/extracted/<kind>.jsonl, .csv      the rows, each linked to its WARC record and payload hash
  data/provenance/provenance.json        tool and library versions, crawls, profile and settings hashes
  data/custody/custody_log.jsonl         hash-chained custody events; head in bag-info
  data/report/report.html, report.pdf    what was captured, when, how, with hashes and how to verify
                                         (the PDF is PDF/A-3b, provenance.json attached)
  data/report/certification_902.txt      a draft FRE 902(13)/(14) certification for a person to sign
  data/VERIFY.md  data/verify.sh         the verification procedure (sha256sum and openssl only)
  signature/tagmanifest-sha256.txt.sig       Ed25519 over tagmanifest-sha256.txt
  signature/tagmanifest-sha256.txt.sig.tsr   RFC 3161 token over the .sig bytes
  signature/signer.pub.pem  signature/tsa.crt    copies for convenience: trust comes from the pins
```
"""

from __future__ import annotations

CAPTURES = "data/captures/captures.wacz"
EXTRACTED = "data/extracted"
PROVENANCE = "data/provenance/provenance.json"
CUSTODY = "data/custody/custody_log.jsonl"
REPORT = "data/report/report.html"
REPORT_PDF = "data/report/report.pdf"
CERTIFICATION = "data/report/certification_902.txt"
VERIFY_MD = "data/VERIFY.md"
VERIFY_SH = "data/verify.sh"
SIGNED = "tagmanifest-sha256.txt"
SIGNATURE = f"signature/{SIGNED}.sig"
TIMESTAMP = f"signature/{SIGNED}.sig.tsr"
SIGNER_KEY = "signature/signer.pub.pem"
TSA_CERT = "signature/tsa.crt"
SIGNATURE_FILES = (SIGNATURE, TIMESTAMP, SIGNER_KEY, TSA_CERT)
KINDS = ("listings", "vendors", "feedback")

# bag-info.txt fields the package writes and the verifier reads.
CASE = "External-Identifier"
CREATED = "Export-Created-UTC"
QUERY = "Query"
CUSTODY_HEAD = "Custody-Log-Head-SHA256"
SIGNER = "Signer-Fingerprint-SHA256"
# How long an export may take between its creation time and the TSA's time (plus clock error).
TIME_TOLERANCE_SECONDS = 600
