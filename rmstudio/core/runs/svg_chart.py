"""Small charts as inline SVG text, for reports that must open anywhere without Qt or a plotting
library: a line chart (one polyline per series, dots where there are few points) and a bar chart.

Every text is escaped, so a metric or run name can never become markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

# The app's colour cycle (gui/plots.py COLORS): a report's curves look like the window's.
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
SPLIT_COLORS = {"train": "#0072B2", "val": "#D55E00", "test": "#009E73"}
WIDTH, HEIGHT = 460, 270
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 30, 42  # room for tick labels, the title and the x label
DOTS_BELOW = 30  # a series this short shows each point as a dot (an instant run has one)


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    color: str
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values covering low..high (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _label(value: float) -> str:
    return f"{value:.4g}"


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11" role="img">',
             f"<title>{escape(title)}</title>",
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
             f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>']
    if x_label:
        parts.append(f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle" '
                     f'fill="#444">{escape(x_label)}</text>')
    if y_label:
        middle = TOP + (HEIGHT - TOP - BOTTOM) / 2
        parts.append(f'<text x="12" y="{middle}" text-anchor="middle" fill="#444" '
                     f'transform="rotate(-90 12 {middle})">{escape(y_label)}</text>')
    return parts


def _axes(x_ticks: list[tuple[float, str]], y_ticks: list[tuple[float, str]]) -> list[str]:
    """Grid lines and tick labels at plot coordinates already mapped to pixels."""
    parts = []
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    for y, text in y_ticks:
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        parts.append(f'<text x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end" fill="#444">'
                     f"{escape(text)}</text>")
    for x, text in x_ticks:
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#f0f0f0"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle" fill="#444">'
                     f"{escape(text)}</text>")
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{right - LEFT}" height="{bottom - TOP}" fill="none" '
                 'stroke="#999"/>')
    return parts


def line_chart(title: str, series: list[Series], x_label: str = "step", y_label: str = "",
               y_limits: tuple[float, float] | None = None, guides: list[Series] = (),
               legend_low: bool = False) -> str:
    """An SVG line chart of ``series`` (grey dashed ``guides``, like a diagonal, share the axes).
    Non-finite points are left out; a chart with no points says so. ``legend_low``: the legend
    sits at the bottom right, where rising curves (accuracy) leave room."""
    drawn = [Series(s.name, [(float(x), float(y)) for x, y in s.points
                             if math.isfinite(float(x)) and math.isfinite(float(y))], s.color, s.dashed)
             for s in series]
    drawn = [s for s in drawn if s.points]
    parts = _frame(title, x_label, y_label)
    if not drawn:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#888">no values '
                     "recorded</text></svg>")
        return "".join(parts)
    everything = [p for s in drawn + list(guides) for p in s.points]
    xs, ys = [p[0] for p in everything], [p[1] for p in everything]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    if y_limits is not None:  # an accuracy stays on 0..1 when its values allow
        y_low, y_high = max(min(y_low, y_limits[1]), y_limits[0]), min(max(y_high, y_limits[0]), y_limits[1])
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high == y_low:
        pad = abs(y_low) * 0.1 or 0.5
        y_low, y_high = y_low - pad, y_high + pad
    y_pad = (y_high - y_low) * 0.05
    y_low, y_high = y_low - y_pad, y_high + y_pad
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * width

    def py(y: float) -> float:
        return TOP + (y_high - y) / (y_high - y_low) * height

    parts += _axes([(px(t), _label(t)) for t in nice_ticks(x_low, x_high) if x_low <= t <= x_high],
                   [(py(t), _label(t)) for t in nice_ticks(y_low, y_high) if y_low <= t <= y_high])
    for guide in guides:
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in guide.points)
        parts.append(f'<polyline points="{points}" fill="none" stroke="#888" stroke-dasharray="4 3"/>')
    for s in drawn:
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{s.color}" stroke-width="2"{dash}>'
                     f"<title>{escape(s.name)}</title></polyline>")
        if len(s.points) < DOTS_BELOW:
            parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{s.color}"/>'
                      for x, y in s.points]
    parts += _legend(drawn, legend_low)
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: list[Series], low: bool = False) -> list[str]:
    parts = []
    first = HEIGHT - BOTTOM - 8 - 15 * (len(series) - 1) if low else TOP + 16
    # A light box under the legend keeps curves visible but the names readable (as in the app).
    parts.append(f'<rect x="{WIDTH - RIGHT - 136}" y="{first - 12}" width="130" '
                 f'height="{15 * len(series) + 4}" fill="#ffffff" fill-opacity="0.7"/>')
    for i, s in enumerate(series):
        y = first + 15 * i
        x = WIDTH - RIGHT - 130
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="{s.color}" '
                     f'stroke-width="2"{dash}/>')
        parts.append(f'<text x="{x + 23}" y="{y}" fill="#222">{escape(s.name[:22])}</text>')
    return parts


def bar_chart(title: str, labels: list[str], values: list[float], y_label: str = "",
              y_limits: tuple[float, float] = (0.0, 1.0), reference: float | None = None) -> str:
    """One bar per label on a fixed value range; ``reference`` draws a dashed line (a coin flip)."""
    parts = _frame(title, "", y_label)
    low, high = y_limits
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = width / max(1, len(values))

    def py(y: float) -> float:
        return TOP + (high - min(max(y, low), high)) / (high - low) * height

    parts += _axes([(LEFT + slot * (i + 0.5), label) for i, label in enumerate(labels)],
                   [(py(t), _label(t)) for t in nice_ticks(low, high)])
    for i, value in enumerate(values):
        top = py(value)
        parts.append(f'<rect x="{LEFT + slot * (i + 0.2):.1f}" y="{top:.1f}" width="{slot * 0.6:.1f}" '
                     f'height="{py(low) - top:.1f}" fill="{COLORS[0]}"><title>{escape(labels[i])}: '
                     f"{_label(value)}</title></rect>")
    if reference is not None:
        level = py(reference)
        parts.append(f'<line x1="{LEFT}" y1="{level:.1f}" x2="{WIDTH - RIGHT}" y2="{level:.1f}" '
                     'stroke="#888" stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "".join(parts)
