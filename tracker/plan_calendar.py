"""Move a plan's calendar by the offset between two deadlines: periods, visit dates, wording.

Pure: plain values in, plain values out. When the new deadline is the old one's wall-clock time a whole
number of years later, dates move by whole years (10/5/2024 -> 10/5/2025, 31/12/2023 -> 31/12/2024)
and the years written in labels follow ("Năm 2023; Quý I/2024" -> "Năm 2024; Quý I/2025"); otherwise
dates move by the same number of days as the deadline, and a label's years move with its start date.
The copy's deadline wording is ``wording.plan_phrase``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .form_levels import rewrite_years
from .timeutil import local


@dataclass(frozen=True)
class Shift:
    """How far the calendar moves: ``years`` when whole years, else ``days``."""

    years: int | None
    days: int

    def move(self, day: date) -> date:
        if self.years is None:
            return day + timedelta(days=self.days)
        try:
            return day.replace(year=day.year + self.years)
        except ValueError:  # 29/2 into a common year: the last day of February
            return day.replace(year=day.year + self.years, day=28)


def shift_between(old_deadline: datetime, new_deadline: datetime) -> Shift:
    """Return the shift that takes ``old_deadline`` to ``new_deadline`` (both aware)."""
    old, new = local(old_deadline), local(new_deadline)
    years = new.year - old.year
    same_wall_clock = (old.month, old.day, old.time()) == (new.month, new.day, new.time())
    return Shift(years if same_wall_clock else None, (new.date() - old.date()).days)


def shift_periods(periods: list[dict[str, Any]], shift: Shift) -> list[dict[str, Any]]:
    """Return the periods with their start and end dates moved and their labels' years following."""
    moved = []
    for period in periods:
        item = dict(period)
        start = date.fromisoformat(period["start"]) if period.get("start") else None
        if start is not None:
            new_start = shift.move(start)
            item["start"] = new_start.isoformat()
            item["label"] = rewrite_years(period.get("label", ""), new_start.year - start.year)
        if period.get("end"):
            item["end"] = shift.move(date.fromisoformat(period["end"])).isoformat()
        moved.append(item)
    return moved
