"""A form as it applies at one administrative level, and as it reads in one plan's years.

Levels: rows marked for other levels drop out.

A row of a form definition may carry ``levels = [2]`` (district only): "số xã, phường, thị trấn" means
nothing in a commune's own return. ``form_at_level`` keeps the layout (rows stay where they are, so the
workbook, the parser and the export agree cell by cell) but such a row has no input cell, is not
required, shows that it does not apply, and every rule or computed cell that reads it is left out.
Years: a form's titles, guidance and outline are written for its own periods ("năm 2023 và quý I/2024").
A plan whose periods are the form's moved by whole years (next year's copy) gets those texts with their
years moved the same way (``form_in_years``); row labels stay as issued, because the layout check
compares them. Pure: a loaded Form in, a Form out; cached, because the parser asks for every upload.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from datetime import date
from functools import lru_cache
from typing import Any

from .catalog import Form, Period, Row
from .expressions import cell_keys

LEVEL_NAMES = {1: "cấp tỉnh", 2: "cấp huyện", 3: "cấp xã"}
# A year standing alone, not the year inside a document's number ("Nghị định 09/2019/NĐ-CP" names a decree).
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d|/[^\W\d_])")


def not_applicable(row: Row, level: int | None) -> bool:
    """Return True when ``row`` is marked for other levels than ``level`` (None: the full form)."""
    return level is not None and bool(row.levels) and level not in row.levels


def form_at_level(form: Form, level: int | None) -> Form:
    """Return ``form`` without the rows that do not apply at ``level`` (the same object if none)."""
    if level is None or not any(not_applicable(row, level) for s in form.sheets for row in s.data_rows):
        return form
    return _derive(form, level)


@lru_cache(maxsize=64)
def _derive(form: Form, level: int) -> Form:
    dropped: set[tuple[str, str]] = set()
    sheets = []
    for sheet in form.sheets:
        rows = []
        for row in sheet.rows:
            if not row.is_group and not_applicable(row, level):
                dropped.add((sheet.code, row.code))
                row = replace(row, input_breakdowns=(), computed_breakdowns=(), required=False, computed=None,
                              formula=None, label=f"{row.label} (không áp dụng ở {LEVEL_NAMES[level]})")
            rows.append(row)
        sheets.append(replace(sheet, rows=tuple(rows)))

    def reads_dropped(keys: tuple[tuple[str, str, str], ...]) -> bool:
        return any((sheet, row) in dropped for sheet, row, _ in keys)

    computed = tuple(c for c in form.computed
                     if (c.key[0], c.key[1]) not in dropped and not reads_dropped(cell_keys(c.expr)))
    kept = {c.key for c in computed}
    # A computed cell whose formula read a dropped row is gone: its row no longer shows it as computed.
    final_sheets = []
    for sheet in sheets:
        rows = []
        for row in sheet.rows:
            if row.computed_breakdowns:
                cols = [c for c in sheet.columns if c.breakdown in row.computed_breakdowns]
                if cols and not any((sheet.code, row.code, c.key) in kept for c in cols):
                    row = replace(row, computed_breakdowns=(), computed=None, formula=None)
            rows.append(row)
        final_sheets.append(replace(sheet, rows=tuple(rows)))
    rules = []
    for rule in form.rules:
        instances = tuple(i for i in rule.instances if not reads_dropped(i.cells))
        if instances:
            rules.append(replace(rule, instances=instances))
    return replace(form, sheets=tuple(final_sheets), rules=tuple(rules), computed=computed, level=level)


def rewrite_years(text: str, delta: int) -> str:
    """Return ``text`` with every year (19xx/20xx) written in it moved by ``delta`` years; the years inside
    a document's number ("09/2019/NĐ-CP") stay."""
    if not delta:
        return text
    return _YEAR.sub(lambda m: str(int(m.group(1)) + delta), text)


def years_after(form_periods: Iterable[Period], plan_periods: Iterable[Mapping[str, Any]]) -> int:
    """Return by how many whole years the plan's periods follow the form's: every period the two share by key
    starts and ends on the same day and month, the same number of years later. 0 when they do not."""
    by_key = {p.get("key"): p for p in plan_periods}
    moves = set()
    for period in form_periods:
        planned = by_key.get(period.key)
        if planned is None or period.start is None or period.end is None:
            continue
        try:
            start, end = date.fromisoformat(str(planned["start"])), date.fromisoformat(str(planned["end"]))
        except (KeyError, ValueError):
            return 0
        years = start.year - period.start.year
        if (start, end) != (_moved(period.start, years), _moved(period.end, years)):
            return 0
        moves.add(years)
    return moves.pop() if len(moves) == 1 else 0


def _moved(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29/2 into a common year
        return day.replace(year=day.year + years, day=28)


def form_in_years(form: Form, years: int) -> Form:
    """Return ``form`` with the years written in its title, description, guidance, sheet titles and outline
    moved by ``years`` (the same object for 0)."""
    return form if not years else _in_years(form, years)


@lru_cache(maxsize=64)
def _in_years(form: Form, years: int) -> Form:
    def moved(text: str) -> str:
        return rewrite_years(text, years)

    decree = replace(form.decree09, **{f.name: moved(getattr(form.decree09, f.name)) for f in fields(form.decree09)
                                       if isinstance(getattr(form.decree09, f.name), str)})
    narrative = replace(form.narrative, title=moved(form.narrative.title), sections=tuple(
        replace(section, heading=moved(section.heading), hint=moved(section.hint))
        for section in form.narrative.sections))
    return replace(form, title=moved(form.title), description=moved(form.description), decree09=decree,
                   sheets=tuple(replace(sheet, title=moved(sheet.title)) for sheet in form.sheets),
                   narrative=narrative)
