"""Report forms (Phụ lục 02, 03 ...) loaded from ``report_forms/*.toml`` into frozen dataclasses.

One TOML file per form is the single source of truth for the Excel workbook a unit downloads,
the parser that reads a return, the rules that check it and the consolidated export.

File format (read with ``tomllib``)
-----------------------------------
Top level: ``code``, ``name`` (the short name, "Phụ lục 03"), ``version``, ``title``, ``description``; ``[decree09]`` (the eleven elements of a
report regime under Nghị định 09/2019/NĐ-CP: title, content, reporter, recipient, method, deadline,
frequency, cutoff, outline, data_forms, instructions); ``[checks]`` (``stock_change_ratio``: the share
by which a stock value may move between the first and last period before a warning; 0 disables);
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

Expression syntax (parsed by a small recursive-descent parser, never evaluated by Python)
------------------------------------------------------------------------------------
::

    check    := [SHEET ":"] expr ("=" | "<=" | "<" | ">=" | ">") expr
    expr     := term (("+" | "-") term)*
    term     := unary (("*" | "/") unary)*
    unary    := "-" unary | NUMBER | "(" expr ")" | FUNC "(" arg ("," arg)* ")" | ref
    arg      := ref ".." ref | expr          (a range: every data row from one row to another)
    ref      := SHEET "." ROW ["[" COLUMN "]"] | "[" COLUMN "]"
    FUNC     := sum | max | min

COLUMN is a breakdown key (``total``, ``male``, ``female`` ...: same period as the cell being checked)
or a full column key (``base_total``: that one column).  A ``SHEET.ROW`` without ``[...]`` means "the
same column as the cell being checked", so a rule without a sheet prefix is applied once for every
column of the sheet of its first reference, skipping the columns a referenced row does not have:
``B01.children = sum(B01.children_0_6..B01.children_11_16)``.  A rule with a sheet prefix is applied to
every data row of that sheet (computed rows excepted) and every period, ``[COLUMN]`` naming that
row's cell:
``B01: [total] = [male] + [female]``.  Computed breakdowns use the row form (``[female] / [total] * 100``)
and computed rows the column form (``B01.births[male] / B01.births[female] * 100``).

Rule messages may use ``{left}``, ``{right}`` (the two values), ``{cells}``, ``{row}``, ``{column}``,
``{period}``, ``{left_label}``, ``{right_label}``; "Kiểm tra lại ô …" is appended when ``{cells}`` is absent.

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
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeAlias

CellKey: TypeAlias = tuple[str, str, str]
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
FUNCTIONS = ("sum", "max", "min")
COMPARISONS = ("=", "<=", "<", ">=", ">")
_BAD_SHEET_CHARS = set("[]:*?/\\")


class FormDefinitionError(Exception):
    """A form definition file is invalid; the message names the file and the line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.detail = message


class ExpressionError(ValueError):
    """An expression does not follow the syntax; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def column_letter(index: int) -> str:
    """Return the Excel letters of a 1-based column index (1 -> "A", 28 -> "AB")."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# ---------------------------------------------------------------------------------------------
# Expression tree


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Ref:
    """A cell reference as written; ``sheet``/``row`` are None for a bare ``[column]``."""

    sheet: str | None
    row: str | None
    column: str | None


@dataclass(frozen=True)
class RowRange:
    start: Ref
    end: Ref


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg:
    operand: Expr


@dataclass(frozen=True)
class Cell:
    """A resolved reference to one cell of a return."""

    key: CellKey


Expr: TypeAlias = Number | Ref | RowRange | Call | BinOp | Neg | Cell


@dataclass(frozen=True)
class Check:
    """A parsed rule: ``scope`` is the sheet code of a row-wise rule, else None."""

    op: str
    left: Expr
    right: Expr
    scope: str | None


