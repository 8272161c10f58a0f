"""The shared state of one distributed crawl in Redis: its key names, its workers, their leases and hand-offs.

A distributed crawl is one crawl row in the archive (PostgreSQL), made by the writer (`dnm cluster crawl`),
and fetched by any number of workers (`dnm cluster worker`) that share, in Redis:

- `dnm:<market>:active`: the crawl id of the market's crawl in progress; workers join it.
- `dnm:<market>:<crawl>:requests`, `...:dupefilter`: scrapy-redis's queue and duplicate filter.
- `...:leases:<worker>`: requests a worker took from the queue and has not finished; a worker that stops
  answering (`...:alive:<worker>` expired) has them put back in the queue by whoever notices first.
- `...:items`: captured pages handed to the writer (`dnm.cluster.handoff`); `...:taken`: those the writer
  is filing. A page is handed over in the same transaction that ends its request's lease, so a worker
  killed at any moment has either handed a page over or left its request to be fetched again.
- `...:workers`, `...:info`, `...:stats`: who works on the crawl, how it reaches the market, its stats.
- `...:seeded`, `...:stop`, `...:done`: the start pages are queued; stop asked for; the crawl is over.

Redis must be trusted: requests travel pickled (scrapy-redis's default serializer). Keep it on loopback or
behind a password and TLS (`DNM_REDIS_URL`, docs/operations.md).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Requeue every lease of one worker, in one step: no other client sees a request in neither place.
_RELEASE = """
local leases = redis.call('HVALS', KEYS[2])
for _, lease in ipairs(leases) do
  local cut = string.find(lease, '\\n', 1, true)
  redis.call('ZADD', KEYS[1], tonumber(string.sub(lease, 1, cut - 1)), string.sub(lease, cut + 1))
end
redis.call('DEL', KEYS[2])
return #leases
"""


def redis_url(settings: Any) -> str:
    """The Redis of distributed crawls: DNM_REDIS_URL, else the environment variable, else loopback."""
    return settings.get("DNM_REDIS_URL") or os.environ.get("DNM_REDIS_URL") or DEFAULT_REDIS_URL


def connect(url: str) -> redis.Redis:
    """A client of the Redis at `url`, checked to answer; raises ClusterError with what to do if not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ClusterError(
            f"Redis at {_shown(url)} does not answer ({exc}): start it, or point DNM_REDIS_URL at one"
        ) from exc
    return client


def _shown(url: str) -> str:
    """A Redis URL without its password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def new_worker_id() -> str:
    """A worker's name: host, process and a random part (a restarted process is another worker)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ClusterError(Exception):
    """A distributed crawl cannot start or go on; the message says why and what to do."""


def active_key(market: str) -> str:
    return f"dnm:{market}:active"


def active_crawl(client: redis.Redis, market: str, worker_ttl: float = 10.0) -> SharedCrawl | None:
    """The market's distributed crawl in progress, if any."""
    value = client.get(active_key(market))
    return None if value is None else SharedCrawl.at(client, market, value.decode(), worker_ttl)


@dataclass(frozen=True)
class Progress:
    """How far a distributed crawl is, as Redis holds it."""

    seeded: bool
    queued: int
    leased: int
    handed_over: int
    live_workers: list[str]
    stop: bool
    done: bool
    # Requests of silent workers put back in the queue on the way: {worker: requests}.
    reaped: dict[str, int]

    @property
    def work_left(self) -> bool:
        """Anything still to fetch or file: not seeded yet, requests queued or leased, pages not filed."""
        return not self.seeded or bool(self.queued or self.leased or self.handed_over)


