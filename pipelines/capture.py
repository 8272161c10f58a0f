"""Capture: writes each page to the crawl's WARC file (dnm.rawstore) and links the page to its record.

Runs before storage, so the page's payload row knows the record holding its bytes. The file is opened
at the first page (the crawl row, hence the crawl id, exists by then; the row names the file at once,
dnm.recovery), every record reaches the kernel before the page is committed, and it is closed (synced)
at spider_closed: a crash loses at most the record in flight (and the fetch-log lines not yet written),
and never leaves a page linked to a record that is not in the file. A full disk stops the crawl.
A payload this crawl already wrote is a revisit record; one an earlier crawl stored (its file
still in the store) is a line of the crawl's fetch log. Settings: `DNM_RAW_DIR` (else $DNM_RAW_DIR,
else var/warc), `DNM_DATABASE_URL` (earlier payloads). Stats: `dnm/warc/records` (pages written as
records: responses and revisits), `dnm/warc/revisits`, `dnm/warc/logged` (pages written as fetch-log
lines), `dnm/warc/bytes` (compressed size of the file), `dnm/warc/file` (its name, relative to the raw
directory), `dnm/warc/chain_head` and `dnm/warc/chain_records` (its hash chain), `dnm/warc/errors`.
"""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from sqlalchemy import Engine, select

from dnm import __version__
from dnm.items import PageItem
from dnm.rawstore import (
    NETWORK_PATH_URI,
    RawStore,
    StoredPayload,
    raw_dir,
    warcinfo_fields,
    warcio_version,
)
from dnm.recovery import record_warc_file
from models import Payload
from models.crawl import digest_prefix
from models.db import open_engine
from pipelines.diskfull import disk_failure, stop_crawl
from pipelines.killpoints import KillPoint
from pipelines.storage import settings_hash

logger = logging.getLogger(__name__)


def earlier_payloads(engine: Engine) -> Any:
    """A lookup of payloads stored by earlier crawls: the response record holding each."""

    def lookup(payload_sha256: str) -> StoredPayload | None:
        with engine.connect() as connection:
            row = connection.execute(
                select(Payload.warc_file, Payload.warc_record_id).where(
                    Payload.sha256_prefix == digest_prefix(payload_sha256),
                    Payload.sha256 == payload_sha256,
                    Payload.warc_record_id.is_not(None),
                )
            ).first()
        if row is None:
            return None
        return StoredPayload(row.warc_file, row.warc_record_id)

    return lookup


def network_path(settings: Any, mirrors: tuple[str, ...]) -> bytes:
    """How this crawl reaches the market, as the first record after warcinfo (evidence packages copy it).

    Only what the crawl knows for sure; what it cannot tell is written as null, not guessed.
    """
    tor = settings.get("DNM_TRANSPORT", "tor") == "tor"
    facts = {
        "transport": settings.get("DNM_TRANSPORT", "tor"),
        "tor_version": settings.get("DNM_TOR_VERSION") if tor else None,
        "tor_socks": f"127.0.0.1:{settings.get('DNM_TOR_SOCKS_PORT')}" if tor else None,
        "tor_launched_by_crawl": bool(settings.getbool("DNM_TOR_LAUNCHED")) if tor else None,
        "name_resolution": "by Tor (socks5h): onion names never resolved locally" if tor else "loopback only",
        "isolation": "a SOCKS identity (username) per market and account, so separate circuits"
        if tor
        else "none (direct transport to hosts allowed by name)",
        "allowed_hosts": sorted(settings.getlist("DNM_ALLOWED_HOSTS")),
        "profile_mirrors": list(mirrors),
        "clock": clock_status(),
    }
    if settings.getbool("DNM_CLUSTER_WRITER"):
        # A distributed crawl's writer fetches nothing: its workers did, each through its own tor, and each
        # recorded its own network path (the crawl's stats, dnm/cluster/workers).
        facts.update(tor_version=None, tor_socks=None, tor_launched_by_crawl=None)
        facts["fetched_by"] = "the workers of a distributed crawl (dnm/cluster/workers in the crawl's stats)"
    return json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()


def clock_status() -> dict[str, Any]:
    """The capture clock: the host's UTC clock, and whether the system says it is NTP-synchronized."""
    synchronized: bool | None = None
    try:
        shown = subprocess.run(
            ["timedatectl", "show", "--property=NTPSynchronized", "--value"],
            capture_output=True, text=True, timeout=2, check=False,
        ).stdout.strip()  # fmt: skip
        synchronized = {"yes": True, "no": False}.get(shown)
    except (OSError, subprocess.SubprocessError):
        pass  # no systemd here: unknown, and recorded as unknown
    return {"source": "system clock, UTC, microseconds (WARC-Date)", "ntp_synchronized": synchronized}


