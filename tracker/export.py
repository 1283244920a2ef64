"""The consolidated workbook (bảng tổng hợp) of a plan, built with pandas from the units' parsed values.

Two layers, kept apart so the workbook can be tested without a database:

- ``build_workbook(data, forms)`` is pure: an ``ExportInput`` of plain frozen values and the loaded
  forms in, a ``ConsolidatedWorkbook`` (the .xlsx bytes and its sheet names) out.
- ``standings.collect_export_input(plan, as_of)`` is the one read-only query set that gathers those values for a
  whole plan (like ``standings.plan_standings``: a fixed number of queries, never one per unit).

What goes in the workbook:

- one sheet per (form, Biểu), e.g. "PL03 Biểu 01": a row per indicator as on the form, and for every
  period × breakdown column of the form one column per unit assigned that form, then a "Tổng cộng"
  column. Input cells total by plain sums; computed cells (percentages, ratios) are recomputed from the
  totals with the form's own formula, because a sum of percentages means nothing;
- a unit's figures come from its LATEST COMPLETE version received by ``as_of``; a version staff
  returned for correction is skipped, since the department has rejected its figures;
- "Đơn vị": every unit's standing and which version fed the figures; "Chưa có báo cáo đầy đủ": the
  required units without a complete return; "Lỗi và cảnh báo": every issue of each unit's latest version;
- text cells beginning with ``= + - @`` (or a tab or carriage return) are prefixed with ``'`` so that a
  spreadsheet shows them as text instead of running them as formulas.
"""
from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from .catalog import CellKey, Form, Sheet
from .compliance import ReviewState, Status
from .rules import evaluate_expression
from .timeutil import fmt_datetime, local

TOTAL_LABEL = "Tổng cộng"
INFO_SHEET = "Thông tin"
UNITS_SHEET = "Đơn vị"
MISSING_SHEET = "Chưa có báo cáo đầy đủ"
ISSUES_SHEET = "Lỗi và cảnh báo"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NARRATIVE_SHEETS = {"narrative", "đề cương"}
_SEVERITY_LABELS = {"error": "Lỗi", "warning": "Cảnh báo"}


@dataclass(frozen=True)
class ExportUnit:
    """One assigned unit: its standing at ``as_of`` and the versions the workbook draws on."""

    code: str
    name: str
    form_code: str | None
    status: Status
    late: bool
    days_late: int | None
    errors: int
    warnings: int
    review: ReviewState | None
    review_reason: str | None
    latest_version: int | None
    latest_received_at: datetime | None
    used_version: int | None = None
    used_received_at: datetime | None = None


@dataclass(frozen=True)
class ExportValue:
    """One parsed value of a unit's used version, as stored (see ``models.ReturnValue``)."""

    unit_code: str
    sheet: str
    indicator: str
    period: str
    breakdown: str
    value: float | None
    text: str | None = None


@dataclass(frozen=True)
class ExportIssue:
    """One open issue of a unit's latest version."""

    unit_code: str
    version: int
    severity: str
    sheet: str
    cell: str
    indicator: str
    message: str


@dataclass(frozen=True)
class ExportInput:
    """Everything the workbook shows, as plain values."""

    plan_code: str
    plan_title: str
    deadline: datetime
    as_of: datetime
    units: tuple[ExportUnit, ...]
    values: tuple[ExportValue, ...] = ()
    issues: tuple[ExportIssue, ...] = ()


@dataclass(frozen=True)
class ConsolidatedWorkbook:
    """The .xlsx bytes with a download name and the sheet names in order."""

    content: bytes
    filename: str
    sheet_names: tuple[str, ...]


def neutralize(value: Any) -> Any:
    """Return ``value`` with ``'`` put in front when it is text a spreadsheet would run as a formula.

    Non-text values come back unchanged.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def export_filename(plan_code: str, as_of: datetime) -> str:
    """Return the download name, e.g. ``bang-tong-hop-bacgiang-2024-20240510-0000.xlsx`` (Vietnam time)."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in plan_code)
    return f"bang-tong-hop-{safe}-{local(as_of):%Y%m%d-%H%M}.xlsx"


def sheet_title(form_code: str, sheet: Sheet) -> str:
    """Return the workbook sheet name of one Biểu of one form, e.g. "PL03 Biểu 01" (at most 31 characters)."""
    return f"{form_code} {sheet.name}"[:31]


# ---------------------------------------------------------------------------------------------
# Pure building


