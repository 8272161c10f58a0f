"""Writing crawls into the archive: one crawl row, then pages with what they showed, a transaction a batch.

Storage grows with change, not with time. A page's body is a `payloads` row shared by every fetch that
returned it. A listing's or vendor's values are a *state*, written when they differ from the entity's
latest state (by the hash of its normalized values, `content_hash`, and the parser version); every
crawl that sees the entity adds a *sighting*, a few integers. Nothing an earlier crawl wrote is changed.
Entities (markets, vendors, listings, categories, keys) are upserted by the market's own ids.
Feedback is stored once and sighted again by later crawls (models.feedback).

A batch (`write_pages`, one transaction) is written in three steps, each a handful of bulk statements
rather than statements per record: the pages (bodies and URLs interned first), the entities the batch
names for the first time (in the order the records name them, so ids come out as one record at a time
would give them), then the records read into plain rows (states with their prices, regions and shipping
options, sightings, feedback, category counts) inserted table by table at the end. On SQLite the batch
holds the write lock from its start, rows take their ids as SQLite would give them, and inserts, updates
and lookups of interned values run on the driver's cursor (the SQL and bind processing of SQLAlchemy's
statements, compiled once); on PostgreSQL large inserts go by COPY, with ids drawn from the tables'
sequences, and the tables are analyzed after the crawl that first fills them. A batch that fails leaves
nothing, in the archive or in the writer's memory of the crawl.
"""

from __future__ import annotations

import gc
import hashlib
import json
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    column,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import values as values_table
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from dnm.normalize.dates import TimeSpan
from dnm.normalize.prices import Price
from dnm.normalize.regions import Regions
from dnm.profile import Profile
from dnm.records import Record
from dnm.recovery import process_identity
from models import (
    Category,
    CategoryObservation,
    Crawl,
    Feedback,
    Listing,
    ListingPrice,
    ListingSighting,
    ListingState,
    Market,
    Page,
    Payload,
    PgpKey,
    ShippingOption,
    ShippingRegion,
    Url,
    Vendor,
    VendorKey,
    VendorSighting,
    VendorState,
)
from models.checkpoint import WalCheckpointer
from models.crawl import digest_prefix
from models.db import session_factory
from models.types import UTCDateTime


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_PAGES = _table(Page)
_PAYLOADS = _table(Payload)
_URLS = _table(Url)
_VENDORS = _table(Vendor)
_LISTINGS = _table(Listing)
_CATEGORIES = _table(Category)
_PGP_KEYS = _table(PgpKey)
_VENDOR_KEYS = _table(VendorKey)
_FEEDBACK = _table(Feedback)
_STATES = {"listing": _table(ListingState), "vendor": _table(VendorState)}
_SIGHTINGS = {"listing": _table(ListingSighting), "vendor": _table(VendorSighting)}
_LISTING_PRICES = _table(ListingPrice)
_SHIPPING_REGIONS = _table(ShippingRegion)
_SHIPPING_OPTIONS = _table(ShippingOption)
_OBSERVATIONS = _table(CategoryObservation)

# Built once: SQLAlchemy finds a statement's compiled form by its structure, which it need not walk anew.
_RESIGHT_FEEDBACK = (
    update(_FEEDBACK)
    .where(_FEEDBACK.c.id == bindparam("feedback_id"))
    .values(
        last_crawl_id=bindparam("crawl"),
        last_seen_at=bindparam("seen_at", type_=UTCDateTime()),
        sightings=_FEEDBACK.c.sightings + 1,
    )
)
_NARROW_FEEDBACK = _RESIGHT_FEEDBACK.values(
    posted_earliest=bindparam("earliest", type_=UTCDateTime()),
    posted_latest=bindparam("latest", type_=UTCDateTime()),
    listing_id=bindparam("listing"),
)
# The same on PostgreSQL for all of a batch's rows at once (`_resight`): (id, seen at) pairs, two arrays.
_RESIGHTS = (
    func.unnest(
        bindparam("ids", type_=ARRAY(_FEEDBACK.c.id.type)), bindparam("seen", type_=ARRAY(UTCDateTime()))
    )
    .table_valued("feedback_id", "seen_at")
    .render_derived(with_types=False)
)
_RESIGHT_FEEDBACK_ARRAYS = (
    update(_FEEDBACK)
    .where(_FEEDBACK.c.id == _RESIGHTS.c.feedback_id)
    .values(
        last_crawl_id=bindparam("crawl"),
        last_seen_at=_RESIGHTS.c.seen_at,
        sightings=_FEEDBACK.c.sightings + 1,
    )
)
_RELINK_KEYS = (
    update(_VENDOR_KEYS)
    .where(_VENDOR_KEYS.c.id == bindparam("link_id"))
    .values(
        last_crawl_id=bindparam("crawl"),
        printed_fingerprint_matches=func.coalesce(
            bindparam("matches"), _VENDOR_KEYS.c.printed_fingerprint_matches
        ),
    )
)
# Values per IN (...) list on SQLite: well under its limit on bound parameters.
_CHUNK = 500


@dataclass(frozen=True)
class CapturedPage:
    """What the archive needs to know about a page to file its records."""

    url: str
    page_type: str
    status: int
    sha256: str
    size: int
    fetched_at: datetime
    server_time: datetime | None
    extraction_errors: int
    # Its raw capture (dnm.rawstore), when it was written to one.
    warc_file: str | None = None
    warc_record_id: str | None = None
    payload_sha256: str | None = None


@dataclass(frozen=True)
class CrawlSetup:
    """How a crawl was run, recorded on its row."""

    tool_version: str
    settings_sha256: str
    transport: str
    mirror: str | None = None
    tor_version: str | None = None
    # A re-parse of this crawl's raw captures (`dnm reparse`): it reads old pages again, it sees nothing
    # new of the market, so it leaves the state of entities alone (names, key links, feedback sightings).
    reparse_of: int | None = None


class _NewState:
    """A state row read in this batch, its child rows (a listing's prices, regions and shipping options),
    and its id once inserted."""

    __slots__ = ("children", "content", "entity_id", "id", "row")

    def __init__(
        self, entity_id: int, content: str, row: dict[str, Any], children: tuple[list[dict[str, Any]], ...]
    ) -> None:
        self.entity_id = entity_id
        self.content = content
        self.row = row
        self.children = children
        self.id = 0


class _Batch:
    """What one `write_pages` call writes after reading its records, and what it added to the writer's
    memory of the crawl (taken back if the transaction fails)."""

    def __init__(self) -> None:
        self.states: dict[str, list[_NewState]] = {"listing": [], "vendor": []}
        # Sighting rows; "state_id" is an int, or the _NewState whose id it takes once inserted.
        self.sightings: dict[str, list[dict[str, Any]]] = {"listing": [], "vendor": []}
        self.observations: list[dict[str, Any]] = []
        self.feedback: list[tuple[dict[str, Any], _KnownFeedback]] = []
        # Feedback and key links seen again: updated at the end (one executemany each), feedback whose
        # posting window or listing link this sighting changed apart from the (many more) others.
        self.resighted: list[dict[str, Any]] = []
        self.narrowed: list[dict[str, Any]] = []
        self.relinked: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        # Entities first sighted in this crawl by the batch, by kind.
        self.seen: dict[str, list[int]] = {"listing": [], "vendor": [], "category": []}
        self.duplicates = 0


