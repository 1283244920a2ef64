"""The real extent of a worksheet or an ODS table, measured as its bytes stream past.

A reader allocates for the furthest cell a sheet names (calamine asks for gigabytes on one cell at
XFD1048576), so every explicit ``r`` reference, implicit position, ``<dimension>``, merged and
hyperlink range counts; ODS repeats are expanded arithmetically. ``FastSheetScan`` measures sheets
written the usual way with byte searches; anything irregular is measured exactly by ``SheetExtent``.
"""

from __future__ import annotations

import functools
import re

from .base import EXCEL_MAX_COL, EXCEL_MAX_ROW, Limits, Refusal
from .content import external_reach

def _col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


def _col_letters(n: int) -> str:
    out = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


_REF = re.compile(r"\$?([A-Za-z]{0,10})\$?([0-9]{0,10})")


def _split_ref(ref: str) -> tuple[int, int]:
    """Return (row, column) of an A1 reference; 0 for a part that is absent (``A:A``, ``3:3``)."""
    m = _REF.fullmatch(ref.strip())
    if m is None or not (m.group(1) or m.group(2)):
        raise Refusal("corrupt", detail=f"bad cell reference {ref[:40]!r}")
    return (int(m.group(2)) if m.group(2) else 0, _col_number(m.group(1)) if m.group(1) else 0)


def _where(row: int, col: int) -> str:
    """Name a position for the officer: a cell, or a whole row or column."""
    if row and col:
        return f"ô {_col_letters(min(col, 10**7))}{row}"
    if row:
        return f"dòng {row}"
    return f"cột {_col_letters(min(col, 10**7))}"


def local_name(name: str) -> str:
    return name[name.rfind(":") + 1 :]


_PREFIXED_CELL = re.compile(rb"<[\w.-]+:(?:c|row)[\s/>]")
# Cell and row tags written any other way than `<c r="..."`: no r, or odd whitespace.
_IRREGULAR = (b"<c>", b"<c/", b"<row>", b"<row/", b"<c\t", b"<c\n", b"<c\r", b"<row\t",
              b"<row\n", b"<row\r")
_REF_ATTR = re.compile(rb"""\sref\s*=\s*["']([^"'<>]*)["']""")
_WS_AFTER_NAME = frozenset(b" \t\r\n/>")


@functools.lru_cache(maxsize=32)
def _suspect_pattern(letters: int, digits: int) -> re.Pattern[bytes]:
    """Match only r values that might pass the extent, or that are not plain A1 references."""
    return re.compile(
        rb' r="[A-Za-z]*(?:[A-Za-z]{%d}|[0-9]{%d}|[^A-Za-z0-9"])[^"]*"' % (letters, digits)
    )


class FastSheetScan:
    """Measure a worksheet's extent with byte counts and one literal-led regex.

    Exact only for sheets written the way Excel, LibreOffice and openpyxl write them: every
    ``<c>``/``<row>`` unprefixed and carrying ``r="..."``, every dimension, merge and hyperlink
    tag carrying its ``ref``. Anything else clears ``exact`` and the caller re-measures the
    sheet with ``SheetExtent`` through expat.
    """

    def __init__(self, limits: Limits, sheet: str) -> None:
        self.exact = True
        self.checker = SheetExtent(limits, sheet)
        self.suspect = _suspect_pattern(
            len(_col_letters(self.checker.max_col)), len(str(self.checker.max_row))
        )

    def feed(self, piece: bytes) -> None:
        if not self.exact or not piece:
            return
        tags = piece.count(b"<c ") + piece.count(b"<row ")
        if (
            tags != piece.count(b' r="')
            or any(form in piece for form in _IRREGULAR)
            or ((b":c" in piece or b":row" in piece) and _PREFIXED_CELL.search(piece))
        ):
            self.exact = False
            return
        checker = self.checker
        for m in self.suspect.finditer(piece):
            row, col = _split_ref(m.group()[4:-1].decode("ascii", "replace"))
            if row > checker.max_row or col > checker.max_col:
                checker._refuse(row, col)
        for name in (b"dimension", b"mergeCell", b"hyperlink"):
            at = piece.find(name)
            while at >= 0:
                after = at + len(name)
                if (at > 0 and piece[at - 1] in b"<:" and after < len(piece)
                        and piece[after] in _WS_AFTER_NAME):
                    close = piece.find(b">", after)
                    m = _REF_ATTR.search(piece, after, close if close >= 0 else len(piece))
                    if m is None:
                        self.exact = False
                        return
                    for part in m.group(1).decode("ascii", "replace").split(":"):
                        if part:
                            row, col = _split_ref(part)
                            if row > checker.max_row or col > checker.max_col:
                                checker._refuse(row, col)
                at = piece.find(name, after)



