"""The shared request queue: scrapy-redis's priority queue, leasing each request it hands out to its worker.

`pop` moves a request from the queue into the worker's leases in one step (a Lua script) and tags it with
the lease (`meta["dnm_lease"]`). The lease ends when the worker delivers what the request brought
(`SharedCrawl.deliver`), or passes to the request that continues it (a redirect hop, a retry: `push`
sees the tag). A worker that dies with leases has them put back in the queue (`SharedCrawl.reap`), so no
request is lost however a worker ends.

Settings: SCHEDULER_QUEUE_CLASS = "dnm.cluster.queue.LeasedPriorityQueue"; the spider names the worker
and its crawl (`spider.shared`, `spider.worker_id`; spiders.cluster).
"""

from __future__ import annotations

import uuid
from typing import Any

from scrapy import Request
from scrapy_redis.queue import PriorityQueue

LEASE = "dnm_lease"

# The best request (lowest score) out of the queue and into the leases, as "<score>\n<request>".
_POP = """
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then return false end
redis.call('ZREM', KEYS[1], top[1])
redis.call('HSET', KEYS[2], ARGV[1], top[2] .. '\\n' .. top[1])
return top[1]
"""


# Queue a request (unless KEYS[3], the duplicate filter, holds its fingerprint ARGV[4] already) and end the
# lease ARGV[3] it continues: all or nothing.
_PUSH = """
if #KEYS == 3 and redis.call('SADD', KEYS[3], ARGV[4]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HDEL', KEYS[2], ARGV[3]) end
return 1
"""


class LeasedPriorityQueue(PriorityQueue):
    """scrapy-redis's priority queue whose pops are leases, ended by delivery or by a continuing request."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.worker: str = spider.worker_id
        self.leases_key: str = spider.shared.leases(self.worker)
        self._pop = server.register_script(_POP)
        self._push = server.register_script(_PUSH)

    def push(self, request: Request, unseen: tuple[str, str] | None = None) -> bool:
        """Queue a request; if it continues a leased one, that lease ends in the same step. With `unseen`
        (the duplicate filter's set and the request's fingerprint), only if the set did not hold it yet,
        which it then does; returns False for a duplicate."""
        lease = request.meta.pop(LEASE, None) or ""
        data = self._encode_request(request)
        seen_key, fingerprint = unseen or ("", "")
        keys = [self.key, self.leases_key] + ([seen_key] if seen_key else [])
        return bool(self._push(keys=keys, args=[-request.priority, data, lease, fingerprint]))

    def pop(self, timeout: int = 0) -> Request | None:
        """The best queued request, leased to this worker."""
        lease = uuid.uuid4().hex
        data = self._pop(keys=[self.key, self.leases_key], args=[lease])
        if not data:
            return None
        request = self._decode_request(data)
        request.meta[LEASE] = lease
        return request