class ArchiveWriter:
    """Files one crawl's pages and records into the archive."""

    def __init__(self, engine: Engine, profile: Profile, setup: CrawlSetup) -> None:
        self.engine = engine
        self.profile = profile
        self.setup = setup
        self.sessions = session_factory(engine)
        self.crawl_id: int | None = None
        self.market_id: int | None = None
        self.duplicates = 0
        self.states_written = 0
        # SQLite's checkpoints run beside the writer while a crawl is open (models.checkpoint).
        self._checkpointer: WalCheckpointer | None = None
        # Entities sighted in this crawl, by kind: a second sighting is a duplicate.
        self._seen: dict[str, set[int]] = {"listing": set(), "vendor": set(), "category": set()}
        self._forget_all()

    def _forget_all(self) -> None:
        """Empty every cache of the archive's rows (they are loaded again from what is committed)."""
        # The market's entities by the market's own keys, loaded once: a night's crawl touches most of
        # them, and one query each beats one query per record.
        self._vendors: dict[str, int] = {}
        self._vendor_names: dict[int, str] = {}
        self._listings: dict[str, int] = {}
        self._categories: dict[str, int] = {}
        self._keyed_categories: set[str] = set()
        self._keys: dict[str, int] = {}
        self._key_links: dict[tuple[int, int], int] = {}
        # Archived feedback by vendor and text hash, loaded for the (vendor, text) pairs the crawl shows,
        # and how far back each pair is loaded: archived feedback whose window ends before then cannot be
        # one the crawl has shown so far (None: all of the pair's is loaded).
        self._feedback: dict[int, dict[str, list[_KnownFeedback]]] = {}
        self._feedback_since: dict[tuple[int, str], datetime | None] = {}
        # The latest state of each of the market's listings and vendors: (state id, content hash, parser).
        self._states: dict[str, dict[int, tuple[int, str, str]]] = {"listing": {}, "vendor": {}}
        # Each listing's page body and state in the market's last crawl: the same bytes read by the same
        # parser give the same values, so an unchanged page is a sighting without re-hashing its record.
        self._last_pages: dict[int, tuple[str, int]] = {}
        # Page bodies by digest: their payload row and the raw capture record it names.
        self._payloads: dict[str, int] = {}
        self._payload_records: dict[str, str | None] = {}
        self._urls: dict[str, int] = {}

    # -- crawl lifecycle -------------------------------------------------------------------

    def begin(self) -> int:
        """Create the market if new and a `running` crawl row; returns the crawl id."""
        now = datetime.now(UTC)
        # Loading the caches allocates a row object per entity of the market, all kept: see _collector_paused.
        with _collector_paused(), self.sessions.begin() as session:
            market = session.scalar(select(Market).where(Market.slug == self.profile.market))
            if market is None:
                market = Market(slug=self.profile.market, name=self.profile.name, created_at=now)
                session.add(market)
                session.flush()
            crawl = Crawl(
                market_id=market.id,
                started_at=now,
                status="running",
                tool_version=self.setup.tool_version,
                profile_version=self.profile.parser_version,
                profile_sha256=self.profile.sha256,
                settings_sha256=self.setup.settings_sha256,
                transport=self.setup.transport,
                tor_version=self.setup.tor_version,
                mirror=self.setup.mirror,
                reparse_of=self.setup.reparse_of,
                # Which process runs it: if that process dies, the next crawl closes the row (dnm.recovery).
                stats={"dnm/process": process_identity()},
            )
            session.add(crawl)
            session.flush()
            self.crawl_id, self.market_id = crawl.id, market.id
            self._load_entities(session.connection())
        self._checkpointer = WalCheckpointer.for_engine(self.engine)
        if self._checkpointer is not None:
            # A writer dropped without finish() (its crawl failed) does not leave the thread behind.
            weakref.finalize(self, self._checkpointer.close)
        return self.crawl_id

    def _load_entities(self, connection: Connection) -> None:
        market = self.market_id
        for vendor_id, key, name in connection.execute(
            select(Vendor.id, Vendor.vendor_key, Vendor.name).where(Vendor.market_id == market)
        ):
            self._vendors[key] = vendor_id
            self._vendor_names[vendor_id] = name
        self._listings.update(
            (key, listing_id)
            for listing_id, key in connection.execute(
                select(Listing.id, Listing.listing_key).where(Listing.market_id == market)
            )
        )
        self._categories.update(
            (key, category_id)
            for category_id, key in connection.execute(
                select(Category.id, Category.path_key).where(Category.market_id == market)
            )
        )
        for kind, state in (("listing", ListingState), ("vendor", VendorState)):
            entity, owner = (
                (ListingState.listing_id, Listing) if kind == "listing" else (VendorState.vendor_id, Vendor)
            )
            newest = (
                select(func.max(state.id)).join(owner, owner.id == entity).where(owner.market_id == market)
            ).group_by(entity)
            self._states[kind] = {
                entity_id: (state_id, content, parser)
                for entity_id, state_id, content, parser in connection.execute(
                    select(entity, state.id, state.content_sha256, state.profile_version).where(
                        state.id.in_(newest)
                    )
                ).all()
            }
        last_crawl = (
            select(func.max(Crawl.id))
            .where(Crawl.market_id == market, Crawl.reparse_of.is_(None), Crawl.id != self.crawl_id)
            .scalar_subquery()
        )
        for listing_id, state_id, page_sha256, payload_id, record in connection.execute(
            select(
                ListingSighting.listing_id, ListingSighting.state_id, Payload.sha256, Payload.id,
                Payload.warc_record_id,
            )
            .join(Page, Page.id == ListingSighting.page_id)
            .join(Payload, Payload.id == Page.payload_id)
            .where(ListingSighting.crawl_id == last_crawl)
        ):  # fmt: skip
            self._last_pages[listing_id] = (page_sha256, state_id)
            # The bodies fetched again unchanged need no lookup.
            self._payloads[page_sha256] = payload_id
            self._payload_records[page_sha256] = record
        # The URLs of the last crawl: most of them are fetched again.
        self._urls.update(
            (url, url_id)
            for url_id, url in connection.execute(
                select(Url.id, Url.url).join(Page, Page.url_id == Url.id).where(Page.crawl_id == last_crawl)
            ).all()
        )
        self._key_links.update(
            ((vendor_id, key_id), link_id)
            for link_id, vendor_id, key_id in connection.execute(
                select(VendorKey.id, VendorKey.vendor_id, VendorKey.pgp_key_id)
                .join(Vendor, VendorKey.vendor_id == Vendor.id)
                .where(Vendor.market_id == market)
            )
        )

    def finish(
        self, status: str, reason: str | None, stats: dict[str, Any], mirror: str | None = None
    ) -> None:
        """Close the crawl row with its final status and stats (and the mirror it ended up using)."""
        try:
            self._close_crawl(status, reason, stats, mirror)
        finally:
            if self._checkpointer is not None:
                self._checkpointer.close()

    def _close_crawl(
        self, status: str, reason: str | None, stats: dict[str, Any], mirror: str | None
    ) -> None:
        with self.sessions.begin() as session:
            crawl = session.get(Crawl, self.crawl_id)
            assert crawl is not None
            if mirror:
                crawl.mirror = mirror
            crawl.finished_at = datetime.now(UTC)
            crawl.status = status
            crawl.status_reason = reason
            process = (crawl.stats or {}).get("dnm/process")
            crawl.stats = json.loads(json.dumps({"dnm/process": process, **stats}, default=str))
            if self.engine.dialect.name == "postgresql":
                _analyze_unplanned(session.connection())

    # -- pages -----------------------------------------------------------------------------

    def write_page(self, page: CapturedPage, records: list[Record]) -> None:
        """Store a page and its records atomically: either all of it is archived or none."""
        self.write_pages([(page, records)])

    def write_pages(self, pages: list[tuple[CapturedPage, list[Record]]]) -> None:
        """Store several pages with their records in one transaction: all of them or, on failure, none."""
        if not pages:
            return
        batch = _Batch()
        try:
            # A connection, not an ORM session: the batch is written with Core and driver statements only.
            with _collector_paused(), self.engine.begin() as connection:
                if self._checkpointer is not None:
                    self._checkpointer.adopt(connection)
                page_ids = self._insert_pages(connection, pages, _serialized(connection))
                # Vendors first: listings and feedback on the same page refer to them.
                ordered = [
                    (page_id, page, records if len(records) < 2 else sorted(records, key=_vendors_first))
                    for page_id, (page, records) in zip(page_ids, pages, strict=True)
                ]
                self._create_entities(connection, ordered)
                for page_id, page, records in ordered:
                    for record in records:
                        getattr(self, f"_store_{record.kind}")(connection, batch, page_id, page, record)
                self._insert_rows(connection, batch)
        except BaseException:
            self._forget_batch(batch)
            raise
        if self._checkpointer is not None:
            self._checkpointer.committed()
        self.duplicates += batch.duplicates
        for kind, states in batch.states.items():
            latest = self._states[kind]
            parser = self.profile.parser_version
            for state in states:
                latest[state.entity_id] = (state.id, state.content, parser)
            self.states_written += len(states)

    def _forget_batch(self, batch: _Batch) -> None:
        """After a rolled-back batch: unsee what it saw, and drop every cached id (some name rows that
        are gone); they are loaded again from the archive."""
        for kind, entity_ids in batch.seen.items():
            self._seen[kind].difference_update(entity_ids)
        self._forget_all()
        with self.engine.connect() as connection:
            self._load_entities(connection)

    def _insert_pages(
        self, connection: Connection, pages: list[tuple[CapturedPage, list[Record]]], serialized: bool
    ) -> list[int]:
        payload_ids = self._payload_ids(connection, [page for page, _ in pages], serialized)
        self._interned(connection, serialized, _URLS.c.url, self._urls, {page.url: {} for page, _ in pages})
        urls, crawl_id = self._urls, self.crawl_id
        return _insert_with_ids(
            connection,
            _PAGES,
            [
                {
                    "crawl_id": crawl_id,
                    "url_id": urls[page.url],
                    "page_type": page.page_type,
                    "status": page.status,
                    "fetched_at": page.fetched_at,
                    "server_time": page.server_time,
                    "extraction_errors": page.extraction_errors,
                    "payload_id": payload_ids[page.sha256],
                }
                for page, _ in pages
            ],
        )

    def _insert_rows(self, connection: Connection, batch: _Batch) -> None:
        """Insert what the batch's records gave, table by table, and apply its updates."""
        for kind, states in batch.states.items():
            if not states:
                continue
            ids = _insert_with_ids(connection, _STATES[kind], [state.row for state in states])
            for state, state_id in zip(states, ids, strict=True):
                state.id = state_id
            if kind == "listing":
                for position, table in enumerate((_LISTING_PRICES, _SHIPPING_REGIONS, _SHIPPING_OPTIONS)):
                    rows = []
                    for state in states:
                        for row in state.children[position]:
                            row["state_id"] = state.id
                            rows.append(row)
                    if rows:
                        _insert(connection, table, rows)
        for kind, rows in batch.sightings.items():
            for row in rows:
                state = row["state_id"]
                if type(state) is _NewState:
                    row["state_id"] = state.id
            if rows:
                _insert(connection, _SIGHTINGS[kind], rows)
        if batch.observations:
            _insert(connection, _OBSERVATIONS, batch.observations)
        if batch.feedback:
            ids = _insert_with_ids(connection, _FEEDBACK, [row for row, _ in batch.feedback])
            for (_, known), feedback_id in zip(batch.feedback, ids, strict=True):
                known.id = feedback_id
        if batch.links:
            ids = _insert_with_ids(connection, _VENDOR_KEYS, batch.links)
            for row, link_id in zip(batch.links, ids, strict=True):
                self._key_links[row["vendor_id"], row["pgp_key_id"]] = link_id
        if batch.narrowed:
            _executemany(connection, _NARROW_FEEDBACK, batch.narrowed)
        if batch.resighted:
            _resight(connection, batch.resighted)
        if batch.relinked:
            _executemany(connection, _RELINK_KEYS, batch.relinked)

    def _payload_ids(
        self, connection: Connection, pages: list[CapturedPage], serialized: bool
    ) -> dict[str, int]:
        """The payload row of each page body, created if the archive has not held the body before."""
        wanted = {page.sha256: page for page in pages}
        rows = {
            sha: {"sha256_prefix": digest_prefix(sha), "size": page.size, "warc_file": page.warc_file,
                  "warc_record_id": page.warc_record_id}
            for sha, page in wanted.items()
        }  # fmt: skip
        # SQLite finds digests by their first 64 bits, its only index on them (models.crawl.Payload).
        found_by = _PAYLOADS.c.sha256_prefix if connection.dialect.name == "sqlite" else None
        records = self._payload_records
        for _, sha, record in self._interned(
            connection, serialized, _PAYLOADS.c.sha256, self._payloads, rows, _PAYLOADS.c.warc_record_id,
            found_by=found_by,
        ):  # fmt: skip
            records[sha] = record
        for sha, page in wanted.items():
            if page.warc_record_id is not None and records[sha] != page.warc_record_id:
                # Stored before without its raw capture (or in a file no longer in the store): this
                # fetch's capture holds the bytes now.
                connection.execute(
                    update(_PAYLOADS)
                    .where(_PAYLOADS.c.id == self._payloads[sha])
                    .values(warc_file=page.warc_file, warc_record_id=page.warc_record_id)
                )
                records[sha] = page.warc_record_id
        return {sha: self._payloads[sha] for sha in wanted}

    def _interned(
        self,
        connection: Connection,
        serialized: bool,
        key: Any,
        known: dict[str, int],
        rows: dict[str, dict[str, Any]],
        *read_columns: Any,
        found_by: Any = None,
    ) -> list[Any]:
        """Make sure a table of unique values (`key`) has a row for each value of `rows` (value -> other
        columns); `known` (value -> id) is filled in. Returns (id, value, *read) of the values that were
        not known before. Concurrent crawls may bring the same value: unless the transaction is
        `serialized` (no other writer until it ends), the insert skips a row another one made first, and
        the select reads whichever was made.

        `found_by`: a column of `rows` the values are looked up by instead (an index on a part of the
        key; the key is compared on the rows found). It is given on SQLite only, where the key has no
        unique index to skip a row on, and where none is needed: no other writer can store a value
        between this transaction's lookup and its insert (SQLite has one writer, and a transaction that
        read the archive before another's commit cannot write after it).
        """
        missing = [value for value in rows if value not in known]
        found: list[Any] = []
        if not missing:
            return found
        table = key.table
        columns = [table.c.id, key, *read_columns]

        def read(values: list[str]) -> None:
            wanted = set(values)
            for chunk in _chunks(connection, values):
                if found_by is None:
                    matches = _lookup(connection, columns, key, chunk)
                else:
                    matches = _lookup(
                        connection, columns, found_by, [rows[value][found_by.key] for value in chunk]
                    )
                for row in matches:
                    if row[1] in wanted:
                        known[row[1]] = row[0]
                        found.append(row)

        # Most values of a night were stored by an earlier one: look them up first, insert only the rest.
        read(missing)
        new = [value for value in missing if value not in known]
        if not new:
            return found
        inserted = [{key.key: value, **rows[value]} for value in new]
        if serialized or found_by is not None:
            # Nobody can have stored one of them since the lookup: plain inserts, ids as they come.
            for value, row_id in zip(new, _insert_with_ids(connection, table, inserted), strict=True):
                known[value] = row_id
                found.append((row_id, value, *(rows[value][column.key] for column in read_columns)))
            return found
        upsert = (postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert)(table)
        connection.execute(upsert.on_conflict_do_nothing(index_elements=[key.key]), inserted)
        read(new)
        return found

    # -- entities --------------------------------------------------------------------------

    def _create_entities(
        self, connection: Connection, ordered: list[tuple[int, CapturedPage, list[Record]]]
    ) -> None:
        """Insert the vendors, listings, categories and keys the batch names for the first time, and load
        the archived feedback with the vendor and words of each feedback it shows.

        Records are read in the order `_store_*` reads them, and an entity takes its columns from the
        first record that names it where `_store_*` would create it (a listing page seen twice names its
        vendor once; a listing whose page is unchanged names no vendor).
        """
        new_vendors: dict[str, dict[str, Any]] = {}
        new_listings: dict[str, dict[str, Any]] = {}
        new_categories: dict[str, dict[str, Any]] = {}
        new_keys: dict[str, dict[str, Any]] = {}
        sighted: dict[str, set[str]] = {"listing": set(), "vendor": set()}
        # (vendor key, text hash) -> the earliest its sightings in the batch may have been posted (None: any
        # time): archived feedback with those words whose window ends before then cannot be one of them.
        feedback_shown: dict[tuple[str, str], datetime | None] = {}
        market, vendors, listings, seen = self.market_id, self._vendors, self._listings, self._seen
        latest_states, parser = self._states["listing"], self.profile.parser_version

        def vendor(key: str, name: str | None, at: datetime) -> None:
            if key not in vendors and key not in new_vendors:
                new_vendors[key] = {"market_id": market, "vendor_key": key, "name": name or key,
                                    "first_seen_at": at}  # fmt: skip

        def listing(key: str, at: datetime) -> int | None:
            listing_id = listings.get(key)
            if listing_id is None and key not in new_listings:
                new_listings[key] = {"market_id": market, "listing_key": key, "first_seen_at": at}
            return listing_id

        def category(path: list[str], key: str | None) -> None:
            path_key = " > ".join(path)
            if path_key not in self._categories and path_key not in new_categories:
                new_categories[path_key] = {"market_id": market, "path_key": path_key, "path": list(path),
                                            "category_key": key}  # fmt: skip

        def first_sighting(kind: str, key: str, entity_id: int | None) -> bool:
            if key in sighted[kind] or entity_id in seen[kind]:
                return False
            sighted[kind].add(key)
            return True

        for _, page, records in ordered:
            at = page.fetched_at
            for record in records:
                values = record.values
                if record.kind == "listing":
                    key = values["listing_id"]
                    listing_id = listing(key, at)
                    if not first_sighting("listing", key, listing_id):
                        continue
                    latest = latest_states.get(listing_id) if listing_id is not None else None
                    if (
                        latest is not None
                        and latest[2] == parser
                        and self._last_pages.get(listing_id) == (page.sha256, latest[0])
                    ):
                        continue
                    vendor_key = values.get("vendor_id") or values.get("vendor")
                    if vendor_key:
                        vendor(vendor_key, values.get("vendor"), at)
                    path = values.get("category")
                    if path:
                        category(path, None)
                elif record.kind == "vendor":
                    key = values["vendor_id"]
                    vendor(key, values["name"], at)
                    if not first_sighting("vendor", key, vendors.get(key)):
                        continue
                    pgp_key = values.get("pgp_key")
                    if pgp_key:
                        fingerprint, armored = pgp_key["fingerprint"], pgp_key["armored"]
                        if fingerprint not in self._keys and fingerprint not in new_keys:
                            new_keys[fingerprint] = {"fingerprint": fingerprint, "armored": armored,
                                                     "first_seen_at": at}  # fmt: skip
                elif record.kind == "feedback":
                    vendor(values["vendor_id"], None, at)
                    pair = (values["vendor_id"], _text_sha256(values))
                    since = _posted_since(values.get("posted"))
                    if pair not in feedback_shown:
                        feedback_shown[pair] = since
                    elif feedback_shown[pair] is not None:
                        feedback_shown[pair] = None if since is None else min(since, feedback_shown[pair])
                    listing_key = values.get("listing_id")
                    if listing_key:
                        listing(listing_key, at)
                elif record.kind == "category":
                    category(values["path"], values.get("category_id"))
        if new_vendors:
            for key, vendor_id in self._insert_entities(connection, _VENDORS, new_vendors):
                vendors[key] = vendor_id
                self._vendor_names[vendor_id] = new_vendors[key]["name"]
        if new_listings:
            listings.update(self._insert_entities(connection, _LISTINGS, new_listings))
        if new_categories:
            for path_key, category_id in self._insert_entities(connection, _CATEGORIES, new_categories):
                self._categories[path_key] = category_id
                if new_categories[path_key]["category_key"]:
                    self._keyed_categories.add(path_key)
        if new_keys:
            self._key_ids(connection, new_keys)
        unloaded = []
        for (key, text_sha256), since in feedback_shown.items():
            pair = (vendors[key], text_sha256)
            if pair not in self._feedback_since:
                unloaded.append((*pair, since))
                continue
            loaded = self._feedback_since[pair]
            if loaded is not None and (since is None or since < loaded):
                unloaded.append((*pair, since))  # shown now with an older window than before
        if unloaded:
            self._load_feedback(connection, unloaded)

    @staticmethod
    def _insert_entities(
        connection: Connection, table: Table, rows: dict[str, dict[str, Any]]
    ) -> zip[tuple[str, int]]:
        """Insert rows (by their key, in order); returns (key, id) pairs."""
        return zip(rows, _insert_with_ids(connection, table, list(rows.values())), strict=True)

    def _key_ids(self, connection: Connection, new_keys: dict[str, dict[str, Any]]) -> None:
        """Find the archive's PGP keys by fingerprint (shared across markets); insert those it lacks."""
        for chunk in _chunks(connection, list(new_keys)):
            self._keys.update(
                (fingerprint, key_id)
                for key_id, fingerprint in _lookup(
                    connection, [_PGP_KEYS.c.id, _PGP_KEYS.c.fingerprint], _PGP_KEYS.c.fingerprint, chunk
                )
            )
        missing = {fingerprint: row for fingerprint, row in new_keys.items() if fingerprint not in self._keys}
        if missing:
            self._keys.update(self._insert_entities(connection, _PGP_KEYS, missing))

    def _load_feedback(self, connection: Connection, shown: list[tuple[int, str, datetime | None]]) -> None:
        """The archived feedback of each (vendor id, text hash) pair the batch shows that could be one of
        its sightings: only feedback with the same words can be the same again, and only if its posting
        window reaches the earliest the pair's sightings may have been posted (`since`; None: any time).

        A vendor's archived feedback grows every night while its pages show the newest few, and words
        repeat ("A+++"), so a pair's feedback of all time would be read back every night, more each night.
        A pair loaded before is read again from its new `since` on, keeping the rows already loaded (this
        crawl may have narrowed their windows)."""
        for vendor_id, text_sha256, since in shown:
            self._feedback.setdefault(vendor_id, {}).setdefault(text_sha256, [])
            self._feedback_since[vendor_id, text_sha256] = since
        # A re-parse files its own feedback (it is no new sighting of the market's), and a crawl never
        # takes a re-parse's feedback for the market's: re-reading old pages must not count as sales.
        if self.setup.reparse_of is not None:
            return
        for chunk in _chunks(connection, shown):
            wanted = _rows_table(
                connection, chunk, Feedback.vendor_id, Feedback.text_sha256, Feedback.posted_latest
            )
            loaded: dict[tuple[int, str], set[int]] = {}
            for vendor_id, feedback_id, text_sha256, *rest in connection.execute(
                _archived_feedback(wanted)
            ).all():
                known = self._feedback[vendor_id][text_sha256]
                ids = loaded.get((vendor_id, text_sha256))
                if ids is None:
                    ids = loaded[vendor_id, text_sha256] = {k.id for k in known}
                if feedback_id not in ids:  # else loaded by an earlier batch, and perhaps narrowed since
                    known.append(_KnownFeedback(feedback_id, *rest))
            for vendor_id, text_sha256 in loaded:
                # In archive order (earlier batches' feedback has its ids by now): the first that matches a
                # sighting takes it, as when each pair was read whole at once.
                self._feedback[vendor_id][text_sha256].sort(key=attrgetter("id"))

    def _category_id(self, connection: Connection, path: list[str], key: str | None = None) -> int:
        path_key = " > ".join(path)
        category_id = self._categories[path_key]
        if key and path_key not in self._keyed_categories:
            # Categories first met as a listing's breadcrumb have no key yet; fill it once per crawl.
            self._keyed_categories.add(path_key)
            connection.execute(
                update(_CATEGORIES)
                .where(_CATEGORIES.c.id == category_id, _CATEGORIES.c.category_key.is_(None))
                .values(category_key=key)
            )
        return category_id

    def _first_sighting(self, batch: _Batch, kind: str, entity_id: int) -> bool:
        """True once per entity per crawl: a second page showing the same listing is not a second snapshot."""
        seen = self._seen[kind]
        if entity_id in seen:
            batch.duplicates += 1
            return False
        seen.add(entity_id)
        batch.seen[kind].append(entity_id)
        return True

    # -- records ---------------------------------------------------------------------------

    def _store_category(
        self, connection: Connection, batch: _Batch, page_id: int, page: CapturedPage, record: Record
    ) -> None:
        values = record.values
        category_id = self._category_id(connection, values["path"], values.get("category_id"))
        if not self._first_sighting(batch, "category", category_id):
            return
        batch.observations.append(
            {
                "category_id": category_id,
                "crawl_id": self.crawl_id,
                "page_id": page_id,
                "observed_at": page.fetched_at,
                "listing_count": values.get("listing_count"),
            }
        )

    def _store_vendor(
        self, connection: Connection, batch: _Batch, page_id: int, page: CapturedPage, record: Record
    ) -> None:
        values = record.values
        vendor_id = self._vendors[values["vendor_id"]]
        if not self._first_sighting(batch, "vendor", vendor_id):
            return
        last_seen: TimeSpan | None = values.get("last_seen")
        key = values.get("pgp_key")
        key_id = self._keys[key["fingerprint"]] if key else None
        printed = values.get("fingerprint")
        content = content_hash("vendor", values)
        parser = self.profile.parser_version
        latest = self._states["vendor"].get(vendor_id)
        state: int | _NewState
        if latest is not None and latest[1] == content and latest[2] == parser:
            state = latest[0]
        else:
            state = _NewState(
                vendor_id,
                content,
                {
                    "vendor_id": vendor_id,
                    "content_sha256": content,
                    "profile_version": parser,
                    "name": values["name"],
                    "name_shown": str(record.shown.get("name", values["name"])),
                    "level": values.get("level"),
                    "trust_level": values.get("trust_level"),
                    "sales": values.get("sales"),
                    "rating": values.get("rating"),
                    "joined_on": values.get("joined_on"),
                    "status": values.get("status"),
                    "feedback_count": values.get("feedback_count"),
                    "fingerprint_shown": printed,
                    "pgp_key_id": key_id,
                },
                (),
            )
            batch.states["vendor"].append(state)
        batch.sightings["vendor"].append(
            {
                "crawl_id": self.crawl_id,
                "page_id": page_id,
                "vendor_id": vendor_id,
                "state_id": state,
                "last_seen_earliest": last_seen.earliest if last_seen else None,
                "last_seen_latest": last_seen.latest if last_seen else None,
                "last_seen_shown": _shown(record, "last_seen"),
            }
        )
        if self.setup.reparse_of is None and self._vendor_names.get(vendor_id) != values["name"]:
            # The entity carries the latest name; the snapshots keep every name it had.
            connection.execute(update(_VENDORS).where(_VENDORS.c.id == vendor_id).values(name=values["name"]))
            self._vendor_names[vendor_id] = values["name"]
        if key_id is not None:
            self._link_key(
                batch, vendor_id, key_id, None if printed is None else printed == key["fingerprint"]
            )

    def _link_key(self, batch: _Batch, vendor_id: int, key_id: int, matches: bool | None) -> None:
        link_id = self._key_links.get((vendor_id, key_id))
        if link_id is None:
            # A vendor is sighted once a crawl, so the batch holds no other link of the same pair.
            batch.links.append(
                {
                    "vendor_id": vendor_id,
                    "pgp_key_id": key_id,
                    "first_crawl_id": self.crawl_id,
                    "last_crawl_id": self.crawl_id,
                    "printed_fingerprint_matches": matches,
                }
            )
            return
        if self.setup.reparse_of is not None:
            return  # a re-read of old pages is no new sighting of the key
        batch.relinked.append({"link_id": link_id, "matches": matches, "crawl": self.crawl_id})

    def _store_listing(
        self, connection: Connection, batch: _Batch, page_id: int, page: CapturedPage, record: Record
    ) -> None:
        values = record.values
        listing_id = self._listings[values["listing_id"]]
        if not self._first_sighting(batch, "listing", listing_id):
            return
        parser = self.profile.parser_version
        latest = self._states["listing"].get(listing_id)
        if (
            latest is not None
            and latest[2] == parser
            and self._last_pages.get(listing_id) == (page.sha256, latest[0])
        ):
            batch.sightings["listing"].append(
                {
                    "crawl_id": self.crawl_id,
                    "page_id": page_id,
                    "listing_id": listing_id,
                    "state_id": latest[0],
                }
            )
            return
        content = content_hash("listing", values)
        state: int | _NewState
        if latest is not None and latest[1] == content and latest[2] == parser:
            state = latest[0]
        else:
            state = self._listing_state(connection, listing_id, content, record)
            batch.states["listing"].append(state)
        batch.sightings["listing"].append(
            {"crawl_id": self.crawl_id, "page_id": page_id, "listing_id": listing_id, "state_id": state}
        )

    def _listing_state(
        self, connection: Connection, listing_id: int, content: str, record: Record
    ) -> _NewState:
        """A new state row of a listing with its prices, shipping regions and shipping options."""
        values = record.values
        vendor_key = values.get("vendor_id") or values.get("vendor")
        path = values.get("category")
        price: Price | None = values.get("price")
        row = {
            "listing_id": listing_id,
            "content_sha256": content,
            "profile_version": self.profile.parser_version,
            "vendor_id": self._vendors[vendor_key] if vendor_key else None,
            "vendor_name": values.get("vendor"),
            "category_id": self._category_id(connection, path) if path else None,
            "title": values["title"],
            "description": values.get("description"),
            "price_amount": price.amount if price else None,
            "price_currency": price.currency if price else None,
            "price_unit": price.unit if price else None,
            "price_shown": price.shown if price else _shown(record, "prices"),
            "escrow": values.get("escrow"),
            "stock": values.get("stock"),
            "stock_shown": _shown(record, "stock"),
            "ships_from_shown": _shown(record, "ships_from"),
            "ships_to_shown": _shown(record, "ships_to"),
        }
        prices = [
            {"position": n, "amount": p.amount, "currency": p.currency, "unit": p.unit, "shown": p.shown}
            for n, p in enumerate(values.get("prices") or [])
        ]
        regions = [
            {"role": role, "position": n, "code": code}
            for role, codes in _region_roles(values)
            for n, code in enumerate(codes)
        ]
        options = [
            _shipping_option(n, option) for n, option in enumerate(values.get("shipping_options") or [])
        ]
        return _NewState(listing_id, content, row, (prices, regions, options))

    def _store_feedback(
        self, connection: Connection, batch: _Batch, page_id: int, page: CapturedPage, record: Record
    ) -> None:
        values = record.values
        vendor_id = self._vendors[values["vendor_id"]]
        listing_key = values.get("listing_id")
        listing_id = self._listings[listing_key] if listing_key else None
        posted: TimeSpan | None = values.get("posted")
        price: Price | None = values.get("price")
        text_sha256 = _text_sha256(values)
        sighting = _KnownFeedback(
            id=0,
            buyer=values.get("buyer"),
            rating=values.get("rating"),
            listing_id=listing_id,
            earliest=posted.earliest if posted else None,
            latest=posted.latest if posted else None,
            last_crawl_id=self.crawl_id,
        )
        same_words = self._feedback[vendor_id].setdefault(text_sha256, [])
        for known in same_words:
            # A feedback already sighted in this crawl is a different one with the same words.
            if known.last_crawl_id != self.crawl_id and known.matches(sighting):
                window = (known.earliest, known.latest, known.listing_id)
                known.absorb(sighting)
                if (known.earliest, known.latest, known.listing_id) == window:
                    batch.resighted.append(
                        {"feedback_id": known.id, "crawl": self.crawl_id, "seen_at": page.fetched_at}
                    )
                else:
                    batch.narrowed.append(
                        {
                            "feedback_id": known.id,
                            "earliest": known.earliest,
                            "latest": known.latest,
                            "listing": known.listing_id,
                            "crawl": self.crawl_id,
                            "seen_at": page.fetched_at,
                        }
                    )
                return
        batch.feedback.append(
            (
                {
                    "vendor_id": vendor_id,
                    "listing_id": listing_id,
                    "rating": sighting.rating,
                    "text": values["text"],
                    "text_sha256": text_sha256,
                    "buyer": sighting.buyer,
                    "posted_earliest": sighting.earliest,
                    "posted_latest": sighting.latest,
                    "price_amount": price.amount if price else None,
                    "price_currency": price.currency if price else None,
                    "first_crawl_id": self.crawl_id,
                    "first_seen_at": page.fetched_at,
                    "first_page_sha256": page.sha256,
                    "last_crawl_id": self.crawl_id,
                    "last_seen_at": page.fetched_at,
                    "sightings": 1,
                },
                sighting,
            )
        )
        same_words.append(sighting)