class SheetExtent:
    """Track the real extent of a worksheet as expat streams it (explicit and implicit cells)."""

    def __init__(self, limits: Limits, sheet: str) -> None:
        self.max_row = min(limits.max_row, EXCEL_MAX_ROW)
        self.max_col = min(limits.max_col, EXCEL_MAX_COL)
        self.sheet = sheet
        self.row = 0
        self.col = 0

    def _refuse(self, row: int, col: int) -> None:
        cell = _where(row, col)
        raise Refusal(
            "extent", sheet=self.sheet, cell=cell[:32], max_row=self.max_row,
            max_col=_col_letters(self.max_col), detail=f"{self.sheet} reaches row {row} col {col}",
        )

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = name if ":" not in name else local_name(name)
        if local == "c":
            ref = attrs.get("r")
            if ref is None:
                self.col += 1
            else:
                row, col = _split_ref(ref)
                self.col = col
                if row and row > self.max_row:
                    self._refuse(row, col)
            if self.col > self.max_col:
                self._refuse(self.row, self.col)
        elif local == "row":
            ref = attrs.get("r")
            if ref is None:
                self.row += 1
            elif ref.isdigit():
                self.row = int(ref)
            else:
                raise Refusal("corrupt", detail=f"row r={ref[:20]!r}")
            self.col = 0
            if self.row > self.max_row:
                self._refuse(self.row, 1)
        elif local in ("dimension", "mergeCell", "hyperlink"):
            for part in attrs.get("ref", "").split(":"):
                if part:
                    row, col = _split_ref(part)
                    if row > self.max_row or col > self.max_col:
                        self._refuse(row, col)


class OdsExtent:
    """Expand ODS repeats arithmetically; only repeats that hold content count toward extent."""

    # Elements of content.xml that embed, run or fetch something.
    _ACTIVE = {
        "object": "đối tượng nhúng", "object-ole": "đối tượng nhúng (OLE)", "plugin": "đối tượng nhúng (plugin)",
        "applet": "đối tượng nhúng (applet)", "script": "mã lệnh (script)", "event-listener": "mã lệnh gắn sự kiện",
        "dde-source": "liên kết DDE", "dde-connection-decl": "liên kết DDE", "dde-link": "liên kết DDE",
        "cell-range-source": "liên kết tới dữ liệu bên ngoài", "database-source-sql": "kết nối cơ sở dữ liệu",
        "database-source-query": "kết nối cơ sở dữ liệu", "database-source-table": "kết nối cơ sở dữ liệu",
    }

    def __init__(self, limits: Limits, formulas: list[tuple[str, str, bool]] | None = None) -> None:
        self.max_row = min(limits.max_row, EXCEL_MAX_ROW)
        self.max_col = min(limits.max_col, EXCEL_MAX_COL)
        self.formulas = formulas if formulas is not None else []
        self.sheet_names: list[str] = []
        self.depth = 0  # nesting of table:table; sub-tables inside cells are not grid rows
        self.row = 0
        self.col = 0
        self.row_repeat = 1
        self.cell_repeat = 1
        self.in_cell = False
        self.cell_content = False

    @staticmethod
    def _repeat(attrs: dict[str, str], attr: str) -> int:
        for key, value in attrs.items():
            if local_name(key) == attr:
                if not value.isdigit() or int(value) < 1:
                    raise Refusal("corrupt", detail=f"{attr}={value[:20]!r}")
                return int(value)
        return 1

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = local_name(name)
        if local in self._ACTIVE:
            raise Refusal("active_content", what=self._ACTIVE[local], detail=f"ODF element {name}")
        if local == "table":
            self.depth += 1
            if self.depth == 1:
                self.sheet_names.append(next(
                    (v for k, v in attrs.items() if local_name(k) == "name"), ""))
                self.row = 0
            return
        if self.depth != 1:
            return
        if self.in_cell:
            self.cell_content = True  # any child element (text:p, annotation) is content
        elif local == "table-row":
            self.row_repeat = self._repeat(attrs, "number-rows-repeated")
            self.col = 0
        elif local in ("table-cell", "covered-table-cell"):
            self.cell_repeat = self._repeat(attrs, "number-columns-repeated")
            self.in_cell = True
            self.cell_content = any(local_name(k) == "value-type" for k in attrs)
            formula = next((v for k, v in attrs.items() if local_name(k) == "formula"), None)
            if formula is not None:
                self._formula(formula, attrs)

    def _formula(self, formula: str, attrs: dict[str, str]) -> None:
        sheet = self.sheet_names[-1] if self.sheet_names else "?"
        reach = external_reach(formula)
        if reach is not None:
            raise Refusal("active_content", what=f"công thức có {reach} trên trang «{sheet}» ({formula[:60]})",
                          detail=f"ods formula {formula[:120]!r}")
        cached = any(local_name(k) in ("value", "string-value", "boolean-value", "date-value", "time-value")
                     for k in attrs)
        for offset in range(min(self.cell_repeat, 64)):
            self.formulas.append((sheet, f"{_col_letters(self.col + 1 + offset)}{self.row + 1}", cached))

    def end(self, name: str) -> None:
        local = local_name(name)
        if local == "table":
            self.depth -= 1
            return
        if self.depth != 1:
            return
        if local in ("table-cell", "covered-table-cell") and self.in_cell:
            self.in_cell = False
            self.col += self.cell_repeat
            if self.cell_content:
                last_row = self.row + self.row_repeat
                if last_row > self.max_row or self.col > self.max_col:
                    refusal = Refusal(
                        "extent", sheet=self.sheet_names[-1] if self.sheet_names else "?",
                        cell=_where(last_row, self.col)[:32],
                        max_row=self.max_row, max_col=_col_letters(self.max_col),
                        detail=f"ods content reaches row {last_row} col {self.col}",
                    )
                    raise refusal
        elif local == "table-row":
            self.row += self.row_repeat
            self.row_repeat = 1
