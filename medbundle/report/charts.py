"""Inline SVG charts for the evaluation report: line charts (ROC, PR, reliability, training) and interval bars.

Drawn as SVG text in Python so the report page needs no plotting library, no JavaScript and no network:
the markup sits inside the HTML and scales with the page. Non-finite values (NaN, inf) break a line instead
of breaking the picture, and a chart without finite points says so.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["PALETTE", "Series", "format_interval", "format_number", "interval_bar", "line_chart", "nice_ticks"]

# Colour-blind safe (Okabe-Ito), muted enough for a calm page.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#555555")
_INK, _GRID, _AXIS = "#1f2933", "#e4e7eb", "#9aa5b1"
_WIDTH, _HEIGHT = 360, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 14, 12, 44


@dataclass
class Series:
    """One line of a chart: points joined in the order given, optional dots sized by `weights`."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    color: str = PALETTE[0]
    dashed: bool = False
    dots: bool = False
    weights: Sequence[float] = field(default_factory=tuple)


def _finite(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values inside [low, high], steps of 1, 2 or 5 times a power of ten, their number nearest `count`."""
    if not (_finite(low) and _finite(high)):
        return []
    if high <= low:
        return [low]
    power = 10 ** math.floor(math.log10((high - low) / max(count - 1, 1)))

    def ticks(step: float) -> list[float]:
        first = math.ceil(low / step - 1e-9) * step
        return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]

    return min((ticks(power * m) for m in (10, 5, 2, 1)), key=lambda found: abs(len(found) - count))


def _tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def _range(values: Sequence[float], fixed: tuple[float, float] | None) -> tuple[float, float] | None:
    if fixed is not None:
        return fixed
    finite = [float(v) for v in values if _finite(v)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    if high == low:
        pad = abs(low) * 0.05 or 0.5
        return low - pad, high + pad
    ticks = nice_ticks(low, high)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else (high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step


def _segments(xs: Sequence[float], ys: Sequence[float]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive finite points; a non-finite x or y ends a run."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys):
        if _finite(x) and _finite(y):
            runs[-1].append((float(x), float(y)))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def line_chart(
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    title: str,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    marker: tuple[float, float, str] | None = None,
) -> str:
    """An SVG line chart with axes, grid, tick labels and optional chance diagonal and labelled marker.

    Args:
        series: the lines; empty ones and non-finite points are skipped.
        x_label, y_label: axis titles.
        title: the accessible name (``<title>``) of the picture.
        x_range, y_range: fixed axis limits, e.g. (0, 1) for rates; otherwise taken from the data.
        diagonal: draw the dashed line y = x across the axes (chance for ROC, perfect calibration).
        marker: (x, y, label) of a point to highlight, such as the stored operating threshold.
    """
    xs = [v for s in series for v in s.x] + ([marker[0]] if marker else [])
    ys = [v for s in series for v in s.y] + ([marker[1]] if marker else [])
    x_lim, y_lim = _range(xs, x_range), _range(ys, y_range)
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    if x_lim is None or y_lim is None:
        parts.append(
            f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{_AXIS}"/>'
            f'<text x="{_LEFT + plot_w / 2}" y="{_TOP + plot_h / 2}" text-anchor="middle" fill="{_AXIS}" '
            f'font-size="13">no data</text></svg>'
        )
        return "".join(parts)

    def px(x: float) -> float:
        return round(_LEFT + (x - x_lim[0]) / (x_lim[1] - x_lim[0]) * plot_w, 2)

    def py(y: float) -> float:
        return round(_TOP + plot_h - (y - y_lim[0]) / (y_lim[1] - y_lim[0]) * plot_h, 2)

    bottom, right = _TOP + plot_h, _LEFT + plot_w
    for tick in nice_ticks(*x_lim):
        parts.append(
            f'<line x1="{px(tick)}" y1="{_TOP}" x2="{px(tick)}" y2="{bottom}" stroke="{_GRID}"/>'
            f'<text x="{px(tick)}" y="{bottom + 15}" text-anchor="middle" font-size="11" fill="{_INK}">'
            f"{_tick_label(tick)}</text>"
        )
    for tick in nice_ticks(*y_lim):
        parts.append(
            f'<line x1="{_LEFT}" y1="{py(tick)}" x2="{right}" y2="{py(tick)}" stroke="{_GRID}"/>'
            f'<text x="{_LEFT - 6}" y="{py(tick) + 4}" text-anchor="end" font-size="11" fill="{_INK}">'
            f"{_tick_label(tick)}</text>"
        )
    parts.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="{_AXIS}"/>')
    parts.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_HEIGHT - 8}" text-anchor="middle" font-size="12" fill="{_INK}">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(13 {_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" font-size="12" '
        f'fill="{_INK}">{escape(y_label)}</text>'
    )
    if diagonal:
        low, high = max(x_lim[0], y_lim[0]), min(x_lim[1], y_lim[1])
        if high > low:
            parts.append(
                f'<line x1="{px(low)}" y1="{py(low)}" x2="{px(high)}" y2="{py(high)}" stroke="{_AXIS}" '
                f'stroke-dasharray="4 4"/>'
            )
    for line in series:
        dash = ' stroke-dasharray="6 3"' if line.dashed else ""
        for run in _segments(line.x, line.y):
            points = " ".join(f"{px(x)},{py(y)}" for x, y in run)
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{line.color}" stroke-width="2"{dash} '
                f'stroke-linejoin="round"/>'
            )
        if line.dots:
            weights = [float(w) for w in line.weights if _finite(w)]
            heaviest = max(weights, default=0.0) or 1.0
            for i, (x, y) in enumerate(zip(line.x, line.y)):
                if not (_finite(x) and _finite(y)):
                    continue
                weight = line.weights[i] if i < len(line.weights) and _finite(line.weights[i]) else heaviest
                radius = round(2.5 + 3.5 * math.sqrt(max(float(weight), 0.0) / heaviest), 2)
                parts.append(f'<circle cx="{px(x)}" cy="{py(y)}" r="{radius}" fill="{line.color}" fill-opacity="0.8"/>')
    if marker is not None and _finite(marker[0]) and _finite(marker[1]):
        mx, my = px(marker[0]), py(marker[1])
        anchor, dx = ("end", -9) if mx > _LEFT + plot_w * 0.6 else ("start", 9)
        parts.append(
            f'<circle cx="{mx}" cy="{my}" r="5" fill="#ffffff" stroke="{_INK}" stroke-width="2"/>'
            f'<text x="{mx + dx}" y="{my + (16 if my < _TOP + 20 else -8)}" text-anchor="{anchor}" font-size="11" '
            f'fill="{_INK}">{escape(marker[2])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def interval_bar(
    estimate: float,
    low: float,
    high: float,
    *,
    axis: tuple[float, float],
    reference: float | None = None,
    flagged: bool = False,
    width: int = 220,
    height: int = 22,
) -> str:
    """A forest-plot row: the interval as a line, the estimate as a square, `reference` as a vertical rule.

    Args:
        estimate, low, high: the value and its interval; non-finite parts are left out.
        axis: the shared (min, max) of all rows, so rows line up.
        reference: the overall value every row is compared with.
        flagged: draw in the warning colour.
    """
    color = "#b42318" if flagged else PALETTE[0]
    span = (axis[1] - axis[0]) or 1.0
    pad = 6

    def px(x: float) -> float:
        return round(pad + (min(max(x, axis[0]), axis[1]) - axis[0]) / span * (width - 2 * pad), 2)

    mid = height / 2
    title = escape(format_interval(estimate, low, high))
    parts = [
        (
            f'<svg class="bar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{title}</title>'
        ),
        f'<line x1="{pad}" y1="{mid}" x2="{width - pad}" y2="{mid}" stroke="{_GRID}"/>',
    ]
    if reference is not None and _finite(reference):
        parts.append(
            f'<line x1="{px(reference)}" y1="1" x2="{px(reference)}" y2="{height - 1}" stroke="{_AXIS}" '
            f'stroke-dasharray="3 2"/>'
        )
    if _finite(low) and _finite(high):
        parts.append(f'<line x1="{px(low)}" y1="{mid}" x2="{px(high)}" y2="{mid}" stroke="{color}" stroke-width="2"/>')
        for end in (low, high):
            parts.append(f'<line x1="{px(end)}" y1="{mid - 4}" x2="{px(end)}" y2="{mid + 4}" stroke="{color}"/>')
    if _finite(estimate):
        parts.append(f'<rect x="{px(estimate) - 4}" y="{mid - 4}" width="8" height="8" fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)


def format_number(value: object) -> str:
    """`value` to 3 decimals, "n/a" where it is missing or not finite."""
    return f"{float(value):.3f}" if _finite(value) else "n/a"


def format_interval(estimate: object, low: object, high: object) -> str:
    """An estimate with its interval: ``0.871 (0.802–0.925)``."""
    return f"{format_number(estimate)} ({format_number(low)}–{format_number(high)})"
