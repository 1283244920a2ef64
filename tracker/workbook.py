"""The Excel workbooks a unit handles: its blank form (biểu mẫu trống) and an annotated copy of its return.

``build_blank(form, ctx)`` draws the workbook a unit downloads from the form definition alone, in the
layout fixed by ``tracker.catalog`` (the parser reads the same addresses):

- ``Bìa`` (cover, opened first): the administrative header of a district report, the unit stamped with
  its name and code, the plan, the periods, the deadline and the signature blocks;
- ``Hướng dẫn``: the Nghị định 09/2019/NĐ-CP elements of the report regime, the deadline, how to fill
  in and how to submit;
- ``Đề cương``: one text cell per answerable narrative section;
- ``Biểu 01`` ...: data sheets, input cells shaded and unlocked, everything else locked, computed cells
  as Excel formulas, whole-number (or decimal) validation on every input;
- ``_tracker``: a very hidden key/value sheet naming form, version, plan and unit, with a checksum
  so an upload identifies itself and a hand-edited identity is detected.

``annotate(original, issues)`` marks the cells of a unit's own ``.xlsx`` return that carry issues.
Everything here is pure: plain values in, bytes out; no Flask, no database, no clock.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeAlias
from zipfile import ZIP_DEFLATED, ZipFile

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import Cell as XlCell
from openpyxl.cell.cell import MergedCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Protection, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils.cell import column_index_from_string, quote_sheetname
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.dimensions import RowDimension
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from .identity import META_MAX_COL, META_MAX_ROW, META_SHEET_NAME, identity_values, write_identity_sheet
from .catalog import (
    BREAKDOWN_HEADER_ROW, COVER_MAX_COL, COVER_MAX_ROW, COVER_SHEET_NAME, FIRST_VALUE_COL, GUIDE_MAX_COL,
    GUIDE_MAX_ROW, GUIDE_SHEET_NAME, INFO_ROW, LABEL_COL, NARRATIVE_ANSWER_COL, NARRATIVE_CODE_COL,
    NARRATIVE_FIRST_ROW, NARRATIVE_HEADER_ROW, NARRATIVE_HEADING_COL, NARRATIVE_SHEET_NAME, PERIOD_HEADER_ROW,
    SHEET_TITLE_ROW, STT_COL, TITLE_ROW, UNIT_COL, Form, Sheet, column_letter,
)
from .expressions import BinOp, Call, Cell, CellKey, Expr, Neg, Number, cell_keys


ISSUES_SHEET_NAME = "Danh sách lỗi"

# Excel's own limits on data-validation texts (longer ones make Excel call the file corrupt).
_PROMPT_TITLE_MAX = 32
_PROMPT_MAX = 255

_FONT_NAME = "Times New Roman"  # the font of Vietnamese administrative documents (Nghị định 30/2020)
_INPUT_FILL = "FFF2CC"
_COMPUTED_FILL = "E2EFDA"
_NA_FILL = "D9D9D9"
_HEADER_FILL = "DDEBF7"
_ERROR_FILL = "FFC7CE"
_WARNING_FILL = "FFEB9C"

_BORDERED = frozenset({"tk_header", "tk_cell", "tk_cell_center", "tk_group", "tk_group_center", "tk_na",
                       "tk_input_int", "tk_input_dec", "tk_computed", "tk_answer"})
_SEVERITY_LABELS = {"error": "Lỗi", "warning": "Cảnh báo"}
_CELL_ADDRESS = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")

_DECREE09_LABELS = (
    ("title", "Tên báo cáo"),
    ("content", "Nội dung yêu cầu báo cáo"),
    ("reporter", "Đối tượng thực hiện báo cáo"),
    ("recipient", "Cơ quan nhận báo cáo"),
    ("method", "Phương thức gửi, nhận báo cáo"),
    ("deadline", "Thời hạn gửi báo cáo"),
    ("frequency", "Tần suất thực hiện báo cáo"),
    ("cutoff", "Thời gian chốt số liệu báo cáo"),
    ("outline", "Đề cương báo cáo"),
    ("data_forms", "Mẫu biểu số liệu báo cáo"),
    ("instructions", "Hướng dẫn quy trình thực hiện báo cáo"),
)

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
# Styles


_Styles: TypeAlias = Mapping[str, StyleArray]


def _side() -> Side:
    return Side(style="thin", color="808080")


def _register_styles(wb: Workbook) -> dict[str, StyleArray]:
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
        style.font = Font(name=_FONT_NAME, size=size, bold=bold, italic=italic, underline=underline)
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
    add("tk_header", bold=True, size=11, fill=_HEADER_FILL, border_on=True, align=wrap_center)
    add("tk_cell", size=11, border_on=True)
    add("tk_cell_center", size=11, border_on=True, align=wrap_center)
    add("tk_group", bold=True, size=11, border_on=True)
    add("tk_group_center", bold=True, size=11, border_on=True, align=wrap_center)
    add("tk_na", size=11, fill=_NA_FILL, border_on=True)
    # [$-42A]: Vietnamese separators (1.234,5) in LibreOffice whatever its locale; Excel follows Windows.
    add("tk_input_int", size=11, fill=_INPUT_FILL, border_on=True, align=right, protection=unlocked,
        number_format="[$-42A]#,##0")
    add("tk_input_dec", size=11, fill=_INPUT_FILL, border_on=True, align=right, protection=unlocked,
        number_format="[$-42A]#,##0.00")
    add("tk_computed", size=11, fill=_COMPUTED_FILL, border_on=True, align=right, number_format="[$-42A]0.0")
    add("tk_answer", size=12, fill=_INPUT_FILL, border_on=True, align=top_wrap, protection=unlocked,
        number_format="@")
    # Cover inputs: shaded but unbordered, and the cover prints in black and white, so the signed
    # document shows the text the unit typed, not yellow boxes.
    add("tk_cover_input", size=12, fill=_INPUT_FILL, protection=unlocked, number_format="@")
    add("tk_cover_date", size=12, fill=_INPUT_FILL, protection=unlocked, number_format="dd/mm/yyyy",
        align=Alignment(horizontal="left", vertical="center"))
    add("tk_cover_signer", bold=True, size=12, fill=_INPUT_FILL, protection=unlocked, number_format="@",
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


def _protect(ws: Worksheet) -> None:
    # The password (if any) is set by build_blank for every protected sheet at once. It only keeps honest
    # officers on the path: the layout check is what protects the numbers. Widening columns and rows
    # stays allowed so officers can read long labels.
    ws.protection.sheet = True
    ws.protection.formatColumns = False
    ws.protection.formatRows = False


def _put(ws: Worksheet, styles: _Styles, row: int, col: int, value: object, style: str) -> None:
    cell = ws.cell(row=row, column=col)
    if value is not None and value != "":
        cell.value = value
    cell._style = copy(styles[style])


def _merge(ws: Worksheet, styles: _Styles, row: int, first_col: int, last_col: int, value: object, style: str,
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


def _height(text: str, width_chars: float, line_points: float = 15.75, minimum: float = 15.75) -> float:
    """Return a row height that shows ``text`` wrapped in a column ``width_chars`` wide.

    Excel does not grow rows for wrapped text in merged cells, and openpyxl cannot measure text,
    so this estimates: Vietnamese diacritics make glyphs about 10% wider than the width unit.
    """
    lines = 0
    for paragraph in str(text).split("\n"):
        lines += max(1, math.ceil(len(paragraph) * 1.1 / max(width_chars, 1.0)))
    return max(minimum, lines * line_points)


def _period_labels(form: Form, ctx: WorkbookContext) -> dict[str, str]:
    labels = {period.key: period.label for period in form.periods}
    labels.update({key: label for key, label in ctx.periods if key in labels})
    return labels


def _place(unit_name: str) -> str:
    for prefix in _UNIT_PREFIXES:
        if unit_name.startswith(prefix):
            return unit_name[len(prefix):]
    return unit_name


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


def _strip_report_word(title: str) -> str:
    # The cover prints "BÁO CÁO" above the title: "Báo cáo kết quả ..." would say it twice.
    if title.casefold().startswith("báo cáo "):
        rest = title[len("báo cáo "):]
        return rest[:1].upper() + rest[1:]
    return title


def _plan_subject(plan_title: str) -> str:
    """Return what the plan is about: "Kế hoạch kiểm tra việc ..." -> "kiểm tra việc ..."."""
    if plan_title.casefold().startswith("kế hoạch "):
        return plan_title[len("kế hoạch "):]
    return plan_title


def cover_date_formula(field_cell: str, place: str) -> str:
    """Return the formula that prints "Lục Ngạn, ngày 8 tháng 5 năm 2024" from the cover's date cell.

    DAY/MONTH/YEAR rather than TEXT: TEXT's format codes change with the reader's language.
    """
    ref = f"{quote_sheetname(COVER_SHEET_NAME)}!${field_cell[0]}${field_cell[1:]}"
    place_text = place.replace('"', "'")
    return (f'=IF(ISNUMBER({ref}),"{place_text}, ngày "&DAY({ref})&" tháng "&MONTH({ref})&" năm "&YEAR({ref}),'
            f'"{place_text}, ngày … tháng … năm …")')


def _cover_ref(field_cell: str, fallback: str) -> str:
    ref = f"{quote_sheetname(COVER_SHEET_NAME)}!${field_cell[0]}${field_cell[1:]}"
    return f'=IF({ref}="","{fallback}",{ref})'


def _write_cover(ws: Worksheet, styles: _Styles, form: Form, ctx: WorkbookContext,
                 period_labels: Mapping[str, str]) -> None:
    """Write the cover as the unit's official report: header, number and date, title, the plan it
    answers, Kính gửi, Nơi nhận and the signature, with the form's cover fields as unlocked inputs."""
    widths = (14, 14, 18, 16, 16, 18)
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[column_letter(index)].width = width
    half = COVER_MAX_COL // 2
    left_width, full_width = sum(widths[:half]), sum(widths)
    place = _place(ctx.unit_name)

    _merge(ws, styles, 1, 1, half, f"UBND {ctx.unit_name.upper()}", "tk_bold_center")
    _merge(ws, styles, 1, half + 1, COVER_MAX_COL, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "tk_bold_center")
    _merge(ws, styles, 2, 1, half, "", "tk_text_center")
    _merge(ws, styles, 2, half + 1, COVER_MAX_COL, "Độc lập - Tự do - Hạnh phúc", "tk_underline_center")
    ws.row_dimensions[1].height = _height(f"UBND {ctx.unit_name.upper()}", left_width)

    _merge(ws, styles, 5, 1, COVER_MAX_COL, "BÁO CÁO", "tk_title")
    title = _strip_report_word(form.decree09.title)
    _merge(ws, styles, 6, 1, COVER_MAX_COL, title, "tk_subtitle")
    ws.row_dimensions[6].height = _height(title, full_width * 0.85)
    if ctx.plan_document:
        attached = f"(Kèm theo {ctx.plan_document} của {ctx.issuer})"
        _merge(ws, styles, 7, 1, COVER_MAX_COL, attached, "tk_note")
        ws.row_dimensions[7].height = _height(attached, full_width * 0.9)
    recipient = f"Kính gửi: {ctx.recipient}."
    _merge(ws, styles, 9, 1, COVER_MAX_COL, recipient, "tk_bold_center")
    ws.row_dimensions[9].height = _height(recipient, full_width)

    periods = " và ".join(period_labels[p.key][:1].lower() + period_labels[p.key][1:] for p in form.periods)
    cited = ctx.plan_document or ctx.plan_title
    body = (f"Thực hiện {cited} của {ctx.issuer} về {_plan_subject(ctx.plan_title)}, Ủy ban nhân dân "
            f"{ctx.unit_name[:1].lower() + ctx.unit_name[1:]} báo cáo kết quả {periods} như sau: nội dung "
            f"báo cáo tại phần «{form.narrative.name}», số liệu tại các biểu kèm theo.")
    _merge(ws, styles, 11, 1, COVER_MAX_COL, body, "tk_text")
    ws.row_dimensions[11].height = _height(body, full_width * 0.95)

    # Nơi nhận (left) and the signature (right), from row 15.
    _merge(ws, styles, 15, 1, half, "Nơi nhận:", "tk_recipients_head")
    for offset, line in enumerate(form.cover.recipients, start=1):
        _merge(ws, styles, 15 + offset, 1, half, f"- {line}", "tk_recipients")
    _merge(ws, styles, 16, half + 1, COVER_MAX_COL, "(Ký tên, đóng dấu)", "tk_italic_center")

    for field in form.cover.fields:
        if field.label_cell:
            row, col = _cell_rc(field.label_cell)
            label = field.label if field.key != "report_date" else f"{place}, {field.label}"
            style = "tk_cover_label_right" if row <= 3 else "tk_cell"
            last = col if row <= 3 else max(col, field.col - 1)
            _merge(ws, styles, row, col, last, label, style)
        # In the header line a field keeps to its half; below it a field runs to the right edge.
        last_col = (half if field.col <= half else COVER_MAX_COL) if field.row <= 3 else COVER_MAX_COL
        style = {"date": "tk_cover_date", "choice": "tk_cover_signer"}.get(field.kind, "tk_cover_input")
        if field.key == "signer_name":
            style = "tk_cover_signer"
        _merge(ws, styles, field.row, field.col, last_col, "", style)
    _cover_validations(ws, form)

    ws.page_setup.orientation = "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1
    ws.print_area = f"A1:{column_letter(COVER_MAX_COL)}{COVER_MAX_ROW}"
    ws.page_setup.blackAndWhite = True
    _footer(ws, form, page_numbers=False)
    _protect(ws)