_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\.\.|<=|>=|[-+*/().,\[\]:=<>]))"
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            bad = len(text[pos:]) - len(text[pos:].lstrip()) + pos
            raise ExpressionError(f"ký tự không hợp lệ «{text[bad]}» ở vị trí {bad + 1}", bad)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str, int]:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, what: str) -> ExpressionError:
        kind, value, pos = self.peek()
        found = "hết biểu thức" if kind == "end" else f"«{value}»"
        return ExpressionError(f"cần {what} nhưng gặp {found} ở vị trí {pos + 1}", pos)

    def expect(self, value: str) -> None:
        if self.peek()[1] != value or self.peek()[0] not in ("op",):
            raise self.fail(f"«{value}»")
        self.take()

    def check(self) -> Check:
        scope = None
        if self.peek()[0] == "name" and self.peek(1)[1] == ":":
            scope = self.take()[1]
            self.take()
        left = self.expr()
        kind, value, _ = self.peek()
        if kind != "op" or value not in COMPARISONS:
            raise self.fail("một phép so sánh (=, <=, <, >=, >)")
        self.take()
        right = self.expr()
        self.end()
        return Check(value, left, right, scope)

    def end(self) -> None:
        if self.peek()[0] != "end":
            raise self.fail("hết biểu thức")

    def expr(self) -> Expr:
        node = self.term()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Expr:
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Expr:
        kind, value, _ = self.peek()
        if kind == "op" and value == "-":
            self.take()
            return Neg(self.unary())
        if kind == "number":
            self.take()
            return Number(float(value))
        if kind == "op" and value == "(":
            self.take()
            node = self.expr()
            self.expect(")")
            return node
        if kind == "name" and self.peek(1)[1] == "(":
            if value not in FUNCTIONS:
                raise ExpressionError(
                    f"hàm «{value}» không được hỗ trợ (chỉ có sum, max, min)", self.peek()[2]
                )
            self.take()
            self.take()
            args = [self.arg()]
            while self.peek()[1] == ",":
                self.take()
                args.append(self.arg())
            self.expect(")")
            return Call(value, tuple(args))
        return self.ref()

    def arg(self) -> Expr:
        if self.peek()[0] == "name" and self.peek(1)[1] == ".":
            saved = self.i
            start = self.ref()
            if self.peek()[1] == "..":
                self.take()
                return RowRange(start, self.ref())
            self.i = saved
        return self.expr()

    def ref(self) -> Ref:
        kind, value, _ = self.peek()
        if kind == "op" and value == "[":
            return Ref(None, None, self.column())
        if kind != "name":
            raise self.fail("một số, một chỉ tiêu (BIỂU.chỉ_tiêu) hoặc một cột ([cột])")
        self.take()
        if self.peek()[1] != ".":
            raise self.fail("«.» sau tên biểu")
        self.take()
        if self.peek()[0] != "name":
            raise self.fail("mã chỉ tiêu")
        row = self.take()[1]
        column = self.column() if self.peek()[1] == "[" else None
        return Ref(value, row, column)

    def column(self) -> str:
        self.expect("[")
        if self.peek()[0] != "name":
            raise self.fail("mã cột")
        name = self.take()[1]
        self.expect("]")
        return name


def parse_check(text: str) -> Check:
    """Return the parsed rule ``text``; raise ExpressionError when it does not follow the syntax."""
    return _Parser(text).check()


def parse_expression(text: str) -> Expr:
    """Return the parsed formula ``text``; raise ExpressionError when it does not follow the syntax."""
    parser = _Parser(text)
    node = parser.expr()
    parser.end()
    return node


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
        return _address(self.cell)[0]

    @property
    def col(self) -> int:
        return _address(self.cell)[1]


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


def _address(address: str) -> tuple[int, int]:
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


# ---------------------------------------------------------------------------------------------
# Loading


