"""clean_text, parse_int, parse_decimal, parse_bool, parse_stock."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnm.normalize import NormalizationError, clean_text, parse_bool, parse_decimal, parse_int, parse_stock


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("  PHARMORA \n\t (1000) ", "PHARMORA (1000)"),
        ("a\u00a0b", "a b"),  # NBSP
        ("a\u202f\u2009b", "a b"),  # narrow NBSP, thin space
        ("Co\u200bcaine", "Cocaine"),  # zero-width space inside a word is deleted, not a space
        ("\ufeffStock\u200d", "Stock"),
        ("a \u200b b", "a b"),
        ("QualitÃ¤t ☢100☢", "QualitÃ¤t ☢100☢"),  # everything else verbatim
        ("", ""),
        (" \n ", ""),
    ],
)
def test_clean_text(shown: str, expected: str) -> None:
    assert clean_text(shown) == expected


@given(st.text())
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once
    assert "  " not in once and once == once.strip()


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("1,234", 1234),
        ("1 234", 1234),
        ("1\u00a0234", 1234),
        ("1.234", 1234),  # an integer is wanted, so the dot can only group thousands
        ("1.234.567", 1234567),
        ("1,234,567", 1234567),
        ("1'234", 1234),
        ("−3", -3),  # Unicode minus (Hansa feedback)
        ("-3", -3),
        ("+5", 5),
        ("(1000)", 1000),  # a badge around a count, not an accounting negative
        ("( 680 )", 680),
        ("12.00", 12),
        (" 7 ", 7),
    ],
)
def test_parse_int(shown: str, expected: int) -> None:
    assert parse_int(shown) == expected


@pytest.mark.parametrize(
    "shown", ["", "abc", "1.5", "12abc", "1,2,3", "12,34,567", "--3", "1 2", "5.", "∞", "1e5"]
)
def test_parse_int_rejects_junk(shown: str) -> None:
    with pytest.raises(NormalizationError, match=r"cannot read an integer in .*: expected a whole number"):
        parse_int(shown)


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("4.97", "4.97"),
        ("( 4.97 )", "4.97"),
        ("1,234.50", "1234.50"),
        ("1.234,50", "1234.50"),
        ("1 234,50", "1234.50"),
        ("12,50", "12.50"),  # a lone comma before two digits is a decimal comma
        ("0,123", "0.123"),  # ...and before three digits after a zero
        ("1,234", "1234"),  # but groups thousands after 1-3 digits
        ("1.234", "1.234"),  # a lone dot is a decimal point
        ("−0.5", "-0.5"),
        ("-0", "0"),
        ("5", "5"),
        (".5", "0.5"),
        ("9,478.97", "9478.97"),
    ],
)
def test_parse_decimal(shown: str, expected: str) -> None:
    value = parse_decimal(shown)
    assert value == Decimal(expected)
    assert str(value) == expected  # the shown scale is kept


@pytest.mark.parametrize("shown", ["", "four", "1.2.3,4,5", "1,234.567,89", "4.97/5", "99.7 %"])
def test_parse_decimal_rejects_junk(shown: str) -> None:
    with pytest.raises(NormalizationError, match="cannot read a decimal"):
        parse_decimal(shown)


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        *[
            (s, True)
            for s in [
                "yes",
                "Yes",
                "YES",
                "y",
                "true",
                "True",
                "1",
                "on",
                "enabled",
                "Enabled",
                "✔",
                "✓",
                "allowed",
                "yes.",
            ]
        ],
        *[
            (s, False)
            for s in [
                "no",
                "No",
                "n",
                "false",
                "0",
                "off",
                "disabled",
                "Disabled",
                "✘",
                "✗",
                "not allowed",
                " No ",
            ]
        ],
    ],
)
def test_parse_bool(shown: str, expected: bool) -> None:
    assert parse_bool(shown) is expected


@pytest.mark.parametrize("shown", ["", "maybe", "yes no", "2"])
def test_parse_bool_rejects_junk(shown: str) -> None:
    with pytest.raises(NormalizationError, match="expected one of yes/no"):
        parse_bool(shown)


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("Unlimited", None),
        ("unlimited", None),
        ("Unlimited Available", None),
        ("Quantity : Unlimited Available", None),
        ("∞", None),
        ("23 left", 23),
        ("500 left", 500),
        ("Quantity left: 1,200", 1200),
        ("In stock: 5", 5),
        ("Stock: 12", 12),
        ("Only 3 left", 3),
        ("7", 7),
        ("5 pcs", 5),
        ("Out of stock", 0),
        ("Sold out", 0),
    ],
)
def test_parse_stock(shown: str, expected: int | None) -> None:
    assert parse_stock(shown) == expected


@pytest.mark.parametrize("shown", ["", "lots", "-3 left", "many left", "3 or 4"])
def test_parse_stock_rejects_junk(shown: str) -> None:
    with pytest.raises(NormalizationError, match="cannot read a stock count"):
        parse_stock(shown)


def test_non_text_input_is_a_normalization_error() -> None:
    with pytest.raises(NormalizationError, match="expected a text string"):
        parse_int(None)  # type: ignore[arg-type]
