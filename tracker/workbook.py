"""The blank form (biểu mẫu trống): the Excel workbook a unit downloads, fills in and sends back.

``build_blank(form, ctx)`` draws the workbook a unit downloads from the form definition alone, in the
layout fixed by ``tracker.catalog`` (the parser reads the same addresses):

- ``Bìa`` (cover, opened first) and ``Hướng dẫn`` (guidance): drawn by ``blank_cover``;
- ``Đề cương``: one text cell per answerable narrative section;
- ``Biểu 01`` ...: data sheets, input cells shaded and unlocked, everything else locked, computed cells
  as Excel formulas, whole-number (or decimal) validation on every input;
- ``_tracker``: a very hidden key/value sheet naming form, version, plan and unit, with a checksum
  so an upload identifies itself and a hand-edited identity is detected.

What the sheets are drawn with (styles, cell writers, row heights, bytes out) is ``workbook_base``; the
annotated copy of a return, drawn from a blank form, is ``annotation``. Everything here is pure: plain values in, bytes out; no Flask, no database, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from copy import copy

from openpyxl import Workbook
from openpyxl.cell.cell import Cell as XlCell
from openpyxl.utils.cell import quote_sheetname
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from .blank_cover import cover_date_formula, cover_ref, write_cover, write_guide
from .catalog import (
    BREAKDOWN_HEADER_ROW, COVER_MAX_COL, COVER_MAX_ROW, COVER_SHEET_NAME, FIRST_VALUE_COL, GUIDE_SHEET_NAME,
    INFO_ROW, LABEL_COL, NARRATIVE_ANSWER_COL, NARRATIVE_CODE_COL, NARRATIVE_FIRST_ROW, NARRATIVE_HEADER_ROW,
    NARRATIVE_HEADING_COL, PERIOD_HEADER_ROW, SHEET_TITLE_ROW, STT_COL, TITLE_ROW, UNIT_COL, Form, Sheet,
    column_letter,
)
from .expressions import BinOp, Call, Cell, CellKey, Expr, Neg, Number, cell_keys
from .form_levels import form_in_years
from .identity import META_MAX_COL, META_MAX_ROW, META_SHEET_NAME, identity_values, write_identity_sheet
from .workbook_base import (
    PROMPT_MAX, PROMPT_TITLE_MAX, Styles, WorkbookContext, auto_height, form_footer, merge, page_landscape,
    period_labels_for, place_name, protect_sheet, put, register_styles, text_height, to_bytes,
)


def all_extents(form: Form) -> dict[str, tuple[int, int]]:
    """Return {sheet name: (max_row, max_col)} of every sheet a blank form of ``form`` has.

    It is ``form.extents()`` plus the cover and the metadata sheet: the upload guard refuses a cell
    outside these boxes.
    """
    extents = {COVER_SHEET_NAME: (COVER_MAX_ROW, COVER_MAX_COL)}
    extents.update(form.extents())
    extents[META_SHEET_NAME] = (META_MAX_ROW, META_MAX_COL)
    return extents


# ---------------------------------------------------------------------------------------------
# File names


def _ascii_fold(text: str) -> str:
    # "đ" has no decomposition in Unicode, so NFD alone would drop it instead of turning it into "d".
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def blank_form_filename(form_code: str, unit_name: str, plan_code: str) -> tuple[str, str]:
    """Return (ASCII name, UTF-8 name) of a unit's blank form, e.g.
    ("PL03_Huyen-Luc-Ngan_bacgiang-2024.xlsx", "PL03_Huyện-Lục-Ngạn_bacgiang-2024.xlsx").

    The ASCII name holds only [A-Za-z0-9._-] (for the plain ``filename`` header); the UTF-8 one
    (for ``filename*``) keeps the diacritics but drops path separators and control characters.
    """
    parts = [unicodedata.normalize("NFC", p).strip() for p in (form_code, unit_name, plan_code)]
    utf8_parts = [re.sub(r"-{2,}", "-", re.sub(r'[\s/\\:*?"<>|\x00-\x1f\x7f]+', "-", p)).strip("-")
                  for p in parts]
    ascii_parts = [re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9.-]+", "-", _ascii_fold(p))).strip("-.")
                   for p in parts]
    utf8_name = "_".join(p for p in utf8_parts if p) + ".xlsx"
    ascii_name = "_".join(p for p in ascii_parts if p) + ".xlsx"
    return ascii_name, utf8_name


# ---------------------------------------------------------------------------------------------
# Excel formulas of computed cells


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _excel_expr(expr: Expr, form: Form, here: str, top: bool = True) -> str:
    if isinstance(expr, Number):
        return _number_text(expr.value)
    if isinstance(expr, Cell):
        sheet_code, row_code, column_key = expr.key
        sheet = form.sheet(sheet_code)
        address = sheet.cell(row_code, column_key)
        return address if sheet_code == here else f"{quote_sheetname(sheet.name)}!{address}"
    if isinstance(expr, Neg):
        return f"-({_excel_expr(expr.operand, form, here, True)})"
    if isinstance(expr, Call):
        args = ",".join(_excel_expr(arg, form, here, True) for arg in expr.args)
        return f"{expr.func.upper()}({args})"
    if isinstance(expr, BinOp):
        text = f"{_excel_expr(expr.left, form, here, False)}{expr.op}{_excel_expr(expr.right, form, here, False)}"
        return text if top else f"({text})"
    raise TypeError(f"cannot write {type(expr).__name__} as an Excel formula")


def excel_formula(form: Form, key: CellKey) -> str:
    """Return the Excel formula of the computed cell ``key`` (e.g. ``=IF(COUNT(E7,E8)<2,"",...)``).

    The cell stays empty until every cell it reads is filled, and a division by zero shows as
    empty rather than ``#DIV/0!``. Raises KeyError when ``key`` is not a computed cell of ``form``.
    """
    for computed in form.computed:
        if computed.key == key:
            break
    else:
        raise KeyError(key)
    body = _excel_expr(computed.expr, form, key[0])
    inputs = list(dict.fromkeys(cell_keys(computed.expr)))
    refs = ",".join(_excel_expr(Cell(k), form, key[0]) for k in inputs)
    if not inputs:
        return f'=IFERROR({body},"")'
    return f'=IF(COUNT({refs})<{len(inputs)},"",IFERROR({body},""))'


# ---------------------------------------------------------------------------------------------
# Sheets of a blank form


def _write_narrative(ws: Worksheet, styles: Styles, form: Form, ctx: WorkbookContext) -> None:
    narrative = form.narrative
    widths = {NARRATIVE_CODE_COL: 9, NARRATIVE_HEADING_COL: 48, NARRATIVE_ANSWER_COL: 90}
    for index, width in widths.items():
        ws.column_dimensions[column_letter(index)].width = width
    last = narrative.max_col
    merge(ws, styles, 1, 1, last, narrative.title, "tk_title")
    ws.row_dimensions[1].height = text_height(narrative.title, sum(widths.values()) * 0.8, 18.75)
    hint = (f"Đơn vị: {ctx.unit_name}. Ghi nội dung báo cáo vào các ô nền vàng ở cột "
            "«Báo cáo của đơn vị», mỗi mục một ô; xuống dòng trong ô bằng Alt+Enter.")
    merge(ws, styles, 2, 1, last, hint, "tk_note")
    ws.row_dimensions[2].height = text_height(hint, sum(widths.values()) * 0.9)
    put(ws, styles, NARRATIVE_HEADER_ROW, NARRATIVE_CODE_COL, "Mục", "tk_header")
    put(ws, styles, NARRATIVE_HEADER_ROW, NARRATIVE_HEADING_COL, "Nội dung yêu cầu", "tk_header")
    put(ws, styles, NARRATIVE_HEADER_ROW, NARRATIVE_ANSWER_COL, "Báo cáo của đơn vị", "tk_header")
    for section in narrative.sections:
        row = section.excel_row
        if not section.answer:
            put(ws, styles, row, NARRATIVE_CODE_COL, section.code, "tk_group_center")
            put(ws, styles, row, NARRATIVE_HEADING_COL, section.heading, "tk_group")
            put(ws, styles, row, NARRATIVE_ANSWER_COL, None, "tk_na")
            ws.row_dimensions[row].height = text_height(section.heading, widths[NARRATIVE_HEADING_COL])
            continue
        heading = section.heading
        if section.hint:
            heading += f"\n(Gợi ý: {section.hint})"
        if not section.required:
            heading += "\n(Không bắt buộc)"
        put(ws, styles, row, NARRATIVE_CODE_COL, section.code, "tk_cell_center")
        put(ws, styles, row, NARRATIVE_HEADING_COL, heading, "tk_cell")
        put(ws, styles, row, NARRATIVE_ANSWER_COL, None, "tk_answer")
        # Sized to the heading, but not marked custom: Excel grows the row to the answer as it is typed,
        # so a long section prints whole (a fixed height printed 6 lines of 1,600 characters).
        auto_height(ws, row, max(60.0, text_height(heading, widths[NARRATIVE_HEADING_COL])))
    ws.freeze_panes = f"A{NARRATIVE_FIRST_ROW}"
    ws.print_title_rows = f"{NARRATIVE_HEADER_ROW}:{NARRATIVE_HEADER_ROW}"
    page_landscape(ws)
    form_footer(ws, form)
    protect_sheet(ws)


def _ranges(cells: Iterable[tuple[int, int]]) -> list[str]:
    """Return A1 ranges covering exactly ``cells`` (row, col): row runs merged down into rectangles.

    One data validation with a few rectangles keeps the sheet XML small and Excel fast.
    """
    by_row: dict[int, list[int]] = {}
    for row, col in cells:
        by_row.setdefault(row, []).append(col)
    runs_by_row: dict[int, tuple[tuple[int, int], ...]] = {}
    for row, cols in by_row.items():
        cols.sort()
        runs: list[tuple[int, int]] = []
        for col in cols:
            if runs and runs[-1][1] == col - 1:
                runs[-1] = (runs[-1][0], col)
            else:
                runs.append((col, col))
        runs_by_row[row] = tuple(runs)
    rectangles: list[list[int]] = []  # [first_row, last_row, first_col, last_col]
    open_runs: dict[tuple[int, int], list[int]] = {}
    for row in sorted(runs_by_row):
        still_open: dict[tuple[int, int], list[int]] = {}
        for run in runs_by_row[row]:
            rect = open_runs.get(run)
            if rect is not None and rect[1] == row - 1:
                rect[1] = row
            else:
                rect = [row, row, run[0], run[1]]
                rectangles.append(rect)
            still_open[run] = rect
        open_runs = still_open
    result = []
    for first_row, last_row, first_col, last_col in rectangles:
        start = f"{column_letter(first_col)}{first_row}"
        end = f"{column_letter(last_col)}{last_row}"
        result.append(start if start == end else f"{start}:{end}")
    return result


def _validation(number: str) -> DataValidation:
    if number == "decimal":
        dv = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True)
        dv.promptTitle = "Nhập số không âm"
        dv.prompt = "Nhập một số không âm (được có phần thập phân). Chỉ tiêu không phát sinh ghi 0."
        dv.errorTitle = "Số liệu không hợp lệ"
        dv.error = "Ô này chỉ nhận số không âm (ví dụ 0; 12; 150,5). Vui lòng nhập lại."
    else:
        dv = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True)
        dv.promptTitle = "Nhập số nguyên không âm"
        dv.prompt = "Nhập một số nguyên không âm (0, 1, 2...). Chỉ tiêu không phát sinh ghi 0, không để trống."
        dv.errorTitle = "Số liệu không hợp lệ"
        dv.error = "Ô này chỉ nhận số nguyên không âm (0, 1, 2...). Vui lòng nhập lại."
    assert len(dv.promptTitle) <= PROMPT_TITLE_MAX and len(dv.prompt) <= PROMPT_MAX
    dv.showInputMessage = True
    dv.showErrorMessage = True
    dv.errorStyle = "stop"
    return dv


def _write_data_sheet(ws: Worksheet, styles: Styles, sheet: Sheet, form: Form, ctx: WorkbookContext,
                      period_labels: Mapping[str, str], formulas: Mapping[CellKey, str]) -> None:
    note_col = sheet.note_col
    last_data_row = sheet.last_data_row
    label_width = max(36.0, min(60.0, max((len(r.label) for r in sheet.rows), default=30) * 0.55))
    ws.column_dimensions[column_letter(STT_COL)].width = 6
    ws.column_dimensions[column_letter(LABEL_COL)].width = label_width
    ws.column_dimensions[column_letter(UNIT_COL)].width = 11
    for column in sheet.columns:
        ws.column_dimensions[column.letter].width = 12
    ws.column_dimensions[column_letter(note_col)].width = 24

    merge(ws, styles, TITLE_ROW, 1, note_col, form.title, "tk_subtitle")
    ws.row_dimensions[TITLE_ROW].height = text_height(form.title, label_width + 12 * len(sheet.columns) + 40)
    merge(ws, styles, SHEET_TITLE_ROW, 1, note_col, sheet.title, "tk_title")
    periods = "; ".join(period_labels[p.key] for p in form.periods)
    unit_note = "triệu đồng" if sheet.column_set.number == "decimal" else "ghi ở cột ĐVT"
    info = (f"Đơn vị báo cáo: {ctx.unit_name}. Kỳ số liệu: {periods}. "
            f"Đơn vị tính: {unit_note}.")
    merge(ws, styles, INFO_ROW, 1, note_col, info, "tk_note")

    merge(ws, styles, PERIOD_HEADER_ROW, STT_COL, STT_COL, "STT", "tk_header", BREAKDOWN_HEADER_ROW)
    merge(ws, styles, PERIOD_HEADER_ROW, LABEL_COL, LABEL_COL, "Chỉ tiêu", "tk_header", BREAKDOWN_HEADER_ROW)
    merge(ws, styles, PERIOD_HEADER_ROW, UNIT_COL, UNIT_COL, "ĐVT", "tk_header", BREAKDOWN_HEADER_ROW)
    merge(ws, styles, PERIOD_HEADER_ROW, note_col, note_col, "Ghi chú", "tk_header", BREAKDOWN_HEADER_ROW)
    for period in form.periods:
        cols = [c.index for c in sheet.columns if c.period == period.key]
        merge(ws, styles, PERIOD_HEADER_ROW, min(cols), max(cols), period_labels[period.key], "tk_header")
    for column in sheet.columns:
        put(ws, styles, BREAKDOWN_HEADER_ROW, column.index, column.breakdown_label, "tk_header")
    ws.row_dimensions[BREAKDOWN_HEADER_ROW].height = 31.5

    inputs: dict[str, list[tuple[int, int]]] = {"integer": [], "decimal": []}
    for row in sheet.rows:
        r = row.excel_row
        if row.is_group:
            put(ws, styles, r, STT_COL, row.stt, "tk_group_center")
            put(ws, styles, r, LABEL_COL, row.label, "tk_group")
            for col in range(UNIT_COL, note_col + 1):
                put(ws, styles, r, col, None, "tk_group")
        else:
            put(ws, styles, r, STT_COL, row.stt, "tk_cell_center")
            put(ws, styles, r, LABEL_COL, row.label, "tk_cell")
            put(ws, styles, r, UNIT_COL, row.unit, "tk_cell_center")
            for column in sheet.columns:
                if column.breakdown in row.input_breakdowns:
                    style = "tk_input_dec" if row.number == "decimal" else "tk_input_int"
                    put(ws, styles, r, column.index, None, style)
                    inputs[row.number].append((r, column.index))
                elif column.breakdown in row.computed_breakdowns:
                    put(ws, styles, r, column.index, formulas[(sheet.code, row.code, column.key)], "tk_computed")
                else:
                    put(ws, styles, r, column.index, None, "tk_na")
            put(ws, styles, r, note_col, row.note, "tk_remark")
        needed = max(text_height(row.label, label_width), text_height(row.note, 24) if row.note else 0.0)
        if needed > 15.75:
            ws.row_dimensions[r].height = needed

    for number, cells in inputs.items():
        if cells:
            dv = _validation(number)
            for cell_range in _ranges(cells):
                dv.add(cell_range)
            ws.add_data_validation(dv)

    footer = last_data_row + 2
    half = max(LABEL_COL + 1, note_col // 2 + 1)
    # Place, date and signer come from the cover (one place to type them): formulas, so they follow it.
    fields = {f.key: f for f in form.cover.fields}
    place = place_name(ctx.unit_name)
    date_text = (cover_date_formula(fields["report_date"].cell, place) if "report_date" in fields
                 else f"{place}, ngày … tháng … năm …")
    merge(ws, styles, footer, half, note_col, date_text, "tk_formula_italic_center")
    merge(ws, styles, footer + 1, STT_COL, LABEL_COL, "NGƯỜI LẬP BIỂU", "tk_bold_center")
    signer = (cover_ref(fields["signer_title"].cell, "TM. ỦY BAN NHÂN DÂN") if "signer_title" in fields
              else "TM. ỦY BAN NHÂN DÂN")
    merge(ws, styles, footer + 1, half, note_col, signer, "tk_formula_bold_center")
    merge(ws, styles, footer + 2, STT_COL, LABEL_COL, "(Ký, ghi rõ họ tên)", "tk_italic_center")
    merge(ws, styles, footer + 2, half, note_col, "(Ký tên, đóng dấu)", "tk_italic_center")
    if "preparer" in fields:
        merge(ws, styles, footer + 6, STT_COL, LABEL_COL, cover_ref(fields["preparer"].cell, ""),
               "tk_formula_bold_center")
    if "signer_name" in fields:
        merge(ws, styles, footer + 6, half, note_col, cover_ref(fields["signer_name"].cell, ""),
               "tk_formula_bold_center")

    ws.freeze_panes = f"{column_letter(FIRST_VALUE_COL)}{BREAKDOWN_HEADER_ROW + 1}"
    ws.print_title_rows = f"{PERIOD_HEADER_ROW}:{BREAKDOWN_HEADER_ROW}"
    ws.print_area = f"A1:{column_letter(note_col)}{sheet.max_row}"
    page_landscape(ws)
    _keep_signature_with_table(ws, sheet, label_width)
    form_footer(ws, form)
    protect_sheet(ws)


# A4 landscape with page_landscape's margins, in points, and the share of a page a Biểu may overflow
# before fitting it to one page would shrink its text below about 8 pt.
_PAGE_HEIGHT_PT = (8.27 - 1.0 - 0.5) * 72
_PAGE_WIDTH_PT = (11.69 - 0.8) * 72
_FIT_ONE_PAGE_UP_TO = 1.4


def _keep_signature_with_table(ws: Worksheet, sheet: Sheet, label_width: float) -> None:
    """Make the signature block print on the same page as the end of the table.

    A Biểu that (once fitted to the page width) overflows one page by a little is fitted to one page;
    a longer one breaks before its last rows, so they and the signature start a page together.
    """
    widths = [ws.column_dimensions[column_letter(c)].width or 9.0 for c in range(1, sheet.note_col + 1)]
    scale = min(1.0, _PAGE_WIDTH_PT / (sum(widths) * 5.6 + 10))
    height = sum(ws.row_dimensions[r].height or 15.75 for r in range(1, sheet.max_row + 1)) * scale
    pages = height / _PAGE_HEIGHT_PT
    if pages <= _FIT_ONE_PAGE_UP_TO:
        ws.page_setup.fitToHeight = 1
        return
    from openpyxl.worksheet.pagebreak import Break

    ws.row_breaks.append(Break(id=max(sheet.first_data_row, sheet.last_data_row - 6)))


def _write_meta(ws: Worksheet, styles: Styles, form: Form, ctx: WorkbookContext, secret: str) -> None:
    values = identity_values(form.code, form.version, form.layout_fingerprint, ctx.plan_code, ctx.unit_code,
                             ctx.unit_name, ctx.issued_at_text, secret)

    def style(cell: XlCell) -> None:
        cell._style = copy(styles["tk_meta"])

    write_identity_sheet(ws, values, style, protect_sheet)


def build_blank(form: Form, ctx: WorkbookContext, secret: str = "", sheet_password: str = "") -> bytes:
    """Return the .xlsx bytes of the blank form of ``form`` for the unit and plan in ``ctx``.

    Sheets in order: cover (active), guidance, narrative, data sheets, and the very hidden metadata
    sheet (``tracker.identity``) whose checksum is keyed with ``secret``. Raises KeyError when the form's
    computed cells name a cell its sheets lack (a loaded form never does).
    """
    form = form_in_years(form, ctx.text_years)  # next year's plan reads "năm 2024", not the form's "năm 2023"
    wb = Workbook()
    styles = register_styles(wb)
    period_labels = period_labels_for(form, ctx)
    formulas = {c.key: excel_formula(form, c.key) for c in form.computed}

    cover = wb.active
    assert cover is not None
    cover.title = COVER_SHEET_NAME
    write_cover(cover, styles, form, ctx, period_labels)
    write_guide(wb.create_sheet(GUIDE_SHEET_NAME), styles, form, ctx, period_labels)
    _write_narrative(wb.create_sheet(form.narrative.name), styles, form, ctx)
    for sheet in form.sheets:
        _write_data_sheet(wb.create_sheet(sheet.name), styles, sheet, form, ctx, period_labels, formulas)
    _write_meta(wb.create_sheet(META_SHEET_NAME), styles, form, ctx, secret)

    wb.active = 0
    # Locking the structure stops sheets being renamed, moved, deleted or unhidden by accident.
    wb.security = WorkbookProtection(lockStructure=True)
    if sheet_password:
        # Lifting the protection is then a deliberate act (staff see the password on the forms page).
        wb.security.workbookPassword = sheet_password
        for ws in wb.worksheets:
            if ws.protection.sheet:
                ws.protection.password = sheet_password
    wb.properties.title = f"{form.code} - {ctx.unit_name} - {ctx.plan_code}"
    wb.properties.subject = form.title
    wb.properties.creator = ctx.issuer
    wb.properties.lastModifiedBy = ctx.issuer
    wb.properties.identifier = f"{form.code}/{form.version}/{ctx.plan_code}/{ctx.unit_code}"
    return to_bytes(wb, ctx.issued_at)