class _FormIndex:
    """Maps stored (sheet, indicator, period, breakdown) spellings onto a form's cell keys."""

    def __init__(self, form: Form) -> None:
        self.form = form
        self.sheets: dict[str, Sheet] = {}
        for sheet in form.sheets:
            self.sheets[sheet.code.casefold()] = sheet
            self.sheets[sheet.name.casefold()] = sheet
        self.columns = {(sheet.code, c.period, c.breakdown): c.key for sheet in form.sheets for c in sheet.columns}
        self.narrative_names = _NARRATIVE_SHEETS | {form.narrative.name.casefold()}
        self.computed = {cell.key: cell.expr for cell in form.computed}

    def cell_key(self, value: ExportValue) -> CellKey | None:
        sheet = self.sheets.get(value.sheet.casefold())
        if sheet is None:
            return None
        row_code = value.indicator
        prefix = f"{sheet.code}."
        if row_code.startswith(prefix):
            row_code = row_code[len(prefix):]
        column = self.columns.get((sheet.code, value.period, value.breakdown))
        if column is None or not sheet.has_cell(row_code, column):
            return None
        return sheet.code, row_code, column

    def narrative_code(self, value: ExportValue) -> str | None:
        if value.sheet.casefold() not in self.narrative_names:
            return None
        code = value.indicator
        for prefix in ("narrative.", f"{self.form.narrative.name}."):
            if code.startswith(prefix):
                code = code[len(prefix):]
        return code


def _number(value: float | None) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    # Counts read back as floats; whole numbers show as integers in the workbook.
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _form_tables(form: Form, units: Sequence[ExportUnit],
                 values: Sequence[ExportValue]) -> dict[str, pd.DataFrame]:
    index = _FormIndex(form)
    numbers: dict[str, dict[CellKey, float]] = defaultdict(dict)
    texts: dict[str, dict[CellKey, str]] = defaultdict(dict)
    narrative: dict[str, dict[str, str]] = defaultdict(dict)
    for value in values:
        key = index.cell_key(value)
        if key is not None:
            if value.value is not None and not math.isnan(value.value):
                numbers[value.unit_code][key] = float(value.value)
            elif value.text:
                texts[value.unit_code][key] = value.text
            continue
        code = index.narrative_code(value)
        if code is not None and value.text:
            narrative[value.unit_code][code] = value.text

    totals: dict[CellKey, float] = {}
    for sheet in form.sheets:
        for row, column, _ in sheet.input_cells():
            key = (sheet.code, row.code, column.key)
            present = [numbers[u.code][key] for u in units if key in numbers[u.code]]
            if present:
                totals[key] = math.fsum(present)

    tables: dict[str, pd.DataFrame] = {}
    for sheet in form.sheets:
        headers = ["STT", "Mã chỉ tiêu", "Chỉ tiêu", "ĐVT"]
        layout: list[tuple[str, str | None]] = []  # (column key, unit code or None for the total)
        for column in sheet.columns:
            for unit in units:
                headers.append(f"{column.period_label} · {column.breakdown_label} · {unit.name}")
                layout.append((column.key, unit.code))
            headers.append(f"{column.period_label} · {column.breakdown_label} · {TOTAL_LABEL}")
            layout.append((column.key, None))
        records: list[list[Any]] = []
        for row in sheet.rows:
            record: list[Any] = [row.stt, row.indicator, row.label, row.unit]
            for column_key, unit_code in layout:
                key = (sheet.code, row.code, column_key)
                if row.is_group or not sheet.has_cell(row.code, column_key):
                    record.append(None)
                    continue
                expr = index.computed.get(key)
                if unit_code is None:
                    cell = evaluate_expression(expr, totals) if expr is not None else totals.get(key)
                    record.append(_number(cell))
                elif key in numbers[unit_code]:
                    record.append(_number(numbers[unit_code][key]))
                elif expr is not None:
                    record.append(_number(evaluate_expression(expr, numbers[unit_code])))
                else:
                    record.append(texts[unit_code].get(key))
            records.append(record)
        tables[sheet_title(form.code, sheet)] = pd.DataFrame(records, columns=headers, dtype=object)

    if narrative:
        headers = ["Mục", "Nội dung"] + [unit.name for unit in units]
        records = [[section.code, section.heading] + [narrative[u.code].get(section.code) for u in units]
                   for section in form.narrative.sections]
        tables[f"{form.code} {form.narrative.name}"[:31]] = pd.DataFrame(records, columns=headers, dtype=object)
    return tables


def _review_text(unit: ExportUnit) -> str:
    if unit.review is None:
        return ""
    if unit.review is ReviewState.RETURNED and unit.review_reason:
        return f"{unit.review.label}: {unit.review_reason}"
    return unit.review.label


