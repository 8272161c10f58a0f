"""Evidence packages end to end: a demo market crawled twice into an archive and raw store, a vendor
exported as a signed, timestamped package, verified as a court expert would, by the tool and by the
shell procedure; an export that cannot be signed or timestamped leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from dnm.rawstore import NETWORK_PATH_URI
from evidence import package as layout
from evidence.export import EvidenceError, Signer
from evidence.keys import init_key
from evidence.verify import VerificationError, verify_package
from tests.conftest import run_dnm
from tests.evidence.support import MARKET, Archive, Operator, export, vendor_of
from tests.evidence.tsa import LocalTSA


def test_a_vendor_package_verifies_in_every_layer(
    clean: Path, operator: Operator, local_tsa: LocalTSA
) -> None:
    verified = verify_package(clean, operator.fingerprint, local_tsa.root_pem)
    assert verified.case == "case-17"
    assert [layer for layer, _ in verified.passed] == [
        "bag", "signature", "timestamp", "captures", "rows", "custody", "provenance",
    ]  # fmt: skip
    rows = [
        json.loads(line) for line in (clean / layout.EXTRACTED / "listings.jsonl").read_text().splitlines()
    ]
    assert rows and {row["crawl_id"] for row in rows} == {1, 2}  # both nights, the second from the fetch log
    assert all(
        row["warc_record_id"].startswith("<urn:uuid:") and row["payload_sha256"] == row["page_sha256"]
        for row in rows
    )
    pdf = (clean / layout.REPORT_PDF).read_bytes()
    # PDF/A-3b, declared in its XMP metadata, with the provenance file attached (both in compressed streams).
    inflated = b"".join(
        # A lenient decompressor: a binary stream may hold "endstream" by chance and be cut short here.
        zlib.decompressobj().decompress(chunk)
        for chunk in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
        if chunk[:1] == b"x"
    )
    assert pdf.startswith(b"%PDF-") and b'pdfaid:part="3"' in inflated and b"provenance.json" in inflated
    assert b'"crawls"' in inflated  # the attached provenance.json itself
    # Each crawl's network path, as its capture wrote it, travels with the records.
    paths = {}
    with zipfile.ZipFile(clean / layout.CAPTURES) as wacz:
        for member in (m for m in wacz.namelist() if m.startswith("archive/")):
            for record in ArchiveIterator(wacz.open(member)):
                uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                body = record.content_stream().read()
                if uri.startswith(NETWORK_PATH_URI):
                    paths[uri] = json.loads(body)
    assert set(paths) == {f"{NETWORK_PATH_URI}{crawl}" for crawl in (1, 2)}
    assert all(p["transport"] == "direct" and "ntp_synchronized" in p["clock"] for p in paths.values())
    draft = (clean / layout.CERTIFICATION).read_text()
    assert draft.startswith("DRAFT") and "case-17" in draft and "crawl 1 of hollowmere" in draft
    info = (clean / "bag-info.txt").read_text()
    assert (
        "External-Identifier: case-17" in info
        and f"Signer-Fingerprint-SHA256: {operator.fingerprint}" in info
    )


def test_the_command_verifies_offline(
    clean: Path, operator: Operator, local_tsa: LocalTSA, tmp_path: Path
) -> None:
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(local_tsa.root_pem)
    result = run_dnm(
        "evidence",
        "verify",
        str(clean),
        "--signer-fingerprint",
        operator.fingerprint,
        "--tsa-cert",
        str(root),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS bag" in result.stdout and "PASS custody" in result.stdout


def test_the_shell_procedure_passes_on_the_clean_package(
    clean: Path, operator: Operator, local_tsa: LocalTSA, tmp_path: Path
) -> None:
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(local_tsa.root_pem)
    script = clean / layout.VERIFY_SH
    result = subprocess.run(
        ["sh", str(script), str(clean), operator.fingerprint, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("PASS: all steps")


# -- tampering -----------------------------------------------------------------------------------------
# Each case of ../shared/research/evidence-packaging.md section 3 that applies to our layout. A forger
# without the operator's key can at most rewrite hashes: the signature layer stops him. Cases that need
# a valid signature (a buggy exporter, or an insider with the key) re-sign with the real key, to show the
# inner layers hold on their own.


def copy(package: Path, tmp_path: Path) -> Path:
    target = tmp_path / package.name
    shutil.copytree(package, target)
    return target


def rebag(package: Path) -> None:
    """Regenerate every manifest after an edit, as a forger would (the signature stays the old one)."""
    import bagit

    aside = package.parent / f"{package.name}.signature"
    shutil.move(package / "signature", aside)
    cwd = os.getcwd()
    try:
        bag = bagit.Bag(str(package))
        bag.save(manifests=True)
    finally:
        os.chdir(cwd)
    shutil.move(aside, package / "signature")


def resign(package: Path, key: Path, tsa: LocalTSA) -> None:
    """Sign and timestamp the (edited, re-bagged) package again with the operator's real key."""
    from evidence.keys import load_private_key, sign
    from evidence.timestamp import fetch_timestamp

    signature = sign(load_private_key(key), (package / layout.SIGNED).read_bytes())
    (package / layout.SIGNATURE).write_bytes(signature)
    (package / layout.TIMESTAMP).write_bytes(fetch_timestamp(signature, tsa.url))


