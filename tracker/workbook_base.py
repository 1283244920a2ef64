"""What the sheets of a blank form, and of the annotated copy drawn from one, are made with.

The context a blank form is issued for (``WorkbookContext``), the named styles (the font of
administrative documents, the input and computed fills), cell and merge writers that copy style arrays
instead of assigning styles (the bulk of a naive build), row heights estimated from text, the A4 page,
the footer naming the form, and the bytes written without reading the clock. Pure: no Flask, no
database, no clock.
"""
from __future__ import annotations

import io
import math
from collections.abc import Mapping
from copy import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeAlias
from zipfile import ZIP_DEFLATED, ZipFile

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Protection, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.dimensions import RowDimension
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from .catalog import Form


# Excel's own limits on data-validation texts (longer ones make Excel call the file corrupt).
PROMPT_TITLE_MAX = 32
PROMPT_MAX = 255

FONT_NAME = "Times New Roman"  # the font of Vietnamese administrative documents (Nghị định 30/2020)
INPUT_FILL = "FFF2CC"
COMPUTED_FILL = "E2EFDA"
NA_FILL = "D9D9D9"
HEADER_FILL = "DDEBF7"


_BORDERED = frozenset({"tk_header", "tk_cell", "tk_cell_center", "tk_group", "tk_group_center", "tk_na",
                       "tk_input_int", "tk_input_dec", "tk_computed", "tk_answer"})


Styles: TypeAlias = Mapping[str, StyleArray]


def _side() -> Side:
    return Side(style="thin", color="808080")


def register_styles(wb: Workbook) -> dict[str, StyleArray]:
    """Add the workbook's named styles; return each one's index array, which cells copy.

    Copying the array skips openpyxl's per-assignment style lookups, the bulk of a naive build.
    """
    border = Border(left=_side(), right=_side(), top=_side(), bottom=_side())
    locked = Protection(locked=True)
    unlocked = Protection(locked=False)
    wrap_left = Alignment(horizontal="left", vertical="center", wrap_text=True)
    wrap_center = Alignment(horizontal="center", vertical="center", wrap_text=True)

    def add(name: str, *, bold: bool = False, italic: bool = False, size: float = 12,
            fill: str | None = None, border_on: bool = False, align: Alignment = wrap_left,
            protection: Protection = locked, number_format: str = "General",
            underline: str | None = None) -> None:
        style = NamedStyle(name=name)
        style.font = Font(name=FONT_NAME, size=size, bold=bold, italic=italic, underline=underline)
        if fill:
            style.fill = PatternFill(fill_type="solid", start_color=fill, end_color=fill)
        if border_on:
            style.border = border
        style.alignment = align
        style.protection = protection
        style.number_format = number_format
        wb.add_named_style(style)
        arrays[name] = style.as_tuple()

    arrays: dict[str, StyleArray] = {}

    right = Alignment(horizontal="right", vertical="center")
    top_wrap = Alignment(horizontal="left", vertical="top", wrap_text=True)
    add("tk_title", bold=True, size=14, align=wrap_center)
    add("tk_subtitle", bold=True, size=12, align=wrap_center)
    add("tk_note", italic=True, size=11, align=wrap_center)
    add("tk_text", size=12)
    add("tk_text_center", size=12, align=wrap_center)
    add("tk_bold", bold=True, size=12)
    add("tk_bold_center", bold=True, size=12, align=wrap_center)
    add("tk_italic_center", italic=True, size=12, align=wrap_center)
    add("tk_underline_center", bold=True, size=12, align=wrap_center, underline="single")
    add("tk_header", bold=True, size=11, fill=HEADER_FILL, border_on=True, align=wrap_center)
    add("tk_cell", size=11, border_on=True)
    add("tk_cell_center", size=11, border_on=True, align=wrap_center)
    add("tk_group", bold=True, size=11, border_on=True)
    add("tk_group_center", bold=True, size=11, border_on=True, align=wrap_center)
    add("tk_na", size=11, fill=NA_FILL, border_on=True)
    # [$-42A]: Vietnamese separators (1.234,5) in LibreOffice whatever its locale; Excel follows Windows.
    add("tk_input_int", size=11, fill=INPUT_FILL, border_on=True, align=right, protection=unlocked,
        number_format="[$-42A]#,##0")
    add("tk_input_dec", size=11, fill=INPUT_FILL, border_on=True, align=right, protection=unlocked,
        number_format="[$-42A]#,##0.00")
    add("tk_computed", size=11, fill=COMPUTED_FILL, border_on=True, align=right, number_format="[$-42A]0.0")
    add("tk_answer", size=12, fill=INPUT_FILL, border_on=True, align=top_wrap, protection=unlocked,
        number_format="@")
    # Cover inputs: shaded but unbordered, and the cover prints in black and white, so the signed
    # document shows the text the unit typed, not yellow boxes.
    add("tk_cover_input", size=12, fill=INPUT_FILL, protection=unlocked, number_format="@")
    add("tk_cover_date", size=12, fill=INPUT_FILL, protection=unlocked, number_format="dd/mm/yyyy",
        align=Alignment(horizontal="left", vertical="center"))
    add("tk_cover_signer", bold=True, size=12, fill=INPUT_FILL, protection=unlocked, number_format="@",
        align=wrap_center)
    add("tk_cover_label_right", size=12, align=Alignment(horizontal="right", vertical="center"))
    add("tk_recipients_head", bold=True, italic=True, size=11)
    add("tk_recipients", size=10)
    add("tk_formula_center", size=12, align=wrap_center)
    add("tk_formula_bold_center", bold=True, size=12, align=wrap_center)
    add("tk_formula_italic_center", italic=True, size=12, align=wrap_center)
    add("tk_meta", size=11, number_format="@")
    # Ghi chú stays open: warnings ask the officer to explain an unusual figure there.
    add("tk_remark", size=11, border_on=True, protection=unlocked, number_format="@")
    return arrays


