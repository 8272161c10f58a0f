"""The evidence benchmark on a small market: the package it times holds exactly the vendor's captures the
set-up wrote, verifies, and its floors are taken over the package's own bytes.

No timing is checked (the benchmark runs on demand, never here). The run uses the test pass's backend
(DNM_TEST_DATABASE) and needs openssl for the local TSA: without it the tests skip, under CI=true they fail.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bench.evidence import EXIT_MISSED, EXIT_PASS, Archive, check, copied_spans, main, package_facts
from evidence import package as layout
from evidence.keys import fingerprint, load_private_key
from evidence.verify import verify_package
from tests.conftest import POSTGRES_ADMIN_URL, TEST_DATABASE, require_postgresql
from tests.evidence.tsa import require_openssl

CAPTURES = 30


@dataclass
class Run:
    workdir: Path
    code: int
    out: str
    err: str
    figures: dict[str, Any]

    @property
    def package(self) -> Path:
        return next((self.workdir / "packages" / "round-1").iterdir())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One small run (a 200-listing market, one round) on the test pass's backend."""
    require_openssl()
    if TEST_DATABASE == "postgresql":
        require_postgresql()
    workdir = tmp_path_factory.mktemp("bench-evidence")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(
            ["--captures", str(CAPTURES), "--rounds", "1", "--backend", TEST_DATABASE, "--listings", "200",
             "--vendors", "20", "--vendor-listings", "9", "--seed", "3", "--postgres-url", POSTGRES_ADMIN_URL,
             "--workdir", str(workdir), "--json", str(workdir / "figures.json")]
        )  # fmt: skip
    figures = json.loads((workdir / "figures.json").read_text()) if code != 2 else {}
    return Run(workdir, code, out.getvalue(), err.getvalue(), figures)


def test_the_package_holds_the_captures_the_set_up_wrote_and_verifies(run: Run) -> None:
    assert run.code in (EXIT_PASS, EXIT_MISSED), run.err[-3000:]
    assert run.figures["problems"] == []
    archive, package = run.figures["archive"], run.figures["package"]
    assert archive["captures"] == package["captures"] == CAPTURES
    assert package["unreferenced_rows"] == 0
    # One listing row per listing page of the vendor fetched, one vendor row per profile page fetched.
    assert package["rows"]["listings"] == archive["fetches"]["listing"] > CAPTURES / 2
    assert package["rows"]["vendors"] == archive["fetches"]["vendor"] >= 2
    assert archive["nights"] == len(archive["crawl_ids"]) >= 2
    # The package verifies with the pinned key and TSA root alone (the TSA is stopped by now: offline).
    key = load_private_key(run.workdir / "keys" / "operator.key")
    root = (run.workdir / "tsa" / "root" / "root.pem").read_bytes()
    verified = verify_package(run.package, fingerprint(key.public_key()), root)
    assert [layer for layer, _ in verified.passed][-1] == "provenance"
    assert f"{CAPTURES:,} captures in its package ({CAPTURES:,} written)" in run.out


def test_every_round_step_and_floor_is_measured_and_printed(run: Run) -> None:
    seconds = run.figures["seconds"]
    for name in ("export", "export_cpu", "verify", "verify_cpu", "copy_floor", "hash_floor", "sources_floor"):
        assert len(seconds[name]) == 1 and seconds[name][0] > 0, name
    steps, medians = run.figures["steps"], run.figures["medians"]
    for name in ("export", "verify"):  # steps inside other steps (a leading space) are not added
        assert 0 < sum(s for step, s in steps[name].items() if not step.startswith(" ")) <= medians[name]
    assert steps["export"]["verify_package"] > 0 and steps["export"]["write_pdf"] > 0
    assert run.figures["ratios"]["export"] == pytest.approx(medians["export"] / medians["export_floor"])
    for name in ("export", "verify"):
        line = next(line for line in run.out.splitlines() if line.startswith(name + " "))
        assert line.endswith(("PASS", "MISS")), line
    # The copy floor copies exactly the records the WACZ holds, from where the raw store has them.
    spans = copied_spans(run.package, run.workdir / "warc")
    assert (
        len(spans) == run.figures["package"]["records"] - run.figures["package"]["crawls"]
    )  # but network-path


def test_the_check_catches_figures_that_do_not_add_up(run: Run, tmp_path: Path) -> None:
    facts = package_facts(run.package)
    archive = run.figures["archive"]
    written = Archive(
        url="unused", raw=run.workdir / "warc", vendor=archive["vendor"], vendor_listings=9,
        captures=archive["captures"], fetches=dict(archive["fetches"]),
    )  # fmt: skip
    assert check(written, facts) == []
    assert any("captures" in p for p in check(replace(written, captures=CAPTURES + 1), facts))
    fewer = {**written.fetches, "listing": written.fetches["listing"] - 1}
    assert any("listings rows" in p for p in check(replace(written, fetches=fewer), facts))
    # A row pointing at a record the WACZ does not hold.
    broken = tmp_path / "package"
    (broken / layout.EXTRACTED).mkdir(parents=True)
    for relative in (layout.CAPTURES, layout.PROVENANCE):
        (broken / relative).parent.mkdir(parents=True, exist_ok=True)
        (broken / relative).write_bytes((run.package / relative).read_bytes())
    row = {"warc_filename": "archive/none.warc.gz", "warc_record_id": "<urn:uuid:0>"}
    (broken / layout.EXTRACTED / "listings.jsonl").write_text(json.dumps(row) + "\n")
    problems = check(written, package_facts(broken))
    assert any("refer to no response record" in p for p in problems)
    assert any("captures" in p for p in problems)
