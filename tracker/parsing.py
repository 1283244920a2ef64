"""Read an uploaded return with pandas against its form: identity, values, and every issue found.

This runs inside the isolated parse worker (``tracker.isolation``): the upload guard has already
refused files whose extent or size could hurt the parser, and the worker's memory and time limits
catch what the guard cannot see. Cell addresses come from the form definition, never from here.
"""
from __future__ import annotations

import io
import math
import re
import unicodedata
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable, Mapping, NamedTuple

import numpy as np
import pandas as pd

from .catalog import COVER_SHEET_NAME, NARRATIVE_ANSWER_COL, Column, CoverField, Form, Row, Sheet
from .expressions import CellKey
from .catalog_folder import Catalog, CatalogRef, catalog_at
from .guard import Refusal
from .identity import META_SHEET_NAME, Expected, Identity, check_identity, read_identity
from .layout import check_layout
from .rules import Issue, check
from .wording import format_number

NARRATIVE_SHEET_CODE = "NARRATIVE"
# Anything beyond this is a typing slip (or 1e308), not a count of children or millions of đồng.
MAX_VALUE = 1e12
_DIGITS = re.compile(r"^\d+$")
# Vietnamese decimal style: "," before the decimals, "." between thousands (150,5; 1.234,5; 12).
_VN_DECIMAL = re.compile(r"^(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$")


class ParsedValue(NamedTuple):
    """One row of the tidy table: (sheet, indicator, period, breakdown) -> value or text.

    A named tuple, not a frozen dataclass: a national-size return has ten thousand rows, and a frozen
    dataclass's ``__init__`` costs about four times as much per row."""

    sheet: str
    indicator: str
    period: str
    breakdown: str
    value: float | None
    text: str | None = None


