"""dnm-archive's own Scrapy signals: how its components tell each other about the market's defences.

Sent with `crawler.signals.send_catch_log(signal, **kwargs)`; a component that does not run in this
crawl (the Tor transport on a direct crawl) simply does not listen.
"""

# The market killed the circuit a request went out on: `identity` (the SOCKS isolation identity, or
# None on a direct crawl), `url`. The Tor transport gives that identity a new circuit.
circuit_killed = object()

# A mirror must not be used again in this crawl: `url` (any URL on it), `reason`.
mirror_refused = object()
