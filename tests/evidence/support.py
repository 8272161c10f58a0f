"""Shared pieces of the package tests: a demo archive with raw captures, an operator key, one clean
package (fixtures in tests/evidence/conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evidence.export import Selection, Signer, export_package
from models.db import open_engine
from tests.conftest import run_dnm

MARKET = "hollowmere"


@dataclass
class Archive:
    url: str
    raw: Path


@dataclass
class Operator:
    key: Path
    fingerprint: str


def vendor_of(archive: Archive) -> str:
    rows = run_dnm("export", "vendors", "--database", archive.url, "--market", MARKET).stdout.splitlines()
    return json.loads(rows[0])["vendor_id"]


def export(archive: Archive, signer: Signer, output: Path, **selection: object) -> Path:
    chosen = Selection(**{"market": MARKET, **selection})  # type: ignore[arg-type]
    return export_package(
        open_engine(archive.url), archive.raw, chosen, "case-17", output, signer, "Analyst A"
    )
