"""Geometry of the dashboard's charts, drawn as inline SVG by templates/dashboard/_charts.html.

Pure: a Timeliness or a set of counts in, coordinates and labels out. No JavaScript, no CDN: the
picture is part of the page, so it prints, works offline and passes the Content-Security-Policy.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .compliance import Status
from .timeliness import Timeliness

# Okabe–Ito, safe for the common colour-vision deficiencies; a grey for "exempt", which asks nothing.
STATUS_COLOURS: dict[Status, str] = {
    Status.ON_TIME: "#009E73",     # bluish green
    Status.LATE: "#F0E442",        # yellow
    Status.INCOMPLETE: "#E69F00",  # orange
    Status.OVERDUE: "#D55E00",     # vermillion
    Status.NOT_DUE: "#56B4E9",     # sky blue
    Status.EXEMPT: "#999999",      # grey
}
# Dark text where the bar is light (yellow, sky blue, orange), white where it is dark.
STATUS_TEXT: dict[Status, str] = {s: ("#000000" if s in (Status.LATE, Status.NOT_DUE, Status.INCOMPLETE,
                                                         Status.EXEMPT) else "#FFFFFF") for s in Status}
# Good news first, then what needs chasing, then what asks nothing yet.
BAR_ORDER = (Status.ON_TIME, Status.LATE, Status.INCOMPLETE, Status.OVERDUE, Status.NOT_DUE, Status.EXEMPT)
SERIES_COLOURS = {"received": "#0072B2", "complete": "#009E73", "on_time": "#CC79A7", "deadline": "#D55E00",
                  "reminder": "#E69F00"}


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    count: int
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    received: str
    complete: str
    on_time: str
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    deadline_x: float | None
    markers: tuple[Marker, ...]
    single_day: bool


def _points(xs: Sequence[float], ys: Sequence[float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


def line_chart(t: Timeliness, width: int = 720, height: int = 280) -> LineChart:
    """Return the cumulative chart of ``t``: one point per day, the deadline line and reminder marks."""
    left, top, right, bottom = 44, 16, width - 16, height - 44
    n = len(t.days)
    step = (right - left) / (n - 1) if n > 1 else 0.0
    xs = [left + i * step if n > 1 else (left + right) / 2 for i in range(n)]
    top_value = max(t.required, 1)

    def y(value: float) -> float:
        return bottom - (bottom - top) * value / top_value

    every = max(1, -(-n // 8))
    x_ticks = tuple(Tick(xs[i], bottom, t.days[i].date.strftime("%d/%m")) for i in range(0, n, every))
    y_values = sorted({0, top_value // 2, top_value})
    y_ticks = tuple(Tick(left, y(v), str(v)) for v in y_values)
    deadline_x = next((xs[i] for i, d in enumerate(t.days) if d.date == t.last_on_time_day), None)
    markers = tuple(Marker(xs[i], bottom, d.reminders_sent, d.date.strftime("%d/%m/%Y"))
                    for i, d in enumerate(t.days) if d.reminders_sent)
    return LineChart(width, height, left, top, right, bottom,
                     _points(xs, [y(d.received) for d in t.days]), _points(xs, [y(d.complete) for d in t.days]),
                     _points(xs, [y(d.on_time) for d in t.days]), x_ticks, y_ticks, deadline_x, markers, n == 1)


@dataclass(frozen=True)
class Bar:
    status: Status
    label: str
    count: int
    y: float
    width: float
    colour: str
    text_colour: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: tuple[Bar, ...]


def status_bars(counts: Mapping[Status, int], width: int = 380) -> BarChart:
    """Return one bar per status (every status, zero included) scaled to the largest count."""
    label_width, bar_height, gap = 128, 22, 6
    biggest = max([*counts.values(), 1])
    room = width - label_width - 40
    bars = tuple(Bar(s, s.label, counts.get(s, 0), i * (bar_height + gap), room * counts.get(s, 0) / biggest,
                     STATUS_COLOURS[s], STATUS_TEXT[s]) for i, s in enumerate(BAR_ORDER))
    return BarChart(width, len(bars) * (bar_height + gap), label_width, bar_height, bars)
