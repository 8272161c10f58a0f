"""Column types the archive needs on every backend: exact decimals and UTC-aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored exactly: NUMERIC where the backend has it, text on SQLite.

    SQLite has no decimal type and SQLAlchemy would round-trip through float, which turns a
    shown price of 0.1 BTC into 0.1000000000000000055... That is not acceptable in evidence.
    On PostgreSQL the NUMERIC has no precision or scale: it keeps any number of digits and the
    scale it was given (1.50 stays 1.50, as the text on SQLite does), where NUMERIC(38, 12) would
    round a 13th decimal away and pad every value to 12.
    """

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return format(Decimal(value), "f")
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC going in and coming out.

    SQLite drops the offset, so naive values read back are re-stamped as UTC; naive values going
    in are refused, because guessing a timezone silently is how archives get wrong by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: the archive stores UTC-aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
