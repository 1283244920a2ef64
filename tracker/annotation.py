"""The annotated copy of a return (bản đánh dấu lỗi), rebuilt from the issued blank form, never from the upload.

Staff and officers open this file in Excel. Were it the uploaded file with fills added, every formula,
link, drawing or object the upload carried would travel with it. So it is drawn again: the unit's blank
form regenerated from the definition, the values the tracker stored for the version typed into the
input cells (numbers only), the narrative answers as plain text, then the issues marked by
``annotate`` below. The same works for an ``.xlsx``, ``.ods`` or ``.xls`` upload, and the result is
always ``.xlsx``. ``build_annotated`` runs in the isolated parse worker (``tracker.isolation``), under its
time and memory limits, never in the web process.
"""
from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterable, Sequence

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import Cell as XlCell, MergedCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils.cell import column_index_from_string, quote_sheetname
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from .catalog import NARRATIVE_FIRST_ROW, NARRATIVE_SHEET_NAME, Form
from .catalog_folder import Catalog, CatalogRef, catalog_at
from .workbook import build_blank
from .workbook_base import FONT_NAME, WorkbookContext, fit_text_rows, page_landscape, text_height, to_bytes


ISSUES_SHEET_NAME = "Danh sách lỗi"


_ERROR_FILL = "FFC7CE"


_WARNING_FILL = "FFEB9C"


_SEVERITY_LABELS = {"error": "Lỗi", "warning": "Cảnh báo"}


_CELL_ADDRESS = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")


def _target_cell(ws: Worksheet, address: str) -> XlCell | None:
    """Return the cell to mark at ``address`` (the merge's top-left for a merged cell), or None."""
    match = _CELL_ADDRESS.match(address.strip())
    if match is None:
        return None
    column, row = match.group(1).upper(), int(match.group(2))
    # Beyond the used range there is no cell to mark; touching one would also grow the file's extent
    # past what the upload guard accepts when the officer sends the corrected copy back.
    if not 1 <= row <= ws.max_row or column_index_from_string(column) > ws.max_column:
        return None
    cell = ws[f"{column}{row}"]
    if isinstance(cell, MergedCell):
        for merged in ws.merged_cells.ranges:
            if cell.coordinate in merged:
                return ws.cell(row=merged.min_row, column=merged.min_col)
        return None
    return cell


def _text(cell: XlCell, value: str) -> XlCell:
    """Return ``cell`` holding ``value`` as text, even when it starts with "=" (never a formula)."""
    cell.value = value
    cell.data_type = "s"
    return cell


def _print_annotated(wb: Workbook, issues_sheet: Worksheet) -> None:
    """Make the annotated copy print legibly: the error list on A4 landscape, one page wide, messages
    wrapped in rows sized to them, its header repeated; every comment printed at the end of its sheet;
    the narrative's rows sized to the answers."""
    top = Alignment(vertical="top")
    for row in issues_sheet.iter_rows(min_row=5, max_col=5):
        for cell in row[:4]:
            cell.alignment = top
        text = row[4].value
        if isinstance(text, str):
            issues_sheet.row_dimensions[row[0].row].height = text_height(text, 100, 15.0, 15.0)
    issues_sheet.row_dimensions[2].height = 30
    issues_sheet["A2"].alignment = Alignment(wrap_text=False, vertical="top")
    issues_sheet.print_title_rows = "4:4"
    page_landscape(issues_sheet)
    issues_sheet.oddFooter.right.text = "Trang &P/&N"
    for sheet in wb.worksheets:
        if any(cell.comment is not None for row in sheet.iter_rows() for cell in row):
            sheet.page_setup.cellComments = "atEnd"
    if NARRATIVE_SHEET_NAME in wb.sheetnames:
        fit_text_rows(wb[NARRATIVE_SHEET_NAME], NARRATIVE_FIRST_ROW)


