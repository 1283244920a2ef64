"""Read one form definition file (``report_forms/<CODE>.toml``) into a ``catalog.Form``, checking it.

Over 600 lines because ``_Builder`` is one pass over one definition file: each check needs the sheets,
rows and columns read before it (a rule refers to rows of any sheet, an outlier population to a row)
and locates its problem in the same raw text, so its parts share that state.

File format (read with ``tomllib``)
-----------------------------------
Top level: ``code``, ``name`` (the short name, "Phụ lục 03"), ``version``, ``title``, ``description``;
``[decree09]`` (the eleven elements of a report regime under Nghị định 09/2019/NĐ-CP: title, content,
reporter, recipient, method, deadline, frequency, cutoff, outline, data_forms, instructions);
``[checks]`` (``stock_change_ratio``: the share by which a stock value may move between the first and
last period before a warning; 0 disables);
``[[periods]]`` (``key``, ``label``, optional ``start``/``end`` dates); ``[column_sets.<name>]`` with
``breakdowns`` (``key``, ``label``, optional ``computed`` formula) and optional ``number = "decimal"``;
``[[sheets]]`` in order (``code``, ``name`` = the Excel sheet name, ``title``, ``column_set``, optional
``optional = true``, ``rows``); ``[narrative]`` with ``[[narrative.sections]]``; ``[[rules]]``; optional
``[outliers]`` (the reviewer's plausibility checks, see ``OutlierSettings``: ``threshold``,
``year_over_year``, ``year_over_year_min``, ``min_units``, ``[[outliers.populations]]`` with ``key``,
``indicator``, ``scale``, ``label``, and ``[outliers.per]`` mapping a sheet code or an indicator code to a
population key, the indicator winning; ``""`` opts an indicator out);
``[cover]`` (the cover's input cells: ``fields`` with ``key``, ``label``, ``cell``, optional ``label_cell``,
``kind`` = text | date | choice, ``required``; ``signer_titles`` for the choice; ``recipients`` = Nơi nhận).

A row is one inline table: ``code``, ``label``, ``unit``, ``kind`` (``stock`` = value at the end of a
period, ``flow`` = count within it), optional ``stt``, ``required`` (default true), ``breakdowns`` (the
breakdown keys the row has, default all of its column set), ``number``, ``note`` and ``computed``.
A row holding only ``group`` (and optionally ``stt``) is a header line without cells.

Rules (``[[rules]]``: ``id``, ``severity``, ``check``, ``message``) and formulas are written in the
language of ``expressions``. Rule messages may use ``{left}``, ``{right}`` (the two values), ``{cells}``,
``{row}``, ``{column}``, ``{period}``, ``{left_label}``, ``{right_label}``; "Kiểm tra lại ô …" is appended
when ``{cells}`` is absent.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from .catalog import (
    COVER_MAX_COL, COVER_MAX_ROW, DECREE09_KEYS, FIRST_DATA_ROW, FIRST_VALUE_COL, GUIDE_SHEET_NAME,
    NARRATIVE_FIRST_ROW, NARRATIVE_SHEET_NAME, Breakdown, Column, ColumnSet, ComputedCell, Cover, CoverField,
    Decree09, Form, Narrative, NarrativeSection, OutlierSettings, Period, Population, Row, Rule, RuleInstance,
    Sheet, cell_position, column_letter,
)
from .expressions import (
    BinOp, Call, Cell, CellKey, Check, Expr, ExpressionError, Neg, Number, Ref, RowRange, cell_keys,
    parse_check, parse_expression, refs,
)

_BAD_SHEET_CHARS = set("[]:*?/\\")


class FormDefinitionError(Exception):
    """A form definition file is invalid; the message names the file and the line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.detail = message


