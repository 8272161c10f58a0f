"""The BagIt layer of an evidence package (RFC 8493): making the bag in place and verifying it strictly.

`make_bag` turns a directory whose payload the caller has already written under `data/` into a BagIt 1.0
bag: SHA-256 and SHA-512 payload manifests, `bag-info.txt`, and tag manifests for both algorithms (so the
signature over `tagmanifest-sha256.txt` covers bag-info and, through the payload manifests, every payload
byte). It must run before `signature/` exists: the signature cannot be listed in what it signs.

`verify_bag` always recomputes every digest of every manifest (bagit's fast mode only counts files and
bytes, so a same-size edit passes it) and rejects any file the bag does not list: bagit itself accepts
unlisted files outside `data/`. Only the directories named in `allowed_extra` may hold unlisted files, and
then exactly the expected ones. What this layer cannot do: an attacker who edits the payload and
regenerates the manifests gets a valid bag. BagIt has no authenticity; the signature over the tag
manifest is what catches that.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import bagit

ALGORITHMS = ("sha256", "sha512")
BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
# Tag files the signed tag manifest must cover, or bag-info (and so the custody head) goes unsigned.
REQUIRED_TAG_FILES = ("bagit.txt", "bag-info.txt", *(f"manifest-{a}.txt" for a in ALGORITHMS))
TAG_MANIFESTS = tuple(f"tagmanifest-{a}.txt" for a in ALGORITHMS)
_ESCAPES = {"%0d": "\r", "%0a": "\n", "%25": "%"}
_ESCAPED = re.compile("%0[dDaA]|%25")


class BagError(Exception):
    """A bag that fails verification: `layer` (bag manifest, tag manifest, unlisted file, bag-info, bag)
    and `path` (relative to the bag) say where."""

    def __init__(self, layer: str, path: str, problem: str) -> None:
        super().__init__(f"{layer}: {path}: {problem}")
        self.layer, self.path, self.problem = layer, path, problem


def software_agent() -> str:
    return f"dnm-archive {version('dnm-archive')} (bagit {bagit.VERSION})"


def make_bag(directory: Path, info: dict[str, str]) -> None:
    """Make `directory` (holding only `data/`) a bag in place; `info` goes to bag-info.txt as given, plus
    Bag-Software-Agent and Bagging-Date when absent and Payload-Oxum. Not thread-safe: bagit chdirs."""
    directory = Path(directory)
    if not (directory / "data").is_dir():
        raise ValueError(f"{directory}: no data/ directory: write the payload under data/ first")
    others = sorted(name for name in os.listdir(directory) if name != "data")
    if others:
        raise ValueError(f"{directory}: only data/ may exist before bagging, found {others}")
    for key, value in info.items():
        if not key or key != key.strip() or ":" in key or any(c in key + value for c in "\r\n"):
            raise ValueError(f"bag-info entry {key!r}: {value!r} cannot be written as one tag line")
    if links := sorted(
        str(p.relative_to(directory)) for p in (directory / "data").rglob("*") if p.is_symlink()
    ):
        raise ValueError(f"{directory}: symbolic links in the payload ({links}); copy the files in")
    if "Payload-Oxum" in info:
        raise ValueError("Payload-Oxum is computed, not given")
    (directory / "bagit.txt").write_text(BAGIT_TXT, encoding="utf-8")
    # bagit.make_bag would move data/ into data/data; loading the new bag and saving it with manifests
    # regenerated writes manifests, bag-info (with Payload-Oxum) and tag manifests around the payload.
    bag = bagit.Bag(str(directory))
    bag.algorithms = list(ALGORITHMS)
    bag.info = {
        "Bag-Software-Agent": software_agent(),
        "Bagging-Date": datetime.now(UTC).strftime("%Y-%m-%d"),
        **info,
    }
    cwd = os.getcwd()
    try:
        bag.save(manifests=True)
    finally:
        os.chdir(cwd)  # bagit does not restore it when saving fails


def verify_bag(
    directory: Path, *, signature_files: Collection[str] = (), allowed_extra: tuple[str, ...] = ("signature",)
) -> dict[str, str]:
    """bag-info of a bag that passes full validation of every manifest and holds no file it does not list.

    `signature_files`: the exact files (paths relative to the bag, e.g. `signature/x.sig`) that must be in
    the `allowed_extra` directories, which no manifest lists. Raises BagError."""
    root = Path(directory)
    expected_extra = set(signature_files)
    for path in expected_extra:
        if path.split("/", 1)[0] not in allowed_extra:
            raise ValueError(f"{path} is not inside an allowed directory {allowed_extra}")
    files = _files(root)
    payload = _listed(root, "manifest-sha256.txt")
    tags = _listed(root, "tagmanifest-sha256.txt")
    for algorithm in ALGORITHMS[1:]:
        _same_paths(_listed(root, f"manifest-{algorithm}.txt"), payload, f"manifest-{algorithm}.txt")
        _same_paths(_listed(root, f"tagmanifest-{algorithm}.txt"), tags, f"tagmanifest-{algorithm}.txt")
    if outside := sorted(p for p in payload if not p.startswith("data/")):
        raise BagError("bag manifest", outside[0], "a payload manifest lists a file outside data/")
    for name in REQUIRED_TAG_FILES:
        if name not in tags:
            raise BagError(
                "tag manifest", name, "not listed in the tag manifests, so not covered by the signature"
            )
    if listed_extra := sorted(
        p for p in tags if p.startswith("data/") or p.split("/", 1)[0] in allowed_extra
    ):
        raise BagError(
            "tag manifest", listed_extra[0], "a tag manifest may list neither payload nor signature"
        )
    for path in sorted(files):
        top = path.split("/", 1)[0]
        if path.startswith("data/"):
            listed = path in payload  # bagit catches these too; here the message names the file first
        elif top in allowed_extra and "/" in path:
            listed = path in expected_extra
        else:
            listed = path in tags or path in TAG_MANIFESTS
        if not listed:
            raise BagError("unlisted file", path, "present in the bag but listed in no manifest")
    if missing := sorted(expected_extra - files):
        raise BagError("unlisted file", missing[0], "expected signature file is missing")
    return _validate(root)


def _validate(root: Path) -> dict[str, str]:
    """bagit's full validation (never fast: fast only counts files and bytes), then bag-info."""
    try:
        bag = bagit.Bag(str(root))
        bag.validate(processes=1, fast=False, completeness_only=False)
    except bagit.BagValidationError as error:
        details = error.details or []
        if not details:  # a bag-wide problem: Payload-Oxum, no data/, no manifest, a BOM in bagit.txt
            oxum = "Payload-Oxum" in error.message
            raise BagError(
                "bag manifest" if oxum else "bag", "bag-info.txt" if oxum else ".", error.message
            ) from None
        first = details[0]
        path = first.path.replace(os.sep, "/")
        layer = "bag manifest" if path.startswith("data/") else "tag manifest"
        if isinstance(first, bagit.UnexpectedFile):
            layer = "unlisted file"
        more = (
            f" (and {len(details) - 1} more: {'; '.join(map(str, details[1:4]))})" if len(details) > 1 else ""
        )
        raise BagError(layer, path, f"{first}{more}") from None
    except bagit.BagError as error:
        raise BagError("bag", "bagit.txt", str(error)) from None
    info: dict[str, str] = {}
    for key, value in bag.info.items():
        if not isinstance(value, str):
            raise BagError("bag-info", "bag-info.txt", f"{key} is given {len(value)} times")
        info[key] = value
    return info


