"""The one error every normalizer raises when a market string cannot be read.

Callers (spiders, pipelines) catch ``NormalizationError`` to count a bad field and carry on; any other
exception escaping a normalizer is a bug in the normalizer, not in the page.
"""

from __future__ import annotations

# Hostile pages can put megabytes into one field; an error message should still fit on a log line.
_SHOWN_LIMIT = 80


def shown(value: object) -> str:
    """Return a short repr of ``value`` for an error message."""
    text = repr(value)
    if len(text) > _SHOWN_LIMIT:
        text = text[: _SHOWN_LIMIT - 4] + "...'"
    return text


class NormalizationError(ValueError):
    """A market string could not be turned into a clean value.

    The message names the input and what was expected, e.g. ``cannot read a price in 'call me':
    expected an amount with a currency symbol or code``. ``what``, ``value`` and ``expected`` are kept
    as attributes so callers can count failures by kind.
    """

    def __init__(self, what: str, value: object, expected: str, *, within: object = None) -> None:
        self.what = what
        self.value = value
        self.expected = expected
        self.within = within
        where = shown(value) if within is None else f"{shown(value)} (in {shown(within)})"
        super().__init__(f"cannot read {what} in {where}: expected {expected}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are not in self.args; keep the error picklable for multiprocessing.
        return (_rebuild, (self.what, self.value, self.expected, self.within))


def _rebuild(what: str, value: object, expected: str, within: object) -> NormalizationError:
    return NormalizationError(what, value, expected, within=within)


def require_text(value: object, what: str) -> str:
    """Return ``value`` if it is a ``str``; otherwise raise ``NormalizationError``.

    Extractors hand over ``None`` when a selector matched nothing; that is a data problem to count,
    not a crash.
    """
    if not isinstance(value, str):
        raise NormalizationError(what, value, "a text string")
    return value
