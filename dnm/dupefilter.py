"""Duplicate filter: Scrapy's fingerprint filter, except for redirects, which continue an admitted request.

Markets bounce a request through their barriers and back (/listing/5 -> /verify?next=/listing/5 ->
/listing/5). Scrapy's redirect middleware sends each hop through the scheduler, and the stock filter
would drop the last hop as a duplicate of the very request it continues, losing the page silently.
Redirect chains stay bounded by REDIRECT_MAX_TIMES.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.dupefilters import RFPDupeFilter


class RedirectAwareDupeFilter(RFPDupeFilter):
    """Lets every hop of a redirect chain through; filters everything else as Scrapy does."""

    def request_seen(self, request: Request) -> bool:
        if request.meta.get("redirect_urls"):
            return False
        return super().request_seen(request)