def _cell_rc(address: str) -> tuple[int, int]:
    match = _CELL_ADDRESS.match(address)
    assert match is not None, address  # the catalog checked every cover address
    return int(match.group(2)), column_index_from_string(match.group(1))


def _cover_validations(ws: Worksheet, form: Form) -> None:
    for field in form.cover.fields:
        if field.kind == "choice":
            dv = DataValidation(type="list", formula1='"' + ",".join(form.cover.signer_titles) + '"',
                                allow_blank=True)
            dv.promptTitle = "Chọn chức vụ người ký"
            dv.prompt = "Chọn trong danh sách: " + "; ".join(form.cover.signer_titles)
            dv.errorTitle = "Chức vụ không có trong danh sách"
            dv.error = "Chọn một chức vụ trong danh sách: " + "; ".join(form.cover.signer_titles)
        elif field.kind == "date":
            dv = DataValidation(type="date", operator="greaterThan", formula1="36526", allow_blank=True)
            dv.promptTitle = "Nhập ngày văn bản"
            dv.prompt = "Nhập ngày dạng ngày/tháng/năm, ví dụ 08/05/2024."
            dv.errorTitle = "Ngày không hợp lệ"
            dv.error = "Nhập ngày dạng ngày/tháng/năm, ví dụ 08/05/2024."
        else:
            continue
        assert len(dv.promptTitle) <= _PROMPT_TITLE_MAX and len(dv.prompt) <= _PROMPT_MAX
        dv.showInputMessage = True
        dv.showErrorMessage = True
        dv.add(field.cell)
        ws.add_data_validation(dv)


