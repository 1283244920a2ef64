"""What goes into a plan's consolidated workbook (bảng tổng hợp): its input values, the Biểu of several forms
merged into one, and the figures on them, each unit's and the "Toàn tỉnh" totals.

Three layers, kept apart so the workbook can be tested without a database:

- ``export_query.collect_export_input(plan, as_of)`` is the one read-only query set that gathers an
  ``ExportInput`` of plain frozen values for a whole plan (a fixed number of queries, never one per unit);
- this module merges the forms' Biểu by sheet code (``merge_sheets``: an indicator of two forms on one line when
  they share its ``total_key``), chooses each Biểu's layout from its shape (``choose_layout``) and computes the
  figures (``Figures``): input cells total by plain sums over every unit that reported the indicator, whichever
  form it reported on; computed cells (percentages, ratios) are recomputed from the totals with the form's own
  formula;
- ``export_writer.build_workbook(data, forms)`` writes them with XlsxWriter.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .catalog import Column, Form, Row, Sheet
from .expressions import CellKey
from .compliance import ReviewState, Status
from .form_levels import not_applicable
from .rules import evaluate_expression
from .timeutil import local

NOT_APPLICABLE = "x"  # the statistical convention: the indicator is not on that unit's form, or not at its level
_FORMULA_STARTS = ("=", "+", "@", "\t", "\r")
_MAX_UNIT_COLUMNS = 12  # beyond this many units side by side the print shrinks below 9 pt
_MAX_VALUE_COLUMNS_AS_ROWS = 16  # a Biểu with at most this many cells per unit reads best with units as rows

Layout = Literal["indicators_as_rows", "units_as_rows"]


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
    # The used version's cover: report number, report date (ISO), signer title and name ("" when blank).
    report_number: str = ""
    report_date: str = ""
    signer: str = ""
    level: int | None = None  # the unit's administrative level: rows marked for other levels do not apply


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
    """Everything the workbook shows, as plain values.

    ``plan_document`` is the plan's document line ("Kế hoạch số …/KH-SLĐTBXH ngày …/4/2024"), ``issuer``
    the department that issued it.
    """

    plan_code: str
    plan_title: str
    deadline: datetime
    as_of: datetime
    units: tuple[ExportUnit, ...]
    values: tuple[ExportValue, ...] = ()
    issues: tuple[ExportIssue, ...] = ()
    issuer: str = ""
    plan_document: str = ""


@dataclass(frozen=True)
class ConsolidatedWorkbook:
    """The .xlsx bytes with a download name and the sheet names in order."""

    content: bytes
    filename: str
    sheet_names: tuple[str, ...]


def neutralize(value: Any) -> Any:
    """Return ``value`` with ``'`` put in front when it is text a spreadsheet would run as a formula.

    A leading "-" is left alone: it starts the officers' bullet lists and the forms' own STT, and a
    string cell never runs as a formula anyway. Non-text values come back unchanged.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def export_filename(plan_code: str, as_of: datetime) -> str:
    """Return the download name, e.g. ``bang-tong-hop-bacgiang-2024-20240510-0000.xlsx`` (Vietnam time)."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in plan_code)
    return f"bang-tong-hop-{safe}-{local(as_of):%Y%m%d-%H%M}.xlsx"


def short_unit_name(name: str) -> str:
    """Return the name a column header prints: "TP. Bắc Giang", "TX. Việt Yên", "Lục Ngạn"."""
    for prefix, short in (("Thành phố ", "TP. "), ("Thị xã ", "TX. "), ("Huyện ", ""), ("Quận ", "Q. "),
                          ("Thị trấn ", "TT. "), ("Phường ", "P. "), ("Xã ", "")):
        if name.startswith(prefix):
            return short + name[len(prefix):]
    return name


@dataclass(frozen=True)
class ExtraSheet:
    """A table another module adds after «Lỗi và cảnh báo» (e.g. the outlier flags): text cells, labels only."""

    name: str
    title: str
    headers: tuple[str, ...]
    widths: tuple[float, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = ""


# ---------------------------------------------------------------------------------------------
# The Biểu of several forms, merged


@dataclass(frozen=True)
class MergedRow:
    """One line of a merged Biểu: a group heading, or an indicator with the rows of each form that has it."""

    key: str  # total_key of an indicator; "" for a group heading
    label: str
    unit: str
    stt: str
    rows: Mapping[str, Row]  # form code -> that form's row (empty for a group heading)

    @property
    def is_group(self) -> bool:
        return not self.key

    @property
    def first(self) -> Row:
        return next(iter(self.rows.values()))

    def has(self, column: Column) -> bool:
        return any(column.breakdown in row.breakdowns for row in self.rows.values())


@dataclass(frozen=True)
class MergedSheet:
    """One Biểu across forms: its title, columns (from the first form that has it) and merged rows."""

    code: str
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[MergedRow, ...]
    sheets: Mapping[str, Sheet]  # form code -> that form's sheet

    @property
    def decimal(self) -> bool:
        return any(s.column_set.number == "decimal" for s in self.sheets.values())

    def value_columns(self) -> list[tuple[MergedRow, Column]]:
        """Return the (row, column) pairs that hold a figure, in period, row, breakdown order."""
        return [(row, column) for column in self.columns for row in self.rows
                if not row.is_group and row.has(column)]


def merge_sheets(forms: Sequence[Form]) -> list[MergedSheet]:
    """Return the Biểu of ``forms`` merged by sheet code, in the order the forms list them.

    Rows of the same ``total_key`` become one line; a row only one form has is placed after the line
    it follows on its own form. Columns come from the first form with the Biểu: forms that share a
    Biểu code share its column set (the shipped forms do; ``check-forms`` keeps it so).
    """
    order: list[str] = []
    by_code: dict[str, list[tuple[Form, Sheet]]] = defaultdict(list)
    for form in forms:
        for sheet in form.sheets:
            if sheet.code not in by_code:
                order.append(sheet.code)
            by_code[sheet.code].append((form, sheet))
    merged: list[MergedSheet] = []
    for code in order:
        entries = by_code[code]
        # The form with the most lines leads: the others' extra lines slot in after their predecessor.
        entries.sort(key=lambda e: -len(e[1].rows))
        lines: list[dict[str, Any]] = []
        position: dict[str, int] = {}
        for form, sheet in entries:
            previous = -1
            for row in sheet.rows:
                key = f"group:{row.label}" if row.is_group else row.total_key
                if key in position:
                    if not row.is_group:
                        lines[position[key]]["rows"][form.code] = row
                    previous = position[key]
                    continue
                line = {"key": "" if row.is_group else key, "label": row.label, "unit": row.unit, "stt": row.stt,
                        "rows": {} if row.is_group else {form.code: row}}
                lines.insert(previous + 1, line)
                position = {k: (i + 1 if i > previous else i) for k, i in position.items()}
                position[key] = previous + 1
                previous += 1
        first_form, first_sheet = entries[0]
        merged.append(MergedSheet(code, first_sheet.name, first_sheet.title, first_sheet.columns,
                                  tuple(MergedRow(l["key"], l["label"], l["unit"], l["stt"], l["rows"]) for l in lines),
                                  {form.code: sheet for form, sheet in entries}))
    return merged


def choose_layout(sheet: MergedSheet, unit_count: int) -> Layout:
    """Return how a Biểu prints: units as rows when a unit has few figures on it (Biểu 07's kinh phí), or
    when there are too many units to stand side by side; indicators as rows otherwise."""
    if len(sheet.value_columns()) <= _MAX_VALUE_COLUMNS_AS_ROWS or unit_count > _MAX_UNIT_COLUMNS:
        return "units_as_rows"
    return "indicators_as_rows"


# ---------------------------------------------------------------------------------------------
# Figures: each unit's values, and the province-wide totals


class Figures:
    """Each unit's numbers keyed by its own form's cell keys, and the "Toàn tỉnh" totals keyed by (total_key,
    column key), so that two forms sharing an indicator add up on one line."""

    def __init__(self, forms: Mapping[str, Form], units: Sequence[ExportUnit], values: Sequence[ExportValue]):
        self.forms = forms
        self.form_of = {u.code: u.form_code for u in units}
        level_of = {u.code: u.level for u in units}
        self.numbers: dict[str, dict[CellKey, float]] = defaultdict(dict)  # unit -> its form's cell keys
        lookups = {code: _FormLookup(form) for code, form in forms.items()}
        # Per form, each cell's (total_key, whether it is an input cell): a national plan has ~385,000 values.
        inputs = {code: {(s.code, r.code, c.key): (r.total_key, r.computed is None and c.breakdown in r.input_breakdowns)
                         for s in form.sheets for r in s.data_rows for c in s.columns}
                  for code, form in forms.items()}
        # Per form, the rows marked for some administrative levels only (levels = [2]) and those levels.
        restricted = {code: {(s.code, r.code): r.levels for s in form.sheets for r in s.data_rows if r.levels}
                      for code, form in forms.items()}
        sums: dict[tuple[str, str], list[float]] = defaultdict(list)
        for value in values:
            form_code = self.form_of.get(value.unit_code)
            lookup = lookups.get(form_code or "")
            if lookup is None or value.value is None or math.isnan(value.value):
                continue
            key = lookup.cell_key(value)
            if key is not None:
                # A figure on a row that does not apply at the unit's level (a commune's "số xã") is left out.
                allowed = restricted[form_code or ""].get((key[0], key[1]))
                if allowed and level_of.get(value.unit_code) not in (None, *allowed):
                    continue
                self.numbers[value.unit_code][key] = number = float(value.value)
                total_key, is_input = inputs[form_code or ""][key]
                if is_input:
                    sums[(total_key, key[2])].append(number)
        self.totals = {key: math.fsum(numbers) for key, numbers in sums.items()}
        self._by_form: dict[str, dict[CellKey, float]] = {}
        self._cells: dict[tuple[int, str], dict[str, tuple[CellKey, Any]]] = {}

    def _cell(self, line: MergedRow, column: Column) -> dict[str, tuple[CellKey, Any]]:
        """Return {form code: (cell key, formula or None)} of a line and column, for the forms that have it."""
        cached = self._cells.get((id(line), column.key))
        if cached is None:
            cached = {}
            for form_code, row in line.rows.items():
                if column.breakdown in row.breakdowns and form_code in self.forms:
                    key = (row.sheet, row.code, column.key)
                    cached[form_code] = (key, _expression(self.forms[form_code], key))
            self._cells[(id(line), column.key)] = cached
        return cached

    def unit_value(self, unit: ExportUnit, line: MergedRow, column: Column) -> float | str | None:
        """Return the unit's figure; ``NOT_APPLICABLE`` when its form lacks the cell or the row is not asked at the
        unit's level (a commune on a district-only row); None when the unit has not given it."""
        entry = self._cell(line, column).get(unit.form_code or "")
        if entry is None or (unit.level is not None and not_applicable(line.rows[unit.form_code or ""], unit.level)):
            return NOT_APPLICABLE
        key, expr = entry
        cells = self.numbers.get(unit.code, _EMPTY)
        value = cells.get(key)
        if value is not None or expr is None:
            return value
        return evaluate_expression(expr, cells)

    def total(self, line: MergedRow, column: Column) -> float | None:
        """Return the province-wide figure: a sum, or the form's formula applied to the sums."""
        for form_code, row in line.rows.items():
            if column.breakdown not in row.breakdowns:
                continue
            form = self.forms[form_code]
            expr = _expression(form, (row.sheet, row.code, column.key))
            if expr is None:
                return self.totals.get((row.total_key, column.key))
            return evaluate_expression(expr, self._form_totals(form))
        return None

    def _form_totals(self, form: Form) -> dict[CellKey, float]:
        """Return the province-wide sums keyed by ``form``'s own cells, for its formulas to read."""
        cached = self._by_form.get(form.code)
        if cached is None:
            cached = self._by_form[form.code] = {
                (s.code, r.code, c.key): self.totals[(r.total_key, c.key)]
                for s in form.sheets for r in s.data_rows for c in s.columns if (r.total_key, c.key) in self.totals}
        return cached


class _FormLookup:
    """Maps stored (sheet, indicator, period, breakdown) spellings onto a form's cell keys."""

    def __init__(self, form: Form) -> None:
        self.sheets: dict[str, Sheet] = {}
        for sheet in form.sheets:
            self.sheets[sheet.code.casefold()] = sheet
            self.sheets[sheet.name.casefold()] = sheet
        self.columns = {(sheet.code, c.period, c.breakdown): c.key for sheet in form.sheets for c in sheet.columns}
        self._known: dict[tuple[str, str, str, str], CellKey | None] = {}  # every unit spells them alike

    def cell_key(self, value: ExportValue) -> CellKey | None:
        spelling = (value.sheet, value.indicator, value.period, value.breakdown)
        if spelling in self._known:
            return self._known[spelling]
        key = self._cell_key(value)
        self._known[spelling] = key
        return key

    def _cell_key(self, value: ExportValue) -> CellKey | None:
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


_EMPTY: dict[CellKey, float] = {}
_EXPRESSIONS: dict[int, dict[CellKey, Any]] = {}


def _expression(form: Form, key: CellKey) -> Any:
    table = _EXPRESSIONS.get(id(form))
    if table is None:
        table = _EXPRESSIONS[id(form)] = {cell.key: cell.expr for cell in form.computed}
    return table.get(key)
