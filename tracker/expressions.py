"""The rule-expression language of the form definitions: tokenizer, parser and the expression tree.

Rules, computed rows and computed columns are written in this small language and parsed here by a
recursive-descent parser, never evaluated by Python. The tree is bound to a form's cells by the
definition loader (``catalog_loader``), evaluated by ``rules`` and written as Excel formulas by
``workbook``.

Syntax
------
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
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

# (sheet code, row code, column key): one cell of a return, e.g. ("B01", "children", "base_total").
CellKey: TypeAlias = tuple[str, str, str]

FUNCTIONS = ("sum", "max", "min")
COMPARISONS = ("=", "<=", "<", ">=", ">")


class ExpressionError(ValueError):
    """An expression does not follow the syntax; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


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


def refs(expr: Expr) -> Iterator[Ref | RowRange]:
    """Yield every reference of an unresolved expression, as written (ranges not expanded)."""
    if isinstance(expr, (Ref, RowRange)):
        yield expr
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from refs(arg)
    elif isinstance(expr, BinOp):
        yield from refs(expr.left)
        yield from refs(expr.right)
    elif isinstance(expr, Neg):
        yield from refs(expr.operand)


def cell_keys(expr: Expr) -> tuple[CellKey, ...]:
    """Return the cells a resolved expression reads, in reading order (repeats kept)."""
    if isinstance(expr, Cell):
        return (expr.key,)
    if isinstance(expr, Call):
        return tuple(k for arg in expr.args for k in cell_keys(arg))
    if isinstance(expr, BinOp):
        return cell_keys(expr.left) + cell_keys(expr.right)
    if isinstance(expr, Neg):
        return cell_keys(expr.operand)
    return ()