def build_tables(data: ExportInput, forms: Mapping[str, Form]) -> dict[str, pd.DataFrame]:
    """Return the workbook's sheets in order as {sheet name: DataFrame}, before neutralisation.

    Forms assigned in the plan but missing from ``forms`` get no Biểu sheets; the "Thông tin" sheet
    names them. Values whose sheet, indicator or column is not on the unit's form are left out.
    """
    form_codes = sorted({u.form_code for u in data.units if u.form_code})
    missing_forms = [code for code in form_codes if code not in forms]
    info = [
        ("Kế hoạch", data.plan_title),
        ("Mã kế hoạch", data.plan_code),
        ("Hạn nộp", f"{fmt_datetime(data.deadline)} (giờ Việt Nam)"),
        ("Số liệu tính đến", f"{fmt_datetime(data.as_of)} (giờ Việt Nam)"),
        ("Nguồn số liệu", "Phiên bản đầy đủ (không có lỗi) mới nhất của mỗi đơn vị nhận được đến thời điểm "
                          "trên; phiên bản bị Sở trả lại để chỉnh sửa không được tổng hợp."),
        ("Cột «Tổng cộng»", "Tổng các đơn vị có số liệu; chỉ tiêu tỷ lệ (%) được tính lại từ các tổng."),
        ("Ghi chú", "Ô văn bản bắt đầu bằng = + - @ được thêm dấu ' ở đầu để không bị hiểu là công thức."),
    ]
    if missing_forms:
        info.append(("Biểu mẫu chưa có định nghĩa", ", ".join(missing_forms)))
    tables: dict[str, pd.DataFrame] = {INFO_SHEET: pd.DataFrame(info, columns=["Mục", "Nội dung"], dtype=object)}

    tables[UNITS_SHEET] = pd.DataFrame(
        [[u.code, u.name, u.form_code or "Miễn báo cáo", u.status.label, u.latest_version,
          fmt_datetime(u.latest_received_at), u.errors, u.warnings, _review_text(u), u.used_version,
          fmt_datetime(u.used_received_at)] for u in data.units],
        columns=["Mã đơn vị", "Đơn vị", "Biểu mẫu", "Tình trạng", "Phiên bản mới nhất", "Nhận lúc",
                 "Số lỗi", "Số cảnh báo", "Ý kiến của Sở", "Phiên bản được tổng hợp", "Nhận lúc (bản tổng hợp)"],
        dtype=object)

    used = {u.code for u in data.units if u.used_version is not None}
    for code in form_codes:
        if code not in forms:
            continue
        units = [u for u in data.units if u.form_code == code]
        unit_codes = {u.code for u in units}
        values = [v for v in data.values if v.unit_code in unit_codes and v.unit_code in used]
        tables.update(_form_tables(forms[code], units, values))

    tables[MISSING_SHEET] = pd.DataFrame(
        [[u.code, u.name, u.form_code, u.status.label, u.latest_version, fmt_datetime(u.latest_received_at),
          u.errors, u.days_late, _review_text(u)]
         for u in data.units
         if u.form_code is not None and u.status not in (Status.ON_TIME, Status.LATE)],
        columns=["Mã đơn vị", "Đơn vị", "Biểu mẫu", "Tình trạng", "Phiên bản mới nhất", "Nhận lúc",
                 "Số lỗi", "Số ngày quá hạn", "Ý kiến của Sở"],
        dtype=object)

    names = {u.code: u.name for u in data.units}
    tables[ISSUES_SHEET] = pd.DataFrame(
        [[i.unit_code, names.get(i.unit_code, ""), i.version, _SEVERITY_LABELS.get(i.severity, i.severity),
          i.sheet, i.cell, i.indicator, i.message] for i in data.issues],
        columns=["Mã đơn vị", "Đơn vị", "Phiên bản", "Mức độ", "Trang tính", "Ô", "Chỉ tiêu", "Nội dung"],
        dtype=object)
    return tables


def build_workbook(data: ExportInput, forms: Mapping[str, Form]) -> ConsolidatedWorkbook:
    """Return the consolidated workbook of ``data`` as .xlsx bytes, every text cell neutralised.

    Raises KeyError only on a programming error (see ``build_tables`` for what is left out).
    """
    tables = build_tables(data, forms)
    buffer = io.BytesIO()
    # xlsxwriter writes a national export about 3x faster than openpyxl; text never turns into formulas or links.
    options = {"strings_to_formulas": False, "strings_to_urls": False}
    with pd.ExcelWriter(buffer, engine="xlsxwriter", engine_kwargs={"options": options}) as writer:
        for name, frame in tables.items():
            safe = frame.map(neutralize)
            safe.columns = [neutralize(c) for c in frame.columns]
            safe.to_excel(writer, sheet_name=name, index=False)
            worksheet = writer.sheets[name]
            # Keep the indicator labels (Biểu sheets) or section headings (narrative) in view when scrolling.
            first = str(frame.columns[0]) if len(frame.columns) else ""
            frozen_cols = 4 if first == "STT" else 2 if first == "Mục" and name != INFO_SHEET else 0
            worksheet.freeze_panes(1, frozen_cols)
            for index, header in enumerate(frame.columns):
                worksheet.set_column(index, index, min(max(10, len(str(header)) * 0.9), 60))
    return ConsolidatedWorkbook(buffer.getvalue(), export_filename(data.plan_code, data.as_of), tuple(tables))


# ---------------------------------------------------------------------------------------------
# Gathering: the read-only query set for one plan (the only part of this module that uses the database)
