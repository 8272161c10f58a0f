"""Small SVG charts drawn by hand (time-series lines, horizontal bars) for the self-contained report.

No JavaScript and no external resources: each chart is one inline `<svg>` whose every text (series
names, labels, which may come from a market and are hostile) is escaped here. Each data point is a
`<circle class="point">` and each bar a `<rect class="bar">`, with a `<title>` tooltip, so a browser
and a test can count them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from markupsafe import Markup, escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
Number = int | float | Decimal


@dataclass(frozen=True)
class Series:
    """A named line of (time, value) points, drawn in time order."""

    name: str
    points: Sequence[tuple[datetime, Number]]


def line_chart(
    series: Sequence[Series], *, title: str, y_label: str = "", width: int = 760, height: int = 280
) -> Markup:
    """A line chart of time series on one time axis, y from zero; empty series draw an empty frame."""
    left, right, top, bottom = 64, 56, 28, 44  # right: room for the last time label
    legend_rows = math.ceil(len(series) / 3)
    total_height = height + 18 * legend_rows
    plot_w, plot_h = width - left - right, height - top - bottom
    times = sorted({t for s in series for t, _ in s.points})
    values = [float(v) for s in series for _, v in s.points]
    y_max = _nice_ceiling(max(values, default=0.0))
    t0, t1 = (times[0], times[-1]) if times else (None, None)
    span = (t1 - t0).total_seconds() if t0 and t1 else 0.0

    def x_of(t: datetime) -> float:
        if not span or t0 is None:
            return left + plot_w / 2
        return left + plot_w * (t - t0).total_seconds() / span

    def y_of(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [_open(width, total_height, title), _axes(left, top, plot_w, plot_h, y_max, y_label, width)]
    for t in _spread(times, 6):
        parts.append(
            f'<text class="tick" x="{x_of(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{escape(_time_label(t, span))}</text>"
        )
    for index, s in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        ordered = sorted(s.points, key=lambda p: p[0])
        coords = [(x_of(t), y_of(float(v))) for t, v in ordered]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" points="{path}"/>'
            )
        for (x, y), (t, v) in zip(coords, ordered, strict=True):
            parts.append(
                f'<circle class="point" data-series="{index}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                f'fill="{color}">'
                f"<title>{escape(s.name)}: {escape(_number(v))} at {escape(t.isoformat(timespec='seconds'))}"
                "</title></circle>"
            )
        lx, ly = left + (index % 3) * (plot_w // 3), height + 4 + 18 * (index // 3)
        parts.append(
            f'<g class="legend"><rect x="{lx}" y="{ly}" width="12" height="12" fill="{color}"/>'
            f'<text x="{lx + 18}" y="{ly + 10}">{escape(_shorten(s.name, 40))}</text></g>'
        )
    if not values:
        parts.append(_no_data(left + plot_w / 2, top + plot_h / 2))
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    bars: Sequence[tuple[str, Number]], *, title: str, width: int = 760, bar_height: int = 20
) -> Markup:
    """Horizontal bars, one per (label, value), in the order given."""
    left, right, top = 180, 60, 28
    height = top + max(1, len(bars)) * (bar_height + 6) + 10
    plot_w = width - left - right
    peak = max((float(v) for _, v in bars), default=0.0) or 1.0
    parts = [_open(width, height, title)]
    for index, (label, value) in enumerate(bars):
        y = top + index * (bar_height + 6)
        w = plot_w * float(value) / peak
        parts.append(
            f'<text class="label" x="{left - 8}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">'
            f"{escape(_shorten(label, 28))}</text>"
            f'<rect class="bar" x="{left}" y="{y}" width="{w:.1f}" height="{bar_height}" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {escape(_number(value))}</title></rect>"
            f'<text class="value" x="{left + w + 6:.1f}" y="{y + bar_height * 0.7:.1f}">'
            f"{escape(_number(value))}</text>"
        )
    if not bars:
        parts.append(_no_data(left + plot_w / 2, top + bar_height))
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text class="chart-title" x="8" y="16">{escape(title)}</text>'
    )


def _axes(left: int, top: int, plot_w: int, plot_h: int, y_max: float, y_label: str, width: int) -> str:
    parts = [
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#444"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#444"/>',
    ]
    for step in range(5):
        value = y_max * step / 4
        y = top + plot_h * (1 - step / 4)
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_number(value))}</text>"
        )
    if y_label:
        parts.append(
            f'<text class="y-label" x="{width - 8}" y="16" text-anchor="end">{escape(y_label)}</text>'
        )
    return "".join(parts)


def _no_data(x: float, y: float) -> str:
    return f'<text class="no-data" x="{x:.1f}" y="{y:.1f}" text-anchor="middle">no data</text>'


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above value (1 for nothing to show)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def _spread(items: Sequence[datetime], count: int) -> list[datetime]:
    """At most `count` items spread evenly, first and last included."""
    if len(items) <= count:
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def _time_label(t: datetime, span: float) -> str:
    # Nightly crawls read best as dates; crawls minutes apart (tests, re-runs) need the time too.
    return t.strftime("%Y-%m-%d") if span >= 2 * 86_400 else t.strftime("%m-%d %H:%M:%S")


def _number(value: Number) -> str:
    number = float(value)
    if number.is_integer():
        return f"{int(number):,}"
    return f"{number:,.2f}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
