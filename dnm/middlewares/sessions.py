"""Session cookies kept between crawls: one private file per market account, cookies grouped by mirror host.

Scrapy's cookie middleware, with its jars (one per account: `meta["cookiejar"]`, set by the account
middleware) loaded when the spider opens and saved when it closes, under `DNM_SESSION_DIR/<market>/`
(the setting, else the environment variable, else var/sessions)
(directory mode 0700, files 0600). A nightly crawl so resumes a session the market still honours
instead of logging in and solving the gate again; an expired one is simply replaced by a new login.
Cookie values are never logged (`COOKIES_DEBUG` is refused) and never leave these files.
A saved file that group or others may read is not used and is removed (logged at ERROR): its tokens
may have been read; the market's session is replaced by a new login.
Stats: `dnm/sessions/loaded`, `dnm/sessions/saved` (cookies), `dnm/sessions/refused` (files).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from http.cookiejar import Cookie
from pathlib import Path
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.exceptions import NotConfigured

from transport.circuits import url_safe

logger = logging.getLogger(__name__)

COOKIE_FIELDS = ("name", "value", "domain", "path", "expires", "secure", "port")


def cookie_to_dict(cookie: Cookie) -> dict[str, Any]:
    data = {name: getattr(cookie, name) for name in COOKIE_FIELDS}
    data["http_only"] = cookie.has_nonstandard_attr("HttpOnly")
    return data


def cookie_from_dict(data: dict[str, Any]) -> Cookie:
    domain = str(data["domain"])
    return Cookie(
        version=0, name=str(data["name"]), value=data["value"], port=data.get("port"),
        port_specified=data.get("port") is not None, domain=domain, domain_specified=domain.startswith("."),
        domain_initial_dot=domain.startswith("."), path=str(data.get("path") or "/"), path_specified=True,
        secure=bool(data.get("secure")), expires=data.get("expires"), discard=data.get("expires") is None,
        comment=None, comment_url=None, rest={"HttpOnly": ""} if data.get("http_only") else {},
    )  # fmt: skip


class PersistentCookiesMiddleware(CookiesMiddleware):
    """Scrapy's cookie middleware with each jar saved to, and restored from, a private file."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PersistentCookiesMiddleware:
        if crawler.settings.getbool("COOKIES_DEBUG"):
            raise NotConfigured("COOKIES_DEBUG would log session cookies; dnm-archive never does")
        middleware = super().from_crawler(crawler)
        middleware.directory = (
            crawler.settings.get("DNM_SESSION_DIR") or os.environ.get("DNM_SESSION_DIR") or "var/sessions"
        )
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware  # type: ignore[return-value]

    directory: str | None = None

    def market_dir(self, spider: Spider) -> Path | None:
        if not self.directory:
            return None
        return Path(self.directory) / url_safe(getattr(spider, "market", spider.name))

    def spider_opened(self, spider: Spider) -> None:
        folder = self.market_dir(spider)
        if folder is None or not folder.is_dir():
            return
        now, loaded = time.time(), 0
        refused = 0
        for path in sorted(folder.glob("*.json")):
            try:
                with path.open(encoding="utf-8") as handle:
                    # The mode of the file actually read: tokens others could read may be someone else's too.
                    mode = os.fstat(handle.fileno()).st_mode
                    if mode & 0o077:
                        # Its tokens may have been read: not reused, and not left lying readable either.
                        path.unlink()
                        logger.error(
                            "session file %s was accessible by group or others (mode %04o): not used, "
                            "removed, the session replaced by a new login. These files are written "
                            "0600: find what changed the mode (keep the folder private: chmod 700 %s, "
                            "chmod 600 its files)",
                            path, stat.S_IMODE(mode), folder,
                        )  # fmt: skip
                        refused += 1
                        continue
                    saved = json.loads(handle.read())
                jar = self.jars[saved["jar"]]
                for data in saved["cookies"]:
                    if data.get("expires") is None or data["expires"] > now:
                        jar.set_cookie(cookie_from_dict(data))
                        loaded += 1
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("session file %s ignored (%s)", path, type(exc).__name__)
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("dnm/sessions/loaded", loaded)
        if refused:
            self.crawler.stats.set_value("dnm/sessions/refused", refused)
        if loaded:
            logger.info("%d session cookie(s) of %s restored from %s", loaded, spider.name, folder)

    def spider_closed(self, spider: Spider) -> None:
        folder = self.market_dir(spider)
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        saved = 0
        for key, jar in self.jars.items():
            cookies = [cookie_to_dict(c) for c in jar]
            path = folder / f"{url_safe(str(key))}.json"
            # Written private from the first byte: the file holds live session tokens.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                json.dump({"jar": key, "cookies": cookies}, out)
            os.chmod(path, 0o600)
            saved += len(cookies)
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("dnm/sessions/saved", saved)