@dataclass(frozen=True)
class ParseResult:
    identity: Identity
    values: tuple[ParsedValue, ...]
    issues: tuple[Issue, ...] = field(default_factory=tuple)
    # The cover's fields as read: (key, text) pairs, dates as ISO 8601 ("2024-05-08"), blanks left out.
    cover: tuple[tuple[str, str], ...] = ()

    @property
    def errors(self) -> int:
        return sum(1 for issue in self.issues if issue.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for issue in self.issues if issue.severity == "warning")

    @property
    def complete(self) -> bool:
        return self.errors == 0


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def read_sheets(data: bytes, names: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Return the sheets (hidden ones too) as header-less frames starting at A1, keyed by NFC name.

    With ``names``, only the sheets of those (NFC) names that the file has are read: the cover and
    guidance sheets of a return hold nothing the tracker uses, and reading them cost a third of the
    parse. Raises what the calamine reader raises on an unreadable file.

    The cells are calamine's own values in one object array per sheet, the same grid that
    ``pandas.read_excel(engine="calamine", header=None)`` gives, without its per-cell conversion and
    column type inference (two thirds of its time on a large return): whole numbers stay floats and
    dates stay dates, which the checks below treat alike. Nothing is read as a missing value: "NaN",
    "N/A" or "NA" typed into a cell is text to report there, not a blank.
    """
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    try:
        present = {_nfc(str(sheet.name)): sheet.name for sheet in book.sheets_metadata
                   if sheet.typ == SheetTypeEnum.WorkSheet}
        wanted = [n for n in dict.fromkeys(_nfc(n) for n in names) if n in present] \
            if names is not None else list(present)
        frames: dict[str, pd.DataFrame] = {}
        for name in wanted:
            rows = book.get_sheet_by_name(present[name]).to_python(skip_empty_area=False)
            grid = np.array(rows, dtype=object) if rows else np.empty((0, 0), dtype=object)
            frames[name] = pd.DataFrame(grid if grid.ndim == 2 else rows, dtype=object)
    finally:
        book.close()
    return frames


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date) and not isinstance(value, datetime):
        # The text pandas' reader gave before calamine was read directly ("2024-05-01 00:00:00"): stored
        # narrative answers keep one form whichever reader produced them.
        value = datetime(value.year, value.month, value.day)
    return _nfc(str(value)).strip()


def _at(grid: Any, row: int, col: int) -> Any:
    """Return the cell at 1-based (row, col) of a frame's object array, or None outside it."""
    if grid is None or row > grid.shape[0] or col > grid.shape[1]:
        return None
    return grid[row - 1, col - 1]


def _grid(frame: pd.DataFrame | None) -> Any:
    # One conversion per sheet: indexing a numpy array is far cheaper than DataFrame.iat per cell.
    return None if frame is None else frame.to_numpy(dtype=object)


def _where(sheet: Sheet, row: Row, column: Column) -> str:
    return (f"Ô {column.letter}{row.excel_row} («{row.label}», {column.period_label} – "
            f"{column.breakdown_label})")


def _number(value: Any, sheet: Sheet, row: Row, column: Column) -> tuple[float | None, Issue | None]:
    """Return the cell as a float, or None with the issue that explains why it is not a number."""
    address = f"{column.letter}{row.excel_row}"

    def bad(message: str) -> tuple[None, Issue]:
        return None, Issue("error", sheet.name, address, row.indicator, f"{_where(sheet, row, column)} {message}",
                           "number")

    if isinstance(value, bool):
        return bad("chứa giá trị đúng/sai, không phải số. Nhập một số nguyên không âm.")
    if isinstance(value, (datetime, date, time, timedelta, pd.Timestamp)):
        return bad("chứa ngày tháng hoặc giờ, không phải số. Định dạng lại ô thành số và nhập số liệu.")
    decimal = row.number == "decimal"
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isnan(number):
            return bad("không phải là số hợp lệ. Nhập lại một số.")
        if math.isinf(number) or abs(number) > MAX_VALUE:
            return bad("có giá trị quá lớn, không hợp lý. Kiểm tra và nhập lại số liệu.")
        if not decimal and not number.is_integer():
            # Reported here once, and left out of the rules: a sum check on 210,5 would flag it again.
            return None, Issue("error", sheet.name, address, row.indicator,
                               f"{_where(sheet, row, column)} phải là số nguyên (đang là {format_number(number)}). "
                               "Sửa lại số liệu.", "integer")
        return number, None
    text = _nfc(str(value)).strip()
    if _DIGITS.match(text):
        return float(text), None  # a number typed into a text-formatted cell
    if decimal and _VN_DECIMAL.match(text):
        # The form's own decimal style ("150,5"; "1.234,5"), typed into a text-formatted cell.
        return float(text.replace(".", "").replace(",", ".")), None
    if text.startswith("#"):
        return bad(f"có lỗi công thức ({text[:20]}). Nhập trực tiếp số liệu.")
    if re.fullmatch(r"[-+]?[\d.,\s]+", text):
        if decimal:
            return bad(f"chứa «{text[:30]}»: không đọc được thành số. Dùng dấu phẩy trước phần thập phân, "
                       "không dùng khoảng trắng, ví dụ 150,5 hoặc 1.234,5.")
        return bad(f"chứa «{text[:30]}»: không dùng dấu chấm, dấu phẩy hay khoảng trắng để phân cách; "
                   "nhập số nguyên không âm, ví dụ 1234.")
    shown = text[:40].replace("\n", " ")
    return bad(f"chứa chữ «{shown}», không phải số. Chỉ nhập số; ghi chú đưa vào cột Ghi chú.")


def _missing_sheet_issue(sheet: Sheet) -> Issue:
    return Issue("error", sheet.name, "A1", "", f"Không tìm thấy trang tính «{sheet.name}». Không đổi tên hay "
                 "xoá trang tính của biểu mẫu; hãy dùng lại biểu mẫu tải về từ hệ thống.", "missing_sheet")


def _blank_issue(sheet: Sheet, row: Row, column: Column) -> Issue:
    return Issue("error", sheet.name, f"{column.letter}{row.excel_row}", row.indicator,
                 f"{_where(sheet, row, column)} còn trống. Nếu không có số liệu, hãy ghi 0.", "required")


@dataclass(frozen=True)
class _SheetCells:
    """A data sheet's input cells as arrays, built once per form: where each is and whether it is required."""

    sheet: Sheet
    cells: tuple[tuple[Row, Column], ...]
    keys: tuple[CellKey, ...]
    rows: np.ndarray  # 0-based grid row of each cell
    cols: np.ndarray  # 0-based grid column
    required: np.ndarray
    decimal: np.ndarray  # the row takes decimals (money); a fraction elsewhere is an error at the cell


_SHEET_CELLS: weakref.WeakKeyDictionary[Form, tuple[_SheetCells, ...]] = weakref.WeakKeyDictionary()


def _sheet_cells(form: Form) -> tuple[_SheetCells, ...]:
    found = _SHEET_CELLS.get(form)
    if found is None:
        found = []
        for sheet in form.sheets:
            cells = tuple((row, column) for row, column, _ in sheet.input_cells())
            found.append(_SheetCells(
                sheet, cells, tuple((sheet.code, row.code, column.key) for row, column in cells),
                np.array([row.excel_row - 1 for row, _ in cells], dtype=np.intp),
                np.array([column.index - 1 for _, column in cells], dtype=np.intp),
                np.array([row.required for row, _ in cells], dtype=bool),
                np.array([row.number == "decimal" for row, _ in cells], dtype=bool)))
        found = _SHEET_CELLS[form] = tuple(found)
    return found


# What pandas' own type inference calls a column of numbers, blanks allowed.
_NUMERIC_KINDS = frozenset({"integer", "floating", "mixed-integer-float", "empty"})


def _raw_cells(grid: Any, cells: _SheetCells) -> np.ndarray:
    """Return the object array of the sheet's input cells (None for a cell outside the grid)."""
    raw = np.full(len(cells.keys), None, dtype=object)
    inside = (cells.rows < grid.shape[0]) & (cells.cols < grid.shape[1])
    raw[inside] = grid[cells.rows[inside], cells.cols[inside]]
    return raw


def _classify(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (numbers, blank, odd) for the cells of ``raw``, column-wise where pandas can.

    ``numbers`` holds each plain number as a float; ``blank`` marks empty cells; ``odd`` marks the
    cells that need a cell-by-cell look (text, dates, booleans, infinities, numbers beyond MAX_VALUE),
    which ``_number`` then converts or explains: the outcome is the one ``_number`` gives on every cell
    (``tests/test_checks_equivalence.py`` compares the two).
    """
    count = len(raw)
    numbers = np.full(count, np.nan)
    if pd.api.types.infer_dtype(raw, skipna=True) in _NUMERIC_KINDS:
        # Numbers and missing values only (None, NaN — or NaT/NA, which the look below sends back).
        try:
            numbers = raw.astype(float)
            plain = np.ones(count, dtype=bool)
        except (TypeError, ValueError, OverflowError):
            plain = np.zeros(count, dtype=bool)
    else:
        # The same test as _number's, a cell at a time: only sheets holding text or dates come here.
        plain = np.fromiter((isinstance(value, (int, float)) and not isinstance(value, bool) for value in raw),
                            dtype=bool, count=count)
        if plain.any():
            numbers[plain] = raw[plain].astype(float)
    with np.errstate(invalid="ignore"):
        nan = np.isnan(numbers)
        blank = np.zeros(count, dtype=bool)
        for index in np.flatnonzero(nan | ~plain).tolist():
            blank[index] = _blank(raw[index])
        odd = ~blank & (~plain | nan | ~(np.abs(numbers) <= MAX_VALUE))
    return numbers, blank, odd


def read_values(form: Form, frames: Mapping[str, pd.DataFrame]) -> tuple[dict[CellKey, float | None], list[Issue]]:
    """Return the number (None when blank or unusable) of every input cell of the sheets found, and the
    issues of single cells: missing sheets, required blanks, what is not a number.

    The cells of a sheet are checked as one column of values (pandas' type inference, numpy masks);
    only cells that are not plain numbers are looked at one by one.
    """
    issues: list[tuple[int, int, Issue]] = []
    values: dict[CellKey, float | None] = {}
    for sheet_no, cells in enumerate(_sheet_cells(form)):
        sheet = cells.sheet
        frame = frames.get(_nfc(sheet.name))
        if frame is None:
            if not sheet.optional:
                issues.append((sheet_no, -1, _missing_sheet_issue(sheet)))
            continue
        raw = _raw_cells(_grid(frame), cells)
        numbers, blank, odd = _classify(raw)
        # A fraction in a count goes to _number too, which reports it at the cell and keeps it out of the sums.
        odd |= ~blank & ~odd & ~cells.decimal & (numbers != np.floor(numbers))
        if sheet.optional and blank.all():
            continue  # an optional sheet left empty is not a gap
        usable = ~blank & ~odd
        for index in np.flatnonzero(blank & cells.required).tolist():
            row, column = cells.cells[index]
            issues.append((sheet_no, index, _blank_issue(sheet, row, column)))
        checked: dict[int, float | None] = {}
        for index in np.flatnonzero(odd).tolist():
            row, column = cells.cells[index]
            number, issue = _number(raw[index], sheet, row, column)
            checked[index] = number
            if issue is not None:
                issues.append((sheet_no, index, issue))
        column_values = np.where(usable, numbers, np.nan).tolist()
        for index in np.flatnonzero(~usable).tolist():
            column_values[index] = checked.get(index)
        values.update(zip(cells.keys, column_values))
    issues.sort(key=lambda item: (item[0], item[1]))
    return values, [issue for _, _, issue in issues]


_TIDY_META: weakref.WeakKeyDictionary[Form, dict[CellKey, tuple[str, str, str, str]]] = weakref.WeakKeyDictionary()


def _tidy_meta(form: Form) -> dict[CellKey, tuple[str, str, str, str]]:
    """Return (sheet, indicator, period, breakdown) of every cell key of ``form`` (inputs and computed)."""
    meta = _TIDY_META.get(form)
    if meta is None:
        meta = {}
        for sheet in form.sheets:
            for computed in (False, True):
                for row, column, _ in (sheet.computed_cells() if computed else sheet.input_cells()):
                    meta[(sheet.code, row.code, column.key)] = (sheet.code, row.indicator, column.period,
                                                                column.breakdown)
        _TIDY_META[form] = meta
    return meta


def parse_upload(catalog: CatalogRef | Catalog, data: bytes, form_code: str, secret: str = "",
                 expected: Mapping[str, Any] | None = None,
                 formulas: Iterable[tuple[str, str, bool]] = (), level: int | None = None) -> ParseResult:
    """Run ``parse_return`` with the form ``form_code`` of ``catalog``, as it applies at ``level``.

    Called in the worker through ``catalog_folder.run_with_catalog``: the worker keeps the web
    process's catalog between uploads (``catalog_at``), so an upload sends only its bytes across the
    pipe, the rules' per-form lookups are built once, and the return is read at the very version its
    blank form was issued at. ``expected`` holds the assignment's ``plan_code``, ``unit_code`` and
    ``unit_name``, and ``period_labels`` (the plan's, for the period headers). Raises CatalogMismatch
    when the worker cannot have that version from disk.
    """
    from .form_levels import form_at_level

    forms = catalog_at(catalog)
    form = form_at_level(forms[form_code], level)
    fields = dict(expected or {})
    period_labels = fields.pop("period_labels", None)
    want = Expected(form.code, form.version, form.layout_fingerprint, form_names={c: f.name for c, f in forms.items()},
                    **fields)
    return parse_return(data, form, secret, want, formulas, period_labels)


def parse_return(data: bytes, form: Form, secret: str = "", expected: Expected | None = None,
                 formulas: Iterable[tuple[str, str, bool]] = (),
                 period_labels: Mapping[str, str] | None = None) -> ParseResult:
    """Return the identity, the tidy values and every issue of a return read against ``form``.

    Raises Refusal before any value is read when the file's identity is not ``expected`` (default:
    this form, its version and layout; see ``identity.check_identity``) or when a data sheet's layout
    differs from the form's (``layout.check_layout``; with ``period_labels``, the plan's, its period
    headers too). ``formulas`` are the guard's (sheet, address, has cached value) of formula cells: an
    input cell holding one is read from its cached value with a warning, or is an error when it has none.
    """
    frames = read_sheets(data, (META_SHEET_NAME, COVER_SHEET_NAME, form.narrative.name,
                                *(sheet.name for sheet in form.sheets)))
    grids = {name: _grid(frame) for name, frame in frames.items()}
    identity = read_identity(grids.get(META_SHEET_NAME), secret)
    refusal = check_identity(identity, expected or Expected(form.code, form.version, form.layout_fingerprint,
                                                            form_names={form.code: form.name}))
    if refusal is None:
        refusal = check_layout(grids, form, period_labels)
    if refusal is not None:
        raise refusal
    values, issues = read_values(form, frames)
    if formulas:
        issues = _typed_formulas(form, grids, values, issues, formulas)
    rule_issues, computed = check(form, values)
    issues.extend(rule_issues)
    values.update(computed)
    meta = _tidy_meta(form)
    tidy = [ParsedValue(*meta[key], value) for key, value in values.items()]
    narrative = grids.get(_nfc(form.narrative.name))
    for section in form.narrative.sections:
        if not section.answer:
            continue
        raw = _at(narrative, section.excel_row, NARRATIVE_ANSWER_COL)
        text = None if _blank(raw) else _cell_text(raw)
        if text is None and section.required:
            issues.append(_narrative_issue(form, section))
        tidy.append(ParsedValue(NARRATIVE_SHEET_CODE, section.code, "", "", None, text))
    cover, cover_issues = read_cover(frames.get(_nfc(COVER_SHEET_NAME)), form)
    issues.extend(cover_issues)
    return ParseResult(identity, tuple(tidy), _in_sheet_order(form, issues), cover)


def _cover_date(raw: Any) -> date | None:
    if isinstance(raw, pd.Timestamp):
        return raw.date()
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and 20000 < raw < 80000:
        return date(1899, 12, 30) + timedelta(days=int(raw))  # an Excel serial day left unformatted
    match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", _nfc(str(raw)).strip())
    if match:
        try:
            return date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        except ValueError:
            return None
    return None


def read_cover(frame: pd.DataFrame | None, form: Form) -> tuple[tuple[tuple[str, str], ...], list[Issue]]:
    """Return the cover's fields read at the addresses the form declares, and the warnings about them.

    A field is trusted only while its label is still at its ``label_cell`` (the cover was not
    rearranged); a blank required field, a date that is not one, or a signer title off the list is a
    warning: the cover never blocks a return from counting.
    """
    grid = _grid(frame)
    values: list[tuple[str, str]] = []
    issues: list[Issue] = []

    def warn(field: CoverField, message: str) -> None:
        issues.append(Issue("warning", COVER_SHEET_NAME, field.cell, "", message, "cover"))

    for field in form.cover.fields:
        if field.label_cell:
            row, col = _cell_position(field.label_cell)
            label = _at(grid, row, col)
            if _blank(label) or field.label.casefold() not in _cell_text(label).casefold():
                warn(field, f"Trang «{COVER_SHEET_NAME}» đã bị thay đổi bố cục: không thấy nhãn «{field.label}» ở ô "
                            f"{field.label_cell}, nên không đọc được «{field.label}». Hãy dùng trang Bìa của biểu mẫu.")
                continue
        raw = _at(grid, field.row, field.col)
        if _blank(raw):
            if field.required:
                warn(field, f"Trang «{COVER_SHEET_NAME}», ô {field.cell}: chưa ghi «{_cover_name(field)}».")
            continue
        if field.kind == "date":
            day = _cover_date(raw)
            if day is None:
                warn(field, f"Trang «{COVER_SHEET_NAME}», ô {field.cell}: «{_cell_text(raw)[:30]}» không phải ngày; "
                            "nhập ngày dạng ngày/tháng/năm, ví dụ 08/05/2024.")
                continue
            values.append((field.key, day.isoformat()))
            continue
        text = " ".join(_cell_text(raw).split())[:300]
        if field.kind == "choice" and text not in form.cover.signer_titles:
            warn(field, f"Trang «{COVER_SHEET_NAME}», ô {field.cell}: «{text[:60]}» không có trong danh sách chức vụ "
                        f"người ký ({'; '.join(form.cover.signer_titles)}).")
        values.append((field.key, text))
    return tuple(values), issues


def _cover_name(field: CoverField) -> str:
    return {"report_number": "số văn bản", "report_date": "ngày văn bản"}.get(field.key, field.label.rstrip(":"))


def _typed_formulas(form: Form, grids: Mapping[str, Any], values: dict[CellKey, float | None],
                    issues: list[Issue], formulas: Iterable[tuple[str, str, bool]]) -> list[Issue]:
    """Return ``issues`` with one issue per input cell holding a formula the officer typed (=12+5).

    With a cached value, that value is what the officer saw and what was read: a warning. Without one
    (a file saved by a program that does not calculate) there is nothing trustworthy to read: an error
    at the cell, replacing its "blank" error, and the cell's value is dropped from ``values``.
    """
    by_sheet: dict[str, dict[str, bool]] = {}
    for sheet_name, address, cached in formulas:
        by_sheet.setdefault(_nfc(sheet_name), {})[address] = cached
    dropped: set[tuple[str, str]] = set()
    for sheet in form.sheets:
        typed = by_sheet.get(_nfc(sheet.name))
        if not typed:
            continue
        grid = grids.get(_nfc(sheet.name))
        for row, column, address in sheet.input_cells():
            cached = typed.get(address)
            if cached is None:
                continue
            raw = _at(grid, row.excel_row, column.index)
            where = _where(sheet, row, column)
            if cached and not _blank(raw):
                issues.append(Issue("warning", sheet.name, address, row.indicator,
                                    f"{where} chứa công thức; hệ thống đọc giá trị đã tính ({_cell_text(raw)[:20]}). "
                                    "Nên nhập trực tiếp số liệu vào ô nhập.", "formula"))
                continue
            values[(sheet.code, row.code, column.key)] = None
            dropped.add((sheet.name, address))
            issues.append(Issue("error", sheet.name, address, row.indicator,
                                f"{where} chứa công thức nhưng tệp không lưu giá trị đã tính. Hãy nhập trực tiếp số "
                                "liệu (không dùng công thức) vào ô này.", "formula"))
    if not dropped:
        return issues
    # The cell's own "blank" or "not a number" error says less than the formula error above.
    return [i for i in issues if (i.sheet, i.cell) not in dropped or i.rule_id == "formula"]


def _narrative_issue(form: Form, section: Any) -> Issue:
    return Issue("error", form.narrative.name, section.cell, section.code,
                 f"Mục «{section.code} {section.heading}» chưa có nội dung (ô {section.cell}). "
                 "Hãy nhập nội dung báo cáo cho mục này.", "required")


def _cell_position(address: str) -> tuple[int, int]:
    match = re.fullmatch(r"([A-Z]+)(\d+)", address)
    if match is None:
        return (0, 0)
    col = 0
    for char in match.group(1):
        col = col * 26 + ord(char) - 64
    return (int(match.group(2)), col)


def _in_sheet_order(form: Form, issues: list[Issue]) -> tuple[Issue, ...]:
    order = {name: index for index, name in enumerate(form.excel_sheet_names())}
    return tuple(sorted(issues, key=lambda i: (order.get(i.sheet, len(order)), *_cell_position(i.cell))))