def protect_sheet(ws: Worksheet) -> None:
    # The password (if any) is set by build_blank for every protected sheet at once. It only keeps honest
    # officers on the path: the layout check is what protects the numbers. Widening columns and rows
    # stays allowed so officers can read long labels.
    ws.protection.sheet = True
    ws.protection.formatColumns = False
    ws.protection.formatRows = False


def put(ws: Worksheet, styles: Styles, row: int, col: int, value: object, style: str) -> None:
    cell = ws.cell(row=row, column=col)
    if value is not None and value != "":
        cell.value = value
    cell._style = copy(styles[style])


def merge(ws: Worksheet, styles: Styles, row: int, first_col: int, last_col: int, value: object, style: str,
           last_row: int | None = None) -> None:
    last_row = row if last_row is None else last_row
    array = styles[style]
    # Only bordered styles need every cell of the range styled (Excel draws each cell's own edges);
    # skipping the rest keeps the file, and the build, smaller.
    last_styled = (last_row, last_col) if style in _BORDERED else (row, first_col)
    for r in range(row, last_styled[0] + 1):
        for c in range(first_col, last_styled[1] + 1):
            ws.cell(row=r, column=c)._style = copy(array)
    if value is not None and value != "":
        ws.cell(row=row, column=first_col).value = value
    if last_col > first_col or last_row > row:
        # Not ws.merge_cells: its border "repair" dominates the build time, and every cell of the
        # range already carries the same style (so Excel draws the same borders).
        ws.merged_cells.add(CellRange(min_col=first_col, min_row=row, max_col=last_col, max_row=last_row))


def text_height(text: str, width_chars: float, line_points: float = 15.75, minimum: float = 15.75) -> float:
    """Return a row height that shows ``text`` wrapped in a column ``width_chars`` wide.

    Excel does not grow rows for wrapped text in merged cells, and openpyxl cannot measure text,
    so this estimates: Vietnamese diacritics make glyphs about 10% wider than the width unit.
    """
    lines = 0
    for paragraph in str(text).split("\n"):
        lines += max(1, math.ceil(len(paragraph) * 1.1 / max(width_chars, 1.0)))
    return max(minimum, lines * line_points)


class _AutoFitRow(RowDimension):
    """A row height Excel treats as its own autofit result (no customHeight), so it re-fits on edit."""

    @property  # type: ignore[override]
    def customHeight(self) -> bool:
        return False


