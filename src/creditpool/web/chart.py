"""Daily credits used by feature as a stacked bar chart in plain SVG (no script, no library).

Two drawings of the same numbers: every day of the period for a wide screen, and the most
recent ``NARROW_DAYS`` days on a narrower canvas for a phone (the page shows one of them by
the screen's width), so that a phone keeps the newest days and readable labels.

Pure: days and sums in, markup out. Amounts arrive in units (ten-thousandths of a credit);
bar heights are geometry, so only they are computed in floating point, never the numbers a
person reads (the legend and every bar's tooltip are exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape

from creditpool.core.money import UNIT, format_credits

PALETTE = ("#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#64748b")
KNOWN_COLORS = {
    "report": "#4f46e5",
    "agent_recommendation": "#10b981",
    "action_plan": "#0ea5e9",
    "topic_detection": "#f59e0b",
}
WIDTH, HEIGHT = 760, 240
NARROW_WIDTH, NARROW_DAYS = 360, 14  # a phone's drawing: the newest two weeks
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 12, 28
GRID_LINES = 4


@dataclass(frozen=True)
class Series:
    key: str
    name: str
    color: str
    total_units: int

    @property
    def total(self) -> str:
        return format_credits(self.total_units)


@dataclass(frozen=True)
class Chart:
    svg: str
    series: tuple[Series, ...]
    total: str
    peak: str
    svg_narrow: str = ""  # the newest NARROW_DAYS days, for a phone
    narrow_days: int = 0


def colors(keys: list[str]) -> dict[str, str]:
    spare = [c for c in PALETTE if c not in KNOWN_COLORS.values()]
    found = {}
    for i, key in enumerate(sorted(keys)):
        found[key] = KNOWN_COLORS.get(key) or spare[i % len(spare)]
    return found


def nice_ceiling(units: int) -> int:
    """The axis top: the smallest 1, 2, 2.5, 3, 4, 5, 6 or 8 x 10^n credits at or above
    the peak (each splits into four round steps)."""
    if units <= 0:
        return UNIT
    step = 1
    while True:
        for m in (10, 20, 25, 30, 40, 50, 60, 80):
            top = m * step  # in tenths of a credit
            if top * UNIT // 10 >= units:
                return top * UNIT // 10
        step *= 10


def _gridlines(top: int, plot_h: int, width: int) -> list[str]:
    """The horizontal lines of the plot, each with its value on the axis."""
    lines = []
    for i in range(GRID_LINES + 1):
        units = top * i // GRID_LINES
        y = TOP + plot_h - plot_h * i / GRID_LINES
        lines.append(
            f'<line class="gridline" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_short(units)}</text>"
        )
    return lines


def stacked_bars(
    days: list[date], sums: dict[tuple[date, str], int], names: dict[str, str]
) -> Chart:
    """Units used per (day, feature) as bars, a feature's colour the same in both drawings;
    the legend's totals and the peak are the whole period's."""
    keys = sorted(
        {k for _, k in sums}, key=lambda k: -sum(v for (_, f), v in sums.items() if f == k)
    )
    palette = colors(keys)
    per_day = {d: sum(sums.get((d, k), 0) for k in keys) for d in days}
    peak = max(per_day.values(), default=0)
    series = tuple(
        Series(k, names.get(k, k), palette[k], sum(v for (_, f), v in sums.items() if f == k))
        for k in keys
    )
    narrow = days[-NARROW_DAYS:]
    return Chart(
        svg=_svg(days, sums, names, keys, palette, WIDTH),
        series=series,
        total=format_credits(sum(per_day.values())),
        peak=format_credits(peak),
        svg_narrow=_svg(narrow, sums, names, keys, palette, NARROW_WIDTH, "chart chart-narrow"),
        narrow_days=len(narrow),
    )


def _svg(
    days: list[date],
    sums: dict[tuple[date, str], int],
    names: dict[str, str],
    keys: list[str],
    palette: dict[str, str],
    width: int,
    css_class: str = "chart",
) -> str:
    """The stacked bars of ``days`` on a canvas ``width`` wide, the axis fitted to them."""
    per_day = {d: sum(sums.get((d, k), 0) for k in keys) for d in days}
    top = nice_ceiling(max(per_day.values(), default=0))
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    band = plot_w / max(1, len(days))
    bar_w = max(1.0, band * 0.72)
    label = f"Daily credits used by feature, {len(days)} days"
    parts = [
        f'<svg class="{css_class}" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-label="{label}" preserveAspectRatio="xMidYMid meet">'
    ]
    parts.extend(_gridlines(top, plot_h, width))
    label_every = 7 if len(days) > 45 else 5 if len(days) > 20 else 3
    for i, day in enumerate(days):
        x = LEFT + band * i + (band - bar_w) / 2
        y: float = TOP + plot_h
        tip = f"{day:%a %b} {day.day}: {format_credits(per_day[day])} credits"
        parts.append(
            f'<rect class="hit" x="{LEFT + band * i:.1f}" y="{TOP}" width="{band:.1f}" '
            f'height="{plot_h}"><title>{escape(tip)}</title></rect>'
        )
        for key in keys:
            units = sums.get((day, key), 0)
            if units <= 0:
                continue
            h = plot_h * units / top
            y -= h
            tip = f"{day:%b} {day.day} · {names.get(key, key)}: {format_credits(units)} credits"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{palette[key]}"><title>{escape(tip)}</title></rect>'
            )
        if (len(days) - 1 - i) % label_every == 0:
            cx = LEFT + band * i + band / 2
            parts.append(
                f'<text class="axis" x="{cx:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                f"{day:%b} {day.day}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(units: int) -> str:
    """An axis label: whole credits, or one decimal below ten."""
    whole, frac = divmod(units, UNIT)
    if frac == 0:
        return f"{whole:,}"
    return format_credits(units)
