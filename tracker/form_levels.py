"""A form as it applies at one administrative level: rows marked for other levels drop out.

A row of a form definition may carry ``levels = [2]`` (district only): "số xã, phường, thị trấn" means
nothing in a commune's own return. ``form_at_level`` keeps the layout (rows stay where they are, so the
workbook, the parser and the export agree cell by cell) but such a row has no input cell, is not
required, shows that it does not apply, and every rule or computed cell that reads it is left out.
Pure: a loaded Form in, a Form out; cached, because the parser asks for every upload.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from .catalog import Form, Row
from .expressions import cell_keys

LEVEL_NAMES = {1: "cấp tỉnh", 2: "cấp huyện", 3: "cấp xã"}


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
