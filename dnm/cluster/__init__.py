"""Distributed crawling: several workers crawl one market together, one writer files it into the archive.

The pieces, one concern per module, as in scrapy-redis:

- `shared`: the shared state of one distributed crawl in Redis (key names, workers, leases, hand-offs).
- `scheduler`: scrapy-redis's scheduler, the duplicate check and the queueing one step in Redis.
- `queue`: scrapy-redis's priority queue, leasing every request it hands out until the worker is done.
- `dupefilter`: scrapy-redis's duplicate filter, letting redirect hops through as `dnm.dupefilter` does.
- `handoff`: a captured page on the wire between a worker and the writer.
- `worker`: the worker's spider middleware and extension (delivery, heartbeat, when to stop).
- `coverage`: discovered pages counted across all workers.
- `writer`: the worker stats the writer folds into the crawl's.

`spiders.cluster` holds the two spiders and `dnm.cluster.run` the commands' entry points; docs/operations.md
explains how to start, stop and resume a distributed crawl.
"""
