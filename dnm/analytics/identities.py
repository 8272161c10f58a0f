"""Vendor identities across markets and names, linked by the OpenPGP keys their accounts show.

A vendor account (`vendors`: one market, one market-side id) that showed a key (`vendor_keys`) is
joined to every other account that showed the same key (`pgp_keys.fingerprint`, computed from the key
block itself, never from a printed fingerprint). An identity is a connected component of the graph
whose nodes are accounts and fingerprints and whose edges are "this account showed this key": two
accounts are one identity when a chain of shared keys joins them, whatever their names.

Caveats: a shared key is strong evidence, not proof. A key can be copied onto a phishing or
impersonating account (a vendor's public key is public), a team can share one key, and a vendor who
uses a fresh key per market is not linked at all (no name similarity is used here). Accounts whose
printed fingerprint does not match their key (`printed_fingerprint_matches` false) are flagged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, aliased

from dnm.analytics.crawls import Period
from models import Crawl, Market, PgpKey, Vendor, VendorKey, VendorSnapshot


@dataclass(frozen=True)
class Account:
    """One vendor account in an identity."""

    market: str
    vendor_id: str
    name: str
    fingerprints: tuple[str, ...]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    # False when the account printed a fingerprint that is not its key's (impersonation, tampering).
    printed_fingerprint_ok: bool | None


@dataclass(frozen=True)
class Identity:
    """Accounts joined by shared keys; `identity_id` is the smallest fingerprint, stable across runs."""

    identity_id: str
    accounts: tuple[Account, ...]
    fingerprints: tuple[str, ...]
    first_seen_at: datetime | None
    last_seen_at: datetime | None

    @property
    def markets(self) -> tuple[str, ...]:
        """The markets the identity's accounts are on."""
        return tuple(sorted({a.market for a in self.accounts}))

    @property
    def names(self) -> tuple[str, ...]:
        """The distinct vendor names it used."""
        return tuple(sorted({a.name for a in self.accounts}))


def identities(
    engine: Engine, market: str | None = None, period: Period | None = None, min_accounts: int = 2
) -> list[Identity]:
    """Identities with at least `min_accounts` accounts, largest first.

    Components are built over the whole archive, so an account's links to other markets are found
    whatever `market` is; `market` then keeps the identities with an account there. `period` keeps
    the key sightings whose crawls overlap it (first crawl started before `until`, last crawl at or
    after `since`). With `min_accounts=1` every account that showed a key is its own identity or part
    of one.
    """
    period = period or Period()
    first, last = aliased(Crawl), aliased(Crawl)
    query = (
        select(Vendor.id, PgpKey.fingerprint, VendorKey.printed_fingerprint_matches)
        .join(VendorKey, VendorKey.vendor_id == Vendor.id)
        .join(PgpKey, VendorKey.pgp_key_id == PgpKey.id)
        .join(first, VendorKey.first_crawl_id == first.id)
        .join(last, VendorKey.last_crawl_id == last.id)
    )
    if period.until is not None:
        query = query.where(first.started_at < period.until)
    if period.since is not None:
        query = query.where(last.started_at >= period.since)
    with Session(engine) as session:
        edges = session.execute(query).all()
        vendor_ids = sorted({vendor_id for vendor_id, _, _ in edges})
        accounts = {
            row.id: row
            for row in session.execute(
                select(Vendor.id, Vendor.vendor_key, Vendor.name, Market.slug)
                .join(Market, Vendor.market_id == Market.id)
                .where(Vendor.id.in_(vendor_ids))
            )
        }
        seen = {
            vendor_id: (earliest, latest)
            for vendor_id, earliest, latest in session.execute(
                select(
                    VendorSnapshot.vendor_id,
                    func.min(VendorSnapshot.observed_at),
                    func.max(VendorSnapshot.observed_at),
                )
                .where(VendorSnapshot.vendor_id.in_(vendor_ids))
                .group_by(VendorSnapshot.vendor_id)
            )
        }
    components = _components([(vendor_id, fingerprint) for vendor_id, fingerprint, _ in edges])
    keys: dict[int, set[str]] = defaultdict(set)
    matches: dict[int, list[bool | None]] = defaultdict(list)
    for vendor_id, fingerprint, ok in edges:
        keys[vendor_id].add(fingerprint)
        matches[vendor_id].append(ok)
    out = []
    for members in components:
        built = []
        for vendor_id in members:
            row = accounts[vendor_id]
            earliest, latest = seen.get(vendor_id, (None, None))
            flags = matches[vendor_id]
            ok = False if False in flags else (True if True in flags else None)
            built.append(
                Account(
                    row.slug, row.vendor_key, row.name, tuple(sorted(keys[vendor_id])), earliest, latest, ok
                )
            )
        built.sort(key=lambda a: (a.market, a.vendor_id))
        if len(built) < min_accounts or (market is not None and all(a.market != market for a in built)):
            continue
        fingerprints = tuple(sorted({f for a in built for f in a.fingerprints}))
        firsts = [a.first_seen_at for a in built if a.first_seen_at is not None]
        lasts = [a.last_seen_at for a in built if a.last_seen_at is not None]
        out.append(
            Identity(
                fingerprints[0],
                tuple(built),
                fingerprints,
                min(firsts) if firsts else None,
                max(lasts) if lasts else None,
            )
        )
    out.sort(key=lambda i: (-len(i.accounts), i.identity_id))
    return out


def _components(edges: list[tuple[int, str]]) -> list[list[int]]:
    """Connected components over account -- fingerprint edges, as lists of account ids (union-find)."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps the trees flat
            node = parent[node]
        return node

    for vendor_id, fingerprint in edges:
        a, b = find(f"account:{vendor_id}"), find(f"key:{fingerprint}")
        if a != b:
            parent[a] = b
    groups: dict[str, list[int]] = defaultdict(list)
    for node in list(parent):
        if node.startswith("account:"):
            groups[find(node)].append(int(node.removeprefix("account:")))
    return [sorted(members) for members in groups.values()]