@dataclass
class _KnownFeedback:
    """What deduplication needs to know of an archived feedback."""

    id: int
    buyer: str | None
    rating: int | None
    listing_id: int | None
    earliest: datetime | None
    latest: datetime | None
    last_crawl_id: int

    def matches(self, other: _KnownFeedback) -> bool:
        """Same buyer and rating, compatible listing, overlapping posting windows."""
        return (
            self.buyer == other.buyer
            and self.rating == other.rating
            # A feedback loses its listing link when the listing vanishes; that is no new feedback.
            and (self.listing_id == other.listing_id or None in (self.listing_id, other.listing_id))
            and _overlaps(self.earliest, self.latest, other)
        )

    def absorb(self, other: _KnownFeedback) -> None:
        """Narrow the posting window to what both sightings allow, and keep any listing link."""
        if other.earliest is not None and other.latest is not None:
            self.earliest = max(filter(None, (self.earliest, other.earliest)))
            self.latest = min(filter(None, (self.latest, other.latest)))
        self.listing_id = self.listing_id or other.listing_id
        self.last_crawl_id = other.last_crawl_id


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is written or the writer's caches are loaded.

    A batch allocates tens of thousands of rows, tuples and dicts that all live until it ends (loading
    the caches, one per entity of the market, all kept), so the collector's passes meanwhile free nothing,
    yet each older-generation pass walks every object the process holds (the writer's ids, states and
    feedback of the whole market, and whatever the crawl keeps): ~5% of a large batch's time, and ~0.8 s
    of a `begin` at night 162 in a process holding the synthetic market and six of its nights (bench/
    README.md, "the floor under a night"). What they leave behind is collected after them, as before.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _chunks(connection: Connection, values: list[Any]) -> list[list[Any]]:
    """The values in lists of one `_among` condition each: one on PostgreSQL and SQLite (all the values
    are one parameter), a bounded number elsewhere (a parameter each)."""
    if connection.dialect.name in ("postgresql", "sqlite"):
        return [values] if values else []
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]


