"""Inline SVG charts for the HTML report: interval (dot-and-whisker), line and heatmap.

Each function returns one ``<svg>`` element as a string, sized by its ``viewBox`` so it
scales with the page, with a ``<title>`` and ``<desc>`` for screen readers and a
``<title>`` on every mark as a hover tooltip. Every label passes through
``html.escape``. Colours are the Okabe-Ito palette, distinguishable with the common
colour-vision deficiencies; lines also differ by dash pattern and are labelled
directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

BLUE = "#0072B2"
ORANGE = "#E69F00"
GREEN = "#009E73"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
SKY = "#56B4E9"
GREY = "#6b7280"
INK = "#1f2937"
GRID = "#e5e7eb"

SERIES_COLOURS = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, INK)
SERIES_DASHES = ("", "6 4", "2 3", "10 3 2 3", "1 2", "8 2", "4 4")

FONT = 13
"""Base font size of chart text, in viewBox units (about pixels at full width)."""


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) spanning ``[low, high]``."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks = [round(first, 12)]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(first + step * len(ticks), 12))
    return ticks


def _svg_open(chart_id: str, width: float, height: float, title: str, desc: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width:g} {height:g}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" font-size="{FONT}">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>'
    )


def _text(
    x: float, y: float, text: str, *, anchor: str = "start", cls: str = "", extra: str = ""
) -> str:
    class_attr = f' class="{cls}"' if cls else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{class_attr}{extra}>'
        f"{escape(text)}</text>"
    )


def _clip(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One row of an interval chart: a point estimate with its interval.

    A row without a ``value`` shows ``note`` in place of the mark (e.g. "baseline").
    """

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    colour: str = INK
    note: str = ""
    tooltip: str = ""
    emphasis: bool = False


def interval_chart(
    rows: Sequence[IntervalRow],
    *,
    chart_id: str,
    title: str,
    desc: str,
    fmt: Callable[[float], str],
    reference: float | None = None,
    include_zero: bool = True,
    width: float = 560,
) -> str:
    """Horizontal dot-and-whisker chart, one row per item, a shared x axis.

    ``reference`` draws a dashed vertical line (0 for lifts).
    """
    label_width, note_width, row_height, top, bottom = 130.0, 140.0, 38.0, 10.0, 30.0
    plot_left, plot_right = label_width, width - note_width - 10
    height = top + row_height * len(rows) + bottom
    values = [v for r in rows for v in (r.value, r.low, r.high) if v is not None]
    low = min([*values, 0.0] if include_zero or not values else values)
    high = max([*values, 0.0] if include_zero or not values else values)
    if reference is not None:
        low, high = min(low, reference), max(high, reference)
    ticks = nice_ticks(low, high)
    lo, hi = ticks[0], ticks[-1]

    def x(value: float) -> float:
        return plot_left + (value - lo) / (hi - lo) * (plot_right - plot_left)

    parts = [_svg_open(chart_id, width, height, title, desc)]
    axis_y = top + row_height * len(rows)
    for tick in ticks:
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{top:.1f}" x2="{x(tick):.1f}" y2="{axis_y:.1f}" '
            f'stroke="{GRID}"/>'
        )
        parts.append(_text(x(tick), axis_y + 18, fmt(tick), anchor="middle", cls="tick"))
    if reference is not None:
        parts.append(
            f'<line x1="{x(reference):.1f}" y1="{top - 4:.1f}" x2="{x(reference):.1f}" '
            f'y2="{axis_y:.1f}" stroke="{INK}" stroke-dasharray="4 3"/>'
        )
    for i, row in enumerate(rows):
        cy = top + row_height * (i + 0.5)
        weight = ' font-weight="600"' if row.emphasis else ""
        parts.append(
            f"<g><title>{escape(row.tooltip or row.label)}</title>"
            + _text(4, cy + 4, _clip(row.label, 17), extra=weight)
        )
        if row.value is None:
            parts.append(_text(x(lo) + 4, cy + 4, row.note, cls="muted") + "</g>")
            continue
        if row.low is not None and row.high is not None:
            x1, x2 = x(row.low), x(row.high)
            parts.append(
                f'<line x1="{x1:.1f}" y1="{cy:.1f}" x2="{x2:.1f}" y2="{cy:.1f}" '
                f'stroke="{row.colour}" stroke-width="3" stroke-linecap="round"/>'
                f'<line x1="{x1:.1f}" y1="{cy - 7:.1f}" x2="{x1:.1f}" y2="{cy + 7:.1f}" '
                f'stroke="{row.colour}" stroke-width="2"/>'
                f'<line x1="{x2:.1f}" y1="{cy - 7:.1f}" x2="{x2:.1f}" y2="{cy + 7:.1f}" '
                f'stroke="{row.colour}" stroke-width="2"/>'
            )
        parts.append(
            f'<circle cx="{x(row.value):.1f}" cy="{cy:.1f}" r="6" fill="{row.colour}" '
            f'stroke="#fff" stroke-width="1.5"/>'
        )
        parts.append(_text(plot_right + 12, cy + 4, row.note, cls="value") + "</g>")
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Series:
    """A named line: ``points`` are ``(x label, value)`` in order."""

    label: str
    points: tuple[tuple[str, float], ...]


