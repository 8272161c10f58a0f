"""Writing crawls into the archive: one crawl row, then each page with what it showed, a transaction a page.

Storage grows with change, not with time. A page's body is a `payloads` row shared by every fetch that
returned it. A listing's or vendor's values are a *state*, written when they differ from the entity's
latest state (by the hash of its normalized values, `content_hash`, and the parser version); every
crawl that sees the entity adds a *sighting*, a few integers. Nothing an earlier crawl wrote is changed.
Entities (markets, vendors, listings, categories, keys) are upserted by the market's own ids.
Feedback is stored once and sighted again by later crawls (models.feedback).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dnm.normalize.dates import TimeSpan
from dnm.normalize.prices import Price
from dnm.normalize.regions import Regions
from dnm.profile import Profile
from dnm.records import Record
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
from models.db import session_factory
from models.types import UTCDateTime


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


class ArchiveWriter:
    """Files one crawl's pages and records into the archive."""

    def __init__(self, engine: Engine, profile: Profile, setup: CrawlSetup) -> None:
        self.engine = engine
        self.profile = profile
        self.setup = setup
        self.sessions = session_factory(engine)
        self.crawl_id: int | None = None
        self.market_id: int | None = None
        # The market's entities by the market's own keys, loaded once: a night's crawl touches most of
        # them, and one query each beats one query per record.
        self._vendors: dict[str, int] = {}
        self._vendor_names: dict[int, str] = {}
        self._listings: dict[str, int] = {}
        self._categories: dict[str, int] = {}
        self._keyed_categories: set[str] = set()
        self._keys: dict[str, int] = {}
        self._key_links: dict[tuple[int, int], int] = {}
        self._feedback: dict[int, dict[str, list[_KnownFeedback]]] = {}
        self._pending_feedback: list[tuple[Feedback, _KnownFeedback]] = []
        # Feedback and key links seen again: updated together at the end of the transaction (one
        # executemany each), not one UPDATE per sighting.
        self._resighted: list[dict[str, Any]] = []
        self._relinked: list[dict[str, Any]] = []
        # The latest state of each of the market's listings and vendors: (state id, content hash, parser).
        self._states: dict[str, dict[int, tuple[int, str, str]]] = {"listing": {}, "vendor": {}}
        self._new_states: list[tuple[str, int, ListingState | VendorState]] = []
        # Each listing's page body and state in the market's last crawl: the same bytes read by the same
        # parser give the same values, so an unchanged page is a sighting without re-hashing its record.
        self._last_pages: dict[int, tuple[str, int]] = {}
        self._sightings: dict[str, list[dict[str, Any]]] = {"listing": [], "vendor": []}
        self._payloads: dict[str, int] = {}
        self._urls: dict[str, int] = {}
        self._seen: set[tuple[str, int]] = set()
        self.duplicates = 0
        self.states_written = 0

    # -- crawl lifecycle -------------------------------------------------------------------

    def begin(self) -> int:
        """Create the market if new and a `running` crawl row; returns the crawl id."""
        now = datetime.now(UTC)
        with self.sessions.begin() as session:
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
            )
            session.add(crawl)
            session.flush()
            self.crawl_id, self.market_id = crawl.id, market.id
            self._load_entities(session)
        return self.crawl_id

    def _load_entities(self, session: Session) -> None:
        market = self.market_id
        for vendor_id, key, name in session.execute(
            select(Vendor.id, Vendor.vendor_key, Vendor.name).where(Vendor.market_id == market)
        ):
            self._vendors[key] = vendor_id
            self._vendor_names[vendor_id] = name
        self._listings.update(
            (key, listing_id)
            for listing_id, key in session.execute(
                select(Listing.id, Listing.listing_key).where(Listing.market_id == market)
            )
        )
        self._categories.update(
            (key, category_id)
            for category_id, key in session.execute(
                select(Category.id, Category.path_key).where(Category.market_id == market)
            )
        )
        for kind, state in (("listing", ListingState), ("vendor", VendorState)):
            entity, owner = (
                (ListingState.listing_id, Listing) if kind == "listing" else (VendorState.vendor_id, Vendor)
            )
            latest = self._states[kind]
            for entity_id, state_id, content, parser in session.execute(
                select(entity, state.id, state.content_sha256, state.profile_version)
                .join(owner, owner.id == entity)
                .where(owner.market_id == market)
                .order_by(state.id)
            ):
                latest[entity_id] = (state_id, content, parser)
        last_crawl = (
            select(func.max(Crawl.id))
            .where(Crawl.market_id == market, Crawl.reparse_of.is_(None), Crawl.id != self.crawl_id)
            .scalar_subquery()
        )
        for listing_id, state_id, page_sha256 in session.execute(
            select(ListingSighting.listing_id, ListingSighting.state_id, Payload.sha256)
            .join(Page, Page.id == ListingSighting.page_id)
            .join(Payload, Payload.id == Page.payload_id)
            .where(ListingSighting.crawl_id == last_crawl)
        ):
            self._last_pages[listing_id] = (page_sha256, state_id)
        self._key_links.update(
            ((vendor_id, key_id), link_id)
            for link_id, vendor_id, key_id in session.execute(
                select(VendorKey.id, VendorKey.vendor_id, VendorKey.pgp_key_id)
                .join(Vendor, VendorKey.vendor_id == Vendor.id)
                .where(Vendor.market_id == market)
            )
        )

    def finish(
        self, status: str, reason: str | None, stats: dict[str, Any], mirror: str | None = None
    ) -> None:
        """Close the crawl row with its final status and stats (and the mirror it ended up using)."""
        with self.sessions.begin() as session:
            crawl = session.get(Crawl, self.crawl_id)
            assert crawl is not None
            if mirror:
                crawl.mirror = mirror
            crawl.finished_at = datetime.now(UTC)
            crawl.status = status
            crawl.status_reason = reason
            crawl.stats = json.loads(json.dumps(stats, default=str))

    # -- pages -----------------------------------------------------------------------------

    def write_page(self, page: CapturedPage, records: list[Record]) -> None:
        """Store a page and its records atomically: either all of it is archived or none."""
        self.write_pages([(page, records)])

    def write_pages(self, pages: list[tuple[CapturedPage, list[Record]]]) -> None:
        """Store several pages with their records in one transaction (bulk loads, benchmarks)."""
        with self.sessions.begin() as session:
            payload_ids = self._payload_ids(session, [page for page, _ in pages])
            self._interned(session, Url.url, self._urls, {page.url: {} for page, _ in pages})
            page_ids = session.scalars(
                insert(Page).returning(Page.id, sort_by_parameter_order=True),
                [
                    {
                        "crawl_id": self.crawl_id,
                        "url_id": self._urls[page.url],
                        "page_type": page.page_type,
                        "status": page.status,
                        "fetched_at": page.fetched_at,
                        "server_time": page.server_time,
                        "extraction_errors": page.extraction_errors,
                        "payload_id": payload_ids[page.sha256],
                    }
                    for page, _ in pages
                ],
            ).all()
            self._pending_feedback = []
            for page_id, (page, records) in zip(page_ids, pages, strict=True):
                # Vendors first: listings and feedback on the same page refer to them.
                for record in sorted(records, key=lambda r: r.kind != "vendor"):
                    getattr(self, f"_store_{record.kind}")(session, page_id, page, record)
            session.flush()  # new states, feedback and their children get their ids
            for kind, entity_id, state in self._new_states:
                self._states[kind][entity_id] = (state.id, state.content_sha256, state.profile_version)
            self.states_written += len(self._new_states)
            self._new_states = []
            for kind, model in (("listing", ListingSighting), ("vendor", VendorSighting)):
                rows = self._sightings[kind]
                for row in rows:
                    if not isinstance(row["state_id"], int):
                        row["state_id"] = row["state_id"].id
                if rows:
                    session.execute(insert(model), rows)
                self._sightings[kind] = []
            for feedback, known in self._pending_feedback:
                known.id = feedback.id
            self._update_sightings(session)

    def _update_sightings(self, session: Session) -> None:
        """Write the feedback and key links this batch saw again, one executemany each."""
        if self._resighted:
            table = Feedback.__table__
            session.execute(
                update(table)
                .where(table.c.id == bindparam("feedback_id"))
                .values(
                    posted_earliest=bindparam("earliest", type_=UTCDateTime()),
                    posted_latest=bindparam("latest", type_=UTCDateTime()),
                    listing_id=bindparam("listing"),
                    last_crawl_id=self.crawl_id,
                    last_seen_at=bindparam("seen_at", type_=UTCDateTime()),
                    sightings=table.c.sightings + 1,
                ),
                self._resighted,
            )
            self._resighted = []
        if self._relinked:
            table = VendorKey.__table__
            session.execute(
                update(table)
                .where(table.c.id == bindparam("link_id"))
                .values(
                    last_crawl_id=self.crawl_id,
                    printed_fingerprint_matches=func.coalesce(
                        bindparam("matches"), table.c.printed_fingerprint_matches
                    ),
                ),
                self._relinked,
            )
            self._relinked = []

    def _payload_ids(self, session: Session, pages: list[CapturedPage]) -> dict[str, int]:
        """The payload row of each page body, created if the archive has not held the body before."""
        wanted = {page.sha256: page for page in pages}
        rows = {
            sha: {"size": page.size, "warc_file": page.warc_file, "warc_record_id": page.warc_record_id}
            for sha, page in wanted.items()
        }
        for payload_id, sha, record in self._interned(
            session, Payload.sha256, self._payloads, rows, Payload.warc_record_id
        ):
            page = wanted[sha]
            if page.warc_record_id is not None and record != page.warc_record_id:
                # Stored before without its raw capture (or in a file no longer in the store): this
                # fetch's capture holds the bytes now.
                session.execute(
                    update(Payload)
                    .where(Payload.id == payload_id)
                    .values(warc_file=page.warc_file, warc_record_id=page.warc_record_id)
                )
        return {sha: self._payloads[sha] for sha in wanted}

    def _interned(
        self,
        session: Session,
        key: Any,
        known: dict[str, int],
        rows: dict[str, dict[str, Any]],
        *read_columns: Any,
    ) -> list[Any]:
        """Make sure a table of unique values (`key`) has a row for each value of `rows` (value -> other
        columns); `known` (value -> id) is filled in. Returns (id, value, *read) of the values that were
        not known before. Concurrent crawls may bring the same value: the insert skips a row another one
        made first, and the select reads whichever was made.
        """
        missing = [value for value in rows if value not in known]
        found: list[Any] = []
        if not missing:
            return found
        table = key.class_

        def read(values: list[str]) -> None:
            for start in range(0, len(values), 500):
                for row in session.execute(
                    select(table.id, key, *read_columns).where(key.in_(values[start : start + 500]))
                ):
                    known[row[1]] = row[0]
                    found.append(row)

        # Most values of a night were stored by an earlier one: look them up first, insert only the rest.
        read(missing)
        new = [value for value in missing if value not in known]
        if new:
            dialect = session.get_bind().dialect.name
            upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
            session.execute(
                upsert.on_conflict_do_nothing(index_elements=[key.key]),
                [{key.key: value, **rows[value]} for value in new],
            )
            read(new)
        return found

    def _state(
        self, kind: str, entity_id: int, record: Record, make: Callable[[str], ListingState | VendorState]
    ) -> ListingState | VendorState | int:
        """The entity's state for this record: its latest one when the values are unchanged (its id), else a
        new state row made by `make(content_sha256)` (flushed with the page)."""
        content = content_hash(record.kind, record.values)
        latest = self._states[kind].get(entity_id)
        if latest is not None and latest[1:] == (content, self.profile.parser_version):
            return latest[0]
        state = make(content)
        self._new_states.append((kind, entity_id, state))
        return state

    # -- entities --------------------------------------------------------------------------

    def _vendor_id(self, session: Session, key: str, name: str | None, seen_at: datetime) -> int:
        if key not in self._vendors:
            vendor = Vendor(market_id=self.market_id, vendor_key=key, name=name or key, first_seen_at=seen_at)
            session.add(vendor)
            session.flush()
            self._vendors[key] = vendor.id
            self._vendor_names[vendor.id] = vendor.name
        return self._vendors[key]

    def _listing_id(self, session: Session, key: str, seen_at: datetime) -> int:
        if key not in self._listings:
            listing = Listing(market_id=self.market_id, listing_key=key, first_seen_at=seen_at)
            session.add(listing)
            session.flush()
            self._listings[key] = listing.id
        return self._listings[key]

    def _category_id(self, session: Session, path: list[str], key: str | None = None) -> int:
        path_key = " > ".join(path)
        if path_key not in self._categories:
            category = Category(
                market_id=self.market_id, path_key=path_key, path=list(path), category_key=key
            )
            session.add(category)
            session.flush()
            self._categories[path_key] = category.id
            if key:
                self._keyed_categories.add(path_key)
        elif key and path_key not in self._keyed_categories:
            # Categories first met as a listing's breadcrumb have no key yet; fill it once per crawl.
            self._keyed_categories.add(path_key)
            session.execute(
                update(Category)
                .where(Category.id == self._categories[path_key], Category.category_key.is_(None))
                .values(category_key=key)
            )
        return self._categories[path_key]

    def _key_id(self, session: Session, fingerprint: str, armored: str, seen_at: datetime) -> int:
        if fingerprint in self._keys:
            return self._keys[fingerprint]
        key = session.scalar(select(PgpKey).where(PgpKey.fingerprint == fingerprint))
        if key is None:
            key = PgpKey(fingerprint=fingerprint, armored=armored, first_seen_at=seen_at)
            session.add(key)
            session.flush()
        self._keys[fingerprint] = key.id
        return key.id

    def _sighting(self, kind: str, entity_id: int, page_id: int, state: Any, **extra: Any) -> None:
        self._sightings[kind].append(
            {
                "crawl_id": self.crawl_id,
                "page_id": page_id,
                f"{kind}_id": entity_id,
                "state_id": state,
                **extra,
            }
        )

    def _first_sighting(self, kind: str, entity_id: int) -> bool:
        """True once per entity per crawl: a second page showing the same listing is not a second snapshot."""
        if (kind, entity_id) in self._seen:
            self.duplicates += 1
            return False
        self._seen.add((kind, entity_id))
        return True

    # -- records ---------------------------------------------------------------------------

    def _store_category(self, session: Session, page_id: int, page: CapturedPage, record: Record) -> None:
        values = record.values
        category_id = self._category_id(session, values["path"], values.get("category_id"))
        if not self._first_sighting("category", category_id):
            return
        session.add(
            CategoryObservation(
                category_id=category_id,
                crawl_id=self.crawl_id,
                page_id=page_id,
                observed_at=page.fetched_at,
                listing_count=values.get("listing_count"),
            )
        )

    def _store_vendor(self, session: Session, page_id: int, page: CapturedPage, record: Record) -> None:
        values = record.values
        vendor_id = self._vendor_id(session, values["vendor_id"], values["name"], page.fetched_at)
        if not self._first_sighting("vendor", vendor_id):
            return
        last_seen: TimeSpan | None = values.get("last_seen")
        key = values.get("pgp_key")
        key_id = self._key_id(session, key["fingerprint"], key["armored"], page.fetched_at) if key else None
        printed = values.get("fingerprint")

        def new_state(content: str) -> VendorState:
            state = VendorState(
                vendor_id=vendor_id,
                content_sha256=content,
                profile_version=self.profile.parser_version,
                name=values["name"],
                name_shown=str(record.shown.get("name", values["name"])),
                level=values.get("level"),
                trust_level=values.get("trust_level"),
                sales=values.get("sales"),
                rating=values.get("rating"),
                joined_on=values.get("joined_on"),
                status=values.get("status"),
                feedback_count=values.get("feedback_count"),
                fingerprint_shown=printed,
                pgp_key_id=key_id,
            )
            session.add(state)
            return state

        self._sighting(
            "vendor",
            vendor_id,
            page_id,
            self._state("vendor", vendor_id, record, new_state),
            last_seen_earliest=last_seen.earliest if last_seen else None,
            last_seen_latest=last_seen.latest if last_seen else None,
            last_seen_shown=_shown(record, "last_seen"),
        )
        if self.setup.reparse_of is None and self._vendor_names.get(vendor_id) != values["name"]:
            # The entity carries the latest name; the snapshots keep every name it had.
            session.execute(update(Vendor).where(Vendor.id == vendor_id).values(name=values["name"]))
            self._vendor_names[vendor_id] = values["name"]
        if key_id is not None:
            self._link_key(
                session, vendor_id, key_id, None if printed is None else printed == key["fingerprint"]
            )

    def _link_key(self, session: Session, vendor_id: int, key_id: int, matches: bool | None) -> None:
        link_id = self._key_links.get((vendor_id, key_id))
        if link_id is None:
            link = VendorKey(
                vendor_id=vendor_id,
                pgp_key_id=key_id,
                first_crawl_id=self.crawl_id,
                last_crawl_id=self.crawl_id,
                printed_fingerprint_matches=matches,
            )
            session.add(link)
            session.flush()
            self._key_links[vendor_id, key_id] = link.id
            return
        if self.setup.reparse_of is not None:
            return  # a re-read of old pages is no new sighting of the key
        self._relinked.append({"link_id": link_id, "matches": matches})

    def _store_listing(self, session: Session, page_id: int, page: CapturedPage, record: Record) -> None:
        values = record.values
        listing_id = self._listing_id(session, values["listing_id"], page.fetched_at)
        if not self._first_sighting("listing", listing_id):
            return
        latest = self._states["listing"].get(listing_id)
        if (
            latest is not None
            and latest[2] == self.profile.parser_version
            and self._last_pages.get(listing_id) == (page.sha256, latest[0])
        ):
            self._sighting("listing", listing_id, page_id, latest[0])
            return
        vendor_key = values.get("vendor_id") or values.get("vendor")
        vendor_id = (
            self._vendor_id(session, vendor_key, values.get("vendor"), page.fetched_at)
            if vendor_key
            else None
        )
        path = values.get("category")
        category_id = self._category_id(session, path) if path else None
        price: Price | None = values.get("price")

        def new_state(content: str) -> ListingState:
            state = ListingState(
                listing_id=listing_id,
                content_sha256=content,
                profile_version=self.profile.parser_version,
                vendor_id=vendor_id,
                vendor_name=values.get("vendor"),
                category_id=category_id,
                title=values["title"],
                description=values.get("description"),
                price_amount=price.amount if price else None,
                price_currency=price.currency if price else None,
                price_unit=price.unit if price else None,
                price_shown=price.shown if price else _shown(record, "prices"),
                escrow=values.get("escrow"),
                stock=values.get("stock"),
                stock_shown=_shown(record, "stock"),
                ships_from_shown=_shown(record, "ships_from"),
                ships_to_shown=_shown(record, "ships_to"),
            )
            state.prices = [
                ListingPrice(position=n, amount=p.amount, currency=p.currency, unit=p.unit, shown=p.shown)
                for n, p in enumerate(values.get("prices") or [])
            ]
            state.regions = [
                ShippingRegion(role=role, position=n, code=code)
                for role, codes in _region_roles(values)
                for n, code in enumerate(codes)
            ]
            state.shipping_options = [
                _shipping_option(n, option) for n, option in enumerate(values.get("shipping_options") or [])
            ]
            session.add(state)
            return state

        self._sighting("listing", listing_id, page_id, self._state("listing", listing_id, record, new_state))

    def _store_feedback(self, session: Session, page_id: int, page: CapturedPage, record: Record) -> None:
        values = record.values
        vendor_id = self._vendor_id(session, values["vendor_id"], None, page.fetched_at)
        listing_key = values.get("listing_id")
        listing_id = self._listing_id(session, listing_key, page.fetched_at) if listing_key else None
        posted: TimeSpan | None = values.get("posted")
        price: Price | None = values.get("price")
        text_sha256 = hashlib.sha256(values["text"].encode()).hexdigest()
        sighting = _KnownFeedback(
            id=0,
            buyer=values.get("buyer"),
            rating=values.get("rating"),
            listing_id=listing_id,
            earliest=posted.earliest if posted else None,
            latest=posted.latest if posted else None,
            last_crawl_id=self.crawl_id,
        )
        same_words = self._feedback_of(session, vendor_id).setdefault(text_sha256, [])
        for known in same_words:
            # A feedback already sighted in this crawl is a different one with the same words.
            if known.last_crawl_id != self.crawl_id and known.matches(sighting):
                known.absorb(sighting)
                self._resighted.append(
                    {
                        "feedback_id": known.id,
                        "earliest": known.earliest,
                        "latest": known.latest,
                        "listing": known.listing_id,
                        "seen_at": page.fetched_at,
                    }
                )
                return
        feedback = Feedback(
            vendor_id=vendor_id,
            listing_id=listing_id,
            rating=sighting.rating,
            text=values["text"],
            text_sha256=text_sha256,
            buyer=sighting.buyer,
            posted_earliest=sighting.earliest,
            posted_latest=sighting.latest,
            price_amount=price.amount if price else None,
            price_currency=price.currency if price else None,
            first_crawl_id=self.crawl_id,
            first_seen_at=page.fetched_at,
            first_page_sha256=page.sha256,
            last_crawl_id=self.crawl_id,
            last_seen_at=page.fetched_at,
            sightings=1,
        )
        session.add(feedback)
        same_words.append(sighting)
        self._pending_feedback.append((feedback, sighting))

    def _feedback_of(self, session: Session, vendor_id: int) -> dict[str, list[_KnownFeedback]]:
        """The vendor's archived feedback by text hash, loaded on the first sighting in this crawl."""
        if vendor_id not in self._feedback:
            index: dict[str, list[_KnownFeedback]] = {}
            # A re-parse files its own feedback (it is no new sighting of the market's), and a crawl never
            # takes a re-parse's feedback for the market's: re-reading old pages must not count as sales.
            query = (
                select(
                    Feedback.id, Feedback.text_sha256, Feedback.buyer, Feedback.rating, Feedback.listing_id,
                    Feedback.posted_earliest, Feedback.posted_latest, Feedback.last_crawl_id,
                )
                .join(Crawl, Feedback.first_crawl_id == Crawl.id)
                .where(Feedback.vendor_id == vendor_id, Crawl.reparse_of.is_(None))
            )  # fmt: skip
            if self.setup.reparse_of is None:
                for feedback_id, text_sha256, *rest in session.execute(query):
                    index.setdefault(text_sha256, []).append(_KnownFeedback(feedback_id, *rest))
            self._feedback[vendor_id] = index
        return self._feedback[vendor_id]


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


