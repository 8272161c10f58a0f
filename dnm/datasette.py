"""Browsing a SQLite archive in Datasette: the metadata that describes its tables and views.

The descriptions come from the models' own docstrings and the views' definitions, so the browser
never tells something other than the code. `dnm browse` writes them to a temporary metadata file
and serves the archive read-only (`--immutable`) on loopback.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from models.base import Base
from models.views import VIEWS


def table_descriptions() -> dict[str, str]:
    """Table name -> the first paragraph of its model's docstring."""
    found: dict[str, str] = {}
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        doc = inspect.getdoc(cls) or ""
        found[mapper.local_table.name] = " ".join(doc.split("\n\n", 1)[0].split())
    return found


def metadata(database: Path | str) -> dict[str, Any]:
    """Datasette metadata for an archive file: title, licence note, a description per table and view."""
    name = Path(database).stem
    tables: dict[str, Any] = {table: {"description": text} for table, text in table_descriptions().items()}
    for view, (description, _) in VIEWS.items():
        tables[view] = {"description": description}
    return {
        "title": "dnm-archive",
        "description": (
            "Snapshots of dark-web marketplaces for research (docs/data-dictionary.md). "
            "Every row points at the page it was read from; prices are exact decimals as shown."
        ),
        "databases": {name: {"tables": tables}},
    }
