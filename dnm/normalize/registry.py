"""The named normalizers a market profile can refer to, and ``normalize`` to call one by name.

A profile says ``price: {normalizer: price}``; the pipeline calls ``normalize("price", text,
now=..., default_currency=...)`` with whatever context it has. Each normalizer receives only the
context keywords its signature accepts, so one context dict serves every field.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType

from dnm.normalize.choice import choice
from dnm.normalize.dates import parse_date, parse_instant, parse_when
from dnm.normalize.errors import NormalizationError
from dnm.normalize.names import clean_vendor_name
from dnm.normalize.pgp import fingerprint, normalize_fingerprint
from dnm.normalize.prices import parse_price, parse_prices
from dnm.normalize.regions import parse_regions, parse_route
from dnm.normalize.text import clean_text, parse_bool, parse_decimal, parse_int, parse_stock

NORMALIZERS: Mapping[str, Callable[..., object]] = MappingProxyType(
    {
        "text": clean_text,
        "int": parse_int,
        "decimal": parse_decimal,
        "bool": parse_bool,
        "choice": choice,
        "stock": parse_stock,
        "price": parse_price,
        "prices": parse_prices,
        "regions": parse_regions,
        "route": parse_route,
        "when": parse_when,
        "date": parse_date,
        "instant": parse_instant,
        "vendor_name": clean_vendor_name,
        "pgp_fingerprint": fingerprint,
        "fingerprint": normalize_fingerprint,
    }
)


def _context_names(function: Callable[..., object]) -> frozenset[str] | None:
    """Names of the parameters after the value that context may fill; None if it takes ``**kwargs``."""
    parameters = list(inspect.signature(function).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


# Signatures are read once: normalize() runs for every field of every page.
_ACCEPTS = {name: _context_names(function) for name, function in NORMALIZERS.items()}
_SIGNATURES = {name: inspect.signature(function) for name, function in NORMALIZERS.items()}


def normalize(name: str, value: object, **context: object) -> object:
    """Run normalizer ``name`` on ``value``, passing the context keywords it accepts.

    An unknown ``name`` raises ``NormalizationError`` listing the known ones. A normalizer that needs
    context it was not given (``when`` without ``now=``) raises ``TypeError``: that is a profile or
    pipeline bug, not bad page data.
    """
    function = NORMALIZERS.get(name)
    if function is None:
        raise NormalizationError("a normalizer name", name, "one of " + ", ".join(sorted(NORMALIZERS)))
    accepts = _ACCEPTS[name]
    passed = context if accepts is None else {k: v for k, v in context.items() if k in accepts}
    try:
        return function(value, **passed)
    except TypeError as error:
        # Binding is checked only after a TypeError (it costs as much as a short normalizer): a
        # missing context keyword is a caller bug, any other TypeError is the normalizer's own.
        try:
            _SIGNATURES[name].bind(value, **passed)
        except TypeError as binding:
            message = f"normalizer {name!r} cannot be called with context {sorted(context)}: {binding}"
            raise TypeError(message) from None
        raise error from None
