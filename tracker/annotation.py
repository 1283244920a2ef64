"""The annotated copy of a return (bản đánh dấu lỗi), rebuilt from the issued blank form, never from the upload.

Staff and officers open this file in Excel. Were it the uploaded file with fills added, every formula,
link, drawing or object the upload carried would travel with it. So it is drawn again: the unit's blank
form regenerated from the definition, the values the tracker stored for the version typed into the
input cells (numbers only), the narrative answers as plain text, then the issues marked by
``workbook.annotate``. The same works for an ``.xlsx``, ``.ods`` or ``.xls`` upload, and the result is
always ``.xlsx``. ``build_annotated`` runs in the isolated parse worker (``tracker.isolation``), under its
time and memory limits, never in the web process.
"""
from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

from openpyxl import load_workbook

from .catalog import Form
from .workbook import WorkbookContext, annotate, build_blank, _to_bytes

# (sheet code, indicator "B01.children", period, breakdown, value, text) as stored for the version.
StoredValue = tuple[str, str, str, str, "float | None", "str | None"]


def fill_from_values(form: Form, blank: bytes, values: Iterable[StoredValue], narrative_code: str) -> bytes:
    """Return ``blank`` with the stored numbers in their input cells and the narrative texts as text.

    Computed cells keep the blank's own formulas; a value whose cell is not an input cell of ``form``
    is skipped (the stored table also holds the computed values).
    """
    wb = load_workbook(io.BytesIO(blank))
    columns = {(sheet.code, column.period, column.breakdown): column for sheet in form.sheets for column in sheet.columns}
    narrative = wb[form.narrative.name]
    for sheet_code, indicator, period, breakdown, value, text in values:
        if sheet_code == narrative_code:
            if text:
                try:
                    address = form.narrative.cell(indicator)
                except KeyError:
                    continue
                cell = narrative[address]
                cell.value = text
                cell.data_type = "s"  # text, even when it starts with "=": never a formula
            continue
        column = columns.get((sheet_code, period, breakdown))
        if column is None or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        try:
            row = form.sheet(sheet_code).row(indicator.partition(".")[2])
        except KeyError:
            continue
        if column.breakdown not in row.input_breakdowns:
            continue
        number = float(value)
        wb[form.sheet(sheet_code).name].cell(row=row.excel_row, column=column.index).value = \
            int(number) if number.is_integer() else number
    return _to_bytes(wb)


def build_annotated(forms_dir: str, form_code: str, ctx: WorkbookContext, secret: str, sheet_password: str,
                    values: Sequence[StoredValue], issues: Sequence[tuple[str, str, str, str]],
                    narrative_code: str = "NARRATIVE") -> bytes:
    """Return the annotated copy (.xlsx bytes) of a stored version: blank regenerated for ``ctx``, stored
    ``values`` filled in, ``issues`` (sheet, cell, severity, message) marked. Runs in the parse worker.
    """
    from .parsing import _forms, _forms_signature

    form = _forms(forms_dir, _forms_signature(forms_dir))[form_code]
    blank = build_blank(form, ctx, secret, sheet_password)
    return annotate(fill_from_values(form, blank, values, narrative_code), issues)
