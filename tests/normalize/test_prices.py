"""parse_prices and parse_price on the price strings markets show."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnm.normalize import NormalizationError, Price, parse_price, parse_prices

# (shown, [(amount, currency, unit), ...]) — amounts as strings so the shown scale is checked too.
CASES = [
    ("USD 1,234.50", [("1234.50", "USD", None)]),
    ("1,234.50 USD", [("1234.50", "USD", None)]),
    ("USD9,478.97", [("9478.97", "USD", None)]),
    (
        "EUR 100 $108.25 £87.95 AUD 180.18 CAD 153.75",
        [
            ("100", "EUR", None),
            ("108.25", "USD", None),
            ("87.95", "GBP", None),
            ("180.18", "AUD", None),
            ("153.75", "CAD", None),
        ],
    ),
    (
        "EUR 100 $ 108.25 £ 87.95 AUD 180.18 CAD 153.75",
        [
            ("100", "EUR", None),
            ("108.25", "USD", None),
            ("87.95", "GBP", None),
            ("180.18", "AUD", None),
            ("153.75", "CAD", None),
        ],
    ),
    ("$50.96", [("50.96", "USD", None)]),
    ("53.25 $", [("53.25", "USD", None)]),
    ("£ 87.95", [("87.95", "GBP", None)]),
    ("1,234.50 €", [("1234.50", "EUR", None)]),
    ("1.234,50 €", [("1234.50", "EUR", None)]),
    ("12,50 €", [("12.50", "EUR", None)]),
    ("1\u00a0234,50 €", [("1234.50", "EUR", None)]),
    ("฿0.000787", [("0.000787", "BTC", None)]),
    ("0.0187 ฿", [("0.0187", "BTC", None)]),
    ("฿0.000787 (€7.28)", [("0.000787", "BTC", None), ("7.28", "EUR", None)]),
    ("Ƀ 0.5 ɱ 2", [("0.5", "BTC", None), ("2", "XMR", None)]),
    ("¥500", [("500", "JPY", None)]),
    ("US$ 5", [("5", "USD", None)]),
    ("A$5 AU$6 C$7 CA$8", [("5", "AUD", None), ("6", "AUD", None), ("7", "CAD", None), ("8", "CAD", None)]),
    ("0.5 XBT", [("0.5", "BTC", None)]),
    (
        "USD 54.00 Qty: 0.005749 BTC / 0.848923 LTC / 0.846262 XMR",
        [
            ("54.00", "USD", None),
            ("0.005749", "BTC", None),
            ("0.848923", "LTC", None),
            ("0.846262", "XMR", None),
        ],
    ),
    (
        "4.00 USD / 0.00042375 BCH 1 ETH 2 ZEC",
        [("4.00", "USD", None), ("0.00042375", "BCH", None), ("1", "ETH", None), ("2", "ZEC", None)],
    ),
    ("0.5 Bitcoin", [("0.5", "BTC", None)]),
    ("2 bitcoin cash", [("2", "BCH", None)]),
    ("Monero 1.5", [("1.5", "XMR", None)]),
    ("mBTC 1.2", [("0.0012", "BTC", None)]),
    ("1.20 mBCH", [("0.00120", "BCH", None)]),
    ("1,200 sats", [("0.00001200", "BTC", None)]),
    (
        "485.00 USD/112g (0.05199685 BTC/112g)",
        [("485.00", "USD", "112g"), ("0.05199685", "BTC", "112g")],
    ),
    ("12.00 USD / 10 pills", [("12.00", "USD", "10 pills")]),
    ("USD 45.00/g", [("45.00", "USD", "g")]),
    ("$10 per gram", [("10", "USD", "gram")]),
    ("87.21 USD/Order", [("87.21", "USD", None)]),  # a flat price for the order: no unit
    ("airmail - 8 days - USD + 5.00 / order", [("5.00", "USD", None)]),
    ("From: 9 $", [("9", "USD", None)]),
    ("From: 53.25 $ - Cocaine - physical", [("53.25", "USD", None)]),
    ("~ $30", [("30", "USD", None)]),
    ("50.00 - 39000.00 EUR", [("50.00", "EUR", None), ("39000.00", "EUR", None)]),
    ("$50 - 100", [("50", "USD", None), ("100", "USD", None)]),
    ("10 to 20 USD/g", [("10", "USD", "g"), ("20", "USD", "g")]),
    ("$5 - 10 days", [("5", "USD", None)]),  # "10 days" is not an upper bound
    ("Price: $60 / 0.005802 BTC", [("60", "USD", None), ("0.005802", "BTC", None)]),
    ("Sale Price : 4.00 USD / 0.00042375 BTC", [("4.00", "USD", None), ("0.00042375", "BTC", None)]),
    ("name - 9 Day/s - 0.00 USD / 0.00000000 BTC", [("0.00", "USD", None), ("0E-8", "BTC", None)]),
    ("☢100 PILLS X Soma 350mg $49☢", [("49", "USD", None)]),
    ("TOP 10 vendor, ALL 3 colours", []),  # word-like ISO codes are not read
    ("eur 100", []),  # codes are upper case
    ("Sankhara(21) (5.00 )", []),
    ("call me", []),
    ("", []),
]


@pytest.mark.parametrize(("shown", "expected"), CASES)
def test_parse_prices(shown: str, expected: list[tuple[str, str, str | None]]) -> None:
    prices = parse_prices(shown)
    assert [(str(p.amount), p.currency, p.unit) for p in prices] == expected


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("485.00 USD/112g (0.05199685 BTC/112g)", ["485.00 USD/112g", "0.05199685 BTC/112g"]),
        ("~ $30", ["~ $30"]),
        ("50.00 - 39000.00 EUR", ["50.00 - 39000.00 EUR", "50.00 - 39000.00 EUR"]),
        ("From:\u00a09\u00a0$", ["9 $"]),
    ],
)
def test_shown_is_the_cleaned_text_read(shown: str, expected: list[str]) -> None:
    assert [p.shown for p in parse_prices(shown)] == expected


def test_price_is_frozen() -> None:
    price = parse_prices("$5")[0]
    assert price == Price(Decimal("5"), "USD", None, "$5")
    with pytest.raises(AttributeError):
        price.amount = Decimal(1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("shown", "prefer", "expected"),
    [
        ("฿0.000787 (€7.28)", "fiat", ("7.28", "EUR")),
        ("฿0.000787 (€7.28)", "crypto", ("0.000787", "BTC")),
        ("฿0.000787 (€7.28)", "first", ("0.000787", "BTC")),
        ("0.5 BTC", "fiat", ("0.5", "BTC")),  # no fiat price: the first one
        ("$5", "crypto", ("5", "USD")),
        ("USD 54.00 Qty: 0.005749 BTC", "fiat", ("54.00", "USD")),
    ],
)
def test_parse_price_prefers(shown: str, prefer: str, expected: tuple[str, str]) -> None:
    price = parse_price(shown, prefer=prefer)  # type: ignore[arg-type]
    assert (str(price.amount), price.currency) == expected


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("Free", ("0", "EUR", None)),
        ("free shipping", ("0", "EUR", None)),
        ("+0", ("0", "EUR", None)),
        ("27.41", ("27.41", "EUR", None)),
        ("Price: 1,234.50", ("1234.50", "EUR", None)),
        ("27.41/g", ("27.41", "EUR", "g")),
        ("$5", ("5", "USD", None)),  # a shown currency beats the default
    ],
)
def test_parse_price_default_currency(shown: str, expected: tuple[str, str, str | None]) -> None:
    price = parse_price(shown, default_currency="EUR")
    assert (str(price.amount), price.currency, price.unit) == expected


def test_default_currency_accepts_lower_case_and_tickers() -> None:
    assert parse_price("5", default_currency="usd").currency == "USD"
    assert parse_price("5", default_currency="XMR").currency == "XMR"


@pytest.mark.parametrize(
    ("shown", "kwargs", "message"),
    [
        (
            "call me",
            {},
            r"cannot read a price in 'call me': expected an amount with a currency symbol or code",
        ),
        ("Free", {}, r"a free price names no currency: pass default_currency"),
        ("27.41", {}, r"expected an amount with a currency"),
        ("10 pills 50", {"default_currency": "EUR"}, r"expected one amount"),
        ("call me", {"default_currency": "EUR"}, r"expected one amount"),
        ("5", {"default_currency": "DOLLARS"}, r"cannot read a default currency in 'DOLLARS'"),
        ("$5", {"prefer": "cheapest"}, r"cannot read a price preference"),
    ],
)
def test_parse_price_errors(shown: str, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(NormalizationError, match=message):
        parse_price(shown, **kwargs)  # type: ignore[arg-type]


_AMOUNTS = st.decimals(
    min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False
) | st.decimals(min_value=0, max_value=1000, places=8, allow_nan=False, allow_infinity=False)
_STYLES = [
    "{code} {number}",
    "{number} {code}",
    "{symbol}{number}",
    "{number} {symbol}",
    "{symbol} {number}",
]
_CURRENCIES = [
    ("USD", "$"),
    ("EUR", "€"),
    ("GBP", "£"),
    ("BTC", "฿"),
    ("XMR", "ɱ"),
    ("AUD", "A$"),
    ("CAD", "C$"),
]


def _english(amount: Decimal) -> str:
    return f"{amount:,f}"


def _european(amount: Decimal) -> str:
    return _english(amount).replace(",", " ").replace(".", ",").replace(" ", ".")


@given(
    amount=_AMOUNTS,
    style=st.sampled_from(_STYLES),
    currency=st.sampled_from(_CURRENCIES),
    european=st.booleans(),
    prose=st.sampled_from(["", "Price: ", "From: ", "~ "]),
)
def test_a_formatted_amount_round_trips(
    amount: Decimal, style: str, currency: tuple[str, str], european: bool, prose: str
) -> None:
    # A European "1.234" without decimals is ambiguous by nature: write it only when the comma is clear.
    european = european and amount != amount.to_integral_value() and (-amount.as_tuple().exponent) != 3
    number = _european(amount) if european else _english(amount)
    shown = prose + style.format(code=currency[0], symbol=currency[1], number=number)
    prices = parse_prices(shown)
    assert len(prices) == 1, shown
    assert prices[0].amount == amount and prices[0].currency == currency[0], shown
