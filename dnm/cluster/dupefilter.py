"""The shared duplicate filter: scrapy-redis's, letting redirect hops through as `dnm.dupefilter` does.

dnm.cluster.scheduler checks and records a fingerprint in the same step as it queues the request.

Settings: DUPEFILTER_CLASS = "dnm.cluster.dupefilter.RedisRedirectAwareDupeFilter", with
SCHEDULER_DUPEFILTER_KEY naming the crawl's set in Redis (dnm.cluster.shared).
"""

from __future__ import annotations

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter


class RedisRedirectAwareDupeFilter(RFPDupeFilter):
    """Lets every hop of a redirect chain through (it continues an admitted request); filters the rest in
    Redis, for all workers of the crawl at once."""

    def filters(self, request: Request) -> bool:
        """Whether the request is checked at all: not a redirect hop."""
        return not request.meta.get("redirect_urls")

    def request_seen(self, request: Request) -> bool:
        if not self.filters(request):
            return False
        return bool(super().request_seen(request))
