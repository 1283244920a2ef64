"""Report forms (Phụ lục 02, 03 ...) as frozen dataclasses: the form, its sheets, rows, columns, rules.

One TOML file per form in ``report_forms/`` is the single source of truth for the Excel workbook a unit
downloads, the parser that reads a return, the rules that check it and the consolidated export. Its
file format and the checks made while reading it are in ``catalog_loader``; the folder as a whole
(loading every form into a versioned ``Catalog``, the checks across files, the layout lock) in
``catalog_folder``; the rule-expression language in ``expressions``.

Excel layout of a data sheet (shared by the workbook builder and the parser)
----------------------------------------------------------------------------
Row 1 form title, row 2 sheet title, row 3 reporting unit / period note, row 4 period headers (merged
over their breakdowns), row 5 breakdown headers, data from row 6 in definition order (group lines
included).  Columns: A STT, B Chỉ tiêu, C ĐVT, then period × breakdown value columns from D, then
Ghi chú.  ``FOOTER_ROWS`` rows below the data are reserved for signatures.  The narrative sheet has a
title in row 1, a hint in row 2, headers in row 3 and one section per row from row 4: A mục, B nội dung
yêu cầu, C the unit's answer.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date
from pathlib import Path
from typing import Literal

from .expressions import CellKey, Check, Expr

Severity = Literal["error", "warning"]
RowKind = Literal["stock", "flow"]
NumberKind = Literal["integer", "decimal"]

TITLE_ROW = 1
SHEET_TITLE_ROW = 2
INFO_ROW = 3
PERIOD_HEADER_ROW = 4
BREAKDOWN_HEADER_ROW = 5
FIRST_DATA_ROW = 6
STT_COL = 1
LABEL_COL = 2
UNIT_COL = 3
FIRST_VALUE_COL = 4
FOOTER_ROWS = 8

NARRATIVE_SHEET_NAME = "Đề cương"
NARRATIVE_HEADER_ROW = 3
NARRATIVE_FIRST_ROW = 4
NARRATIVE_CODE_COL = 1
NARRATIVE_HEADING_COL = 2
NARRATIVE_ANSWER_COL = 3

# The guidance sheet's content is the workbook builder's choice; this box is what the upload guard allows.
GUIDE_SHEET_NAME = "Hướng dẫn"
GUIDE_MAX_ROW = 60
GUIDE_MAX_COL = 4

DECREE09_KEYS = (
    "title", "content", "reporter", "recipient", "method", "deadline",
    "frequency", "cutoff", "outline", "data_forms", "instructions",
)


def column_letter(index: int) -> str:
    """Return the Excel letters of a 1-based column index (1 -> "A", 28 -> "AB")."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# ---------------------------------------------------------------------------------------------
# Form structure


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True)
class Breakdown:
    key: str
    label: str
    computed: Expr | None = None
    formula: str | None = None


@dataclass(frozen=True)
class ColumnSet:
    name: str
    breakdowns: tuple[Breakdown, ...]
    number: NumberKind = "integer"


@dataclass(frozen=True)
class Column:
    key: str
    period: str
    breakdown: str
    label: str
    period_label: str
    breakdown_label: str
    index: int
    computed: bool

    @property
    def letter(self) -> str:
        return column_letter(self.index)


@dataclass(frozen=True)
class Row:
    """One line of a data sheet; a group line has ``is_group`` True, an empty code and no cells."""

    sheet: str
    code: str
    label: str
    unit: str
    kind: RowKind
    required: bool
    stt: str
    excel_row: int
    is_group: bool = False
    input_breakdowns: tuple[str, ...] = ()
    computed_breakdowns: tuple[str, ...] = ()
    formula: str | None = None
    computed: Expr | None = None
    number: NumberKind = "integer"
    note: str = ""
    # The indicator's name across forms (key = "..." in the definition): the consolidated export adds up
    # rows of different forms that share it. Empty means the indicator code itself.
    shared_key: str = ""
    # The administrative levels the row applies at (2 district, 3 commune); () means every level.
    levels: tuple[int, ...] = ()

    @property
    def indicator(self) -> str:
        return f"{self.sheet}.{self.code}" if self.code else ""

    @property
    def total_key(self) -> str:
        """Return the key that matches this indicator across forms ("B01.children" unless ``key`` says)."""
        return self.shared_key or self.indicator

    @property
    def breakdowns(self) -> tuple[str, ...]:
        return self.input_breakdowns + self.computed_breakdowns


