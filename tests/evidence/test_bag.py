"""The BagIt layer: a bag made in place around a payload verifies; payload, bag-info and manifest
tampering and any file the bag does not list fail, naming the layer and the file. Also what BagIt
cannot do: a payload edit with regenerated manifests passes, and only the signature catches it."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import bagit
import pytest

from evidence.bag import BagError, make_bag, verify_bag

SIGNATURE = "signature/tagmanifest-sha256.txt.sig"
INFO = {
    "Source-Organization": "Test Lab",
    "External-Identifier": "case-17_export-0001",
    "Custody-Log-Head-SHA256": "ab" * 32,
    "Export-Created-UTC": "2026-01-02T03:04:05.678901Z",
}


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    """A bag as an export makes it: payload written under data/, bagged in place, then signed."""
    root = tmp_path / "case-17_export-0001"
    (root / "data" / "captures").mkdir(parents=True)
    (root / "data" / "custody").mkdir()
    (root / "data" / "captures" / "vendor-v1.wacz").write_bytes(b"PK\x03\x04 price 100 " * 50)
    (root / "data" / "custody" / "custody_log.jsonl").write_bytes(b'{"seq":1}\n')
    (root / "data" / "VERIFY.md").write_text("sha256sum -c manifest-sha256.txt\n")
    make_bag(root, dict(INFO))
    (root / "signature").mkdir()
    (root / SIGNATURE).write_bytes(b"\x01" * 64)
    return root


def verify(root: Path) -> dict[str, str]:
    return verify_bag(root, signature_files={SIGNATURE})


def test_a_bag_made_in_place_verifies(bag: Path) -> None:
    info = verify(bag)
    assert {key: info[key] for key in INFO} == INFO
    assert (
        info["Bag-Software-Agent"].startswith("dnm-archive ") and "bagit 1.9.0" in info["Bag-Software-Agent"]
    )
    payload = [path for path in (bag / "data").rglob("*") if path.is_file()]
    assert info["Payload-Oxum"] == f"{sum(path.stat().st_size for path in payload)}.{len(payload)}" == "793.3"
    assert (bag / "bagit.txt").read_text() == "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    # The payload stayed where the caller put it (bagit.make_bag would have moved it to data/data/).
    assert (bag / "data" / "captures" / "vendor-v1.wacz").is_file() and not (bag / "data" / "data").exists()
    wacz = (bag / "data" / "captures" / "vendor-v1.wacz").read_bytes()
    assert f"{hashlib.sha512(wacz).hexdigest()}  data/captures/vendor-v1.wacz" in (
        (bag / "manifest-sha512.txt").read_text()
    )
    tags = (bag / "tagmanifest-sha256.txt").read_text()
    for name in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt"):
        assert f" {name}\n" in tags
    assert "signature" not in tags and (bag / "tagmanifest-sha512.txt").is_file()


def test_only_data_may_exist_before_bagging(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "signature").mkdir()
    with pytest.raises(ValueError, match=re.escape("only data/")):
        make_bag(tmp_path, {})
    with pytest.raises(ValueError, match=re.escape("no data/")):
        make_bag(tmp_path / "data", {})
    (tmp_path / "signature").rmdir()
    with pytest.raises(ValueError, match="one tag line"):
        make_bag(tmp_path, {"Note": "two\nlines"})
    with pytest.raises(ValueError, match="computed"):
        make_bag(tmp_path, {"Payload-Oxum": "1.1"})
    os.symlink("/etc/hostname", tmp_path / "data" / "link")
    with pytest.raises(ValueError, match="symbolic links"):
        make_bag(tmp_path, {})
    assert os.listdir(tmp_path) == ["data"]  # nothing written before the refusals


def test_a_same_size_payload_edit_fails_even_though_fast_validation_passes_it(bag: Path) -> None:
    wacz = bag / "data" / "captures" / "vendor-v1.wacz"
    wacz.write_bytes(wacz.read_bytes().replace(b"price 100", b"price 900", 1))
    assert bagit.Bag(str(bag)).is_valid(fast=True)  # why verify_bag never uses fast mode
    with pytest.raises(BagError, match=re.escape("bag manifest: data/captures/vendor-v1.wacz")) as caught:
        verify(bag)
    assert caught.value.layer == "bag manifest" and caught.value.path == "data/captures/vendor-v1.wacz"


def test_a_payload_edit_with_regenerated_manifests_passes_the_bag_layer(bag: Path) -> None:
    """BagIt has no authenticity: anyone can recompute the manifests. Only the signature over
    tagmanifest-sha256.txt catches this, because that file's bytes change."""
    signed = (bag / "tagmanifest-sha256.txt").read_bytes()
    wacz = bag / "data" / "captures" / "vendor-v1.wacz"
    wacz.write_bytes(wacz.read_bytes().replace(b"price 100", b"price 900"))
    forged = bagit.Bag(str(bag))
    forged.save(manifests=True)
    assert verify(bag)["Custody-Log-Head-SHA256"] == INFO["Custody-Log-Head-SHA256"]  # passes, as stated
    assert (bag / "tagmanifest-sha256.txt").read_bytes() != signed  # what the signature check sees