class CapturePipeline:
    """Writes every PageItem (content, barrier and mirror-check pages alike) to the raw store."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.directory = raw_dir(crawler.settings.get("DNM_RAW_DIR"))
        self.store: RawStore | None = None
        self.engine: Engine | None = None
        self.kill = KillPoint(crawler.settings.get("DNM_TEST_KILL_AT"))
        self.disk_full = False  # nothing more is written after a full disk

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CapturePipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    def open(self) -> RawStore:
        """The crawl's WARC file, created with its warcinfo record."""
        if self.store is None:
            stats, settings = self.crawler.stats, self.crawler.settings
            assert stats is not None
            crawl_id = stats.get_value("dnm/crawl_id")
            if crawl_id is None:
                raise RuntimeError("the storage pipeline has not opened the crawl row")
            profile = self.crawler.spider.profile  # type: ignore[union-attr]
            self.engine = open_engine(settings.get("DNM_DATABASE_URL"))
            info = warcinfo_fields(
                software=f"dnm-archive/{__version__}",
                format="WARC File Format 1.1",
                conformsTo="https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                dnm_market=profile.market,
                dnm_crawl_id=crawl_id,
                dnm_profile_version=profile.parser_version,
                dnm_profile_sha256=profile.sha256,
                dnm_settings_sha256=settings_hash(self.crawler),
                dnm_transport=settings.get("DNM_TRANSPORT", "tor"),
                dnm_tor_version=settings.get("DNM_TOR_VERSION"),
                dnm_warcio_version=warcio_version(),
                dnm_redacted="request Cookie, Authorization, Proxy-Authorization; response Set-Cookie; "
                "request bodies are not stored",
            )
            self.store = RawStore(
                self.directory, profile.market, crawl_id, info, earlier_payloads(self.engine)
            )
            record_warc_file(self.engine, crawl_id, self.store.warc_file)
            self.store.write_metadata(
                f"{NETWORK_PATH_URI}{crawl_id}", "application/json", network_path(settings, profile.mirrors)
            )
            stats.set_value("dnm/warc/file", self.store.warc_file)
            logger.info("raw captures of crawl %s go to %s", crawl_id, self.directory / self.store.warc_file)
        return self.store

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem):
            return item
        stats = self.crawler.stats
        assert stats is not None
        if self.disk_full:
            stats.inc_value("dnm/warc/errors")  # archived without its raw capture, as the log said
            return item
        if stats.get_value("dnm/crawl_id") is None and stats.get_value("dnm/stopped"):
            return item  # no crawl row could be made: the crawl is stopping
        try:
            store = self.open()
            if self.kill.due("member"):
                # Armed until a record is written: the Nth page may write none (its body is in an
                # earlier crawl's file, a fetch-log line), and which page is Nth varies with concurrency.
                store.file.kill_mid_member = True
            stored = store.write(item)
        except Exception as exc:
            # The page is still archived, without its raw capture; the stats and log say so.
            stats.inc_value("dnm/warc/errors")
            failure = disk_failure(exc)
            if failure is None:
                logger.exception("could not write %s to the raw store", item.url)
                return item
            self.disk_full = True
            where = self.directory / self.store.warc_file if self.store is not None else self.directory
            stop_crawl(self.crawler, f"disk full ({failure}) while writing the raw capture {where}")
            return item
        self.kill.reached("warc")
        item.warc_file, item.warc_record_id = stored.warc_file, stored.record_id
        item.payload_sha256 = stored.payload_sha256
        if stored.logged:
            stats.inc_value("dnm/warc/logged")
        else:
            stats.inc_value("dnm/warc/records")
        if stored.revisit:
            stats.inc_value("dnm/warc/revisits")
        stats.set_value("dnm/warc/bytes", store.bytes)
        return item

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.store is not None:
            try:
                self.store.close()
            except OSError as exc:
                # The fetch log's last lines did not fit: the records are chained and on disk.
                failure = disk_failure(exc)
                if failure is None:
                    raise
                self.store.failed = exc
                logger.error("disk full (%s) while closing the raw capture %s", failure, self.store.warc_file)
                self.crawler.stats.set_value(  # type: ignore[union-attr]
                    "dnm/stopped",
                    f"disk full ({failure}) while closing the raw capture {self.store.warc_file}",
                )
            assert self.crawler.stats is not None
            self.crawler.stats.set_value("dnm/warc/bytes", self.store.bytes)
            # The chain's head lives apart from the raw store, so rewriting both a record and the chain
            # file is still found (dnm archive verify).
            self.crawler.stats.set_value("dnm/warc/chain_head", self.store.chain.head)
            self.crawler.stats.set_value("dnm/warc/chain_records", self.store.chain.records)
        if self.engine is not None:
            self.engine.dispose()