@dataclass(frozen=True)
class Sheet:
    code: str
    name: str
    title: str
    column_set: ColumnSet
    optional: bool
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]

    first_data_row: int = FIRST_DATA_ROW

    @cached_property
    def data_rows(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if not row.is_group)

    # Lookups by code: the export and the parser ask hundreds of thousands of times on a national plan.
    @cached_property
    def _rows_by_code(self) -> dict[str, Row]:
        return {row.code: row for row in self.data_rows}

    @cached_property
    def _columns_by_key(self) -> dict[str, Column]:
        return {column.key: column for column in self.columns}

    @property
    def last_data_row(self) -> int:
        return self.first_data_row + len(self.rows) - 1

    @property
    def max_row(self) -> int:
        return self.last_data_row + FOOTER_ROWS

    @property
    def note_col(self) -> int:
        return FIRST_VALUE_COL + len(self.columns)

    @property
    def max_col(self) -> int:
        return self.note_col

    def row(self, code: str) -> Row:
        """Return the data row ``code``; raise KeyError when the sheet has none."""
        try:
            return self._rows_by_code[code]
        except KeyError:
            raise KeyError(f"{self.code}.{code}") from None

    def column(self, key: str) -> Column:
        """Return the column ``key`` (e.g. "base_total"); raise KeyError when absent."""
        return self._columns_by_key[key]

    def has_cell(self, row_code: str, column_key: str) -> bool:
        """Return True when the row has a cell (input or computed) in that column."""
        try:
            row = self.row(row_code)
            column = self.column(column_key)
        except KeyError:
            return False
        return column.breakdown in row.breakdowns

    def cell(self, row_code: str, column_key: str) -> str:
        """Return the A1 address of a cell, e.g. "E7"; raise KeyError when the row has no such cell."""
        if not self.has_cell(row_code, column_key):
            raise KeyError(f"{self.code}.{row_code}[{column_key}]")
        return f"{self.column(column_key).letter}{self.row(row_code).excel_row}"

    def _cells(self, computed: bool) -> Iterator[tuple[Row, Column, str]]:
        for row in self.data_rows:
            wanted = row.computed_breakdowns if computed else row.input_breakdowns
            for column in self.columns:
                if column.breakdown in wanted:
                    yield row, column, f"{column.letter}{row.excel_row}"

    def input_cells(self) -> Iterator[tuple[Row, Column, str]]:
        """Yield (row, column, address) for every cell a unit types in, row by row."""
        return self._cells(computed=False)

    def computed_cells(self) -> Iterator[tuple[Row, Column, str]]:
        """Yield (row, column, address) for every cell the tracker computes (never read from a file)."""
        return self._cells(computed=True)


@dataclass(frozen=True)
class NarrativeSection:
    """A heading of the narrative outline; ``answer`` False means a heading line without a text cell."""

    code: str
    heading: str
    required: bool
    answer: bool
    hint: str
    excel_row: int

    @property
    def cell(self) -> str:
        return f"{column_letter(NARRATIVE_ANSWER_COL)}{self.excel_row}"


@dataclass(frozen=True)
class Narrative:
    name: str
    title: str
    sections: tuple[NarrativeSection, ...]

    @property
    def max_row(self) -> int:
        return NARRATIVE_FIRST_ROW + len(self.sections) - 1 + FOOTER_ROWS

    @property
    def max_col(self) -> int:
        return NARRATIVE_ANSWER_COL

    def section(self, code: str) -> NarrativeSection:
        """Return the section ``code`` (e.g. "II.1"); raise KeyError when absent."""
        for section in self.sections:
            if section.code == code:
                return section
        raise KeyError(code)

    def cell(self, code: str) -> str:
        """Return the address of the answer cell of section ``code``; KeyError for a heading-only one."""
        section = self.section(code)
        if not section.answer:
            raise KeyError(code)
        return section.cell


COVER_SHEET_NAME = "Bìa"
COVER_MAX_ROW = 30
COVER_MAX_COL = 6
CoverKind = Literal["text", "date", "choice"]


@dataclass(frozen=True)
class CoverField:
    """An input cell of the cover (report number, date, signer...), read back by its declared address.

    ``label_cell`` (optional) is where the workbook prints ``label``; the parser checks the label is
    still there before trusting the value beside it.
    """

    key: str
    label: str
    cell: str
    label_cell: str
    kind: CoverKind
    required: bool

    @property
    def row(self) -> int:
        return cell_position(self.cell)[0]

    @property
    def col(self) -> int:
        return cell_position(self.cell)[1]


@dataclass(frozen=True)
class Cover:
    """The cover's inputs, the signer titles offered, and the Nơi nhận lines printed under the report."""

    fields: tuple[CoverField, ...] = ()
    signer_titles: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()

    def field(self, key: str) -> CoverField:
        """Return the field ``key``; raise KeyError when the cover has none."""
        for field in self.fields:
            if field.key == key:
                return field
        raise KeyError(key)