def test_a_bag_info_edit_fails_in_the_tag_manifest(bag: Path) -> None:
    info = bag / "bag-info.txt"
    info.write_text(info.read_text().replace("ab" * 32, "cd" * 32))
    with pytest.raises(BagError, match=re.escape("tag manifest: bag-info.txt")) as caught:
        verify(bag)
    assert caught.value.layer == "tag manifest"


@pytest.mark.parametrize(
    "extra", ["notes.txt", "tags/extra.txt", "signature/other.sig", "signature/sub/x.sig"]
)
def test_a_file_outside_data_that_no_manifest_lists_fails(bag: Path, extra: str) -> None:
    (bag / extra).parent.mkdir(parents=True, exist_ok=True)
    (bag / extra).write_bytes(b"planted")
    if not extra.startswith("signature/"):
        assert bagit.Bag(str(bag)).is_valid()  # bagit accepts unlisted tag files
    with pytest.raises(BagError, match=f"unlisted file: {extra}: ") as caught:
        verify(bag)
    assert caught.value.layer == "unlisted file" and caught.value.path == extra


def test_a_file_in_data_that_no_manifest_lists_fails(bag: Path) -> None:
    (bag / "data" / "captures" / "extra.wacz").write_bytes(b"planted")
    assert not bagit.Bag(str(bag)).is_valid()  # bagit catches this one itself
    with pytest.raises(BagError, match=re.escape("unlisted file: data/captures/extra.wacz")):
        verify(bag)


def test_the_signature_directory_holds_exactly_the_expected_files(bag: Path) -> None:
    with pytest.raises(BagError, match=f"unlisted file: {SIGNATURE}"):
        verify_bag(bag)  # nothing expected there
    with pytest.raises(
        BagError,
        match=re.escape("signature/tagmanifest-sha256.txt.sig.tsr: expected signature file is missing"),
    ):
        verify_bag(bag, signature_files={SIGNATURE, f"{SIGNATURE}.tsr"})
    with pytest.raises(ValueError, match="not inside an allowed directory"):
        verify_bag(bag, signature_files={"data/x.sig"})


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("manifest-sha512.txt", "bag manifest"),
        ("manifest-sha256.txt", "bag manifest"),
        ("tagmanifest-sha512.txt", "tag manifest"),
        ("tagmanifest-sha256.txt", "tag manifest"),
    ],
)
def test_a_missing_manifest_fails(bag: Path, name: str, layer: str) -> None:
    (bag / name).unlink()
    with pytest.raises(BagError, match=f"{layer}: {name}: missing") as caught:
        verify(bag)
    assert caught.value.layer == layer


def test_a_manifest_entry_removed_with_regenerated_tag_manifests_fails(bag: Path) -> None:
    """Dropping a payload file and its sha256 line alone leaves the sha512 manifest disagreeing."""
    (bag / "data" / "VERIFY.md").unlink()
    manifest = bag / "manifest-sha256.txt"
    manifest.write_text(
        "".join(line for line in manifest.read_text().splitlines(True) if "VERIFY.md" not in line)
    )
    with pytest.raises(BagError, match=re.escape("bag manifest: data/VERIFY.md: listed in only some")):
        verify(bag)


def test_a_tag_manifest_must_cover_bag_info(bag: Path) -> None:
    for name in ("tagmanifest-sha256.txt", "tagmanifest-sha512.txt"):
        path = bag / name
        path.write_text("".join(line for line in path.read_text().splitlines(True) if "bag-info" not in line))
    assert bagit.Bag(str(bag)).is_valid()  # bagit does not require it; the signature would not cover bag-info
    with pytest.raises(BagError, match=re.escape("tag manifest: bag-info.txt: not listed")):
        verify(bag)


def test_a_symlink_in_the_bag_fails(bag: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    os.symlink(outside, bag / "data" / "link.txt")
    with pytest.raises(BagError, match=re.escape("unlisted file: data/link.txt: symbolic link")):
        verify(bag)
