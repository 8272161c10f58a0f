"""The researcher's Python API: the archive as pandas DataFrames.

    from dnm.api import Archive
    archive = Archive("sqlite:///var/archive.sqlite")
    listings = archive.listings(market="hollowmere", ships_to="DE")
    history = archive.view("listing_history")

Rows are those of `dnm export` (docs/data-dictionary.md): the same filters, the same columns, with
timestamps as timezone-aware pandas datetimes and amounts as exact `Decimal`s (a float would alter
the price the market showed; call `.astype(float)` when a computation needs it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from dnm.export import ExportFilter, export_rows
from models.db import open_reader
from models.views import VIEWS

if TYPE_CHECKING:
    import pandas as pd

TIME_COLUMNS = (
    "observed_at", "first_seen_at", "last_seen_at", "posted_at_earliest", "posted_at_latest",
    "last_seen_earliest", "last_seen_latest",
)  # fmt: skip
AMOUNT_COLUMNS = ("price_amount", "rating")


class Archive:
    """An archive opened for reading; every method returns a pandas DataFrame.

    A URL is opened read-only (models.db.open_reader): SQLite through `mode=ro`, PostgreSQL with
    read-only transactions, no migration run; `sql()` cannot change the archive by mistake.
    """

    def __init__(self, url: str | Engine | None = None) -> None:
        self.engine = url if isinstance(url, Engine) else open_reader(url)

    def listings(self, **filters: Any) -> pd.DataFrame:
        """Listing snapshots; filters of `ExportFilter`: market, crawl_id, since, until, vendor, category,
        ships_to."""
        return self._export("listings", filters)

    def vendors(self, **filters: Any) -> pd.DataFrame:
        """Vendor snapshots; filters market, crawl_id, since, until, vendor."""
        return self._export("vendors", filters)

    def feedback(self, **filters: Any) -> pd.DataFrame:
        """Feedback, stored once with its posting window; filters market, crawl_id, since, until, vendor."""
        return self._export("feedback", filters)

    def view(self, name: str) -> pd.DataFrame:
        """One of the documented SQL views (models/views.py): listing_history, vendor_summary, ..."""
        if name not in VIEWS:
            raise ValueError(f"unknown view {name!r}; views: {', '.join(VIEWS)}")
        return self.sql(f"SELECT * FROM {name}")

    def sql(self, query: str, **params: Any) -> pd.DataFrame:
        """Any read-only SELECT, with named parameters (`:name`)."""
        import pandas as pd

        with self.engine.connect() as connection:
            result = connection.execute(text(query), params)
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        return _typed(frame)

    def _export(self, kind: str, filters: dict[str, Any]) -> pd.DataFrame:
        import pandas as pd

        for bound in ("since", "until"):
            if isinstance(filters.get(bound), str):  # as on the command line: no offset means UTC
                value = datetime.fromisoformat(filters[bound])
                filters[bound] = value if value.tzinfo else value.replace(tzinfo=UTC)
        return _typed(
            pd.DataFrame.from_records(list(export_rows(self.engine, kind, ExportFilter(**filters))))
        )


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as UTC datetimes, amounts as exact Decimals."""
    import pandas as pd

    for column in TIME_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    for column in AMOUNT_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].map(
                lambda v: v if v is None or isinstance(v, Decimal) else Decimal(str(v))
            )
    return frame
