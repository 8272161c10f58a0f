"""pandas DataFrames of analytics results, for researchers who work in pandas (imported only on use)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any


def as_frame(rows: Iterable[Any]) -> Any:
    """A pandas DataFrame of a list of analytics dataclasses or dicts (one column per field).

    pandas is imported here and nowhere else in dnm.analytics, so the analytics run without it;
    without pandas this raises ImportError saying how to install it. Decimals stay Decimal objects
    (exact); call `.astype(float)` on a column where floats will do.
    """
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - pandas is installed with the project today
        raise ImportError("as_frame needs pandas: pip install pandas") from exc
    records = [dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row) for row in rows]
    return pandas.DataFrame.from_records(records)
