"""The usage chart's SVG (pure): every day of the period for a wide screen, the newest days
drawn on a narrower canvas for a phone, the exact amounts in the tooltips and the legend."""

from __future__ import annotations

import re
from datetime import date, timedelta

from creditpool.core.money import UNIT
from creditpool.web.chart import NARROW_DAYS, NARROW_WIDTH, WIDTH, stacked_bars

NAMES = {"report": "Report", "topic_detection": "Topic Detection"}


def period(days: int, last: date = date(2026, 11, 30)) -> list[date]:
    return [last - timedelta(days=days - 1 - i) for i in range(days)]


def day_tips(svg: str) -> list[str]:
    """The tooltip of each day's column, in order: '<weekday> <month> <day>: N credits'."""
    return re.findall(r'class="hit"[^>]*><title>([^<]*)</title>', svg)


def test_the_wide_drawing_has_every_day_and_the_phone_one_the_newest_days() -> None:
    days = period(30)
    sums = {(days[0], "report"): UNIT, (days[-1], "topic_detection"): 25 * UNIT // 10}
    chart = stacked_bars(days, sums, NAMES)
    assert f'viewBox="0 0 {WIDTH} 240"' in chart.svg
    assert f'viewBox="0 0 {NARROW_WIDTH} 240"' in chart.svg_narrow
    assert chart.narrow_days == NARROW_DAYS
    wide, narrow = day_tips(chart.svg), day_tips(chart.svg_narrow)
    assert len(wide) == 30
    assert narrow == wide[-NARROW_DAYS:]
    assert narrow[-1] == "Mon Nov 30: 2.50 credits"
    assert wide[0] == "Sun Nov 1: 1.00 credits"
    # The newest day is labelled on the axis of both drawings.
    assert chart.svg.endswith(">Nov 30</text></svg>")
    assert chart.svg_narrow.endswith(">Nov 30</text></svg>")
    assert "chart-narrow" in chart.svg_narrow
    # The legend and the peak are the whole period's.
    assert [(s.name, s.total) for s in chart.series] == [
        ("Topic Detection", "2.50"),
        ("Report", "1.00"),
    ]
    assert (chart.total, chart.peak) == ("3.50", "2.50")


def test_the_phone_drawing_fits_its_axis_to_the_days_it_shows() -> None:
    days = period(30)
    sums = {(days[0], "report"): 80 * UNIT, (days[-1], "report"): 2 * UNIT}
    chart = stacked_bars(days, sums, NAMES)
    assert ">80</text>" in chart.svg  # the old busy day sets the wide axis
    assert ">80</text>" not in chart.svg_narrow
    assert ">2</text>" in chart.svg_narrow


def test_a_period_shorter_than_the_phone_drawing_shows_all_of_it() -> None:
    chart = stacked_bars(period(5), {}, NAMES)
    assert chart.narrow_days == 5
    assert day_tips(chart.svg_narrow) == day_tips(chart.svg)
    assert chart.series == ()
    assert chart.total == "0.00"