def _footer(ws: Worksheet, form: Form, page_numbers: bool = True) -> None:
    """Print the form and its version small at the foot (the only place a printed page names them),
    and "Trang x/y" where a sheet runs over several pages."""
    ws.oddFooter.left.text = f"{form.name}, phiên bản mẫu {form.version}"
    ws.oddFooter.left.size = 7
    ws.oddFooter.left.font = _FONT_NAME
    if page_numbers:
        ws.oddFooter.right.text = "Trang &P/&N"
        ws.oddFooter.right.size = 9
        ws.oddFooter.right.font = _FONT_NAME


def _write_guide(ws: Worksheet, styles: _Styles, form: Form, ctx: WorkbookContext,
                 period_labels: Mapping[str, str]) -> None:
    widths = (6, 30, 50, 40)
    for index, width in enumerate(widths[:GUIDE_MAX_COL], start=1):
        ws.column_dimensions[column_letter(index)].width = width
    text_width = sum(widths[1:])
    detail_width = sum(widths[2:])
    last = column_letter(GUIDE_MAX_COL)

    _merge(ws, styles, 1, 1, GUIDE_MAX_COL, "HƯỚNG DẪN LẬP VÀ GỬI BÁO CÁO", "tk_title")
    _merge(ws, styles, 2, 1, GUIDE_MAX_COL, form.title, "tk_subtitle")
    ws.row_dimensions[2].height = _height(form.title, sum(widths) * 0.9)
    unit_line = f"Đơn vị: {ctx.unit_name}, {ctx.parent_name}. Kế hoạch: {ctx.plan_title}."
    _merge(ws, styles, 3, 1, GUIDE_MAX_COL, unit_line, "tk_note")
    ws.row_dimensions[3].height = _height(unit_line, sum(widths) * 0.9)

    row = 5
    _merge(ws, styles, row, 1, GUIDE_MAX_COL, "I. CÁC YẾU TỐ CỦA CHẾ ĐỘ BÁO CÁO (Nghị định số 09/2019/NĐ-CP)",
           "tk_bold")
    row += 1
    _put(ws, styles, row, 1, "STT", "tk_header")
    _put(ws, styles, row, 2, "Yếu tố", "tk_header")
    _merge(ws, styles, row, 3, GUIDE_MAX_COL, "Nội dung", "tk_header")
    row += 1
    for number, (key, label) in enumerate(_DECREE09_LABELS, start=1):
        value = getattr(form.decree09, key)
        if key == "deadline":
            value = f"{ctx.deadline_wording}, giờ Việt Nam."  # the plan's deadline, in the one wording
        _put(ws, styles, row, 1, number, "tk_cell_center")
        _put(ws, styles, row, 2, label, "tk_group")
        _merge(ws, styles, row, 3, GUIDE_MAX_COL, value, "tk_cell")
        ws.row_dimensions[row].height = _height(value, detail_width)
        row += 1

    periods = "; ".join(period_labels[p.key] for p in form.periods)
    sections: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("II. THỜI HẠN VÀ KỲ SỐ LIỆU", (
            f"Thời hạn gửi báo cáo: {ctx.deadline_wording}, giờ Việt Nam. "
            "Báo cáo gửi sau thời điểm này được ghi nhận là nộp muộn.",
            f"Kỳ số liệu: {periods}. {ctx.period_basis}.",
            "Chỉ tiêu thời điểm ghi số tại ngày cuối kỳ; chỉ tiêu phát sinh ghi số phát sinh trong kỳ "
            "(số quý không cộng dồn với số năm).",
        )),
        ("III. CÁCH ĐIỀN BIỂU", (
            "Chỉ nhập vào các ô có nền màu vàng nhạt; các ô khác đã được khóa.",
            "Số người, số vụ, số cuộc... là số nguyên không âm (0, 1, 2...); kinh phí tính bằng triệu đồng "
            "và được có phần thập phân.",
            "Ô để trống không phải là số 0: chỉ tiêu không phát sinh phải ghi 0.",
            "Các ô tỷ lệ (%) và tỷ số có nền màu xanh nhạt tự tính bằng công thức, không cần nhập.",
            "Không đổi tên, không di chuyển, không xóa trang tính; không thêm, xóa dòng hoặc cột; "
            "không sao chép dữ liệu từ tệp khác bằng cách dán đè định dạng.",
            "Trang «Đề cương» ghi nội dung báo cáo bằng lời: mỗi mục một ô, xuống dòng trong ô bằng Alt+Enter.",
            "Trang «Bìa» là trang đầu của văn bản báo cáo: ghi số và ngày văn bản, chọn chức vụ và ghi họ "
            "tên người ký, họ tên và điện thoại của người lập biểu; ngày và người ký được in lại dưới mỗi biểu.",
            "Được nới rộng cột, dòng để dễ đọc; không cần gỡ bảo vệ trang tính.",
        )),
        ("IV. CÁCH GỬI BÁO CÁO", (
            "Tải tệp Excel này (đã điền, giữ nguyên tên các trang tính) lên hệ thống theo dõi báo cáo bằng "
            "tài khoản của đơn vị; hệ thống kiểm tra ngay và trả lại danh sách lỗi, cảnh báo nếu có.",
            f"Đồng thời gửi bản mềm qua thư điện tử {ctx.department_email} và gửi văn bản có chữ ký, "
            f"đóng dấu về {ctx.recipient}.",
            "Mỗi đơn vị chỉ dùng biểu mẫu phát hành cho đơn vị mình; không dùng tệp của đơn vị khác.",
            "Có thể tải lên lại nhiều lần; hệ thống lưu mọi lần gửi và dùng lần gửi sau cùng.",
        )),
    )
    for heading, items in sections:
        row += 1
        _merge(ws, styles, row, 1, GUIDE_MAX_COL, heading, "tk_bold")
        row += 1
        for number, item in enumerate(items, start=1):
            _put(ws, styles, row, 1, f"{number}.", "tk_text_center")
            _merge(ws, styles, row, 2, GUIDE_MAX_COL, item, "tk_text")
            ws.row_dimensions[row].height = _height(item, text_width)
            row += 1
    if row - 1 > GUIDE_MAX_ROW:  # pragma: no cover - a guard for whoever lengthens the text above
        raise AssertionError(f"guidance sheet grew to row {row - 1}, beyond GUIDE_MAX_ROW")

    ws.page_setup.orientation = "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.print_area = f"A1:{last}{row - 1}"
    _footer(ws, form)
    _protect(ws)


