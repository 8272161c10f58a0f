"""The HTML market report (`dnm report MARKET`): one self-contained file of charts, tables and caveats.

`build_report` gathers the analyses of one market over a period into a `Report`; `render_report` fills
the Jinja2 template (templates/report.html, autoescaped: every text from a market is hostile) with
inline SVG charts from `dnm.analytics.charts`. The page loads nothing: no scripts, no fonts, no
images, and its Content-Security-Policy forbids them, so opening it offline shows everything.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from sqlalchemy import Engine

from dnm.analytics.charts import Series, bar_chart, line_chart
from dnm.analytics.crawls import CrawlActivity, Period, crawl_activity, market_exists
from dnm.analytics.identities import Identity, identities
from dnm.analytics.prices import CategoryPrices, category_prices
from dnm.analytics.sales import SalesEstimate, estimate_sales
from dnm.analytics.shipping import Origin, shipping_origins

TEMPLATES = Path(__file__).resolve().parent / "templates"
PRICE_SERIES = 6  # lines in the price chart: more are unreadable; the table holds every group
TOP_ORIGINS = 15
TOP_VENDORS = 15


@dataclass
class Report:
    """Everything the report shows about one market in one period."""

    market: str
    period: Period
    generated_at: datetime
    market_known: bool
    feedback_rate: float
    category_depth: int | None
    crawls: list[CrawlActivity] = field(default_factory=list)
    prices: list[CategoryPrices] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)
    sales: list[SalesEstimate] = field(default_factory=list)
    vendor_sales: list[SalesEstimate] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when no usable crawl of the market falls in the period."""
        return not self.crawls


def build_report(
    engine: Engine,
    market: str,
    period: Period | None = None,
    *,
    feedback_rate: float = 1.0,
    category_depth: int | None = 2,
    now: datetime | None = None,
) -> Report:
    """Run every analysis of the report for one market and period."""
    period = period or Period()
    report = Report(
        market=market,
        period=period,
        generated_at=now or datetime.now(UTC),
        market_known=market_exists(engine, market),
        feedback_rate=feedback_rate,
        category_depth=category_depth,
    )
    report.crawls = crawl_activity(engine, market, period)
    if report.empty:
        return report
    report.prices = category_prices(engine, market, period, depth=category_depth)
    report.origins = shipping_origins(engine, market, period)
    report.sales = estimate_sales(engine, market, period, feedback_rate=feedback_rate)
    report.vendor_sales = estimate_sales(engine, market, period, by=("vendor",), feedback_rate=feedback_rate)[
        :TOP_VENDORS
    ]
    report.identities = identities(engine, market, period)
    return report


def render_report(report: Report) -> str:
    """The report as one HTML document."""
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True)
    environment.filters["when"] = _when
    environment.filters["amount"] = _amount
    template = environment.get_template("report.html")
    return template.render(
        report=report,
        charts=_charts(report),
        price_table=_latest_prices(report.prices),
        currencies=sorted({c for s in report.sales for c in s.revenue}),
        vendor_currencies=sorted({c for s in report.vendor_sales for c in s.revenue}),
    )


def write_report(report: Report, output: Path) -> Path:
    """Render the report into a file (UTF-8); returns the path."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_report(report), encoding="utf-8")
    return output


def _charts(report: Report) -> dict[str, Markup]:
    if report.empty:
        return {}
    activity = [
        Series("listings", [(c.started_at, c.listings) for c in report.crawls]),
        Series("vendors", [(c.started_at, c.vendors) for c in report.crawls]),
    ]
    return {
        "activity": line_chart(activity, title="Listings and vendors per crawl", y_label="count"),
        "prices": line_chart(
            _price_series(report.prices),
            title="Median price per crawl, by category (largest groups; own currency and unit)",
            y_label="median price",
        ),
        "origins": bar_chart(
            [(o.code, o.listings) for o in report.origins[:TOP_ORIGINS]],
            title="Shipping origins: distinct listings per origin (top)",
        ),
        "sales": line_chart(
            [
                Series(
                    "estimated sales",
                    [(s.interval_end, s.estimated_sales) for s in report.sales if s.interval_end],
                )
            ],
            title="Estimated sales per crawl interval (new feedback / feedback rate)",
            y_label="sales",
        ),
    }


def _group_name(row: CategoryPrices) -> str:
    per = f" per {row.unit}" if row.unit else ""
    return f"{row.category} ({row.currency}{per})"


def _price_series(prices: list[CategoryPrices]) -> list[Series]:
    """One series per (category, currency, unit), the groups with most listings in the latest crawl."""
    points: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for row in prices:
        points[_group_name(row)].append((row.observed_at, row.median))
    latest = _latest_prices(prices)
    chosen = [_group_name(row) for row in sorted(latest, key=lambda r: (-r.listings, _group_name(r)))]
    return [Series(name, points[name]) for name in chosen[:PRICE_SERIES]]


def _latest_prices(prices: list[CategoryPrices]) -> list[CategoryPrices]:
    if not prices:
        return []
    last = max(prices, key=lambda r: (r.observed_at, r.crawl_id)).crawl_id
    return [row for row in prices if row.crawl_id == last]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _amount(value: Decimal | float | int | None) -> str:
    if value is None:
        return ""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.2f}"