def cell_position(address: str) -> tuple[int, int]:
    """Return (row, col) of an A1 address; raise ValueError when it is not one."""
    match = re.fullmatch(r"([A-Z]{1,2})([1-9][0-9]{0,3})", address)
    if match is None:
        raise ValueError(address)
    col = 0
    for char in match.group(1):
        col = col * 26 + ord(char) - 64
    return int(match.group(2)), col


@dataclass(frozen=True)
class Decree09:
    title: str
    content: str
    reporter: str
    recipient: str
    method: str
    deadline: str
    frequency: str
    cutoff: str
    outline: str
    data_forms: str
    instructions: str


@dataclass(frozen=True)
class ComputedCell:
    key: CellKey
    expr: Expr
    formula: str


@dataclass(frozen=True)
class RuleInstance:
    """One application of a rule to concrete cells; ``anchor`` is the left-hand cell to point at."""

    left: Expr
    right: Expr
    cells: tuple[CellKey, ...]
    anchor: CellKey


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    text: str
    message: str
    check: Check
    instances: tuple[RuleInstance, ...]


@dataclass(frozen=True)
class Population:
    """A population a count is divided by before units are compared, e.g. per 1,000 children."""

    key: str
    indicator: str  # "B01.children": the unit's own figure, same period (and breakdown where it has one)
    scale: float  # 1000: per 1,000
    label: str  # "1.000 trẻ em"


@dataclass(frozen=True)
class OutlierSettings:
    """How the reviewer's tools judge a figure implausible (never an error, never blocking).

    ``threshold``: modified z-score (0.6745 · |x − median| / MAD) above which a unit's figure is far out;
    ``year_over_year``: ratio to the unit's figure in the source plan at or beyond which (either way) it
    is flagged; ``year_over_year_min``: the larger of the two must reach this, small counts swing by chance;
    ``min_units``: fewer units with a figure than this and no cross-unit score is given;
    ``per``: indicator code -> population key, resolved for every data row (absent: compared raw).
    """

    threshold: float = 3.5
    year_over_year: float = 2.0
    year_over_year_min: float = 10.0
    min_units: int = 5
    populations: tuple[Population, ...] = ()
    per: Mapping[str, str] = field(default_factory=dict)

    def population(self, indicator: str) -> Population | None:
        """Return the population ``indicator`` is compared per, or None when it is compared raw."""
        key = self.per.get(indicator)
        return next((p for p in self.populations if p.key == key), None) if key else None


