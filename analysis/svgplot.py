"""Small inline SVG charts for self-contained HTML reports.

Each function returns the markup of one ``<svg>`` element as a string. Every piece of
text placed in the markup (titles, axis labels, category names) is escaped here, so a
category name that came from outside (a concept, a worker id) shows as text. The charts
need no script, no font and no network to display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
"""Default chart width in SVG user units (pixels)."""

HEIGHT = 260
"""Default chart height in SVG user units (pixels)."""

_MARGIN_LEFT = 56
_MARGIN_RIGHT = 16
_MARGIN_TOP = 44  # the title's row, then the legend's row
_MARGIN_BOTTOM = 64
_PALETTE = ("#3b6ea5", "#d1793a", "#4f9a5a", "#a34f8f", "#8a8a8a")


@dataclass(frozen=True)
class IntervalPoint:
    """One category of an interval chart: an estimate with a lower and an upper bound.

    Attributes:
        label: Category name shown under the axis.
        value: Point estimate, or None when there is none.
        low: Lower end of the interval, or None.
        high: Upper end of the interval, or None.
        kind: Series the point belongs to (its legend entry), e.g. ``certified``.
    """

    label: str
    value: float | None
    low: float | None
    high: float | None
    kind: str


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def _open(title: str, width: int, height: int, css_class: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot {escape(css_class)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" class="plot-title">'
        f"{escape(title)}</text>",
    ]


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    start = math.ceil(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _y_axis(
    lines: list[str], y_low: float, y_high: float, height: int, width: int, label: str
) -> None:
    plot_bottom = height - _MARGIN_BOTTOM
    for tick in _nice_ticks(y_low, y_high):
        y = _scale(tick, y_low, y_high, plot_bottom, _MARGIN_TOP)
        lines.append(
            f'<line x1="{_MARGIN_LEFT}" x2="{width - _MARGIN_RIGHT}" y1="{_fmt(y)}" '
            f'y2="{_fmt(y)}" class="grid"/>'
        )
        text = f"{tick:g}"
        lines.append(
            f'<text x="{_MARGIN_LEFT - 6}" y="{_fmt(y + 4)}" text-anchor="end" '
            f'class="tick">{escape(text)}</text>'
        )
    lines.append(
        f'<text transform="translate(14,{(_MARGIN_TOP + plot_bottom) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" class="axis-label">{escape(label)}</text>'
    )


def _scale(value: float, low: float, high: float, out_low: float, out_high: float) -> float:
    if high == low:
        return (out_low + out_high) / 2
    return out_low + (value - low) / (high - low) * (out_high - out_low)


def _legend(lines: list[str], kinds: Sequence[str], width: int) -> None:
    x = width - _MARGIN_RIGHT - 130 * len(kinds)
    for i, kind in enumerate(kinds):
        color = _PALETTE[i % len(_PALETTE)]
        lx = x + 130 * i
        lines.append(
            f'<rect x="{lx}" y="{_MARGIN_TOP - 18}" width="10" height="10" fill="{color}"/>'
        )
        lines.append(
            f'<text x="{lx + 14}" y="{_MARGIN_TOP - 9}" class="legend">{escape(kind)}</text>'
        )


def _empty(title: str, message: str, width: int, height: int, css_class: str) -> str:
    lines = _open(title, width, height, css_class)
    lines.append(
        f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" '
        f'class="empty">{escape(message)}</text>'
    )
    lines.append("</svg>")
    return "\n".join(lines)


def interval_chart(
    points: Sequence[IntervalPoint],
    *,
    title: str,
    y_label: str,
    y_low: float = 0.0,
    y_high: float = 1.0,
    reference: float | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    css_class: str = "interval-chart",
) -> str:
    """Draw point estimates with interval bars, grouped by category.

    Points sharing a label are drawn side by side, one colour per ``kind``. An interval
    with only a lower end (a one-sided bound) is drawn from that end to ``y_high``.

    Args:
        points: The points, in display order of their labels.
        title: Chart title.
        y_label: Label of the vertical axis.
        y_low: Bottom of the vertical axis.
        y_high: Top of the vertical axis.
        reference: A horizontal reference line (e.g. the precision target), or None.
        width: Chart width.
        height: Chart height.
        css_class: Extra class on the ``<svg>`` element.

    Returns:
        The SVG markup.
    """
    labels: list[str] = []
    for p in points:
        if p.label not in labels:
            labels.append(p.label)
    kinds: list[str] = []
    for p in points:
        if p.kind not in kinds:
            kinds.append(p.kind)
    if not labels:
        return _empty(title, "no data", width, height, css_class)
    lines = _open(title, width, height, css_class)
    _y_axis(lines, y_low, y_high, height, width, y_label)
    plot_bottom = height - _MARGIN_BOTTOM
    slot = (width - _MARGIN_LEFT - _MARGIN_RIGHT) / len(labels)
    if reference is not None:
        y = _scale(reference, y_low, y_high, plot_bottom, _MARGIN_TOP)
        lines.append(
            f'<line x1="{_MARGIN_LEFT}" x2="{width - _MARGIN_RIGHT}" y1="{_fmt(y)}" '
            f'y2="{_fmt(y)}" class="reference"/>'
        )

    def clamp(v: float) -> float:
        return min(max(v, y_low), y_high)

    for i, label in enumerate(labels):
        cx = _MARGIN_LEFT + slot * (i + 0.5)
        lines.append(
            f'<text transform="translate({_fmt(cx)},{plot_bottom + 12}) rotate(30)" '
            f'class="tick">{escape(label)}</text>'
        )
        group = [p for p in points if p.label == label]
        for p in group:
            k = kinds.index(p.kind)
            offset = (k - (len(kinds) - 1) / 2) * min(12.0, slot / (len(kinds) + 1))
            x = cx + offset
            color = _PALETTE[k % len(_PALETTE)]
            if p.low is not None:
                top = y_high if p.high is None else clamp(p.high)
                y1 = _scale(clamp(p.low), y_low, y_high, plot_bottom, _MARGIN_TOP)
                y2 = _scale(top, y_low, y_high, plot_bottom, _MARGIN_TOP)
                lines.append(
                    f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(y1)}" y2="{_fmt(y2)}" '
                    f'stroke="{color}" class="interval"/>'
                )
                lines.append(
                    f'<line x1="{_fmt(x - 4)}" x2="{_fmt(x + 4)}" y1="{_fmt(y1)}" '
                    f'y2="{_fmt(y1)}" stroke="{color}" class="interval"/>'
                )
            if p.value is not None:
                y = _scale(clamp(p.value), y_low, y_high, plot_bottom, _MARGIN_TOP)
                tip = f"{p.label} {p.kind}: {p.value:.4f}"
                if p.low is not None:
                    tip += f" (lower {p.low:.4f})"
                lines.append(
                    f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="3.5" fill="{color}" '
                    f'class="point"><title>{escape(tip)}</title></circle>'
                )
    _legend(lines, kinds, width)
    lines.append("</svg>")
    return "\n".join(lines)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    y_label: str,
    width: int = WIDTH,
    height: int = HEIGHT,
    css_class: str = "bar-chart",
) -> str:
    """Draw one bar per category (a histogram when the labels are bins).

    Args:
        labels: Category or bin names, in display order.
        values: Bar heights (non-negative), one per label.
        title: Chart title.
        y_label: Label of the vertical axis.
        width: Chart width.
        height: Chart height.
        css_class: Extra class on the ``<svg>`` element.

    Returns:
        The SVG markup.
    """
    if not labels:
        return _empty(title, "no data", width, height, css_class)
    top = max(max(values), 1e-12)
    ticks = _nice_ticks(0.0, top)
    y_high = max(top, ticks[-1]) if ticks else top
    lines = _open(title, width, height, css_class)
    _y_axis(lines, 0.0, y_high, height, width, y_label)
    plot_bottom = height - _MARGIN_BOTTOM
    slot = (width - _MARGIN_LEFT - _MARGIN_RIGHT) / len(labels)
    bar = max(slot * 0.8, 1.0)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = _MARGIN_LEFT + slot * i + (slot - bar) / 2
        y = _scale(value, 0.0, y_high, plot_bottom, _MARGIN_TOP)
        lines.append(
            f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(bar)}" '
            f'height="{_fmt(plot_bottom - y)}" fill="{_PALETTE[0]}" class="bar">'
            f"<title>{escape(f'{label}: {value:g}')}</title></rect>"
        )
        lines.append(
            f'<text transform="translate({_fmt(x + bar / 2)},{plot_bottom + 12}) rotate(30)" '
            f'class="tick">{escape(label)}</text>'
        )
    lines.append("</svg>")
    return "\n".join(lines)


def line_chart(
    x_labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    y_label: str,
    y_low: float = 0.0,
    y_high: float = 1.0,
    width: int = WIDTH,
    height: int = HEIGHT,
    css_class: str = "line-chart",
) -> str:
    """Draw one or more series over the same categorical x axis.

    Args:
        x_labels: Names of the x positions, in order.
        series: Series name -> one value (or None for a gap) per x position.
        title: Chart title.
        y_label: Label of the vertical axis.
        y_low: Bottom of the vertical axis.
        y_high: Top of the vertical axis.
        width: Chart width.
        height: Chart height.
        css_class: Extra class on the ``<svg>`` element.

    Returns:
        The SVG markup.
    """
    if not x_labels or not series:
        return _empty(title, "no data", width, height, css_class)
    lines = _open(title, width, height, css_class)
    _y_axis(lines, y_low, y_high, height, width, y_label)
    plot_bottom = height - _MARGIN_BOTTOM
    slot = (width - _MARGIN_LEFT - _MARGIN_RIGHT) / len(x_labels)
    for i, label in enumerate(x_labels):
        lines.append(
            f'<text transform="translate({_fmt(_MARGIN_LEFT + slot * (i + 0.5))},'
            f'{plot_bottom + 12}) rotate(30)" class="tick">{escape(label)}</text>'
        )
    for k, (name, values) in enumerate(series.items()):
        color = _PALETTE[k % len(_PALETTE)]
        coords = [
            (
                _MARGIN_LEFT + slot * (i + 0.5),
                _scale(v, y_low, y_high, plot_bottom, _MARGIN_TOP),
                v,
            )
            for i, v in enumerate(values)
            if v is not None and math.isfinite(v)
        ]
        if len(coords) > 1:
            path = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y, _ in coords)
            lines.append(f'<polyline points="{path}" fill="none" stroke="{color}" class="series"/>')
        for x, y, v in coords:
            lines.append(
                f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="3" fill="{color}" class="point">'
                f"<title>{escape(f'{name}: {v:.3f}')}</title></circle>"
            )
    _legend(lines, list(series), width)
    lines.append("</svg>")
    return "\n".join(lines)