def _among(connection: Connection, column: Any, values: list[Any]) -> Any:
    """`column` is one of `values`: `= ANY(array)` on PostgreSQL, `IN` a JSON array's values on SQLite,
    `IN (...)` elsewhere.

    One array parameter keeps the statement the same for any number of values, and PostgreSQL plans it
    for an index lookup per value; a list of parameters, once the driver has prepared the statement, may
    keep a plan made for a table too small for its index (a sequential scan, seconds a batch once large).
    On SQLite, SQLAlchemy renders a list of parameters anew on every execution (~20 us a value, more than
    the lookup), and SQLite looks `IN (SELECT value FROM json_each(?))` up value by value in the index
    as it does a list.
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    if dialect == "sqlite":
        listed = func.json_each(bindparam(None, json.dumps(values), type_=String())).table_valued("value")
        return column.in_(select(listed.c.value))
    return column.in_(values)


def _rows_table(connection: Connection, rows: list[tuple[Any, ...]], *columns: Any) -> Any:
    """A table of these rows of values, its columns named c0, c1, ... and typed as `columns`, to join on.

    As `_among`, for rows: the values as one array a column unnested on PostgreSQL, one JSON array of rows
    on SQLite (each value through its column type's bind processing first, so it compares with the stored
    ones; joined first, so each row is one lookup in an index), a VALUES list elsewhere.
    """
    dialect = connection.dialect
    names = [f"c{n}" for n in range(len(columns))]
    if dialect.name == "postgresql":
        arrays = [
            bindparam(None, [row[n] for row in rows], type_=ARRAY(column.type))
            for n, column in enumerate(columns)
        ]
        return func.unnest(*arrays).table_valued(*names).render_derived()
    if dialect.name == "sqlite":
        processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
        if any(processors):
            rows = [
                tuple(
                    value if process is None else process(value)
                    for process, value in zip(processors, row, strict=True)
                )
                for row in rows
            ]
        listed = func.json_each(bindparam(None, json.dumps(rows), type_=String())).table_valued("value")
        return select(
            *(func.json_extract(listed.c.value, f"$[{n}]").label(name) for n, name in enumerate(names))
        ).subquery()
    return values_table(
        *(column(name, c.type) for name, c in zip(names, columns, strict=True)), name="rows"
    ).data(rows)


def _serialized(connection: Connection) -> bool:
    """Begin SQLite's transaction with its write lock (BEGIN IMMEDIATE), which it holds until the end: no
    other connection writes meanwhile, so what the transaction reads of the archive stays true. False on
    PostgreSQL, where other crawls may write meanwhile (and where the transaction has already begun)."""
    if connection.dialect.name != "sqlite":
        return False
    if getattr(connection.connection.dbapi_connection, "in_transaction", True):
        return False  # begun by someone else, possibly without the lock
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    return True


def _insert_with_ids(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in their order; returns their ids, in the same order."""
    if connection.dialect.name == "postgresql" and len(rows) >= _COPY_FROM:
        # The sequence's next values, taken as the column default would take them row by row.
        sequences = connection.info.setdefault("dnm_archive_sequences", {})
        if table.name not in sequences:
            sequences[table.name] = connection.scalar(select(func.pg_get_serial_sequence(table.name, "id")))
        ids = sorted(
            connection.execute(
                select(func.nextval(sequences[table.name])).select_from(func.generate_series(1, len(rows)))
            ).scalars()
        )
        for row, row_id in zip(rows, ids, strict=True):
            row["id"] = row_id
        _insert(connection, table, rows)
        return ids
    first_row = _driver_insert(connection, table, rows[0])
    if first_row is None and (connection.dialect.name != "sqlite" or len(rows) < 2):
        return list(
            connection.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
    # SQLite promises no order of the rows INSERT ... RETURNING gives back, so SQLAlchemy would insert
    # them one statement each. Its new rowid is the largest one plus 1, and once the first row is in, this
    # transaction holds the database's only write lock until it ends: the others take the next ids, given
    # explicitly, as SQLite would have given them. (The first row's id is its rowid, as RETURNING gives it.)
    if first_row is None:
        first = connection.execute(insert(table).returning(table.c.id), rows[0]).scalar_one()
    else:
        first = first_row.execute(connection, [rows[0]])
    if len(rows) == 1:
        return [first]
    ids = list(range(first, first + len(rows)))
    for row, row_id in zip(rows[1:], ids[1:], strict=True):
        row["id"] = row_id
    _insert(connection, table, rows[1:])
    return ids


# Rows from which PostgreSQL takes them by COPY rather than INSERT.
_COPY_FROM = 20


def _insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys). On PostgreSQL, many go by COPY ... FROM STDIN, each value
    through its column type's bind processing first, as SQLAlchemy would hand it to the driver."""
    dialect = connection.dialect
    if dialect.name != "postgresql" or len(rows) < _COPY_FROM:
        statement = _driver_insert(connection, table, rows[0])
        if statement is None:
            connection.execute(insert(table), rows)
        else:
            statement.execute(connection, rows)
        return
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    quote = dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(name) for name in names)}) FROM STDIN"
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    with dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
        if any(processors):
            for row in rows:
                copy.write_row(
                    [value if process is None else process(value)
                     for process, value in zip(processors, [row[name] for name in names], strict=True)]
                )  # fmt: skip
        else:
            for row in rows:
                copy.write_row([row[name] for name in names])