class _Problem(Exception):
    """A definition problem before the line is known: ``needles`` locate it in the raw text."""

    def __init__(self, message: str, *needles: str, after: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.needles = needles
        self.after = after


def _line_of(text: str, needles: tuple[str, ...], after: int = 0) -> int:
    for needle in needles:
        index = text.find(needle, after)
        if index < 0:
            index = text.find(needle)
        if index >= 0:
            return text.count("\n", 0, index) + 1
    return 1


def _offset_of(text: str, needle: str, after: int = 0) -> int:
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


def _refs(expr: Expr) -> Iterator[Ref | RowRange]:
    if isinstance(expr, (Ref, RowRange)):
        yield expr
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from _refs(arg)
    elif isinstance(expr, BinOp):
        yield from _refs(expr.left)
        yield from _refs(expr.right)
    elif isinstance(expr, Neg):
        yield from _refs(expr.operand)


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
                    row, col = _address(address)
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
                    for ref in _refs(expr):
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
            first = _offset_of(self.text, needle, offset)
            raise _Problem(f"{where}: trùng mã chỉ tiêu «{row_code}»", needle, after=first + 1)
        where = f"chỉ tiêu «{sheet_code}.{row_code}»"
        row_offset = _offset_of(self.text, needle, offset)
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
            for ref in _refs(expr):
                if isinstance(ref, Ref) and ref.sheet is None:
                    raise _Problem(f"{where}: công thức chỉ tiêu phải ghi BIỂU.chỉ_tiêu", formula)
        ordered = tuple(b.key for b in column_set.breakdowns if b.key in wanted)
        derived: list[str] = []
        if expr is None:
            for bd in column_set.breakdowns:
                if bd.computed is not None:
                    needs = {ref.column for ref in _refs(bd.computed) if isinstance(ref, Ref)}
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
                first = _offset_of(self.text, f'"{code}"', _offset_of(self.text, "[narrative]"))
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
            for ref in _refs(expr):
                if isinstance(ref, Ref) and ref.sheet is None and ref.column not in valid:
                    raise _Problem(f"{where}: biểu «{scope}» không có cột «{ref.column}»", needle)
        for ref in _refs(expr):
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
                if any(k in computed_keys for k in _cell_keys(resolved)):
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
                first = _offset_of(self.text, needle)
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
            anchor = next(r for r in _refs(check.left) if isinstance(r, (Ref, RowRange)))
            first = anchor.start if isinstance(anchor, RowRange) else anchor
            pairs = [(column, None) for column in self.sheets[first.sheet or ""].columns]
        seen: set[tuple[CellKey, ...]] = set()
        result: list[RuleInstance] = []
        for column, row in pairs:
            left = self.resolve(check.left, column, row)
            right = self.resolve(check.right, column, row)
            if left is None or right is None:
                continue
            left_cells = _cell_keys(left)
            cells = tuple(dict.fromkeys(left_cells + _cell_keys(right)))
            if cells in seen or not cells:
                continue
            seen.add(cells)
            result.append(RuleInstance(left, right, cells, (left_cells or cells)[0]))
        return tuple(result)


def _cell_keys(expr: Expr) -> tuple[CellKey, ...]:
    if isinstance(expr, Cell):
        return (expr.key,)
    if isinstance(expr, Call):
        return tuple(k for arg in expr.args for k in _cell_keys(arg))
    if isinstance(expr, BinOp):
        return _cell_keys(expr.left) + _cell_keys(expr.right)
    if isinstance(expr, Neg):
        return _cell_keys(expr.operand)
    return ()


def load_form(path: Path) -> Form:
    """Return the form defined in the TOML file ``path``; raise FormDefinitionError (file, line)."""
    try:
        raw = path.read_bytes()
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
        line = _line_of(text, problem.needles, problem.after)
        raise FormDefinitionError(path, line, problem.message) from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # A value of the wrong TOML type deep inside a table; better a clear refusal than a crash.
        raise FormDefinitionError(path, 1, f"định nghĩa không hợp lệ: {exc!r}") from None


def load_forms(directory: Path) -> dict[str, Form]:
    """Return {form code: Form} for every ``*.toml`` directly in ``directory`` (subfolders are plans).

    Raises FormDefinitionError for the first invalid file or for two files with the same code.
    """
    forms: dict[str, Form] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        form = load_form(path)
        if form.code in forms:
            text = path.read_text(encoding="utf-8")
            line = _line_of(text, (f'"{form.code}"',))
            raise FormDefinitionError(
                path, line, f"mã biểu mẫu «{form.code}» trùng với tệp {forms[form.code].source.name}"
            )
        forms[form.code] = form
    problems = shared_key_problems(list(forms.values()))
    if problems:
        raise problems[0]
    return forms


def shared_key_problems(forms: list[Form]) -> list[FormDefinitionError]:
    """Return what keeps the forms' Biểu from being added up across forms in the bảng tổng hợp.

    A Biểu code on several forms must have the same columns (periods and breakdowns); an indicator key
    (``total_key``) on several forms must have the same ĐVT. Each problem names the later form's file and line.
    """
    problems: list[FormDefinitionError] = []
    columns: dict[str, tuple[Form, tuple[str, ...]]] = {}
    units: dict[str, tuple[Form, str]] = {}
    for form in sorted(forms, key=lambda f: f.code):
        text = form.source.read_text(encoding="utf-8") if form.source.exists() else ""
        for sheet in form.sheets:
            keys = tuple(c.key for c in sheet.columns)
            first = columns.setdefault(sheet.code, (form, keys))
            if first[1] != keys:
                problems.append(FormDefinitionError(form.source, _line_of(text, (f'"{sheet.code}"',)),
                                                    f"biểu «{sheet.code}» có bộ cột khác với biểu cùng mã của "
                                                    f"{first[0].code}: không tổng hợp chung được"))
            for row in sheet.data_rows:
                seen = units.setdefault(row.total_key, (form, row.unit))
                if seen[1] != row.unit:
                    problems.append(FormDefinitionError(
                        form.source, _line_of(text, (f'"{row.code}"',), _offset_of(text, f'"{sheet.code}"')),
                        f"chỉ tiêu «{row.total_key}» có ĐVT «{row.unit}», khác «{seen[1]}» ở {seen[0].code}: "
                        "đặt key khác cho chỉ tiêu này (key = \"BIỂU.mã\") để không bị cộng chung"))
    return problems


# Not "*.toml": every such file in the folder is a form definition.
LAYOUT_LOCK_NAME = "layouts.lock"
_LOCK_HEADER = """\
# Layout fingerprints of every form version ever issued: form code -> version -> fingerprint.
# Written by `flask --app tracker check-forms --record`, which only ever adds lines. A blank form
# carries its fingerprint in the hidden identity sheet, so a recorded line must never change:
# a form whose layout changes needs a new `version`. Commit this file with the form definitions.
"""


def read_layout_lock(directory: Path) -> dict[str, dict[int, str]]:
    """Return {form code: {version: fingerprint}} recorded in ``directory``; {} when there is no lock file.

    Raises FormDefinitionError when the file is not valid TOML of that shape.
    """
    path = Path(directory) / LAYOUT_LOCK_NAME
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return {code: {int(version): str(fp) for version, fp in versions.items()} for code, versions in data.items()}
    except (tomllib.TOMLDecodeError, AttributeError, ValueError, UnicodeDecodeError) as exc:
        raise FormDefinitionError(path, 1, f"tệp khoá bố cục không hợp lệ: {exc}") from None


def layout_lock_errors(forms: Mapping[str, Form], directory: Path) -> list[str]:
    """Return one error per form whose layout fingerprint is unrecorded or differs from the recorded one."""
    path = Path(directory) / LAYOUT_LOCK_NAME
    try:
        lock = read_layout_lock(directory)
    except FormDefinitionError as exc:
        return [str(exc)]
    errors = []
    for code, form in sorted(forms.items()):
        recorded = lock.get(code, {}).get(form.version)
        if recorded is None:
            errors.append(f"{path}: {code} phiên bản {form.version} chưa được ghi dấu vân tay bố cục "
                          f"({form.layout_fingerprint}); chạy «flask --app tracker check-forms --record» và "
                          "đưa tệp này vào kho mã cùng định nghĩa biểu mẫu.")
        elif recorded != form.layout_fingerprint:
            errors.append(f"{form.source}:{_line_of(form.source.read_text(encoding='utf-8'), ('version',))}: "
                          f"bố cục của {code} đã thay đổi (dấu vân tay {form.layout_fingerprint}, đã ghi "
                          f"{recorded} cho phiên bản {form.version}) mà không tăng «version». Biểu mẫu trống "
                          "đã phát hành theo bố cục cũ sẽ bị đọc sai: hãy tăng version rồi chạy "
                          "«check-forms --record».")
    return errors


def record_layouts(forms: Mapping[str, Form], directory: Path) -> list[str]:
    """Add every unrecorded (form, version) fingerprint to the lock file; return what was added.

    Never changes a recorded line (that is what ``layout_lock_errors`` reports).
    """
    lock = read_layout_lock(directory)
    added = []
    for code, form in sorted(forms.items()):
        if form.version not in lock.setdefault(code, {}):
            lock[code][form.version] = form.layout_fingerprint
            added.append(f"{code} phiên bản {form.version}: {form.layout_fingerprint}")
    if added:
        lines = [_LOCK_HEADER]
        for code in sorted(lock):
            lines.append(f"\n[{code}]\n")
            lines.extend(f'{version} = "{fp}"\n' for version, fp in sorted(lock[code].items()))
        (Path(directory) / LAYOUT_LOCK_NAME).write_text("".join(lines), encoding="utf-8")
    return added


def check_forms(directory: Path) -> list[str]:
    """Return every definition error of the forms in ``directory`` ("file:line: message"); [] when fine.

    Besides each file's own errors, a form whose layout fingerprint is not the one recorded for its
    version in ``LAYOUT_LOCK_NAME`` (or not recorded at all) is an error.
    """
    errors: list[str] = []
    codes: dict[str, Path] = {}
    loaded: list[Form] = []
    paths = sorted(Path(directory).glob("*.toml"))
    if not paths:
        return [f"{directory}: không có tệp biểu mẫu *.toml"]
    for path in paths:
        try:
            form = load_form(path)
        except FormDefinitionError as exc:
            errors.append(str(exc))
            continue
        if form.code in codes:
            line = _line_of(path.read_text(encoding="utf-8"), (f'"{form.code}"',))
            errors.append(str(FormDefinitionError(
                path, line, f"mã biểu mẫu «{form.code}» trùng với tệp {codes[form.code].name}")))
        codes.setdefault(form.code, path)
        loaded.append(form)
    errors.extend(str(problem) for problem in shared_key_problems(loaded))
    # One form per code for the lock check (a duplicate code is reported above).
    by_code = {f.code: f for f in reversed(loaded)}
    return errors + layout_lock_errors(by_code, directory)
