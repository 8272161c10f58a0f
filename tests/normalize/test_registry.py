"""NORMALIZERS and normalize(): lookup by name and context passing."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

import dnm.normalize as package
from dnm.normalize import NORMALIZERS, NormalizationError, Price, TimeSpan, normalize

NOW = datetime(2026, 3, 14, 15, tzinfo=UTC)
CONTEXT = {"now": NOW, "day_first": True, "default_currency": "EUR", "rounding": "floor"}


def test_every_named_normalizer_is_registered() -> None:
    names = "text int decimal bool choice stock price prices regions route when date instant vendor_name"
    assert set(NORMALIZERS) == {*names.split(), "pgp_fingerprint", "fingerprint"}


def test_public_names_are_re_exported() -> None:
    for name in package.__all__:
        assert hasattr(package, name), name


@pytest.mark.parametrize(
    ("name", "shown", "expected"),
    [
        ("text", " a  b ", "a b"),
        ("int", "1,234", 1234),
        ("decimal", "( 4.97 )", Decimal("4.97")),
        ("bool", "Yes", True),
        ("stock", "Unlimited", None),
        ("price", "Free", Price(Decimal(0), "EUR", None, "Free")),  # default_currency from context
        ("prices", "$5", [Price(Decimal(5), "USD", None, "$5")]),
        ("regions", "UK", package.Regions(("GB",), (), "UK")),
        (
            "when",
            "yesterday",
            TimeSpan(datetime(2026, 3, 12, 15, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)),
        ),
        ("date", "06-03-2020", datetime(2020, 3, 6).date()),  # day_first from context
        ("instant", "2026-01-02 12:00 UTC", datetime(2026, 1, 2, 12, tzinfo=UTC)),
        ("vendor_name", "@john-doe 5", "john-doe"),
        ("fingerprint", "0x" + "ab" * 20, "AB" * 20),
    ],
)
def test_normalize_passes_only_accepted_context(name: str, shown: str, expected: object) -> None:
    assert normalize(name, shown, **CONTEXT) == expected


def test_profile_args_reach_the_normalizer() -> None:
    assert normalize("choice", "Full Escrow", map={"escrow": True}, **CONTEXT) is True
    assert normalize("price", "฿1 $5", prefer="crypto", **CONTEXT).currency == "BTC"


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        NormalizationError, match=r"cannot read a normalizer name in 'nope': expected one of .*vendor_name"
    ):
        normalize("nope", "x")


def test_missing_required_context_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="normalizer 'when' cannot be called"):
        normalize("when", "5h")


def test_bad_values_raise_normalization_errors() -> None:
    with pytest.raises(NormalizationError):
        normalize("int", "many", **CONTEXT)
