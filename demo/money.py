"""Fiat and crypto amounts: vendor currencies, the daily exchange rates and Decimal rounding rules.

Amounts are Decimals quantised to cents; the truth prints them with two decimals and no
separators ("1234.50"), pages add separators and symbols. Crypto rates move every day but are a
pure function of (seed, day) so pages stay reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from demo.rng import rng

FIATS = ("USD", "EUR", "GBP", "AUD", "CAD")
# Units of each fiat per US dollar; fixed, because fiat drift is not what the demo tests.
PER_USD: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "EUR": Decimal("0.92"),
    "GBP": Decimal("0.79"),
    "AUD": Decimal("1.52"),
    "CAD": Decimal("1.37"),
}
CENT = Decimal("0.01")


def cents(value: Decimal | float | str) -> Decimal:
    """Round to cents, half up (how shops round)."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def plain(amount: Decimal) -> str:
    """The export form of an amount: two decimals, no separators."""
    return f"{cents(amount):.2f}"


def to_usd(amount: Decimal, currency: str) -> Decimal:
    """Convert a fiat amount to US dollars at the fixed rate."""
    return amount / PER_USD[currency]


def convert(amount: Decimal, src: str, dst: str) -> Decimal:
    """Convert between two fiats at the fixed rates, rounded to cents."""
    return cents(to_usd(amount, src) * PER_USD[dst])


@dataclass(frozen=True)
class Rates:
    """A day's crypto prices in USD."""

    btc_usd: Decimal
    xmr_usd: Decimal

    def crypto(self, amount: Decimal, currency: str, coin: str) -> Decimal:
        """Value of a fiat amount in a coin (unrounded; skins choose the shown precision)."""
        per_coin = self.btc_usd if coin == "BTC" else self.xmr_usd
        return to_usd(amount, currency) / per_coin

    def fiat_per_coin(self, coin: str, currency: str) -> Decimal:
        """How much of a fiat one coin costs, for the exchange-rate sidebars."""
        per_coin = self.btc_usd if coin == "BTC" else self.xmr_usd
        return cents(per_coin * PER_USD[currency])


def rates(seed: int, day: int) -> Rates:
    """Crypto prices on a day: a smooth seed-dependent trend plus small daily noise."""
    phase = rng(seed, "rates", "phase").random() * math.tau
    noise = rng(seed, "rates", day)
    trend = 1 + 0.12 * math.sin(day / 41 + phase) + 0.05 * math.sin(day / 9 + 2 * phase)
    btc = 64_000 * trend * (1 + noise.uniform(-0.015, 0.015))
    xmr = 158 * (1 + 0.1 * math.sin(day / 23 + phase)) * (1 + noise.uniform(-0.02, 0.02))
    return Rates(btc_usd=cents(btc), xmr_usd=cents(xmr))