@dataclass(frozen=True, eq=False)
class Form:
    """A loaded form; compared and hashed by identity so it can key caches cheaply."""

    code: str
    name: str  # the short name officials use: "Phụ lục 03"
    version: int
    title: str
    description: str
    decree09: Decree09
    periods: tuple[Period, ...]
    column_sets: tuple[ColumnSet, ...]
    sheets: tuple[Sheet, ...]
    narrative: Narrative
    rules: tuple[Rule, ...]
    computed: tuple[ComputedCell, ...]
    stock_change_ratio: float
    source: Path
    outliers: OutlierSettings = OutlierSettings()
    cover: Cover = Cover()
    # Set by form_levels.form_at_level: the administrative level the rows were narrowed to.
    level: int | None = None

    def sheet(self, code: str) -> Sheet:
        """Return the data sheet ``code`` ("B01"); raise KeyError when the form has none."""
        for sheet in self.sheets:
            if sheet.code == code:
                return sheet
        raise KeyError(code)

    def sheet_by_name(self, name: str) -> Sheet:
        """Return the data sheet whose Excel name is ``name``; raise KeyError when absent."""
        for sheet in self.sheets:
            if sheet.name == name:
                return sheet
        raise KeyError(name)

    def indicator(self, code: str) -> Row:
        """Return the row of indicator ``code`` ("B01.children"); raise KeyError when absent."""
        sheet_code, _, row_code = code.partition(".")
        return self.sheet(sheet_code).row(row_code)

    def period(self, key: str) -> Period:
        """Return the period ``key``; raise KeyError when absent."""
        for period in self.periods:
            if period.key == key:
                return period
        raise KeyError(key)

    def excel_sheet_names(self) -> tuple[str, ...]:
        """Return the workbook's sheet names in order: guidance, narrative, data sheets."""
        return (GUIDE_SHEET_NAME, self.narrative.name, *(sheet.name for sheet in self.sheets))

    def extents(self) -> dict[str, tuple[int, int]]:
        """Return {Excel sheet name: (max_row, max_col)}: no cell of a return may lie outside."""
        result = {GUIDE_SHEET_NAME: (GUIDE_MAX_ROW, GUIDE_MAX_COL)}
        result[self.narrative.name] = (self.narrative.max_row, self.narrative.max_col)
        for sheet in self.sheets:
            result[sheet.name] = (sheet.max_row, sheet.max_col)
        return result

    def max_extent(self) -> tuple[int, int]:
        """Return (max_row, max_col) over every sheet of the workbook."""
        extents = self.extents().values()
        return max(r for r, _ in extents), max(c for _, c in extents)

    def input_keys(self) -> list[CellKey]:
        """Return the keys (sheet, row, column) of every input cell, in sheet and row order."""
        return [
            (sheet.code, row.code, column.key)
            for sheet in self.sheets
            for row, column, _ in sheet.input_cells()
        ]

    def address(self, key: CellKey) -> tuple[str, str]:
        """Return (Excel sheet name, A1 address) of a cell key; raise KeyError when absent."""
        sheet = self.sheet(key[0])
        return sheet.name, sheet.cell(key[1], key[2])

    @cached_property
    def layout(self) -> tuple[LayoutSheet, ...]:
        """Return what the layout check compares in a return, sheet by sheet (see ``LayoutSheet``)."""
        return tuple(_sheet_layout(sheet) for sheet in self.sheets)

    @cached_property
    def layout_fingerprint(self) -> str:
        """Return the first 16 hex digits of the SHA-256 of ``layout`` (names and folded texts).

        Written into every blank form's identity sheet and recorded per form version in
        ``LAYOUT_LOCK_NAME``: a layout that changes without a version bump fails ``check_forms``.
        """
        parts = []
        for sheet in self.layout:
            parts.append(f"sheet\x1f{layout_key(sheet.name)}")
            for line in sheet.lines:
                parts.extend(f"{line.excel_row}\x1f{col}\x1f{key}" for col, _, key in line.cells)
        return hashlib.sha256("\x1e".join(parts).encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Layout: what a return's data sheets must show where, so a value is read by what its row says

# The five Vietnamese tone marks (huyền, sắc, hỏi, ngã, nặng) as combining characters. Old and new
# tone placement ("hoà"/"hòa", "thuỷ"/"thủy") differ only in which vowel carries the mark.
_TONE_MARKS = frozenset("\u0300\u0301\u0309\u0303\u0323")


def layout_key(value: object) -> str:
    """Return ``value`` as the layout check compares it: NFC text, case and whitespace folded, and
    each word's tone mark moved to the end of the word, so old and new tone placement compare alike.
    A whole float prints without ".0" (an STT typed as a number); None and NaN are "".
    """
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    words = []
    for word in unicodedata.normalize("NFD", str(value).casefold()).split():
        tones = "".join(sorted(ch for ch in word if ch in _TONE_MARKS))
        words.append("".join(ch for ch in word if ch not in _TONE_MARKS) + tones)
    return unicodedata.normalize("NFC", " ".join(words))


@dataclass(frozen=True)
class LayoutLine:
    """One sheet row the check compares: ``cells`` are (column index, text as issued, layout_key)."""

    excel_row: int
    cells: tuple[tuple[int, str, str], ...]


@dataclass(frozen=True)
class LayoutSheet:
    """A data sheet's fixed texts: the header rows (STT, Chỉ tiêu, ĐVT, Ghi chú and every value
    column's breakdown header) and, for every line of the sheet (group lines too), its STT and label.

    Period headers are left out: a plan may rename its periods ("Quý I/2024") without changing the
    form. Row 1 to 3 hold the unit and plan, which the identity sheet already checks.
    """

    name: str
    lines: tuple[LayoutLine, ...]


def _line(excel_row: int, cells: list[tuple[int, str]]) -> LayoutLine:
    return LayoutLine(excel_row, tuple((col, text, layout_key(text)) for col, text in cells))


def _sheet_layout(sheet: Sheet) -> LayoutSheet:
    lines = [
        _line(PERIOD_HEADER_ROW, [(STT_COL, "STT"), (LABEL_COL, "Chỉ tiêu"), (UNIT_COL, "ĐVT"),
                                  (sheet.note_col, "Ghi chú")]),
        _line(BREAKDOWN_HEADER_ROW, [(column.index, column.breakdown_label) for column in sheet.columns]),
    ]
    lines.extend(_line(row.excel_row, [(STT_COL, row.stt), (LABEL_COL, row.label)]) for row in sheet.rows)
    return LayoutSheet(sheet.name, tuple(lines))