def _write_narrative(ws: Worksheet, styles: _Styles, form: Form, ctx: WorkbookContext) -> None:
    narrative = form.narrative
    widths = {NARRATIVE_CODE_COL: 9, NARRATIVE_HEADING_COL: 48, NARRATIVE_ANSWER_COL: 90}
    for index, width in widths.items():
        ws.column_dimensions[column_letter(index)].width = width
    last = narrative.max_col
    _merge(ws, styles, 1, 1, last, narrative.title, "tk_title")
    ws.row_dimensions[1].height = _height(narrative.title, sum(widths.values()) * 0.8, 18.75)
    hint = (f"Đơn vị: {ctx.unit_name}. Ghi nội dung báo cáo vào các ô nền vàng ở cột "
            "«Báo cáo của đơn vị», mỗi mục một ô; xuống dòng trong ô bằng Alt+Enter.")
    _merge(ws, styles, 2, 1, last, hint, "tk_note")
    ws.row_dimensions[2].height = _height(hint, sum(widths.values()) * 0.9)
    _put(ws, styles, NARRATIVE_HEADER_ROW, NARRATIVE_CODE_COL, "Mục", "tk_header")
    _put(ws, styles, NARRATIVE_HEADER_ROW, NARRATIVE_HEADING_COL, "Nội dung yêu cầu", "tk_header")
    _put(ws, styles, NARRATIVE_HEADER_ROW, NARRATIVE_ANSWER_COL, "Báo cáo của đơn vị", "tk_header")
    for section in narrative.sections:
        row = section.excel_row
        if not section.answer:
            _put(ws, styles, row, NARRATIVE_CODE_COL, section.code, "tk_group_center")
            _put(ws, styles, row, NARRATIVE_HEADING_COL, section.heading, "tk_group")
            _put(ws, styles, row, NARRATIVE_ANSWER_COL, None, "tk_na")
            ws.row_dimensions[row].height = _height(section.heading, widths[NARRATIVE_HEADING_COL])
            continue
        heading = section.heading
        if section.hint:
            heading += f"\n(Gợi ý: {section.hint})"
        if not section.required:
            heading += "\n(Không bắt buộc)"
        _put(ws, styles, row, NARRATIVE_CODE_COL, section.code, "tk_cell_center")
        _put(ws, styles, row, NARRATIVE_HEADING_COL, heading, "tk_cell")
        _put(ws, styles, row, NARRATIVE_ANSWER_COL, None, "tk_answer")
        # Sized to the heading, but not marked custom: Excel grows the row to the answer as it is typed,
        # so a long section prints whole (a fixed height printed 6 lines of 1,600 characters).
        _auto_height(ws, row, max(60.0, _height(heading, widths[NARRATIVE_HEADING_COL])))
    ws.freeze_panes = f"A{NARRATIVE_FIRST_ROW}"
    ws.print_title_rows = f"{NARRATIVE_HEADER_ROW}:{NARRATIVE_HEADER_ROW}"
    _page_landscape(ws)
    _footer(ws, form)
    _protect(ws)


