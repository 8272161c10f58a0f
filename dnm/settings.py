"""Scrapy settings of dnm-archive: every knob with its default, in one place.

The generic spider, pipelines and middlewares read these; `dnm crawl` and tests override them.
"""

from __future__ import annotations

BOT_NAME = "dnm-archive"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

# -- dnm-archive's own settings ----------------------------------------------------------------
DNM_TRANSPORT = "tor"  # "tor" (the default, onion hosts only) or "direct" (allowed hosts only)
DNM_ALLOWED_HOSTS: list[str] = []  # hosts fetched without Tor: loopback test servers only
DNM_FETCH_MEDIA = False  # images, video and binaries are never fetched unless this is on
DNM_DATABASE_URL: str | None = None  # else $DNM_DATABASE_URL, else sqlite:///var/archive.sqlite
DNM_PROFILE_DIR: str | None = None  # else $DNM_PROFILE_DIR, else config/markets/
DNM_RAW_DIR: str | None = None  # raw captures (WARC files, dnm.rawstore), else $DNM_RAW_DIR, else var/warc
DNM_TEST_KILL_AT: str | None = None  # tests only: "stage:N" SIGKILLs the crawl (pipelines.killpoints)
# The Tor a crawl uses; `dnm crawl` fills these from the tor it launched or attached to.
DNM_TOR_MODE = "launch"  # "launch" a dedicated tor, or "attach" to one at DNM_TOR_SOCKS_PORT/CONTROL_PORT
DNM_TOR_SOCKS_PORT: int | None = None
DNM_TOR_CONTROL_PORT: int | None = None
DNM_TOR_VERSION: str | None = None
DNM_TOR_LAUNCHED = False  # True when the crawl launched this tor and may restart it
DNM_TOR_DATA_DIR: str | None = None  # the launched tor's data directory (its torrc is there)
DNM_TOR_BINARY: str | None = None  # else $DNM_TOR_BINARY, else tor on PATH
DNM_TOR_BOOTSTRAP_TIMEOUT = 90.0
DNM_TOR_EXTRA_CONFIG: dict[str, object] = {}  # torrc options added to a launched tor (private networks)
DNM_TOR_RENEW_AFTER_TIMEOUTS = 3  # timeouts in a row on one identity before it gets a new circuit
DNM_TOR_MAX_RESTARTS = 3  # restarts of a dead tor per crawl before the crawl stops as partial
DNM_TOR_LANES = 1  # isolation identities (circuits) an anonymous crawl of one market is spread over
# Barriers (dnm.middlewares.barriers): how long to wait, how often to try.
DNM_GATE_MAX_WAIT = 30.0  # longest wait honoured for a wait/queue page or a back-off, in seconds
DNM_GATE_MAX_STEPS = 40  # barrier pages one request may meet before it is given up
DNM_CAPTCHA_SOLVER = "human"  # "human" (local web page), "demo" (demo market only), "none", or a class path
DNM_CAPTCHA_TIMEOUT = 300.0  # seconds the human solver waits for an answer
DNM_CAPTCHA_PORT = 0  # the human solver's page on 127.0.0.1 (0: a free port, logged when a CAPTCHA waits)
DNM_CAPTCHA_TERMINAL = False  # also ask on the terminal when stdin is a TTY
DNM_DEMO_SEED = 1  # the demo world's seed, for the demo solver's side channel
DNM_DEMO_CAPTCHA_WRONG_FIRST = False  # the demo solver answers first attempts wrongly (tests the retry path)
DNM_CAPTCHA_ATTEMPTS = 3  # refused answers per request before the CAPTCHA is given up
DNM_LOGIN_ATTEMPTS = 3  # refused logins of one account before it is retired for the crawl
DNM_KILLED_RETRIES = 8  # new circuits per request after "killed your path"
DNM_MAINTENANCE_RETRIES = 8  # back-offs per request while the market is in maintenance
DNM_MAINTENANCE_BACKOFF = 2.0  # first back-off in seconds, doubled each time
DNM_BARRIER_RESTARTS = 2  # times a page is sent again when a barrier step loses its mirror
# Accounts (dnm.accounts): secrets outside the repository; cookies kept per account and mirror.
DNM_ACCOUNTS_FILE: str | None = None  # else $DNM_ACCOUNTS_FILE, else ~/.config/dnm-archive/accounts.toml
DNM_SESSION_DIR: str | None = None  # saved cookie jars (0600), else $DNM_SESSION_DIR, else var/sessions
# Mirrors (dnm.mirrors): a run of this many network failures marks a mirror down.
DNM_MIRROR_FAILURES = 5
# Scheduling (dnm.schedule.lock): `dnm crawl` holds a lock file per market and archive (flock) while it runs,
# so a market is never crawled twice at once into one archive (a scheduled run and a manual one).
DNM_SCHEDULE_LOCK = True
DNM_SCHEDULE_LOCK_DIR: str | None = None  # else $DNM_SCHEDULE_LOCK_DIR, else var/locks