def _files(root: Path) -> set[str]:
    """Every file of the bag, relative and `/`-separated; symlinks and special files are refused."""
    if not root.is_dir():
        raise BagError("bag", str(root), "not a directory")
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise BagError("unlisted file", relative, "symbolic link (a bag holds only regular files)")
            if name in filenames:
                if not path.is_file():
                    raise BagError("unlisted file", relative, "not a regular file")
                found.add(relative)
    return found


def _listed(root: Path, name: str) -> set[str]:
    """The paths a manifest lists (as bagit reads them: `<digest> <path>`, blank lines skipped)."""
    layer = "tag manifest" if name.startswith("tag") else "bag manifest"
    try:
        text = (root / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BagError(layer, name, "missing (the package requires sha256 and sha512 manifests)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BagError(layer, name, f"unreadable: {error}") from None
    paths: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(None, 1)
        if len(parts) != 2:
            raise BagError(layer, name, f"line {number} is not `<digest> <path>`")
        path = _decode(parts[1].lstrip("*"))
        if path in paths:
            raise BagError(layer, path, f"listed twice in {name}")
        paths.add(path)
    return paths


def _same_paths(listed: set[str], reference: set[str], name: str) -> None:
    """Every manifest of a kind lists the same files (bagit would fail on a missing hash with a KeyError)."""
    if listed != reference:
        layer = "tag manifest" if name.startswith("tag") else "bag manifest"
        odd = sorted(listed ^ reference)[0]
        raise BagError(layer, odd, f"listed in only some of the {layer}s ({name} differs)")


def _decode(path: str) -> str:
    """A manifest path as bagit writes it, decoded: CR, LF and % are percent-encoded (RFC 8493 2.1.3)."""
    return _ESCAPED.sub(lambda match: _ESCAPES[match.group(0).lower()], path)