class _AutoFitRow(RowDimension):
    """A row height Excel treats as its own autofit result (no customHeight), so it re-fits on edit."""

    @property  # type: ignore[override]
    def customHeight(self) -> bool:
        return False


_MAX_ROW_HEIGHT = 409.0  # Excel's limit, in points


def _auto_height(ws: Worksheet, row: int, height: float) -> None:
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
            needed = max(needed, _height(cell.value, width, line_points))
        if needed:
            current = ws.row_dimensions[row[0].row].height or 15.0
            if needed > current:
                _auto_height(ws, row[0].row, needed)


def _page_landscape(ws: Worksheet) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as needed; only the width is fitted
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5


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
    assert len(dv.promptTitle) <= _PROMPT_TITLE_MAX and len(dv.prompt) <= _PROMPT_MAX
    dv.showInputMessage = True
    dv.showErrorMessage = True
    dv.errorStyle = "stop"
    return dv


def _write_data_sheet(ws: Worksheet, styles: _Styles, sheet: Sheet, form: Form, ctx: WorkbookContext,
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

    _merge(ws, styles, TITLE_ROW, 1, note_col, form.title, "tk_subtitle")
    ws.row_dimensions[TITLE_ROW].height = _height(form.title, label_width + 12 * len(sheet.columns) + 40)
    _merge(ws, styles, SHEET_TITLE_ROW, 1, note_col, sheet.title, "tk_title")
    periods = "; ".join(period_labels[p.key] for p in form.periods)
    unit_note = "triệu đồng" if sheet.column_set.number == "decimal" else "ghi ở cột ĐVT"
    info = (f"Đơn vị báo cáo: {ctx.unit_name}. Kỳ số liệu: {periods}. "
            f"Đơn vị tính: {unit_note}.")
    _merge(ws, styles, INFO_ROW, 1, note_col, info, "tk_note")

    _merge(ws, styles, PERIOD_HEADER_ROW, STT_COL, STT_COL, "STT", "tk_header", BREAKDOWN_HEADER_ROW)
    _merge(ws, styles, PERIOD_HEADER_ROW, LABEL_COL, LABEL_COL, "Chỉ tiêu", "tk_header", BREAKDOWN_HEADER_ROW)
    _merge(ws, styles, PERIOD_HEADER_ROW, UNIT_COL, UNIT_COL, "ĐVT", "tk_header", BREAKDOWN_HEADER_ROW)
    _merge(ws, styles, PERIOD_HEADER_ROW, note_col, note_col, "Ghi chú", "tk_header", BREAKDOWN_HEADER_ROW)
    for period in form.periods:
        cols = [c.index for c in sheet.columns if c.period == period.key]
        _merge(ws, styles, PERIOD_HEADER_ROW, min(cols), max(cols), period_labels[period.key], "tk_header")
    for column in sheet.columns:
        _put(ws, styles, BREAKDOWN_HEADER_ROW, column.index, column.breakdown_label, "tk_header")
    ws.row_dimensions[BREAKDOWN_HEADER_ROW].height = 31.5

    inputs: dict[str, list[tuple[int, int]]] = {"integer": [], "decimal": []}
    for row in sheet.rows:
        r = row.excel_row
        if row.is_group:
            _put(ws, styles, r, STT_COL, row.stt, "tk_group_center")
            _put(ws, styles, r, LABEL_COL, row.label, "tk_group")
            for col in range(UNIT_COL, note_col + 1):
                _put(ws, styles, r, col, None, "tk_group")
        else:
            _put(ws, styles, r, STT_COL, row.stt, "tk_cell_center")
            _put(ws, styles, r, LABEL_COL, row.label, "tk_cell")
            _put(ws, styles, r, UNIT_COL, row.unit, "tk_cell_center")
            for column in sheet.columns:
                if column.breakdown in row.input_breakdowns:
                    style = "tk_input_dec" if row.number == "decimal" else "tk_input_int"
                    _put(ws, styles, r, column.index, None, style)
                    inputs[row.number].append((r, column.index))
                elif column.breakdown in row.computed_breakdowns:
                    _put(ws, styles, r, column.index, formulas[(sheet.code, row.code, column.key)], "tk_computed")
                else:
                    _put(ws, styles, r, column.index, None, "tk_na")
            _put(ws, styles, r, note_col, row.note, "tk_remark")
        needed = max(_height(row.label, label_width), _height(row.note, 24) if row.note else 0.0)
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
    place = _place(ctx.unit_name)
    date_text = (cover_date_formula(fields["report_date"].cell, place) if "report_date" in fields
                 else f"{place}, ngày … tháng … năm …")
    _merge(ws, styles, footer, half, note_col, date_text, "tk_formula_italic_center")
    _merge(ws, styles, footer + 1, STT_COL, LABEL_COL, "NGƯỜI LẬP BIỂU", "tk_bold_center")
    signer = (_cover_ref(fields["signer_title"].cell, "TM. ỦY BAN NHÂN DÂN") if "signer_title" in fields
              else "TM. ỦY BAN NHÂN DÂN")
    _merge(ws, styles, footer + 1, half, note_col, signer, "tk_formula_bold_center")
    _merge(ws, styles, footer + 2, STT_COL, LABEL_COL, "(Ký, ghi rõ họ tên)", "tk_italic_center")
    _merge(ws, styles, footer + 2, half, note_col, "(Ký tên, đóng dấu)", "tk_italic_center")
    if "preparer" in fields:
        _merge(ws, styles, footer + 6, STT_COL, LABEL_COL, _cover_ref(fields["preparer"].cell, ""),
               "tk_formula_bold_center")
    if "signer_name" in fields:
        _merge(ws, styles, footer + 6, half, note_col, _cover_ref(fields["signer_name"].cell, ""),
               "tk_formula_bold_center")

    ws.freeze_panes = f"{column_letter(FIRST_VALUE_COL)}{BREAKDOWN_HEADER_ROW + 1}"
    ws.print_title_rows = f"{PERIOD_HEADER_ROW}:{BREAKDOWN_HEADER_ROW}"
    ws.print_area = f"A1:{column_letter(note_col)}{sheet.max_row}"
    _page_landscape(ws)
    _keep_signature_with_table(ws, sheet, label_width)
    _footer(ws, form)
    _protect(ws)


# A4 landscape with _page_landscape's margins, in points, and the share of a page a Biểu may overflow
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


def _write_meta(ws: Worksheet, styles: _Styles, form: Form, ctx: WorkbookContext, secret: str) -> None:
    values = identity_values(form.code, form.version, form.layout_fingerprint, ctx.plan_code, ctx.unit_code,
                             ctx.unit_name, ctx.issued_at_text, secret)

    def style(cell: XlCell) -> None:
        cell._style = copy(styles["tk_meta"])

    write_identity_sheet(ws, values, style, _protect)


def _to_bytes(wb: Workbook, stamp: datetime | None = None) -> bytes:
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


def build_blank(form: Form, ctx: WorkbookContext, secret: str = "", sheet_password: str = "") -> bytes:
    """Return the .xlsx bytes of the blank form of ``form`` for the unit and plan in ``ctx``.

    Sheets in order: cover (active), guidance, narrative, data sheets, and the very hidden metadata
    sheet (``tracker.identity``) whose checksum is keyed with ``secret``. Raises KeyError when the form's
    computed cells name a cell its sheets lack (a loaded form never does).
    """
    wb = Workbook()
    styles = _register_styles(wb)
    period_labels = _period_labels(form, ctx)
    formulas = {c.key: excel_formula(form, c.key) for c in form.computed}

    cover = wb.active
    assert cover is not None
    cover.title = COVER_SHEET_NAME
    _write_cover(cover, styles, form, ctx, period_labels)
    _write_guide(wb.create_sheet(GUIDE_SHEET_NAME), styles, form, ctx, period_labels)
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
    return _to_bytes(wb, ctx.issued_at)


# ---------------------------------------------------------------------------------------------
# Annotated copy of a return


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
            issues_sheet.row_dimensions[row[0].row].height = _height(text, 100, 15.0, 15.0)
    issues_sheet.row_dimensions[2].height = 30
    issues_sheet["A2"].alignment = Alignment(wrap_text=False, vertical="top")
    issues_sheet.print_title_rows = "4:4"
    _page_landscape(issues_sheet)
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
    bold = Font(name=_FONT_NAME, bold=True, size=12)
    plain = Font(name=_FONT_NAME, size=11)
    link_font = Font(name=_FONT_NAME, size=11, color="0563C1", underline="single")
    wrap = Alignment(vertical="top", wrap_text=True)
    ws["A1"] = f"DANH SÁCH LỖI VÀ CẢNH BÁO: {n_errors} lỗi, {n_warnings} cảnh báo"
    ws["A1"].font = Font(name=_FONT_NAME, bold=True, size=14)
    ws["A2"] = ("Lỗi (nền đỏ) phải sửa thì báo cáo mới được ghi nhận đầy đủ; cảnh báo (nền vàng) cần kiểm tra "
                "lại hoặc giải thích. Bấm vào địa chỉ ô để đến ô đó.")
    ws["A2"].font = Font(name=_FONT_NAME, italic=True, size=11)
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
    return _to_bytes(wb)