_MAX_ROW_HEIGHT = 409.0  # Excel's limit, in points


def auto_height(ws: Worksheet, row: int, height: float) -> None:
    ws.row_dimensions[row] = _AutoFitRow(ws, index=row, ht=min(_MAX_ROW_HEIGHT, height))


def fit_text_rows(ws: Worksheet, first_row: int = 1, line_points: float = 15.75) -> None:
    """Size each row of ``ws`` from ``first_row`` on to the wrapped text it holds (estimated from its
    length and the column widths); rows only grow. LibreOffice prints rows at their stored height, so a
    return filled by a script or another program would otherwise print the first lines of an answer only.
    """
    merged = {(r, c) for rng in ws.merged_cells.ranges for r in range(rng.min_row, rng.max_row + 1)
              for c in range(rng.min_col, rng.max_col + 1)}
    for row in ws.iter_rows(min_row=first_row):
        needed = 0.0
        for cell in row:
            if not isinstance(cell.value, str) or (cell.row, cell.column) in merged or len(cell.value) < 20:
                continue
            width = ws.column_dimensions[cell.column_letter].width or 9.0
            needed = max(needed, text_height(cell.value, width, line_points))
        if needed:
            current = ws.row_dimensions[row[0].row].height or 15.0
            if needed > current:
                auto_height(ws, row[0].row, needed)


def page_landscape(ws: Worksheet) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as needed; only the width is fitted
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5


def to_bytes(wb: Workbook, stamp: datetime | None = None) -> bytes:
    """Return the workbook's bytes; ``stamp`` (if given) becomes its created and modified time."""
    if stamp is not None:
        utc = stamp.astimezone(timezone.utc).replace(tzinfo=None) if stamp.tzinfo else stamp
        wb.properties.created = utc
        wb.properties.modified = utc
    buffer = io.BytesIO()
    # ExcelWriter directly: Workbook.save would stamp "modified" from the clock.
    with ZipFile(buffer, "w", ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()
    return buffer.getvalue()


_UNIT_PREFIXES = ("Thành phố ", "Thị xã ", "Huyện ", "Quận ", "Thị trấn ", "Phường ", "Xã ", "Tỉnh ")


@dataclass(frozen=True)
class WorkbookContext:
    """What a blank form says about its plan and unit, as display-ready text.

    ``periods`` are the plan's (key, label) pairs: they override the form's labels for the same key.
    ``issued_at`` (optional, aware) becomes the document's created/modified time; without it the
    file keeps openpyxl's defaults.
    """

    plan_code: str
    plan_title: str
    issuer: str
    unit_code: str
    unit_name: str
    parent_name: str
    deadline_wording: str
    deadline_text: str
    periods: tuple[tuple[str, str], ...]
    period_basis: str
    department_email: str
    recipient: str
    issued_at_text: str
    issued_at: datetime | None = None
    plan_document: str = ""  # "Kế hoạch số …/KH-SLĐTBXH ngày …/4/2024" (wording.plan_document)
    # Whole years the plan's periods lie after the form's (form_levels.years_after): the form's texts follow.
    text_years: int = 0


def period_labels_for(form: Form, ctx: WorkbookContext) -> dict[str, str]:
    labels = {period.key: period.label for period in form.periods}
    labels.update({key: label for key, label in ctx.periods if key in labels})
    return labels


def place_name(unit_name: str) -> str:
    for prefix in _UNIT_PREFIXES:
        if unit_name.startswith(prefix):
            return unit_name[len(prefix):]
    return unit_name


def form_footer(ws: Worksheet, form: Form, page_numbers: bool = True) -> None:
    """Print the form and its version small at the foot (the only place a printed page names them),
    and "Trang x/y" where a sheet runs over several pages."""
    ws.oddFooter.left.text = f"{form.name}, phiên bản mẫu {form.version}"
    ws.oddFooter.left.size = 7
    ws.oddFooter.left.font = FONT_NAME
    if page_numbers:
        ws.oddFooter.right.text = "Trang &P/&N"
        ws.oddFooter.right.size = 9
        ws.oddFooter.right.font = FONT_NAME