# Scale-out (dnm.cluster, `dnm cluster crawl|worker`): workers share a queue and duplicate filter in Redis.
DNM_REDIS_URL: str | None = None  # else $DNM_REDIS_URL, else redis://127.0.0.1:6379/0
DNM_CLUSTER_CRAWL: str | None = None  # the crawl a worker joins, "ID:TOKEN" (`dnm cluster worker` finds it)
DNM_CLUSTER_WRITER = False  # set on a distributed crawl's writer, which fetches nothing itself
DNM_CLUSTER_WORKER_ID: str | None = None  # a worker's name in Redis, else host:pid:random
DNM_CLUSTER_HEARTBEAT = 2.0  # seconds between a worker's signs of life (with its stats)
DNM_CLUSTER_POLL = 0.5  # seconds an idle worker waits before it looks at the shared queue again
DNM_CLUSTER_WORKER_TTL = 10.0  # seconds of silence after which a worker's requests go back to the queue
DNM_CLUSTER_JOIN_TIMEOUT = 300.0  # how long a worker waits for the writer to publish a crawl
DNM_CLUSTER_WAIT_WORKERS = 600.0  # how long the writer waits with work left and no worker alive

# -- behaving like a careful human visitor ------------------------------------------------------
# Tor Browser's User-Agent and navigation headers: the crawler must not identify itself to the markets it
# studies, by name or by a header set no browser sends. dnm.middlewares.browser adds Sec-Fetch-Site (and
# Origin on a form post) and puts them all in Tor Browser's order (tests/security/test_leaks.py).
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate, br, zstd",  # Firefox 128's, whatever decoders Scrapy finds installed
    "Upgrade-Insecure-Requests": "1",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-User": "?1",
    "Priority": "u=0, i",
}
ROBOTSTXT_OBEY = False  # markets publish none worth obeying, and fetching it is one more request
COOKIES_ENABLED = True
TELNETCONSOLE_ENABLED = False
# Scrapy 2.19's remote-control HTTP server: a listening port on the crawler is attack surface it needs not.
REMOTE_CONTROL_ENABLED = False
CONCURRENT_REQUESTS = 16
# The spider yields one item per page; Scrapy starts this many item workers for every callback.
CONCURRENT_ITEMS = 4
CONCURRENT_REQUESTS_PER_DOMAIN = 8
DOWNLOAD_TIMEOUT = 90
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
RETRY_TIMES = 4
REDIRECT_MAX_TIMES = 5
MEDIA_ALLOW_REDIRECTS = False

# Scrapy's httpx handler is the one that speaks SOCKS5 (socks5h: names resolved by Tor). It is used for
# direct loopback fetches too, so that tests and benchmarks exercise the same download path.
DOWNLOAD_HANDLERS = {
    "http": "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler",
    "https": "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler",
}

# Order matters: media requests are refused first; the Tor middleware sets the proxy (and sees
# failures before RetryMiddleware at 550, so a dead Tor is restarted rather than retried into);
# the transport guard checks the final route last, just before HttpProxyMiddleware (750).
# Accounts are assigned before the mirror and the circuit are chosen; the barrier middleware sees
# responses after redirects are followed, cookies stored and bodies decompressed, and before
# RetryMiddleware (550) retries bare 5xx errors. Scrapy's meta-refresh follower is off: it cannot wait
# out a wait page, the barrier middleware does.
METAREFRESH_ENABLED = False
DOWNLOADER_MIDDLEWARES = {
    "dnm.middlewares.media.MediaGuardMiddleware": 60,
    "dnm.middlewares.accounts.AccountMiddleware": 540,
    "dnm.middlewares.mirrors.MirrorMiddleware": 555,
    "transport.middleware.TorTransportMiddleware": 560,
    "dnm.middlewares.guard.TransportGuardMiddleware": 580,
    "dnm.middlewares.barriers.BarrierMiddleware": 585,
    # Cookies per account, kept between crawls (replaces Scrapy's own at the same place).
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
    "dnm.middlewares.sessions.PersistentCookiesMiddleware": 700,
    # Last before the download handler: Tor Browser's headers, in its order, on every request.
    "dnm.middlewares.browser.BrowserHeadersMiddleware": 950,
}
DUPEFILTER_CLASS = "dnm.dupefilter.RedirectAwareDupeFilter"
EXTENSIONS = {"dnm.coverage.CoverageExtension": 500}
ITEM_PIPELINES = {
    "pipelines.extraction.ExtractionPipeline": 100,
    "pipelines.normalization.NormalizationPipeline": 200,
    "pipelines.capture.CapturePipeline": 800,  # the raw capture first: the page row links to its record
    "pipelines.storage.SnapshotPipeline": 900,
}

LOG_LEVEL = "INFO"
STATS_DUMP = False  # the stats are kept on the crawl row and summarised at the end instead
FEED_EXPORT_ENCODING = "utf-8"