def edit_bag_info(package: Path, field: str, value: str) -> None:
    lines = (package / "bag-info.txt").read_text().splitlines()
    (package / "bag-info.txt").write_text(
        "\n".join(f"{field}: {value}" if line.startswith(f"{field}:") else line for line in lines) + "\n"
    )


def fails(package: Path, operator: Operator, tsa: LocalTSA, layer: str, *, root: bytes | None = None) -> str:
    with pytest.raises(VerificationError) as failure:
        verify_package(package, operator.fingerprint, root or tsa.root_pem)
    assert failure.value.layer == layer, str(failure.value)
    return str(failure.value)


def flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


def test_same_size_edit_of_the_captures_fails_the_bag(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path
) -> None:
    package = copy(clean, tmp_path)
    flip(package / layout.CAPTURES)
    assert "captures.wacz" in fails(package, operator, tsa, "bag")


@pytest.mark.parametrize(
    "target", [layout.CAPTURES, f"{layout.EXTRACTED}/listings.jsonl", layout.CUSTODY, "bag-info.txt"]
)
def test_an_edit_with_every_hash_regenerated_fails_the_signature(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path, target: str
) -> None:
    package = copy(clean, tmp_path)
    if target == "bag-info.txt":
        edit_bag_info(package, "Contact-Name", "Somebody Else")
    else:
        flip(package / target, 0.9)
    rebag(package)
    assert "bad signature: it does not match" in fails(package, operator, tsa, "signature")


def test_a_forger_signing_with_his_own_key_fails_the_pinned_fingerprint(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path
) -> None:
    from evidence.keys import load_private_key, public_pem, sign

    package = copy(clean, tmp_path)
    flip(package / f"{layout.EXTRACTED}/listings.jsonl", 0.9)
    rebag(package)
    forger = tmp_path / "forger.key"
    init_key(forger)
    key = load_private_key(forger)
    signature = sign(key, (package / layout.SIGNED).read_bytes())
    (package / layout.SIGNATURE).write_bytes(signature)
    (package / layout.SIGNER_KEY).write_bytes(public_pem(key))
    from evidence.timestamp import fetch_timestamp

    (package / layout.TIMESTAMP).write_bytes(fetch_timestamp(signature, tsa.url))
    assert "fingerprint mismatch" in fails(package, operator, tsa, "signature")


