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


class ViewBase(DeclarativeBase):
    """Base class of the read-only classes mapped onto SQL views (models.views): never created as tables."""

    metadata = MetaData()


class EntityState:
    """Columns every deduplicated state carries: the hash that says whether anything changed, and the
    parser that read it. A state row is written when an entity is first seen and again only when its
    values change (or a different parser version reads it); every crawl that sees it writes a sighting."""

    # Hash of the normalized values that define the entity's state: equal hashes, nothing changed.
    content_sha256: Mapped[str] = mapped_column(String(64))
    profile_version: Mapped[str] = mapped_column(String(40))


class Sighting:
    """Columns of the cheap per-crawl record that a crawl saw an entity: which crawl, on which page, in
    which state. One row per entity per crawl, however long the entity stays unchanged."""

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_id: Mapped[int] = mapped_column(ForeignKey("crawls.id"))
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"))


class SnapshotProvenance:
    """Columns of a snapshot (a sighting joined to its state and page): which crawl saw it, when, on
    which page (the page body's SHA-256), in which state, read by which parser."""

    # The sighting's id: one snapshot per entity per crawl.
    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_id: Mapped[int] = mapped_column()
    page_id: Mapped[int] = mapped_column()
    state_id: Mapped[int] = mapped_column()
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    url: Mapped[str] = mapped_column(String(2000))
    page_sha256: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64))
    profile_version: Mapped[str] = mapped_column(String(40))
