"""Researcher access: export filters and formats, the SQL views, the pandas API, and Datasette."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy import inspect

from demo.truth import truth
from dnm.api import Archive
from dnm.export import ExportFilter, export_rows
from models.views import VIEWS
from tests.conftest import DemoArchive, run_dnm


def test_export_filters(demo_archive: DemoArchive) -> None:
    crawl = demo_archive.crawls["hollowmere", 1]
    rows = truth("hollowmere", 1, kind="listings")
    vendor = rows[0]["vendor_id"]
    category = rows[0]["category"][-1]

    def export(**filters: object) -> list[dict[str, object]]:
        return list(export_rows(demo_archive.engine, "listings", ExportFilter(crawl_id=crawl, **filters)))

    assert {r["listing_id"] for r in export(vendor=vendor)} == {
        r["listing_id"] for r in rows if r["vendor_id"] == vendor
    }
    assert {r["listing_id"] for r in export(category=category.upper())} == {
        r["listing_id"] for r in rows if category in r["category"]
    }
    assert {r["listing_id"] for r in export(ships_to="de")} == {
        r["listing_id"] for r in rows if "DE" in r["ships_to"]
    }
    with pytest.raises(ValueError, match="listings only"):
        list(export_rows(demo_archive.engine, "vendors", ExportFilter(ships_to="DE")))


def test_parquet_export_opens_in_pandas(demo_archive: DemoArchive, tmp_path: Path) -> None:
    import pandas as pd

    out = tmp_path / "listings.parquet"
    crawl = demo_archive.crawls["copperline", 2]
    result = run_dnm("export", "listings", "--format", "parquet", "--crawl", str(crawl), "--output", str(out),
                     "--database", demo_archive.url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(out)
    assert len(frame) == len(truth("copperline", 2, kind="listings"))
    row = frame.iloc[0]
    assert isinstance(row["ships_to"].tolist(), list) and isinstance(row["price_amount"], str)
    assert "parquet writes a file" in run_dnm("export", "listings", "--format", "parquet").stderr


def test_csv_and_jsonl_exports_open_in_pandas(demo_archive: DemoArchive, tmp_path: Path) -> None:
    import pandas as pd

    crawl = str(demo_archive.crawls["hollowmere", 2])
    for fmt, reader in (("csv", pd.read_csv), ("jsonl", lambda p: pd.read_json(p, lines=True))):
        out = tmp_path / f"vendors.{fmt}"
        run_dnm(
            "export",
            "vendors",
            "--format",
            fmt,
            "--crawl",
            crawl,
            "-o",
            str(out),
            "--database",
            demo_archive.url,
        )
        assert len(reader(out)) == len(truth("hollowmere", 2, kind="vendors"))


def test_pandas_api(demo_archive: DemoArchive) -> None:
    archive = Archive(demo_archive.engine)
    crawl = demo_archive.crawls["hollowmere", 1]
    listings = archive.listings(crawl_id=crawl)
    assert len(listings) == len(truth("hollowmere", 1, kind="listings"))
    assert str(listings["observed_at"].dt.tz) == "UTC"
    assert all(isinstance(v, Decimal) for v in listings["price_amount"].dropna())
    feedback = archive.feedback(market="copperline", since="2026-01-01")
    assert len(feedback) > 0
    assert len(archive.vendors(market="hollowmere", crawl_id=crawl)) == len(
        truth("hollowmere", 1, kind="vendors")
    )


def test_views_answer_the_documented_questions(demo_archive: DemoArchive) -> None:
    archive = Archive(demo_archive.engine)
    history = archive.view("listing_history")
    listing = truth("hollowmere", 2, kind="listings")[0]
    rows = history[(history.market == "hollowmere") & (history.listing_id == listing["listing_id"])]
    assert listing["price_amount"] in {str(v) for v in rows["price_amount"]}
    summary = archive.view("vendor_summary")
    assert set(summary.columns) >= {"market", "vendor_id", "listings", "feedback", "last_seen_at"}
    assert (summary["snapshots"] >= 1).all()
    matrix = archive.view("shipping_matrix")
    assert (matrix["listings"] > 0).all() and set(matrix["market"]) == {"hollowmere", "copperline"}
    identities = archive.view("vendor_identities")
    shared = identities[identities["accounts"] > 1]
    # The demo has vendors sharing one key across the two markets.
    assert shared.groupby("fingerprint")["market"].nunique().max() == 2
    with pytest.raises(ValueError, match="unknown view"):
        archive.view("pages; DROP TABLE pages")
    assert set(VIEWS) <= set(inspect(demo_archive.engine).get_view_names())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.sqlite_only("Datasette opens SQLite files")
def test_datasette_serves_the_archive_with_descriptions(demo_archive: DemoArchive) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dnm.cli", "browse", "--database", demo_archive.url, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                meta = requests.get(f"{base}/-/metadata.json", timeout=2).json()
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    server.stderr.read() if server.stderr else ""
                )
                time.sleep(0.2)
        database = Path(demo_archive.url.removeprefix("sqlite:///")).stem
        tables = meta["databases"][database]["tables"]
        assert tables["listing_snapshots"]["description"] and tables["listing_history"]["description"]
        rows = requests.get(
            f"{base}/{database}/listing_history.json?_shape=array&market=copperline", timeout=10
        ).json()
        assert rows and all(row["market"] == "copperline" for row in rows)
        page = requests.get(f"{base}/{database}/vendor_summary", timeout=10).text
        assert VIEWS["vendor_summary"][0].split(":")[0] in page
        # Read-only: Datasette was told the file is immutable.
        assert json.loads(requests.get(f"{base}/-/databases.json", timeout=5).text)[0]["is_mutable"] is False
    finally:
        server.terminate()
        server.wait(timeout=10)


def documented_queries() -> list[str]:
    """The SQL of docs/data-dictionary.md's "Example queries", one statement each."""
    text_ = (Path(__file__).parents[2] / "docs" / "data-dictionary.md").read_text()
    block = text_.split("## Example queries", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";\n")]
    return [s.rstrip(";") for s in statements if s.strip("\n -")]


@pytest.mark.sqlite_only("the examples use SQLite's json_each")
def test_the_documented_queries_run_and_read_no_sighting_they_do_not_need(demo_archive: DemoArchive) -> None:
    queries = documented_queries()
    assert len(queries) >= 5
    with demo_archive.engine.connect() as connection:
        for query in queries:
            connection.exec_driver_sql(query).all()
            # Sightings are indexed crawl first: an example that scans all of them would take seconds at a
            # year of data (docs/data-dictionary.md, listing_snapshots).
            plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}")]
            assert not [step for step in plan if step.startswith("SCAN si")], (query, plan)
