"""The declarative base shared by every archive table, with stable constraint names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.types import UTCDateTime

# Named constraints keep migrations reproducible on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of all archive tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SnapshotProvenance:
    """Columns every snapshot carries: which crawl saw it, when, on which page, read by which parser."""

    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    url: Mapped[str] = mapped_column(String(2000))
    page_sha256: Mapped[str] = mapped_column(String(64))
    # Hash of the normalized values that define the entity's state: equal hashes, nothing changed.
    content_sha256: Mapped[str] = mapped_column(String(64))
    profile_version: Mapped[str] = mapped_column(String(40))