def _shipping_option(position: int, option: dict[str, Any]) -> ShippingOption:
    price: Price | None = option.get("price")
    return ShippingOption(
        position=position,
        name=option.get("name") or "",
        price_amount=price.amount if price else None,
        price_currency=price.currency if price else None,
        shown=price.shown if price else None,
    )


# Values that move every day without the entity itself changing: crypto conversions follow the
# exchange rate, "last seen" follows the vendor's activity. They are stored, but not hashed.
VOLATILE_FIELDS: dict[str, frozenset[str]] = {
    "listing": frozenset({"prices"}),
    "vendor": frozenset({"last_seen"}),
}


def content_hash(kind: str, values: dict[str, Any]) -> str:
    """SHA-256 of a record's normalized values in canonical JSON: equal hashes mean nothing changed."""
    volatile = VOLATILE_FIELDS.get(kind, frozenset())
    stable = {name: value for name, value in values.items() if name not in volatile}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=_canonical).encode()).hexdigest()


def _canonical(value: Any) -> Any:
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


def _overlaps(earliest: datetime | None, latest: datetime | None, other: _KnownFeedback) -> bool:
    if None in (earliest, latest, other.earliest, other.latest):
        return True
    assert earliest and latest and other.earliest and other.latest
    return earliest <= other.latest and other.earliest <= latest