def test_a_flipped_token_a_foreign_token_or_another_tsa_root_fail_the_timestamp(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path, openssl: str
) -> None:
    from tests.evidence.tsa import make_root_ca

    package = copy(clean, tmp_path)
    token = (package / layout.TIMESTAMP).read_bytes()
    flip(package / layout.TIMESTAMP, 0.6)
    fails(package, operator, tsa, "timestamp")
    (package / layout.TIMESTAMP).write_bytes(token)
    other = make_root_ca(openssl, tmp_path / "other-ca", "Another Root")
    fails(package, operator, tsa, "timestamp", root=other.pem)
    # A genuine token, but over other bytes (replayed from another export).
    from evidence.timestamp import fetch_timestamp

    (package / layout.TIMESTAMP).write_bytes(fetch_timestamp(b"another package's signature", tsa.url))
    fails(package, operator, tsa, "timestamp")


def test_an_export_time_far_from_the_timestamp_fails(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path
) -> None:
    package = copy(clean, tmp_path)
    edit_bag_info(package, layout.CREATED, "2020-01-01T00:00:00.000000Z")
    rebag(package)
    resign(package, operator.key, tsa)
    assert "TSA time" in fails(package, operator, tsa, "timestamp")


@pytest.mark.parametrize("where", ["root", "signature", "data"])
def test_an_unlisted_file_fails_the_bag(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path, where: str
) -> None:
    package = copy(clean, tmp_path)
    folder = {"root": package, "signature": package / "signature", "data": package / "data"}[where]
    (folder / "NOTES").write_text("planted")
    assert "NOTES" in fails(package, operator, tsa, "bag")


def test_a_row_pointing_at_another_record_fails_the_rows(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path
) -> None:
    package = copy(clean, tmp_path)
    path = package / layout.EXTRACTED / "listings.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["warc_record_id"] = "<urn:uuid:00000000-0000-4000-8000-000000000000>"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    rebag(package)
    resign(package, operator.key, tsa)
    assert "is not in the captures" in fails(package, operator, tsa, "rows")
    rows[0] = json.loads((clean / layout.EXTRACTED / "listings.jsonl").read_text().splitlines()[0])
    rows[0]["page_sha256"] = rows[0]["payload_sha256"] = "0" * 64
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    rebag(package)
    resign(package, operator.key, tsa)
    assert "is not the record's payload" in fails(package, operator, tsa, "rows")


@pytest.mark.parametrize("how", ["edited", "reordered"])
def test_a_custody_log_changed_even_with_its_head_fails_the_custody(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path, how: str
) -> None:
    import hashlib

    package = copy(clean, tmp_path)
    path = package / layout.CUSTODY
    lines = path.read_bytes().splitlines(keepends=True)
    if how == "edited":
        lines[0] = lines[0].replace(b'"captured"', b'"capturex"')
    else:
        lines[0], lines[1] = lines[1], lines[0]
    path.write_bytes(b"".join(lines))
    edit_bag_info(package, layout.CUSTODY_HEAD, hashlib.sha256(lines[-1]).hexdigest())
    rebag(package)
    resign(package, operator.key, tsa)
    fails(package, operator, tsa, "custody")


def test_a_capture_dated_after_the_timestamp_fails_the_captures(
    clean: Path, operator: Operator, tsa: LocalTSA, tmp_path: Path
) -> None:
    # WARC headers are outside the record digests: a date moved forward passes warcio and the WACZ
    # checks; the capture-time layer finds it once the (re-signed) package is otherwise whole.
    import gzip
    import zipfile
    import zlib
    from datetime import UTC, datetime

    from evidence.wacz import write_wacz

    package = copy(clean, tmp_path)
    wacz = package / layout.CAPTURES
    with zipfile.ZipFile(wacz) as archive:
        members = [m for m in archive.namelist() if m.startswith("archive/")]
        sources = []
        for member in members:
            data = archive.read(member)
            if member.endswith("crawl-facts.warc.gz"):
                # The first record's gzip member, re-made with its date moved; the others as they were.
                unzip = zlib.decompressobj(31)
                record = unzip.decompress(data)
                rest = unzip.unused_data
                data = gzip.compress(record.replace(b"WARC-Date: 20", b"WARC-Date: 29", 1), mtime=0) + rest
            target = tmp_path / member.split("/", 1)[1]
            target.write_bytes(data)
            sources.append((member.split("/", 1)[1], target))
        info = json.loads(archive.read("datapackage.json"))
    write_wacz(wacz, sources, [], title=info["title"], created=datetime.now(UTC), software=info["software"])
    rebag(package)
    resign(package, operator.key, tsa)
    assert "after the timestamp" in fails(package, operator, tsa, "captures")


