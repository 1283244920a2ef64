"""The layout check: before any value is read, a return's data sheets must show what the form says where.

A value is read by its address, and an address means something only while the rows and columns sit
where the form put them. An officer who lifts the sheet protection and inserts a row moves every
figure below it into the wrong indicator, silently. So each data sheet is compared with
``Form.layout`` (sheet names, the header rows, every line's STT and label, every value column's
header), texts compared by ``catalog.layout_key`` (NFC, case, whitespace and tone placement folded).
The period headers ("Năm 2023", "Quý I/2024") are the plan's words, not the form's, so they are not in
the form's layout (nor its fingerprint); the upload passes the plan's labels, and each period's header
must head its own columns: two period blocks swapped keep every breakdown header in place, and would
otherwise read last year's figures as this quarter's.
The first difference refuses the whole return with ``layout_changed``, naming sheet, row, what the form
says and what the file says. The comparison runs on the cell arrays the parser already read, and
compares the issued text first, so a return that matches costs a few hundred string comparisons.
"""
from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

from .catalog import BREAKDOWN_HEADER_ROW, PERIOD_HEADER_ROW, Form, LayoutLine, Sheet, column_letter, layout_key
from .guard import Refusal

_SHOWN = 80  # characters of a label quoted in the message


def _raw(grid: Any, row: int, col: int) -> Any:
    if row > grid.shape[0] or col > grid.shape[1]:
        return None
    return grid[row - 1, col - 1]


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = " ".join(unicodedata.normalize("NFC", str(value)).split())
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def _differs(grid: Any, line: LayoutLine) -> list[tuple[int, str, Any]]:
    """Return (column, issued text, file value) of every cell of ``line`` that does not match."""
    wrong = []
    for col, text, key in line.cells:
        value = _raw(grid, line.excel_row, col)
        if value == text or (isinstance(value, str) and value.strip() == text):
            continue  # the file holds the text as issued: the common case, no folding needed
        if layout_key(value) != key:
            wrong.append((col, text, value))
    return wrong


def _period_headers(form: Form, sheet: Sheet, labels: Mapping[str, str]) -> LayoutLine:
    """Return the period header row as issued: each period's label over the first of its columns."""
    cells = []
    for period in form.periods:
        cols = [column.index for column in sheet.columns if column.period == period.key]
        if cols:
            text = labels.get(period.key, period.label)
            cells.append((min(cols), text, layout_key(text)))
    return LayoutLine(PERIOD_HEADER_ROW, tuple(cells))


def check_layout(grids: Mapping[str, Any], form: Form,
                 period_labels: Mapping[str, str] | None = None) -> Refusal | None:
    """Return the ``layout_changed`` refusal of the first data sheet that differs from ``form``; else None.

    ``grids`` maps NFC sheet names to 2-D object arrays of the sheet's cells from A1 (None or absent:
    the file has no such sheet). ``period_labels`` ({period key: label}, the plan's, as its blank forms
    print them) also checks the period headers; None leaves them unchecked (no plan known).
    """
    for data_sheet, sheet in zip(form.sheets, form.layout):
        grid = grids.get(unicodedata.normalize("NFC", sheet.name))
        if grid is None:
            present = ", ".join(f"«{name}»" for name in grids if grids[name] is not None) or "không có"
            return Refusal("layout_changed", template="layout_sheet_missing", sheet=sheet.name, present=present)
        lines = sheet.lines
        if period_labels is not None:
            lines = (_period_headers(form, data_sheet, period_labels), *lines)
        for line in lines:
            wrong = _differs(grid, line)
            if not wrong:
                continue
            where = f"Trang «{sheet.name}», dòng {line.excel_row}"
            if line.excel_row <= BREAKDOWN_HEADER_ROW:
                # A header row: name the first column that moved (a column inserted or deleted).
                col, text, value = wrong[0]
                return Refusal("layout_changed", where=f"{where}, cột {column_letter(col)}", expected=text,
                               found=_shown(value) or "(trống)")
            expected = " ".join(text for _, text, _ in wrong if text)
            found = " ".join(_shown(value) for _, _, value in wrong if _shown(value))
            return Refusal("layout_changed", where=where, expected=expected or "(trống)", found=found or "(trống)")
    return None