class SharedCrawl:
    """One distributed crawl's state in Redis, for its workers and its writer alike."""

    def __init__(
        self,
        client: redis.Redis,
        market: str,
        crawl_id: int,
        token: str | None = None,
        worker_ttl: float = 10.0,
    ) -> None:
        self.client = client
        self.market = market
        self.crawl_id = crawl_id
        # Crawl ids are unique in one archive, not in one Redis: the token keeps two archives' crawls apart.
        self.token = token or uuid.uuid4().hex[:12]
        self.prefix = f"dnm:{market}:{crawl_id}:{self.token}"
        self.worker_ttl = worker_ttl
        self._release = client.register_script(_RELEASE)

    @property
    def address(self) -> str:
        """How workers find this crawl: "<crawl id>:<token>" (DNM_CLUSTER_CRAWL)."""
        return f"{self.crawl_id}:{self.token}"

    @classmethod
    def at(cls, client: redis.Redis, market: str, address: str, worker_ttl: float = 10.0) -> SharedCrawl:
        """The crawl at an address ("<crawl id>:<token>")."""
        crawl_id, _, token = address.partition(":")
        if not crawl_id.isdigit() or not token:
            raise ClusterError(f"not a distributed crawl's address: {address!r} (want CRAWL_ID:TOKEN)")
        return cls(client, market, int(crawl_id), token, worker_ttl)

    # -- key names -------------------------------------------------------------------------

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    @property
    def requests(self) -> str:
        return self.key("requests")

    @property
    def dupefilter(self) -> str:
        return self.key("dupefilter")

    def leases(self, worker: str) -> str:
        return self.key(f"leases:{worker}")

    def alive(self, worker: str) -> str:
        return self.key(f"alive:{worker}")

    def discovered(self, page_type: str) -> str:
        return self.key(f"discovered:{page_type}")

    # -- the writer's side -----------------------------------------------------------------

    def publish(self) -> None:
        """Make this the market's crawl in progress, so workers join it; refuses when another one is."""
        if not self.client.set(active_key(self.market), self.address, nx=True):
            other = active_crawl(self.client, self.market)
            raise ClusterError(
                f"crawl {other.crawl_id if other else '?'} of {self.market} is still in progress in Redis; "
                f"finish it, or close it with `dnm cluster reset {self.market}`"
            )

    def take_item(self) -> bytes | None:
        """The next handed-over page, moved to `taken` until it is filed (`filed`)."""
        return self.client.lmove(self.key("items"), self.key("taken"), "LEFT", "RIGHT")

    def filed(self, wire: bytes) -> None:
        self.client.lrem(self.key("taken"), 1, wire)

    def finish(self) -> None:
        """Tell the workers the crawl is over."""
        self.client.set(self.key("done"), 1)

    def close(self) -> None:
        """Forget the crawl: no longer the market's crawl in progress, its queue and filter deleted. The
        `done` flag stays a day, for workers that come late."""
        keys = [key for key in self.client.scan_iter(match=f"{self.prefix}:*") if not key.endswith(b":done")]
        pipe = self.client.pipeline()
        if keys:
            pipe.delete(*keys)
        pipe.expire(self.key("done"), 86400)
        pipe.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            1,
            active_key(self.market),
            self.address,
        )
        pipe.execute()

    def discovered_counts(self) -> dict[str, int]:
        """Pages discovered per page type by all workers together."""
        marker = self.key("discovered:")
        counts = {}
        for key in self.client.scan_iter(match=f"{marker}*"):
            counts[key.decode()[len(marker) :]] = int(self.client.scard(key))
        return counts

    def worker_stats(self) -> dict[str, dict[str, Any]]:
        """Each worker's last stats, as it reported them."""
        return {
            worker.decode(): json.loads(stats)
            for worker, stats in self.client.hgetall(self.key("stats")).items()
        }

    def worker_info(self) -> dict[str, dict[str, Any]]:
        return {
            worker.decode(): json.loads(info)
            for worker, info in self.client.hgetall(self.key("info")).items()
        }

    # -- the workers' side -----------------------------------------------------------------

    def join(self, worker: str, info: dict[str, Any]) -> None:
        """Register a worker, alive for `worker_ttl` seconds unless it beats again."""
        pipe = self.client.pipeline()
        pipe.sadd(self.key("workers"), worker)
        pipe.hset(self.key("info"), worker, json.dumps(info, sort_keys=True, default=str))
        pipe.set(self.alive(worker), 1, px=int(self.worker_ttl * 1000))
        pipe.execute()

    def beat(self, worker: str, stats: dict[str, Any]) -> None:
        """The worker is alive; its stats so far."""
        pipe = self.client.pipeline()
        pipe.set(self.alive(worker), 1, px=int(self.worker_ttl * 1000))
        pipe.hset(self.key("stats"), worker, json.dumps(stats, sort_keys=True, default=str))
        pipe.execute()

    def leave(self, worker: str, stats: dict[str, Any]) -> None:
        """The worker stops: its last stats; it is no longer counted (its leases were released or ended)."""
        pipe = self.client.pipeline()
        pipe.hset(self.key("stats"), worker, json.dumps(stats, sort_keys=True, default=str))
        pipe.delete(self.leases(worker), self.alive(worker))
        pipe.srem(self.key("workers"), worker)
        pipe.execute()

    def release(self, worker: str) -> int:
        """Put a worker's leased requests back in the queue; returns how many."""
        return int(self._release(keys=[self.requests, self.leases(worker)]))

    def deliver(self, worker: str, lease: str | None, wires: Iterable[bytes]) -> None:
        """Hand pages to the writer and end the lease of the request that brought them, in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        wires = list(wires)
        if wires:
            pipe.rpush(self.key("items"), *wires)
            pipe.incrby(self.key("handed"), len(wires))
        if lease:
            pipe.hdel(self.leases(worker), lease)
        pipe.execute()

    def seed(self) -> bool:
        """True for the first worker to ask: it queues the start pages."""
        return bool(self.client.set(self.key("seeding"), 1, nx=True))

    def mark_seeded(self) -> None:
        self.client.set(self.key("seeded"), 1)

    def note_discovered(self, page_type: str, key: str) -> int:
        """Record a discovered page; returns how many of its type all workers discovered."""
        pipe = self.client.pipeline()
        pipe.sadd(self.discovered(page_type), key)
        pipe.scard(self.discovered(page_type))
        return int(pipe.execute()[1])

    def ask_stop(self) -> None:
        self.client.set(self.key("stop"), 1)

    def stop_asked(self) -> bool:
        return bool(self.client.exists(self.key("stop")))

    # -- both sides ------------------------------------------------------------------------

    def reap(self) -> dict[str, int]:
        """Requeue the leases of workers that stopped answering; returns {worker: requests requeued}."""
        reaped = {}
        for raw in self.client.smembers(self.key("workers")):
            worker = raw.decode()
            if not self.client.exists(self.alive(worker)):
                reaped[worker] = self.release(worker)
                pipe = self.client.pipeline()
                pipe.srem(self.key("workers"), worker)
                pipe.hset(self.key("lost"), worker, int(time.time()))
                pipe.execute()
        return reaped

    def handed(self) -> int:
        """Pages handed to the writer so far, by all workers."""
        return int(self.client.get(self.key("handed")) or 0)

    def lost_workers(self) -> list[str]:
        return sorted(worker.decode() for worker in self.client.hkeys(self.key("lost")))

    def progress(self) -> Progress:
        """Where the crawl stands (after the leases of silent workers were put back)."""
        reaped = self.reap()
        workers = sorted(raw.decode() for raw in self.client.smembers(self.key("workers")))
        pipe = self.client.pipeline()
        pipe.exists(self.key("seeded"))
        pipe.zcard(self.requests)
        pipe.llen(self.key("items"))
        pipe.llen(self.key("taken"))
        pipe.exists(self.key("stop"))
        pipe.exists(self.key("done"))
        for worker in workers:
            pipe.hlen(self.leases(worker))
        seeded, queued, items, taken, stop, done, *leases = pipe.execute()
        return Progress(
            seeded=bool(seeded),
            queued=int(queued),
            leased=sum(int(count) for count in leases),
            handed_over=int(items) + int(taken),
            live_workers=workers,
            stop=bool(stop),
            done=bool(done),
            reaped=reaped,
        )