def annotate(original: bytes, issues: Sequence[tuple[str, str, str, str]]) -> bytes:
    """Return a copy of the unit's .xlsx return with its issues marked, as .xlsx bytes.

    ``issues`` are (sheet name, cell address, severity "error"/"warning", message). Each flagged
    cell gets a red (error) or yellow (warning) fill and a comment holding all its messages; a sheet
    «Danh sách lỗi» lists every issue with a link to its cell and opens first. Issues whose sheet or
    cell does not exist (or is empty) are listed without a link. ``original`` must be .xlsx bytes
    (convert .xls/.ods first); raises the openpyxl/zipfile error when it cannot be opened.
    """
    with warnings.catch_warnings():
        # A file saved by Excel often carries features openpyxl drops with a UserWarning ("extension
        # is not supported"); the annotated copy is for reading, so losing them is expected.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")
        wb = load_workbook(io.BytesIO(original))
    if ISSUES_SHEET_NAME in wb.sheetnames:
        # A return that was itself an annotated copy: the old list would contradict the new one.
        del wb[ISSUES_SHEET_NAME]
    error_fill = PatternFill(fill_type="solid", start_color=_ERROR_FILL, end_color=_ERROR_FILL)
    warning_fill = PatternFill(fill_type="solid", start_color=_WARNING_FILL, end_color=_WARNING_FILL)

    grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
    cells: dict[tuple[str, str], XlCell] = {}
    targets: list[str | None] = []
    for sheet_name, address, severity, message in issues:
        target = None
        if sheet_name in wb.sheetnames and address:
            target = _target_cell(wb[sheet_name], address)
        targets.append(None if target is None else target.coordinate)
        if target is None:
            continue
        key = (sheet_name, target.coordinate)
        cells[key] = target
        grouped.setdefault(key, []).append((severity, message))

    for key, entries in grouped.items():
        cell = cells[key]
        worst = "error" if any(s == "error" for s, _ in entries) else "warning"
        cell.fill = error_fill if worst == "error" else warning_fill
        text = "\n".join(f"{_SEVERITY_LABELS.get(s, s)}: {m}" for s, m in entries)
        comment = Comment(text, "Hệ thống kiểm tra báo cáo")
        comment.width = 320
        comment.height = int(min(400, 40 + 18 * sum(math.ceil(len(line) / 45) for line in text.split("\n"))))
        cell.comment = comment

    ws = wb.create_sheet(ISSUES_SHEET_NAME, 0)
    n_errors = sum(1 for issue in issues if issue[2] == "error")
    n_warnings = sum(1 for issue in issues if issue[2] == "warning")
    bold = Font(name=FONT_NAME, bold=True, size=12)
    plain = Font(name=FONT_NAME, size=11)
    link_font = Font(name=FONT_NAME, size=11, color="0563C1", underline="single")
    wrap = Alignment(vertical="top", wrap_text=True)
    ws["A1"] = f"DANH SÁCH LỖI VÀ CẢNH BÁO: {n_errors} lỗi, {n_warnings} cảnh báo"
    ws["A1"].font = Font(name=FONT_NAME, bold=True, size=14)
    ws["A2"] = ("Lỗi (nền đỏ) phải sửa thì báo cáo mới được ghi nhận đầy đủ; cảnh báo (nền vàng) cần kiểm tra "
                "lại hoặc giải thích. Bấm vào địa chỉ ô để đến ô đó.")
    ws["A2"].font = Font(name=FONT_NAME, italic=True, size=11)
    headers = ("STT", "Mức độ", "Trang tính", "Ô", "Nội dung")
    for col, header in enumerate(headers, start=1):
        cell = ws.cell(row=4, column=col, value=header)
        cell.font = bold
    for index, ((sheet_name, address, severity, message), coordinate) in enumerate(zip(issues, targets), start=1):
        row = 4 + index
        ws.cell(row=row, column=1, value=index).font = plain
        severity_cell = ws.cell(row=row, column=2, value=_SEVERITY_LABELS.get(severity, severity))
        severity_cell.font = plain
        severity_cell.fill = error_fill if severity == "error" else warning_fill
        _text(ws.cell(row=row, column=3), sheet_name).font = plain
        address_cell = _text(ws.cell(row=row, column=4), address or "")
        if coordinate is not None:
            location = f"{quote_sheetname(sheet_name)}!{coordinate}"
            address_cell.hyperlink = Hyperlink(ref=address_cell.coordinate, location=location,
                                               display=address)
            address_cell.font = link_font
        else:
            address_cell.font = plain
        message_cell = _text(ws.cell(row=row, column=5), message)
        message_cell.font = plain
        message_cell.alignment = wrap
    for letter, width in zip("ABCDE", (6, 11, 16, 8, 100)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A5"
    _print_annotated(wb, ws)
    wb.active = 0
    for sheet in wb.worksheets:
        # Several sheets marked "selected" makes Excel open them grouped, and typing then edits them all.
        sheet.sheet_view.tabSelected = sheet is ws
    return to_bytes(wb)


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
    return to_bytes(wb)


def build_annotated(catalog: CatalogRef | Catalog, form_code: str, ctx: WorkbookContext, secret: str,
                    sheet_password: str, values: Sequence[StoredValue], issues: Sequence[tuple[str, str, str, str]],
                    narrative_code: str = "NARRATIVE") -> bytes:
    """Return the annotated copy (.xlsx bytes) of a stored version: blank regenerated for ``ctx``, stored
    ``values`` filled in, ``issues`` (sheet, cell, severity, message) marked. Runs in the parse worker, with
    the web process's catalog (``catalog_folder.run_with_catalog``).
    """
    form = catalog_at(catalog)[form_code]
    blank = build_blank(form, ctx, secret, sheet_password)
    return annotate(fill_from_values(form, blank, values, narrative_code), issues)
