"""The shared scheduler: scrapy-redis's, with "not seen yet, so queue it" as one step in Redis.

scrapy-redis marks a request seen (its duplicate filter) and then queues it, two commands apart: a
worker killed between them leaves a request marked seen that no queue holds, and the page is lost for
the whole crawl, since fetching its parent again finds the request "seen". Here both happen in one Lua
script (`LeasedPriorityQueue.push`), so a request is either queued and seen, or neither; the lease of the
response that found it ends only after (dnm.cluster.worker), so a parent fetched again re-finds what was
not queued.

Settings: SCHEDULER = "dnm.cluster.scheduler.SharedScheduler", with scrapy-redis's settings for the rest
(SCHEDULER_QUEUE_CLASS = "dnm.cluster.queue.LeasedPriorityQueue", DUPEFILTER_CLASS =
"dnm.cluster.dupefilter.RedisRedirectAwareDupeFilter").
"""

from __future__ import annotations

from scrapy import Request
from scrapy_redis.scheduler import Scheduler


class SharedScheduler(Scheduler):
    """scrapy-redis's scheduler whose duplicate check and queueing are one atomic step."""

    def enqueue_request(self, request: Request) -> bool:
        fingerprint = None
        if not request.dont_filter and self.df.filters(request):
            fingerprint = self.df.request_fingerprint(request)
        if not self.queue.push(request, unseen=(self.df.key, fingerprint) if fingerprint else None):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        request = self.queue.pop(self.idle_before_close)
        if request is not None and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request