def line_chart(
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    desc: str,
    fmt: Callable[[float], str],
    x_fmt: Callable[[str], str] = str,
    width: float = 1000,
    height: float = 320,
) -> str:
    """Several lines over shared x labels, each labelled at its right end."""
    left, right, top, bottom = 64.0, 250.0, 16.0, 34.0
    xs: list[str] = sorted({label for s in series for label, _ in s.points})
    values = [v for s in series for _, v in s.points]
    ticks = nice_ticks(0.0, max(values, default=1.0))
    lo, hi = ticks[0], ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom
    index = {label: i for i, label in enumerate(xs)}

    def px(label: str) -> float:
        return left + (index[label] / max(1, len(xs) - 1)) * plot_w

    def py(value: float) -> float:
        return top + plot_h - (value - lo) / (hi - lo) * plot_h

    parts = [_svg_open(chart_id, width, height, title, desc)]
    for tick in ticks:
        parts.append(
            f'<line x1="{left:.1f}" y1="{py(tick):.1f}" x2="{left + plot_w:.1f}" '
            f'y2="{py(tick):.1f}" stroke="{GRID}"/>'
        )
        parts.append(_text(left - 8, py(tick) + 4, fmt(tick), anchor="end", cls="tick"))
    step = max(1, math.ceil(len(xs) / 8))
    for label in xs[::step]:
        parts.append(_text(px(label), top + plot_h + 20, x_fmt(label), anchor="middle", cls="tick"))
    ends: list[tuple[float, int]] = []
    for i, s in enumerate(series):
        if not s.points:
            continue
        colour, dash = (
            SERIES_COLOURS[i % len(SERIES_COLOURS)],
            SERIES_DASHES[i % len(SERIES_DASHES)],
        )
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{px(label):.1f},{py(value):.1f}"
            for j, (label, value) in enumerate(s.points)
        )
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        last_label, last_value = s.points[-1]
        parts.append(
            f"<g><title>{escape(s.label)}: {escape(fmt(s.points[0][1]))} on "
            f"{escape(x_fmt(s.points[0][0]))}, {escape(fmt(last_value))} on "
            f"{escape(x_fmt(last_label))}</title>"
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5"{dash_attr}/>'
            f'<circle cx="{px(last_label):.1f}" cy="{py(last_value):.1f}" r="4" fill="{colour}"/></g>'
        )
        ends.append((py(last_value), i))
    # Direct labels at the line ends, nudged apart so they never overlap.
    ends.sort()
    placed: list[float] = []
    for y, _ in ends:
        placed.append(max(y, placed[-1] + FONT + 3) if placed else y)
    overflow = placed[-1] - (top + plot_h) if placed else 0.0
    if overflow > 0:
        placed = [y - overflow for y in placed]
    for (_, i), y in zip(ends, placed, strict=True):
        s = series[i]
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        parts.append(
            _text(
                left + plot_w + 10,
                y + 4,
                f"{_clip(s.label, 22)} {fmt(s.points[-1][1])}",
                extra=f' fill="{colour}" font-weight="600"',
            )
        )
    parts.append("</svg>")
    return "".join(parts)


def _blend(share: float) -> str:
    """White to the palette's blue: light cells for small overlaps, dark for large."""
    share = min(1.0, max(0.0, share))
    start, end = (247, 251, 255), (8, 69, 148)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(start, end, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    labels: Sequence[str],
    matrix: Sequence[Sequence[int]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    fmt: Callable[[float], str],
) -> str:
    """Overlap matrix: cell colour is the Jaccard index ``|A∩B| / |A∪B|``, text the count.

    The diagonal (each segment's size) is drawn in grey: it is not an overlap.
    """
    n = len(labels)
    cell, left, top = 76.0, 200.0, 24.0
    width, height = left + cell * n + 16, top + cell * n + 150
    parts = [_svg_open(chart_id, width, height, title, desc)]
    for i, row_label in enumerate(labels):
        parts.append(
            _text(left - 10, top + cell * (i + 0.5) + 4, _clip(row_label, 24), anchor="end")
        )
        for j in range(n):
            count = matrix[i][j]
            x, y = left + cell * j, top + cell * i
            if i == j:
                fill, ink, tip = "#d1d5db", INK, f"{row_label}: {fmt(count)} visitors"
            else:
                union = matrix[i][i] + matrix[j][j] - count
                jaccard = count / union if union else 0.0
                fill = _blend(jaccard * 2.0)
                ink = "#fff" if jaccard * 2.0 > 0.55 else INK
                share = count / matrix[i][i] if matrix[i][i] else 0.0
                tip = (
                    f"{row_label} and {labels[j]}: {fmt(count)} visitors "
                    f"({share:.0%} of {row_label}, Jaccard {jaccard:.2f})"
                )
            parts.append(
                f"<g><title>{escape(tip)}</title>"
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell - 2:.1f}" height="{cell - 2:.1f}" '
                f'rx="3" fill="{fill}"/>'
                + _text(
                    x + cell / 2 - 1,
                    y + cell / 2 + 4,
                    fmt(count),
                    anchor="middle",
                    extra=f' fill="{ink}"',
                )
                + "</g>"
            )
    for j, col_label in enumerate(labels):
        x = left + cell * (j + 0.5)
        y = top + cell * n + 10
        parts.append(
            _text(
                x,
                y,
                _clip(col_label, 24),
                anchor="end",
                extra=f' transform="rotate(-40 {x:.1f} {y:.1f})" dy="0.8em"',
            )
        )
    parts.append("</svg>")
    return "".join(parts)
