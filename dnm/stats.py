"""Names for what went wrong, shared by everything that counts failures in the crawl's stats."""

from __future__ import annotations

from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure


def failure_cause(failure: Failure) -> str:
    """A short, stable cause name for a failed request: `http_404`, `timeout`, `connection_refused`, ..."""
    if failure.check(HttpError):
        response = failure.value.response
        return f"http_{response.status}"
    return exception_cause(failure.value)


def exception_cause(exception: BaseException) -> str:
    """A short, stable cause name for an exception raised while downloading."""
    name = type(exception).__name__
    lowered = name.lower()
    message = str(exception)
    for needle, text, cause in MESSAGE_CAUSES:
        if needle in lowered and text in message:
            return cause
    for needle, cause in CAUSES:
        if needle in lowered:
            return cause
    return name


# Scrapy raises generic exceptions for its size caps and tells them apart only in the message: a body
# larger than DOWNLOAD_MAXSIZE (announced or received) cancels the download; one that inflates past it
# (a compression bomb) is ignored by HttpCompressionMiddleware. (class substring, message substring, cause)
MESSAGE_CAUSES = (
    ("downloadcancelled", "larger than download max size", "size_cap"),
    ("ignorerequest", "exceeded DOWNLOAD_MAXSIZE", "size_cap_decompressed"),
)

# Substring of an exception's class name -> the cause it is counted under; the first match wins, so the
# longer names come before the substrings they contain ("transportrefused" before "refused").
CAUSES = (
    ("transportrefused", "refused_by_guard"),
    ("timeout", "timeout"),
    ("refused", "connection_refused"),
    ("dns", "dns"),
    ("resolve", "dns"),
    ("dataloss", "data_loss"),
    ("connectionlost", "connection_lost"),
    ("reset", "connection_lost"),
    ("barrierunpassed", "barrier"),
    ("ignorerequest", "ignored"),
    ("downloadfailed", "download_failed"),
    ("downloadcancelled", "cancelled"),
    ("proxyerror", "proxy_error"),
)


def is_known_cause(cause: str) -> bool:
    """True for the network and HTTP causes a crawl expects to meet; False hints at a bug."""
    known = {cause for _, cause in CAUSES} | {cause for _, _, cause in MESSAGE_CAUSES}
    return cause.startswith("http_") or cause in known