def test_the_shell_procedure_fails_on_a_tampered_package(
    clean: Path, operator: Operator, local_tsa: LocalTSA, tmp_path: Path
) -> None:
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(local_tsa.root_pem)
    package = copy(clean, tmp_path)
    flip(package / f"{layout.EXTRACTED}/listings.jsonl", 0.9)
    rebag(package)
    result = subprocess.run(
        ["sh", str(clean / layout.VERIFY_SH), str(package), operator.fingerprint, str(root)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "FAIL: signature" in result.stdout, result.stdout + result.stderr
    package = copy(clean, tmp_path / "second")
    flip(package / layout.CAPTURES)
    result = subprocess.run(
        ["sh", str(clean / layout.VERIFY_SH), str(package), operator.fingerprint, str(root)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and "FAIL: bag manifest" in result.stdout, result.stdout + result.stderr


# -- export --------------------------------------------------------------------------------------------


def test_no_timestamp_or_no_key_means_no_package(
    archive: Archive, signer: Signer, tsa: LocalTSA, tmp_path: Path
) -> None:
    from evidence.keys import SigningKeyError
    from evidence.timestamp import TimestampError

    tsa.mode = "http500"
    with pytest.raises(TimestampError):
        export(archive, signer, tmp_path / "out", vendor=vendor_of(archive))
    assert list((tmp_path / "out").iterdir()) == []  # not even the working folder
    tsa.mode = "ok"
    missing = Signer(tmp_path / "no.key", signer.tsa_url, signer.tsa_root_pem)
    with pytest.raises(SigningKeyError):
        export(archive, missing, tmp_path / "out2", vendor=vendor_of(archive))
    assert not (tmp_path / "out2").exists() or list((tmp_path / "out2").iterdir()) == []
    with pytest.raises(EvidenceError, match="holds nothing"):
        export(archive, signer, tmp_path / "out3", vendor="nobody-at-all")


def test_exporting_again_gives_the_same_captures_and_rows(
    clean: Path, archive: Archive, signer: Signer, tmp_path: Path
) -> None:
    again = export(archive, signer, tmp_path, vendor=vendor_of(archive))
    manifest = lambda p: dict(  # noqa: E731
        reversed(line.split("  ", 1)) for line in (p / "manifest-sha256.txt").read_text().splitlines()
    )
    first, second = manifest(clean), manifest(again)
    for name in (
        layout.CAPTURES,
        layout.PROVENANCE,
        *(f"{layout.EXTRACTED}/{k}.{f}" for k in layout.KINDS for f in ("jsonl", "csv")),
    ):
        assert first[name] == second[name], name
    assert first[layout.CUSTODY] != second[layout.CUSTODY]  # the custody log records this export


def test_verification_uses_no_network(
    clean: Path, operator: Operator, local_tsa: LocalTSA, tmp_path: Path
) -> None:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"unshare -n is not available under CI: {probe.stderr!r}")
        pytest.skip("unshare -n not permitted here (needs root or user namespaces)")
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(local_tsa.root_pem)
    import sys

    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "dnm.cli", "evidence", "verify", str(clean),
         "--signer-fingerprint", operator.fingerprint, "--tsa-cert", str(root)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_listing_selection_holds_that_listing_and_its_feedback(
    archive: Archive, signer: Signer, tmp_path: Path
) -> None:
    listings = run_dnm(
        "export", "listings", "--database", archive.url, "--market", MARKET
    ).stdout.splitlines()
    listing = json.loads(listings[0])["listing_id"]
    package = export(archive, signer, tmp_path, listing=listing)
    verify_package(package, fingerprint_of(signer), signer.tsa_root_pem)
    rows = [
        json.loads(line) for line in (package / layout.EXTRACTED / "listings.jsonl").read_text().splitlines()
    ]
    assert rows and {row["listing_id"] for row in rows} == {listing}
    assert not (package / layout.EXTRACTED / "vendors.jsonl").exists()
    feedback = (package / layout.EXTRACTED / "feedback.jsonl").read_text().splitlines()
    assert all(json.loads(line)["listing_id"] == listing for line in feedback)


def fingerprint_of(signer: Signer) -> str:
    from evidence.keys import fingerprint, load_private_key

    return fingerprint(load_private_key(signer.key).public_key())


def test_the_commands_make_a_key_and_export_or_refuse(
    archive: Archive, tsa: LocalTSA, tmp_path: Path
) -> None:
    key = tmp_path / "keys" / "operator.key"
    made = run_dnm("keys", "init", "--key", str(key))
    assert made.returncode == 0, made.stdout + made.stderr
    printed = made.stdout.split("fingerprint (SHA-256): ")[1].split()[0]
    assert oct(key.stat().st_mode & 0o777) == "0o600" and len(printed) == 64
    again = run_dnm("keys", "init", "--key", str(key))
    assert again.returncode != 0 and "exists" in (again.stdout + again.stderr)
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(tsa.root_pem)
    common = ["evidence", "export", "--case", "C-1", "--market", MARKET, "--vendor", vendor_of(archive),
              "--database", archive.url, "--raw-dir", str(archive.raw), "--key", str(key),
              "--tsa-cert", str(root), "--output", str(tmp_path / "out")]  # fmt: skip
    refused = run_dnm(*common)  # no TSA: no package
    assert refused.returncode != 0 and "no time-stamping authority" in refused.stdout + refused.stderr
    done = run_dnm(*common, "--tsa-url", tsa.url, "--operator", "Analyst B")
    assert done.returncode == 0, done.stdout + done.stderr
    (package,) = (tmp_path / "out").iterdir()
    verified = run_dnm(
        "evidence", "verify", str(package), "--signer-fingerprint", printed, "--tsa-cert", str(root)
    )
    assert verified.returncode == 0 and "VALID" in verified.stdout
    wrong = run_dnm(
        "evidence", "verify", str(package), "--signer-fingerprint", "0" * 64, "--tsa-cert", str(root)
    )
    assert wrong.returncode == 1 and "FAIL signature" in wrong.stdout


def test_a_capture_changed_inside_the_archive_is_refused_before_export(
    archive: Archive, signer: Signer, tmp_path: Path
) -> None:
    raw = tmp_path / "warc"
    shutil.copytree(archive.raw, raw)
    for chain in raw.rglob("*.chain.jsonl"):
        for line in chain.read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "response":
                warc = chain.with_name(chain.name.removesuffix(".chain.jsonl"))
                data = bytearray(warc.read_bytes())
                data[record["offset"] + record["length"] // 2] ^= 0x01
                warc.write_bytes(bytes(data))
    with pytest.raises(EvidenceError, match="changed since capture"):
        export(Archive(archive.url, raw), signer, tmp_path / "out", vendor=vendor_of(archive))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    (chain,) = list(raw.glob("*/1-*.chain.jsonl"))
    chain.write_text(chain.read_text().replace('"type":"request"', '"type":"reqwest"', 1))
    with pytest.raises(EvidenceError, match="cannot be trusted"):
        export(Archive(archive.url, raw), signer, tmp_path / "out", vendor=vendor_of(archive))