class _Problem(Exception):
    """A definition problem before the line is known: ``needles`` locate it in the raw text."""

    def __init__(self, message: str, *needles: str, after: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.needles = needles
        self.after = after


def line_of(text: str, needles: tuple[str, ...], after: int = 0) -> int:
    for needle in needles:
        index = text.find(needle, after)
        if index < 0:
            index = text.find(needle)
        if index >= 0:
            return text.count("\n", 0, index) + 1
    return 1


def offset_of(text: str, needle: str, after: int = 0) -> int:
    index = text.find(needle, after)
    return index if index >= 0 else after


_ROW_KEYS = {"code", "label", "unit", "kind", "stt", "required", "breakdowns", "number", "note",
             "computed", "group", "key", "levels"}
_SHEET_KEYS = {"code", "name", "title", "column_set", "optional", "rows"}
_RULE_KEYS = {"id", "severity", "check", "message"}
_SECTION_KEYS = {"code", "heading", "required", "answer", "hint"}
_TOP_KEYS = {"code", "name", "version", "title", "description", "decree09", "checks", "periods",
             "column_sets", "sheets", "narrative", "rules", "outliers", "cover"}
_OUTLIER_KEYS = {"threshold", "year_over_year", "year_over_year_min", "min_units", "populations", "per"}
_COVER_KEYS = {"fields", "signer_titles", "recipients"}
_COVER_FIELD_KEYS = {"key", "label", "cell", "label_cell", "kind", "required"}
_CODE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHARED_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


def _require(table: Mapping[str, Any], key: str, kind: type, where: str, *needles: str) -> Any:
    if key not in table:
        raise _Problem(f"{where}: thiếu khóa «{key}»", *needles)
    value = table[key]
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        raise _Problem(f"{where}: khóa «{key}» không hợp lệ", *needles)
    return value


def _unknown_keys(table: Mapping[str, Any], allowed: set[str], where: str, *needles: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _Problem(f"{where}: khóa không được hỗ trợ «{extra[0]}»", f"{extra[0]} =", *needles)


class _Builder:
    def __init__(self, path: Path, text: str, data: dict[str, Any]) -> None:
        self.path = path
        self.text = text
        self.data = data
        self.sheets: dict[str, Sheet] = {}

    def build(self) -> Form:
        data = self.data
        _unknown_keys(data, _TOP_KEYS, "biểu mẫu")
        code = _require(data, "code", str, "biểu mẫu", "code")
        version = data.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _Problem("khóa «version» phải là số nguyên dương", "version")
        title = _require(data, "title", str, "biểu mẫu", "title")
        name = data.get("name", code)
        if not isinstance(name, str) or not name.strip():
            raise _Problem("khóa «name» (tên ngắn của biểu mẫu, ví dụ \"Phụ lục 03\") phải là chuỗi", "name")
        description = data.get("description", "")
        decree = self.decree09()
        checks = data.get("checks", {})
        ratio = checks.get("stock_change_ratio", 0.5) if isinstance(checks, dict) else None
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or ratio < 0:
            raise _Problem("[checks] stock_change_ratio phải là số không âm", "stock_change_ratio")
        periods = self.periods()
        column_sets = self.column_sets()
        sheet_tables = data.get("sheets")
        if not isinstance(sheet_tables, list) or not sheet_tables:
            raise _Problem("biểu mẫu phải có ít nhất một [[sheets]]", "[[sheets]]")
        names = {GUIDE_SHEET_NAME}
        for table in sheet_tables:
            sheet = self.sheet(table, periods, column_sets)
            if sheet.code in self.sheets:
                raise _Problem(f"trùng mã biểu «{sheet.code}»", f'"{sheet.code}"',
                               after=self._sheet_offset(sheet.code) + 1)
            if sheet.name in names:
                raise _Problem(f"trùng tên trang tính «{sheet.name}»", f'"{sheet.name}"',
                               after=self._sheet_offset(sheet.code))
            names.add(sheet.name)
            self.sheets[sheet.code] = sheet
        narrative = self.narrative()
        if narrative.name in names:
            raise _Problem(f"trùng tên trang tính «{narrative.name}»", "[narrative]")
        computed = self.computed_cells()
        rules = self.rules()
        return Form(
            code=code, name=name.strip(), version=version, title=title, description=str(description),
            decree09=decree, periods=periods, column_sets=tuple(column_sets.values()),
            sheets=tuple(self.sheets.values()), narrative=narrative, rules=rules,
            computed=computed, stock_change_ratio=float(ratio), source=self.path,
            outliers=self.outlier_settings(), cover=self.cover(),
        )

    def outlier_settings(self) -> OutlierSettings:
        table = self.data.get("outliers", {})
        if not isinstance(table, dict):
            raise _Problem("[outliers] phải là một bảng", "outliers")
        _unknown_keys(table, _OUTLIER_KEYS, "[outliers]", "[outliers]")
        numbers: dict[str, float] = {}
        # (key, smallest allowed value, whether that value itself is allowed)
        for key, low, inclusive in (("threshold", 0.0, False), ("year_over_year", 1.0, False),
                                    ("year_over_year_min", 0.0, True), ("min_units", 3.0, True)):
            value = table.get(key, getattr(OutlierSettings, key))
            if (not isinstance(value, (int, float)) or isinstance(value, bool)
                    or value < low or (value == low and not inclusive)):
                bound = "không nhỏ hơn" if inclusive else "lớn hơn"
                raise _Problem(f"[outliers] {key} phải là số {bound} {low:g}", f"{key} =")
            numbers[key] = float(value)
        populations: list[Population] = []
        for item in table.get("populations", []):
            where = "[[outliers.populations]]"
            key = _require(item, "key", str, where, "populations")
            indicator = _require(item, "indicator", str, where, f'"{key}"')
            label = _require(item, "label", str, where, f'"{key}"')
            scale = item.get("scale", 1)
            if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
                raise _Problem(f"{where}: scale của «{key}» phải là số dương", f'"{key}"')
            sheet_code, _, row_code = indicator.partition(".")
            sheet = self.sheets.get(sheet_code)
            if sheet is None or row_code not in {r.code for r in sheet.data_rows}:
                raise _Problem(f"{where}: không có chỉ tiêu «{indicator}»", f'"{indicator}"')
            populations.append(Population(key, indicator, float(scale), label))
        known = {p.key for p in populations}
        per_table = table.get("per", {})
        if not isinstance(per_table, dict):
            raise _Problem("[outliers.per] phải là một bảng", "outliers.per")
        for code, key in per_table.items():
            if not isinstance(key, str) or (key and key not in known):
                raise _Problem(f"[outliers.per] «{code}»: không có nhóm dân số «{key}»", f"{code}")
            sheet_code, _, row_code = code.partition(".")
            sheet = self.sheets.get(sheet_code)
            if sheet is None or (row_code and row_code not in {r.code for r in sheet.data_rows}):
                raise _Problem(f"[outliers.per]: không có biểu hay chỉ tiêu «{code}»", f"{code}")
        per: dict[str, str] = {}
        own = {p.indicator for p in populations}
        for sheet in self.sheets.values():
            for row in sheet.data_rows:
                key = per_table.get(row.indicator, per_table.get(sheet.code, ""))
                # A rate of a computed row (a percentage) or of the population itself means nothing.
                if key and row.computed is None and row.indicator not in own:
                    per[row.indicator] = key
        return OutlierSettings(numbers["threshold"], numbers["year_over_year"], numbers["year_over_year_min"],
                               int(numbers["min_units"]), tuple(populations), per)

    def cover(self) -> Cover:
        table = self.data.get("cover", {})
        if not isinstance(table, dict):
            raise _Problem("[cover] không hợp lệ", "[cover]")
        _unknown_keys(table, _COVER_KEYS, "[cover]", "[cover]")
        titles = table.get("signer_titles", [])
        recipients = table.get("recipients", [])
        for name, value in (("signer_titles", titles), ("recipients", recipients)):
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise _Problem(f"[cover] {name} phải là danh sách chuỗi", name)
        if sum(len(t) + 1 for t in titles) > 250 or any("," in t for t in titles):
            # Excel's list validation: items separated by commas, 255 characters in all.
            raise _Problem("[cover] signer_titles: tổng cộng quá 250 ký tự hoặc có dấu phẩy", "signer_titles")
        fields: list[CoverField] = []
        used: set[str] = set()
        for item in table.get("fields", []):
            if not isinstance(item, dict):
                raise _Problem("[cover] fields: mỗi ô là một bảng { ... }", "fields")
            key = _require(item, "key", str, "[cover] fields", "fields")
            where = f"ô bìa «{key}»"
            _unknown_keys(item, _COVER_FIELD_KEYS, where, f'"{key}"')
            if not _CODE.match(key) or any(f.key == key for f in fields):
                raise _Problem(f"{where}: key trùng hoặc không hợp lệ", f'"{key}"')
            label = _require(item, "label", str, where, f'"{key}"')
            cell = _require(item, "cell", str, where, f'"{key}"')
            label_cell = item.get("label_cell", "")
            kind = item.get("kind", "text")
            required = item.get("required", True)
            if kind not in ("text", "date", "choice") or not isinstance(required, bool):
                raise _Problem(f"{where}: kind phải là text, date hoặc choice; required là true/false", f'"{key}"')
            if kind == "choice" and not titles:
                raise _Problem(f"{where}: kind = \"choice\" cần [cover] signer_titles", f'"{key}"')
            for address in (cell, label_cell):
                if not address:
                    continue
                try:
                    row, col = cell_position(address)
                except ValueError:
                    raise _Problem(f"{where}: «{address}» không phải địa chỉ ô", f'"{address}"') from None
                if row > COVER_MAX_ROW or col > COVER_MAX_COL or address in used:
                    raise _Problem(f"{where}: ô «{address}» trùng ô khác hoặc ngoài trang Bìa "
                                   f"(A1:{column_letter(COVER_MAX_COL)}{COVER_MAX_ROW})", f'"{address}"')
                used.add(address)
            fields.append(CoverField(key, label, cell, str(label_cell), kind, required))
        return Cover(tuple(fields), tuple(titles), tuple(recipients))

    def _sheet_offset(self, code: str) -> int:
        match = re.search(r'^\s*code\s*=\s*"' + re.escape(code) + '"', self.text, re.M)
        return match.start() if match else 0

    def decree09(self) -> Decree09:
        table = self.data.get("decree09")
        if not isinstance(table, dict):
            raise _Problem("thiếu bảng [decree09] (các yếu tố chế độ báo cáo theo Nghị định 09/2019/NĐ-CP)")
        _unknown_keys(table, set(DECREE09_KEYS), "[decree09]", "[decree09]")
        values = {key: _require(table, key, str, "[decree09]", "[decree09]") for key in DECREE09_KEYS}
        return Decree09(**values)

    def periods(self) -> tuple[Period, ...]:
        tables = self.data.get("periods")
        if not isinstance(tables, list) or not tables:
            raise _Problem("biểu mẫu phải có ít nhất một [[periods]]", "[[periods]]")
        result: list[Period] = []
        for table in tables:
            key = _require(table, "key", str, "[[periods]]", "[[periods]]")
            if not _CODE.match(key) or "_" in key:
                raise _Problem(f"mã kỳ «{key}» chỉ gồm chữ và số, không có «_»", f'"{key}"')
            if any(p.key == key for p in result):
                raise _Problem(f"trùng mã kỳ «{key}»", f'"{key}"')
            label = _require(table, "label", str, f"kỳ «{key}»", f'"{key}"')
            start, end = table.get("start"), table.get("end")
            for value in (start, end):
                if value is not None and not isinstance(value, date):
                    raise _Problem(f"kỳ «{key}»: start/end phải là ngày (YYYY-MM-DD)", f'"{key}"')
            result.append(Period(key, label, start, end))
        return tuple(result)

    def column_sets(self) -> dict[str, ColumnSet]:
        tables = self.data.get("column_sets")
        if not isinstance(tables, dict) or not tables:
            raise _Problem("thiếu bảng [column_sets]", "column_sets")
        result: dict[str, ColumnSet] = {}
        for name, table in tables.items():
            where = f"bộ cột «{name}»"
            needle = f"column_sets.{name}"
            number = table.get("number", "integer")
            if number not in ("integer", "decimal"):
                raise _Problem(f"{where}: number phải là integer hoặc decimal", needle)
            items = table.get("breakdowns")
            if not isinstance(items, list) or not items:
                raise _Problem(f"{where}: thiếu danh sách breakdowns", needle)
            inputs: set[str] = set()
            breakdowns: list[Breakdown] = []
            for item in items:
                key = _require(item, "key", str, where, needle)
                if not _CODE.match(key):
                    raise _Problem(f"{where}: mã cột «{key}» không hợp lệ", f'"{key}"')
                if any(b.key == key for b in breakdowns):
                    raise _Problem(f"{where}: trùng mã cột «{key}»", f'"{key}"')
                label = _require(item, "label", str, where, f'"{key}"')
                formula = item.get("computed")
                expr = None
                if formula is not None:
                    expr = self.expression(formula, f"{where}, cột «{key}»")
                    for ref in refs(expr):
                        if not (isinstance(ref, Ref) and ref.sheet is None and ref.column in inputs):
                            raise _Problem(
                                f"{where}: công thức cột «{key}» chỉ được dùng [cột] nhập liệu đứng trước",
                                formula,
                            )
                else:
                    inputs.add(key)
                breakdowns.append(Breakdown(key, label, expr, formula))
            result[name] = ColumnSet(name, tuple(breakdowns), number)
        return result

    def expression(self, formula: Any, where: str) -> Expr:
        if not isinstance(formula, str):
            raise _Problem(f"{where}: công thức phải là chuỗi", where)
        try:
            return parse_expression(formula)
        except ExpressionError as exc:
            raise _Problem(f"{where}: công thức «{formula}» sai cú pháp: {exc}", formula) from None

    def sheet(self, table: Any, periods: tuple[Period, ...], sets: dict[str, ColumnSet]) -> Sheet:
        if not isinstance(table, dict):
            raise _Problem("[[sheets]] không hợp lệ", "[[sheets]]")
        code = _require(table, "code", str, "[[sheets]]", "[[sheets]]")
        offset = self._sheet_offset(code)
        where = f"biểu «{code}»"
        _unknown_keys(table, _SHEET_KEYS, where, f'"{code}"')
        if not _CODE.match(code):
            raise _Problem(f"{where}: mã biểu chỉ gồm chữ, số và «_»", f'"{code}"', after=offset)
        name = _require(table, "name", str, where, f'"{code}"')
        if len(name) > 31 or set(name) & _BAD_SHEET_CHARS or name.strip("'") != name:
            raise _Problem(f"{where}: tên trang tính «{name}» dài quá 31 ký tự hoặc có ký tự []:*?/\\",
                           f'"{name}"', after=offset)
        title = _require(table, "title", str, where, f'"{code}"')
        set_name = _require(table, "column_set", str, where, f'"{code}"')
        if set_name not in sets:
            raise _Problem(f"{where}: không có bộ cột «{set_name}»", f'"{set_name}"', after=offset)
        column_set = sets[set_name]
        optional = table.get("optional", False)
        if not isinstance(optional, bool):
            raise _Problem(f"{where}: optional phải là true hoặc false", "optional", after=offset)
        columns: list[Column] = []
        for period in periods:
            for bd in column_set.breakdowns:
                columns.append(Column(
                    key=f"{period.key}_{bd.key}", period=period.key, breakdown=bd.key,
                    label=f"{period.label} – {bd.label}", period_label=period.label,
                    breakdown_label=bd.label, index=FIRST_VALUE_COL + len(columns),
                    computed=bd.computed is not None,
                ))
        items = table.get("rows")
        if not isinstance(items, list) or not items:
            raise _Problem(f"{where}: thiếu danh sách rows", f'"{code}"', after=offset)
        rows: list[Row] = []
        seen: set[str] = set()
        counter = 0
        for item in items:
            excel_row = FIRST_DATA_ROW + len(rows)
            if not isinstance(item, dict):
                raise _Problem(f"{where}: mỗi dòng phải là một bảng {{ ... }}", f'"{code}"', after=offset)
            _unknown_keys(item, _ROW_KEYS, where, f'"{code}"')
            if "group" in item:
                if set(item) - {"group", "stt"}:
                    raise _Problem(f"{where}: dòng tiêu đề nhóm chỉ có group và stt",
                                   str(item["group"]), after=offset)
                label = _require(item, "group", str, where, f'"{code}"')
                rows.append(Row(code, "", label, "", "flow", False, str(item.get("stt", "")),
                                excel_row, is_group=True))
                continue
            rows.append(self.row(item, code, offset, column_set, excel_row, seen, counter))
            counter += 1
            seen.add(rows[-1].code)
        return Sheet(code, name, title, column_set, optional, tuple(rows), tuple(columns))

    def row(self, item: dict[str, Any], sheet_code: str, offset: int, column_set: ColumnSet,
            excel_row: int, seen: set[str], counter: int) -> Row:
        where = f"biểu «{sheet_code}»"
        row_code = _require(item, "code", str, where, f'"{sheet_code}"')
        needle = f'"{row_code}"'
        if not _CODE.match(row_code):
            raise _Problem(f"{where}: mã chỉ tiêu «{row_code}» chỉ gồm chữ, số và «_»", needle, after=offset)
        if row_code in seen:
            first = offset_of(self.text, needle, offset)
            raise _Problem(f"{where}: trùng mã chỉ tiêu «{row_code}»", needle, after=first + 1)
        where = f"chỉ tiêu «{sheet_code}.{row_code}»"
        row_offset = offset_of(self.text, needle, offset)
        label = _require(item, "label", str, where, needle)
        unit = _require(item, "unit", str, where, needle)
        kind = item.get("kind", "flow")
        if kind not in ("stock", "flow"):
            raise _Problem(f"{where}: kind phải là stock hoặc flow", needle, after=offset)
        required = item.get("required", True)
        if not isinstance(required, bool):
            raise _Problem(f"{where}: required phải là true hoặc false", needle, after=offset)
        number = item.get("number", column_set.number)
        if number not in ("integer", "decimal"):
            raise _Problem(f"{where}: number phải là integer hoặc decimal", needle, after=offset)
        inputs_all = [b.key for b in column_set.breakdowns if b.computed is None]
        wanted = item.get("breakdowns", inputs_all)
        if not isinstance(wanted, list) or not wanted or any(w not in inputs_all for w in wanted):
            raise _Problem(f"{where}: breakdowns phải là danh sách con của {inputs_all}", needle,
                           after=row_offset)
        formula = item.get("computed")
        expr = None
        if formula is not None:
            expr = self.expression(formula, where)
            for ref in refs(expr):
                if isinstance(ref, Ref) and ref.sheet is None:
                    raise _Problem(f"{where}: công thức chỉ tiêu phải ghi BIỂU.chỉ_tiêu", formula)
        ordered = tuple(b.key for b in column_set.breakdowns if b.key in wanted)
        derived: list[str] = []
        if expr is None:
            for bd in column_set.breakdowns:
                if bd.computed is not None:
                    needs = {ref.column for ref in refs(bd.computed) if isinstance(ref, Ref)}
                    if needs <= set(ordered):
                        derived.append(bd.key)
        inputs, computed = (ordered, tuple(derived)) if expr is None else ((), ordered)
        levels = item.get("levels", [])
        if not isinstance(levels, list) or any(level not in (1, 2, 3) for level in levels):
            raise _Problem(f"{where}: levels phải là danh sách cấp hành chính (1 tỉnh, 2 huyện, 3 xã), "
                           "ví dụ levels = [2]", needle, after=offset)
        stt = str(item.get("stt", counter + 1))
        shared_key = item.get("key", "")
        if not isinstance(shared_key, str) or (shared_key and not _SHARED_KEY.match(shared_key)):
            raise _Problem(f"{where}: key (mã dùng chung khi tổng hợp) phải có dạng BIỂU.mã, ví dụ "
                           "\"B04.comm_events\"", needle, after=row_offset)
        return Row(sheet_code, row_code, label, unit, kind, required, stt, excel_row, False,
                   inputs, computed, formula, expr, number, str(item.get("note", "")), shared_key,
                   tuple(levels))

    def narrative(self) -> Narrative:
        table = self.data.get("narrative")
        if not isinstance(table, dict):
            raise _Problem("thiếu bảng [narrative] (đề cương báo cáo)", "narrative")
        name = table.get("name", NARRATIVE_SHEET_NAME)
        title = _require(table, "title", str, "[narrative]", "[narrative]")
        items = table.get("sections")
        if not isinstance(items, list) or not items:
            raise _Problem("[narrative] phải có [[narrative.sections]]", "[narrative]")
        sections: list[NarrativeSection] = []
        for item in items:
            code = _require(item, "code", str, "[[narrative.sections]]", "[[narrative.sections]]")
            _unknown_keys(item, _SECTION_KEYS, f"mục «{code}»", f'"{code}"')
            if any(s.code == code for s in sections):
                first = offset_of(self.text, f'"{code}"', offset_of(self.text, "[narrative]"))
                raise _Problem(f"đề cương: trùng mục «{code}»", f'"{code}"', after=first + 1)
            heading = _require(item, "heading", str, f"mục «{code}»", f'"{code}"')
            answer = item.get("answer", True)
            required = item.get("required", answer)
            if not isinstance(answer, bool) or not isinstance(required, bool):
                raise _Problem(f"mục «{code}»: answer/required phải là true hoặc false", f'"{code}"')
            sections.append(NarrativeSection(code, heading, required and answer, answer,
                                             str(item.get("hint", "")),
                                             NARRATIVE_FIRST_ROW + len(sections)))
        return Narrative(name, title, tuple(sections))

    # -- references -----------------------------------------------------------------------

    def validate_ref(self, ref: Ref, where: str, needle: str, scoped: bool) -> None:
        if ref.sheet is None:
            if not scoped:
                raise _Problem(f"{where}: [{ref.column}] đứng riêng chỉ dùng trong quy tắc có «BIỂU:» ở đầu",
                               needle)
            return
        sheet = self.sheets.get(ref.sheet)
        if sheet is None:
            raise _Problem(f"{where}: không có biểu «{ref.sheet}»", needle)
        try:
            row = sheet.row(ref.row or "")
        except KeyError:
            raise _Problem(f"{where}: không có chỉ tiêu «{ref.sheet}.{ref.row}»", needle) from None
        if ref.column is not None:
            bds = {b.key for b in sheet.column_set.breakdowns}
            if ref.column not in bds and ref.column not in {c.key for c in sheet.columns}:
                raise _Problem(f"{where}: biểu «{ref.sheet}» không có cột «{ref.column}»", needle)
            bd = ref.column if ref.column in bds else sheet.column(ref.column).breakdown
            if bd not in row.breakdowns:
                raise _Problem(f"{where}: chỉ tiêu «{ref.sheet}.{ref.row}» không có cột «{ref.column}»",
                               needle)

    def validate(self, expr: Expr, where: str, needle: str, scoped: bool, scope: str | None) -> None:
        if scope is not None:
            if scope not in self.sheets:
                raise _Problem(f"{where}: không có biểu «{scope}»", needle)
            valid = {b.key for b in self.sheets[scope].column_set.breakdowns}
            for ref in refs(expr):
                if isinstance(ref, Ref) and ref.sheet is None and ref.column not in valid:
                    raise _Problem(f"{where}: biểu «{scope}» không có cột «{ref.column}»", needle)
        for ref in refs(expr):
            if isinstance(ref, RowRange):
                self.validate_ref(ref.start, where, needle, scoped)
                self.validate_ref(ref.end, where, needle, scoped)
                if ref.start.sheet != ref.end.sheet or ref.start.column != ref.end.column:
                    raise _Problem(f"{where}: hai đầu của khoảng «..» phải cùng biểu và cùng cột", needle)
                self.expand_range(ref, where, needle)
            else:
                self.validate_ref(ref, where, needle, scoped)

    def expand_range(self, rng: RowRange, where: str, needle: str) -> tuple[Ref, ...]:
        sheet = self.sheets[rng.start.sheet or ""]
        codes = [row.code for row in sheet.data_rows]
        first, last = codes.index(rng.start.row or ""), codes.index(rng.end.row or "")
        if first > last:
            raise _Problem(f"{where}: «{rng.start.row}» phải đứng trước «{rng.end.row}»", needle)
        return tuple(Ref(sheet.code, code, rng.start.column) for code in codes[first:last + 1])

    def resolve(self, expr: Expr, column: Column, row: Row | None) -> Expr | None:
        """Return ``expr`` with every reference bound to a cell, or None when a cell does not exist."""
        if isinstance(expr, Number):
            return expr
        if isinstance(expr, Ref):
            key = self.bind(expr, column, row)
            return None if key is None else Cell(key)
        if isinstance(expr, RowRange):
            raise AssertionError("ranges are expanded inside calls")
        if isinstance(expr, Call):
            args: list[Expr] = []
            for arg in expr.args:
                parts = self.expand_range(arg, "", "") if isinstance(arg, RowRange) else (arg,)
                for part in parts:
                    bound = self.resolve(part, column, row)
                    if bound is None:
                        return None
                    args.append(bound)
            return Call(expr.func, tuple(args))
        if isinstance(expr, BinOp):
            left = self.resolve(expr.left, column, row)
            right = self.resolve(expr.right, column, row)
            return None if left is None or right is None else BinOp(expr.op, left, right)
        if isinstance(expr, Neg):
            operand = self.resolve(expr.operand, column, row)
            return None if operand is None else Neg(operand)
        return expr

    def bind(self, ref: Ref, column: Column, row: Row | None) -> CellKey | None:
        if ref.sheet is None:
            assert row is not None
            sheet, target = self.sheets[row.sheet], row
        else:
            sheet = self.sheets[ref.sheet]
            target = sheet.row(ref.row or "")
        if ref.column is None:
            key = column.key
        elif any(b.key == ref.column for b in sheet.column_set.breakdowns):
            key = f"{column.period}_{ref.column}"
        else:
            key = ref.column
        return (sheet.code, target.code, key) if sheet.has_cell(target.code, key) else None

    # -- computed cells and rules -----------------------------------------------------------

    def computed_cells(self) -> tuple[ComputedCell, ...]:
        result: list[ComputedCell] = []
        computed_keys: set[CellKey] = set()
        for sheet in self.sheets.values():
            for row, column, _ in sheet.computed_cells():
                computed_keys.add((sheet.code, row.code, column.key))
        for sheet in self.sheets.values():
            for row, column, _ in sheet.computed_cells():
                key = (sheet.code, row.code, column.key)
                if row.computed is not None:
                    expr, formula, bound_row = row.computed, row.formula or "", None
                    self.validate(expr, f"chỉ tiêu «{row.indicator}»", formula, False, None)
                else:
                    bd = next(b for b in sheet.column_set.breakdowns if b.key == column.breakdown)
                    assert bd.computed is not None
                    expr, formula, bound_row = bd.computed, bd.formula or "", row
                resolved = self.resolve(expr, column, bound_row)
                if resolved is None:
                    raise _Problem(f"chỉ tiêu «{row.indicator}»: công thức «{formula}» tham chiếu ô "
                                   f"không tồn tại ở cột «{column.key}»", formula)
                if any(k in computed_keys for k in cell_keys(resolved)):
                    raise _Problem(f"chỉ tiêu «{row.indicator}»: công thức không được dùng ô tự tính khác",
                                   formula)
                result.append(ComputedCell(key, resolved, formula))
        return tuple(result)

    def rules(self) -> tuple[Rule, ...]:
        tables = self.data.get("rules", [])
        if not isinstance(tables, list):
            raise _Problem("rules phải là danh sách [[rules]]", "rules")
        result: list[Rule] = []
        for table in tables:
            rule_id = _require(table, "id", str, "[[rules]]", "[[rules]]")
            needle = f'"{rule_id}"'
            where = f"quy tắc «{rule_id}»"
            _unknown_keys(table, _RULE_KEYS, where, needle)
            if any(r.id == rule_id for r in result):
                first = offset_of(self.text, needle)
                raise _Problem(f"trùng mã quy tắc «{rule_id}»", needle, after=first + 1)
            severity = table.get("severity", "error")
            if severity not in ("error", "warning"):
                raise _Problem(f"{where}: severity phải là error hoặc warning", needle)
            text = _require(table, "check", str, where, needle)
            message = table.get("message", "")
            if not isinstance(message, str):
                raise _Problem(f"{where}: message phải là chuỗi", needle)
            try:
                check = parse_check(text)
            except ExpressionError as exc:
                raise _Problem(f"{where}: «{text}» sai cú pháp: {exc}", text, needle) from None
            for side in (check.left, check.right):
                self.validate(side, where, text, check.scope is not None, check.scope)
            instances = self.instances(check)
            if not instances:
                raise _Problem(f"{where}: không áp dụng được cho ô nào (kiểm tra lại cột)", text, needle)
            result.append(Rule(rule_id, severity, text, message, check, instances))
        return tuple(result)

    def instances(self, check: Check) -> tuple[RuleInstance, ...]:
        pairs: list[tuple[Column, Row | None]] = []
        if check.scope is not None:
            sheet = self.sheets[check.scope]
            first_bd = sheet.column_set.breakdowns[0].key
            # Computed rows (percentages, ratios) follow their formula, not the sheet's arithmetic.
            for row in sheet.data_rows:
                if row.computed is not None:
                    continue
                for column in sheet.columns:
                    if column.breakdown == first_bd:
                        pairs.append((column, row))
        else:
            anchor = next(r for r in refs(check.left) if isinstance(r, (Ref, RowRange)))
            first = anchor.start if isinstance(anchor, RowRange) else anchor
            pairs = [(column, None) for column in self.sheets[first.sheet or ""].columns]
        seen: set[tuple[CellKey, ...]] = set()
        result: list[RuleInstance] = []
        for column, row in pairs:
            left = self.resolve(check.left, column, row)
            right = self.resolve(check.right, column, row)
            if left is None or right is None:
                continue
            left_cells = cell_keys(left)
            cells = tuple(dict.fromkeys(left_cells + cell_keys(right)))
            if cells in seen or not cells:
                continue
            seen.add(cells)
            result.append(RuleInstance(left, right, cells, (left_cells or cells)[0]))
        return tuple(result)


def load_form(path: Path, raw: bytes | None = None) -> Form:
    """Return the form defined in the TOML file ``path`` (its bytes ``raw`` when the caller has read them
    already); raise FormDefinitionError (file, line).
    """
    try:
        raw = path.read_bytes() if raw is None else raw
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormDefinitionError(path, 1, f"không đọc được tệp (cần UTF-8): {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        if not isinstance(line, int):
            match = re.search(r"line (\d+)", str(exc))
            line = int(match.group(1)) if match else 1
        raise FormDefinitionError(path, line, f"sai cú pháp TOML: {exc}") from None
    try:
        return _Builder(path, text, data).build()
    except _Problem as problem:
        line = line_of(text, problem.needles, problem.after)
        raise FormDefinitionError(path, line, problem.message) from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # A value of the wrong TOML type deep inside a table; better a clear refusal than a crash.
        raise FormDefinitionError(path, 1, f"định nghĩa không hợp lệ: {exc!r}") from None