class _DriverStatement:
    """A Core statement compiled once for SQLite, run on the driver's cursor with rows as tuples.

    SQLAlchemy's executemany spends more time per row than SQLite takes to insert it (it builds and checks
    a parameter dict per row, and processes each value through its type). This does what it does: the
    same SQL, each value through its column type's bind processor (the same stored bytes), and driver
    errors raised as SQLAlchemy's exceptions, by one `executemany` of tuples.
    """

    __slots__ = ("constants", "getter", "names", "processors", "sql")

    def __init__(
        self, sql: str, names: tuple[str, ...], processors: tuple[Any, ...], constants: dict[str, Any]
    ) -> None:
        self.sql = sql
        self.names = names
        self.processors = processors if any(processors) else ()
        # Values the statement carries itself (the 1 of `sightings + 1`), not taken from the rows.
        self.constants = constants
        self.getter = itemgetter(*names)

    @classmethod
    def compile(cls, statement: Any, dialect: Any, column_keys: list[str] | None = None) -> _DriverStatement:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        names = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in names]
        processors = tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds)
        constants = {
            name: bind.value
            for name, bind in zip(names, binds, strict=True)
            if not bind.required and bind.callable is None and name not in (column_keys or ())
        }
        return cls(compiled.string, names, processors, constants)

    def tuples(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        getter, constants = self.getter, self.constants
        if constants:
            rows = [{**constants, **row} for row in rows]
        values = [(getter(row),) for row in rows] if len(self.names) == 1 else [getter(row) for row in rows]
        if not self.processors:
            return values
        processed = [(n, process) for n, process in enumerate(self.processors) if process is not None]
        converted = []
        for row in values:
            items = list(row)
            for n, process in processed:
                items[n] = process(items[n])
            converted.append(tuple(items))
        return converted

    def fetch(self, connection: Connection, *parameters: Any) -> list[tuple[Any, ...]]:
        """Run a query with these parameters, as they are (no bind processing); returns its rows."""
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            return cursor.execute(self.sql, parameters).fetchall()
        except connection.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                self.sql, parameters, exc, connection.dialect.loaded_dbapi.Error, dialect=connection.dialect
            ) from exc
        finally:
            cursor.close()

    def execute(self, connection: Connection, rows: list[dict[str, Any]]) -> int:
        """Run the statement once per row; returns the last inserted rowid."""
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        values = self.tuples(rows)
        cursor = dbapi_connection.cursor()
        try:
            if len(values) == 1:
                cursor.execute(self.sql, values[0])
            else:
                cursor.executemany(self.sql, values)
            return int(cursor.lastrowid or 0)
        except connection.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                self.sql, values[:10], exc, connection.dialect.loaded_dbapi.Error, dialect=connection.dialect
            ) from exc
        finally:
            cursor.close()


