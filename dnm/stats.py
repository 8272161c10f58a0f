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
    for needle, cause in (
        ("timeout", "timeout"),
        ("refused", "connection_refused"),
        ("dns", "dns"),
        ("resolve", "dns"),
        ("dataloss", "data_loss"),
        ("connectionlost", "connection_lost"),
        ("reset", "connection_lost"),
        ("ignorerequest", "refused_by_guard"),
    ):
        if needle in lowered:
            return cause
    return name