# Compiled once per process, by what they do and the dialect's class (its SQL and parameter style).
_DRIVER_STATEMENTS: dict[Any, _DriverStatement | None] = {}


def _driver_insert(connection: Connection, table: Table, row: dict[str, Any]) -> _DriverStatement | None:
    """The SQLite INSERT of rows with `row`'s keys, or None where Core must run it: another backend, or a
    column missing from the rows whose default SQLAlchemy would fill in."""
    if connection.dialect.name != "sqlite":
        return None
    key = (type(connection.dialect), table, tuple(row))
    if key not in _DRIVER_STATEMENTS:
        statement = _DriverStatement.compile(insert(table), connection.dialect, list(row))
        complete = not statement.constants and set(statement.names) == set(row)
        _DRIVER_STATEMENTS[key] = statement if complete else None
    return _DRIVER_STATEMENTS[key]


def _executemany(connection: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    """A prepared UPDATE once per row: through the driver on SQLite, through Core elsewhere."""
    if connection.dialect.name != "sqlite":
        connection.execute(statement, rows)
        return
    key = (type(connection.dialect), statement)
    if key not in _DRIVER_STATEMENTS:
        _DRIVER_STATEMENTS[key] = _DriverStatement.compile(statement, connection.dialect)
    driver = _DRIVER_STATEMENTS[key]
    assert driver is not None
    driver.execute(connection, rows)


def _resight(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Count a sighting of each feedback of `rows` (feedback_id, crawl, seen_at).

    Thousands a night (every feedback a vendor page still shows): on PostgreSQL one statement over two
    arrays rather than a statement each. A feedback is sighted once a crawl, so its id comes up once.
    """
    if connection.dialect.name != "postgresql":
        _executemany(connection, _RESIGHT_FEEDBACK, rows)
        return
    (crawl,) = {row["crawl"] for row in rows}
    connection.execute(
        _RESIGHT_FEEDBACK_ARRAYS,
        {
            "crawl": crawl,
            "ids": [row["feedback_id"] for row in rows],
            "seen": [row["seen_at"] for row in rows],
        },
    )


# The tables a crawl writes and looks rows up in.
_WRITTEN = (
    _PAYLOADS, _URLS, _PAGES, _VENDORS, _LISTINGS, _CATEGORIES, _PGP_KEYS, _VENDOR_KEYS, _FEEDBACK,
    *_STATES.values(), *_SIGHTINGS.values(), _LISTING_PRICES, _SHIPPING_REGIONS, _SHIPPING_OPTIONS,
    _OBSERVATIONS,
)  # fmt: skip


def _analyze_unplanned(connection: Connection) -> None:
    """ANALYZE the archive's tables that PostgreSQL has never analyzed (`reltuples` -1), after the crawl
    that filled them first.

    Without statistics the planner reads a lookup of a batch's values (`= ANY`) in a table of unknown
    contents as a sequential scan: milliseconds after one night, seconds a batch at a year. Autovacuum
    analyzes tables itself, where it runs; with it off (or before its first round) nothing else would.
    Once analyzed, the planner scales the statistics to the table's current size, so once is enough.
    """
    names = [table.name for table in _WRITTEN]
    unplanned = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.reltuples < 0 "
            "AND c.relname = ANY(:names)"
        ),
        {"names": names},
    ).scalars()
    quote = connection.dialect.identifier_preparer.quote
    for name in sorted(unplanned):
        connection.exec_driver_sql(f"ANALYZE {quote(name)}")


def _lookup(connection: Connection, columns: list[Any], key: Any, values: list[Any]) -> list[Any]:
    """The rows (`columns`) whose `key` is one of `values` (`_among`).

    On SQLite, when no column's type converts what the driver returns, through the driver's cursor: a
    page's lookups are a few rows, for which building and compiling the statement took most of the time.
    """
    dialect = connection.dialect
    if dialect.name == "sqlite":
        cache_key = (type(dialect), "lookup", *columns)
        if cache_key not in _DRIVER_STATEMENTS:
            plain = all(c.type.dialect_impl(dialect).result_processor(dialect, None) is None for c in columns)
            statement = select(*columns).where(_among(connection, key, ["?"]))
            _DRIVER_STATEMENTS[cache_key] = _DriverStatement.compile(statement, dialect) if plain else None
        driver = _DRIVER_STATEMENTS[cache_key]
        if driver is not None:
            return driver.fetch(connection, json.dumps(values))
    return list(connection.execute(select(*columns).where(_among(connection, key, values))).all())


def _vendors_first(record: Record) -> bool:
    return record.kind != "vendor"


def _shipping_option(position: int, option: dict[str, Any]) -> dict[str, Any]:
    price: Price | None = option.get("price")
    return {
        "position": position,
        "name": option.get("name") or "",
        "price_amount": price.amount if price else None,
        "price_currency": price.currency if price else None,
        "shown": price.shown if price else None,
    }


# Values that move every day without the entity itself changing: crypto conversions follow the
# exchange rate, "last seen" follows the vendor's activity. They are stored, but not hashed.
VOLATILE_FIELDS: dict[str, frozenset[str]] = {
    "listing": frozenset({"prices"}),
    "vendor": frozenset({"last_seen"}),
}


def content_hash(kind: str, values: dict[str, Any]) -> str:
    """SHA-256 of a record's normalized values in canonical JSON: equal hashes mean nothing changed.

    The JSON is `json.dumps(stable, sort_keys=True, default=_canonical)`'s (archives hold hashes of
    it), made by one encoder kept for the purpose.
    """
    volatile = VOLATILE_FIELDS.get(kind, frozenset())
    # Top-level prices, regions and spans converted here as the encoder would convert them (the same JSON):
    # one call each instead of the encoder's round trip through `_canonical`.
    conversions = _CONVERSIONS
    stable = {}
    for name, value in values.items():
        if name not in volatile:
            convert = conversions.get(type(value))
            stable[name] = value if convert is None else convert(value)
    return hashlib.sha256(_encode(stable).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """What JSON cannot encode, as what it can: called by the encoder for each such value."""
    convert = _CONVERSIONS.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        # Shallow: json.dumps comes back here for nested values. The same JSON as dataclasses.asdict
        # (hence the same hashes as archives made with it), without its deep copies.
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


# The exact types normalization produces, converted without the general tests of `_canonical` into the
# same values (a subclass takes the general path, with the same result).
_CONVERSIONS: dict[type, Any] = {
    Decimal: lambda value: format(value, "f"),
    datetime: datetime.isoformat,
    date: date.isoformat,
    Price: lambda p: {
        # The amount as the encoder's call back for a Decimal would give it, without the call.
        "amount": format(p.amount, "f") if type(p.amount) is Decimal else p.amount,
        "currency": p.currency,
        "unit": p.unit,
        "shown": p.shown,
    },
    Regions: lambda r: {"codes": r.codes, "excluded": r.excluded, "raw": r.raw},
    TimeSpan: lambda t: {"earliest": t.earliest, "latest": t.latest},
}


def _check_conversions() -> None:
    """Each dataclass conversion gives every field: a field added to Price must change the hash as the
    general path would make it, not vanish from it."""
    for cls in (Price, Regions, TimeSpan):
        names = {f.name for f in fields(cls)}
        sample = object.__new__(cls)
        for name in names:
            object.__setattr__(sample, name, None)
        if set(_CONVERSIONS[cls](sample)) != names:
            raise RuntimeError(
                f"dnm.archive._CONVERSIONS[{cls.__name__}] does not give its fields {sorted(names)}"
            )


_check_conversions()


def _canonical_encoder() -> Any:
    """`json.JSONEncoder(sort_keys=True, default=_canonical).encode`: the same JSON, ~15% faster.

    JSONEncoder.encode builds a new C encoder on every call and checks for circular references; this
    one is built once and does not check (normalized values are trees: a cycle would still end, in a
    RecursionError). Without the C accelerator, the plain encoder.
    """
    make = json.encoder.c_make_encoder
    if make is None:
        return json.JSONEncoder(sort_keys=True, default=_canonical).encode
    # The arguments JSONEncoder gives its C encoder for these options (ensure_ascii, ": " and ", ").
    ascii_strings = json.encoder.encode_basestring_ascii
    encoder = make(None, _canonical, ascii_strings, None, ": ", ", ", True, False, True)

    def encode(value: dict[str, Any]) -> str:
        return "".join(encoder(value, 0))

    return encode


_encode = _canonical_encoder()


def _text_sha256(values: dict[str, Any]) -> str:
    """The hash a feedback's words are found by."""
    return hashlib.sha256(values["text"].encode()).hexdigest()


def _shown(record: Record, name: str) -> str | None:
    value = record.shown.get(name)
    if value is None:
        return None
    return " | ".join(value) if isinstance(value, list) else str(value)


def _region_roles(values: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    roles: list[tuple[str, tuple[str, ...]]] = []
    ships_from: Regions | None = values.get("ships_from")
    ships_to: Regions | None = values.get("ships_to")
    excluded_apart: Regions | None = values.get("ships_to_excluded")
    if ships_from is not None:
        roles.append(("from", ships_from.codes))
    if ships_to is not None:
        roles.append(("to", ships_to.codes))
    excluded = [*(ships_to.excluded if ships_to else ()), *(excluded_apart.codes if excluded_apart else ())]
    roles.append(("excluded", tuple(dict.fromkeys(excluded))))
    return roles


def _archived_feedback(wanted: Any) -> Any:
    """The market's own feedback (not a re-parse's) of each (vendor id, text hash, since) row of `wanted`
    whose posting window reaches `since` (or any, where since is null), in archive order."""
    vendor_id, text_sha256, since = wanted.c
    return (
        select(
            Feedback.vendor_id, Feedback.id, Feedback.text_sha256, Feedback.buyer, Feedback.rating,
            Feedback.listing_id, Feedback.posted_earliest, Feedback.posted_latest, Feedback.last_crawl_id,
        )
        .select_from(wanted)
        .join(Feedback, (Feedback.vendor_id == vendor_id) & (Feedback.text_sha256 == text_sha256))
        .join(Crawl, Feedback.first_crawl_id == Crawl.id)
        .where(
            Crawl.reparse_of.is_(None),
            since.is_(None) | Feedback.posted_latest.is_(None) | (Feedback.posted_latest >= since),
        )
        .order_by(Feedback.id)
    )  # fmt: skip


def _posted_since(posted: TimeSpan | None) -> datetime | None:
    """The earliest a feedback shown with this posting window was posted; None when the window is open
    (`_overlaps` then takes it to overlap any other, so any archived feedback may be the same)."""
    if posted is None or posted.earliest is None or posted.latest is None:
        return None
    return posted.earliest


def _overlaps(earliest: datetime | None, latest: datetime | None, other: _KnownFeedback) -> bool:
    if None in (earliest, latest, other.earliest, other.latest):
        return True
    assert earliest and latest and other.earliest and other.latest
    return earliest <= other.latest and other.earliest <= latest
