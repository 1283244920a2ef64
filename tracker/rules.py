"""Evaluate a form's checks on the numbers of a return.

Values are keyed ``(sheet_code, row_code, column_key)``; None is a blank cell.  Nothing here runs
Python code taken from a definition: rules were parsed into a small tree by ``tracker.expressions``.
Checking a return evaluates each shape of tree once over all its instances with numpy (see
"Vectorised evaluation" below); the scalar walk serves single expressions (the export).  A rule instance touching a blank cell is skipped (blanks are reported as missing
by the parser), and so is one that would divide by zero.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracker import wording
from tracker.catalog import Form, Rule, RuleInstance, Severity
from tracker.expressions import BinOp, Call, Cell, CellKey, Expr, Neg, Number

Values = Mapping[CellKey, float | None]

_OPERATOR_TEXT = {
    "=": "phải bằng",
    "<=": "phải nhỏ hơn hoặc bằng",
    "<": "phải nhỏ hơn",
    ">=": "phải lớn hơn hoặc bằng",
    ">": "phải lớn hơn",
}
_FUNCTION_TEXT = {"sum": "tổng", "max": "giá trị lớn nhất", "min": "giá trị nhỏ nhất"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Issue:
    """One finding on a return: ``sheet`` is the Excel sheet name, ``cell`` an A1 address."""

    severity: Severity
    sheet: str
    cell: str
    indicator: str
    message: str
    rule_id: str


@dataclass(frozen=True)
class _CellInfo:
    sheet_index: int
    sheet_name: str
    address: str
    excel_row: int
    col_index: int
    indicator: str
    row_label: str
    column_label: str
    period_label: str
    integer: bool
    stock: bool


class _FormLookups:
    """Per-form lookups computed once: addresses and labels of every cell."""

    def __init__(self, form: Form) -> None:
        self.cells: dict[CellKey, _CellInfo] = {}
        self.inputs: list[CellKey] = []
        self.stock_pairs: list[tuple[CellKey, CellKey]] = []
        first, last = form.periods[0].key, form.periods[-1].key
        for index, sheet in enumerate(form.sheets):
            for computed in (False, True):
                cells = sheet.computed_cells() if computed else sheet.input_cells()
                for row, column, address in cells:
                    key = (sheet.code, row.code, column.key)
                    self.cells[key] = _CellInfo(
                        index, sheet.name, address, row.excel_row, column.index, row.indicator,
                        row.label, column.label, column.period_label,
                        row.number == "integer" and not computed, row.kind == "stock",
                    )
                    if not computed:
                        self.inputs.append(key)
                        if row.kind == "stock" and column.period == last and first != last:
                            base = (sheet.code, row.code, f"{first}_{column.breakdown}")
                            self.stock_pairs.append((base, key))
        self.computed_keys = frozenset(c.key for c in form.computed)
        self.position = {
            (info.sheet_name, info.address): (info.sheet_index, info.excel_row, info.col_index)
            for info in self.cells.values()
        }


_LOOKUPS: weakref.WeakKeyDictionary[Form, _FormLookups] = weakref.WeakKeyDictionary()


def _lookups(form: Form) -> _FormLookups:
    lookups = _LOOKUPS.get(form)
    if lookups is None:
        lookups = _LOOKUPS[form] = _FormLookups(form)
    return lookups


def format_number(value: float | None) -> str:
    """Return ``value`` written the Vietnamese way ("1.234", "12,5"); "trống" for a blank."""
    return wording.format_number(value, blank="trống")


def _eval(expr: Expr, values: Values) -> float | None:
    kind = type(expr)
    if kind is Cell:
        return values.get(expr.key)  # type: ignore[union-attr]
    if kind is Number:
        return expr.value  # type: ignore[union-attr]
    if kind is BinOp:
        assert isinstance(expr, BinOp)
        left = _eval(expr.left, values)
        right = _eval(expr.right, values)
        if left is None or right is None:
            return None
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        return None if right == 0 else left / right
    if kind is Call:
        assert isinstance(expr, Call)
        items = [_eval(arg, values) for arg in expr.args]
        if any(item is None for item in items):
            return None
        numbers = [item for item in items if item is not None]
        if expr.func == "sum":
            return math.fsum(numbers)
        return max(numbers) if expr.func == "max" else min(numbers)
    if kind is Neg:
        assert isinstance(expr, Neg)
        operand = _eval(expr.operand, values)
        return None if operand is None else -operand
    raise TypeError(f"unresolved expression node {expr!r}")


def evaluate_expression(expr: Expr, values: Values) -> float | None:
    """Return the value of a resolved expression; None when a cell is blank or a divisor is zero."""
    return _eval(expr, values)


def _side_label(expr: Expr, lookups: _FormLookups) -> str:
    if isinstance(expr, Cell):
        info = lookups.cells.get(expr.key)
        return f"«{info.row_label}»" if info else "ô"
    if isinstance(expr, Call) and expr.args and all(isinstance(a, Cell) for a in expr.args):
        first, last = expr.args[0], expr.args[-1]
        assert isinstance(first, Cell) and isinstance(last, Cell)
        names = [lookups.cells[first.key].row_label, lookups.cells[last.key].row_label]
        return f"{_FUNCTION_TEXT[expr.func]} các chỉ tiêu từ «{names[0]}» đến «{names[1]}»"
    return "vế còn lại"


def _cells_text(instance: RuleInstance, lookups: _FormLookups, anchor: _CellInfo) -> str:
    parts = []
    for key in instance.cells:
        info = lookups.cells[key]
        parts.append(info.address if info.sheet_name == anchor.sheet_name
                     else f"{info.address} ({info.sheet_name})")
    return ", ".join(parts)


def _rule_issue(rule: Rule, instance: RuleInstance, left: float, right: float, lookups: _FormLookups) -> Issue:
    anchor = lookups.cells[instance.anchor]
    cells = _cells_text(instance, lookups, anchor)
    context = {
        "left": format_number(left),
        "right": format_number(right),
        "cells": cells,
        "row": anchor.row_label,
        "column": anchor.column_label,
        "period": anchor.period_label,
        "left_label": _side_label(instance.left, lookups),
        "right_label": _side_label(instance.right, lookups),
    }
    template = rule.message or (
        "{left_label} ({left}) " + _OPERATOR_TEXT[rule.check.op] + " {right_label} ({right}), cột {column}."
    )
    text = _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), template)
    if "{cells}" not in template:
        text = f"{text} Kiểm tra lại ô {cells}."
    return Issue(rule.severity, anchor.sheet_name, anchor.address, anchor.indicator, text, rule.id)


def _where(info: _CellInfo) -> str:
    return f"Ô {info.address} («{info.row_label}», {info.column_label})"


def _not_a_number_issue(info: _CellInfo) -> Issue:
    return Issue("error", info.sheet_name, info.address, info.indicator,
                 f"{_where(info)} không phải là số hợp lệ. Nhập lại một số.", "number")


def _negative_issue(info: _CellInfo, value: float) -> Issue:
    return Issue("error", info.sheet_name, info.address, info.indicator,
                 f"{_where(info)} phải là số không âm (đang là {format_number(value)}). Sửa lại số liệu.",
                 "nonnegative")


def _fraction_issue(info: _CellInfo, value: float) -> Issue:
    return Issue("error", info.sheet_name, info.address, info.indicator,
                 f"{_where(info)} phải là số nguyên (đang là {format_number(value)}). Sửa lại số liệu.",
                 "integer")


def _stock_issue(info: _CellInfo, base_info: _CellInfo, base: float, current: float, change: float,
                 ratio: float) -> Issue:
    return Issue(
        "warning", info.sheet_name, info.address, info.indicator,
        # A base of a few 1e-300 makes the change overflow to infinity: say so rather than fail to round it.
        f"«{info.row_label}» thay đổi "
        f"{format_number(round(change * 100)) + '%' if math.isfinite(change * 100) else 'rất nhiều'} giữa "
        f"{base_info.period_label} ({format_number(base)}) và {info.period_label} "
        f"({format_number(current)}), vượt ngưỡng {format_number(ratio * 100)}%. "
        f"Kiểm tra lại ô {base_info.address} và {info.address}; nếu số liệu đúng, "
        "ghi lý do vào cột Ghi chú.",
        "stock_change",
    )


# ---------------------------------------------------------------------------------------------
# Vectorised evaluation
#
# Every cell of the form (inputs, then computed cells) has a slot in one float vector; a parallel
# boolean vector says which slots hold a value (None is a blank). Rule instances and computed cells
# are grouped by the shape of their expression (the tree with its cells taken out): the 346 rule
# instances of PL03 have 13 shapes. Each group is evaluated once with numpy over a matrix of slot
# numbers, so the cost grows with the number of shapes, not of cells; only the failing instances
# become Python objects (their messages).

_Shape = tuple[Any, ...]


def _shape_of(expr: Expr, leaves: list[CellKey]) -> _Shape:
    """Return the shape of a resolved expression and append its cells, left to right, to ``leaves``."""
    if isinstance(expr, Cell):
        leaves.append(expr.key)
        return ("cell",)
    if isinstance(expr, Number):
        return ("num", expr.value)
    if isinstance(expr, BinOp):
        return (expr.op, _shape_of(expr.left, leaves), _shape_of(expr.right, leaves))
    if isinstance(expr, Call):
        return ("call", expr.func, tuple(_shape_of(arg, leaves) for arg in expr.args))
    if isinstance(expr, Neg):
        return ("neg", _shape_of(expr.operand, leaves))
    raise TypeError(f"unresolved expression node {expr!r}")


_EXACT = 2.0 ** 53


def _fsum_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Return math.fsum of each row of ``parts``: a plain sum where every term is a whole number and the
    terms' magnitudes stay below 2**53 (then any order of addition is exact), math.fsum on the other rows."""
    total = parts[0].copy()
    magnitude = np.abs(parts[0])
    whole = parts[0] == np.floor(parts[0])
    for part in parts[1:]:
        total += part
        magnitude += np.abs(part)
        whole &= part == np.floor(part)
    inexact = np.flatnonzero(~(whole & (magnitude < _EXACT)))
    for row in inexact.tolist():
        total[row] = math.fsum(float(part[row]) for part in parts)
    return total


def _vector(shape: _Shape, columns: np.ndarray, at: int, bad: np.ndarray) -> tuple[np.ndarray, int]:
    """Return the values of ``shape`` over the rows of ``columns`` (one column per cell, from ``at``).

    Marks in ``bad`` the rows where a divisor is zero: the scalar rules give None there, so the
    instance is skipped. Arithmetic is IEEE double, as in the scalar evaluator.
    """
    tag = shape[0]
    if tag == "cell":
        return columns[:, at], at + 1
    if tag == "num":
        return np.full(columns.shape[0], float(shape[1])), at
    if tag == "neg":
        operand, at = _vector(shape[1], columns, at, bad)
        return -operand, at
    if tag == "call":
        parts = []
        for arg in shape[2]:
            part, at = _vector(arg, columns, at, bad)
            parts.append(part)
        if shape[1] == "sum":
            return _fsum_rows(parts), at
        # As the builtins compare (item > best, item < best), so a NaN given directly stays where it would.
        best = parts[0]
        for part in parts[1:]:
            best = np.where(part > best, part, best) if shape[1] == "max" else np.where(part < best, part, best)
        return best, at
    left, at = _vector(shape[1], columns, at, bad)
    right, at = _vector(shape[2], columns, at, bad)
    if tag == "+":
        return left + right, at
    if tag == "-":
        return left - right, at
    if tag == "*":
        return left * right, at
    zero = right == 0
    bad |= zero
    return left / np.where(zero, 1.0, right), at


def _holds_vector(op: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Return ``_holds(op, l, r)`` for every pair: math.isclose's symmetric test, then the comparison."""
    diff = np.abs(left - right)
    close = (left == right) | (np.isfinite(diff) & (
        (diff <= 1e-9 * np.abs(left)) | (diff <= 1e-9 * np.abs(right)) | (diff <= 1e-6)))
    if op == "=":
        return close
    if op == "<=":
        return close | (left < right)
    if op == ">=":
        return close | (left > right)
    if op == "<":
        return ~close & (left < right)
    return ~close & (left > right)


@dataclass(frozen=True)
class _Group:
    """Expressions of one shape: ``slots`` has one row per expression, one column per cell."""

    left: _Shape
    right: _Shape | None
    op: str
    slots: np.ndarray
    split: int  # columns [0, split) feed the left side, the rest the right side
    owners: np.ndarray  # computed: the slot written; rules: (rule number, instance number) per row


class _Engine:
    """Per-form slots and shape groups, built once per form."""

    def __init__(self, form: Form, lookups: _FormLookups) -> None:
        self.keys: list[CellKey] = list(lookups.inputs) + [c.key for c in form.computed]
        self.slot = {key: index for index, key in enumerate(self.keys)}
        self.inputs = len(lookups.inputs)
        self.infos = [lookups.cells[key] for key in lookups.inputs]
        self.integer = np.array([info.integer for info in self.infos], dtype=bool)
        self.stock_pairs = [(b, c) for b, c in lookups.stock_pairs if b in self.slot and c in self.slot]
        self.stock_base = np.array([self.slot[b] for b, _ in self.stock_pairs], dtype=np.intp)
        self.stock_current = np.array([self.slot[c] for _, c in self.stock_pairs], dtype=np.intp)
        computed: dict[_Shape, tuple[list[list[int]], list[int]]] = {}
        for cell in form.computed:
            leaves: list[CellKey] = []
            shape = _shape_of(cell.expr, leaves)
            rows, owners = computed.setdefault(shape, ([], []))
            rows.append([self.slot[k] for k in leaves])
            owners.append(self.slot[cell.key])
        self.computed = [_Group(shape, None, "", np.array(rows, dtype=np.intp).reshape(len(rows), -1),
                                0, np.array(owners, dtype=np.intp))
                         for shape, (rows, owners) in computed.items()]
        rules: dict[tuple[str, _Shape, _Shape, int], tuple[list[list[int]], list[tuple[int, int]]]] = {}
        for rule_no, rule in enumerate(form.rules):
            for instance_no, instance in enumerate(rule.instances):
                left_leaves: list[CellKey] = []
                right_leaves: list[CellKey] = []
                left = _shape_of(instance.left, left_leaves)
                right = _shape_of(instance.right, right_leaves)
                rows, pairs = rules.setdefault((rule.check.op, left, right, len(left_leaves)), ([], []))
                rows.append([self.slot[k] for k in left_leaves + right_leaves])
                pairs.append((rule_no, instance_no))
        self.rules = [_Group(left, right, op, np.array(rows, dtype=np.intp).reshape(len(rows), -1), split,
                             np.array(pairs, dtype=np.intp).reshape(len(pairs), 2))
                      for (op, left, right, split), (rows, pairs) in rules.items()]

    def load(self, values: Values) -> tuple[np.ndarray, np.ndarray]:
        """Return (numbers, present) for the inputs of ``values``; computed slots start empty."""
        raw = [values.get(key) for key in self.keys[:self.inputs]]
        present = np.zeros(len(self.keys), dtype=bool)
        present[:self.inputs] = [value is not None for value in raw]
        numbers = np.full(len(self.keys), np.nan)
        numbers[:self.inputs] = np.array(raw, dtype=float)
        return numbers, present

    def compute(self, numbers: np.ndarray, present: np.ndarray) -> None:
        """Fill the computed slots from the inputs (blank when a cell is blank or a divisor zero)."""
        results = []
        for group in self.computed:
            bad = ~present[group.slots].all(axis=1)
            value, _ = _vector(group.left, numbers[group.slots], 0, bad)
            results.append((group.owners, value, ~bad))
        # Written after all are computed: a computed cell never reads another one (the loader checks).
        for owners, value, ok in results:
            numbers[owners] = np.where(ok, value, np.nan)
            present[owners] = ok

    def failures(self, numbers: np.ndarray, present: np.ndarray) -> list[tuple[int, int, float, float]]:
        """Return (rule number, instance number, left, right) of every instance that fails, in rule order."""
        found: list[tuple[int, int, float, float]] = []
        for group in self.rules:
            columns = numbers[group.slots]
            skip = ~present[group.slots].all(axis=1)
            left, _ = _vector(group.left, columns[:, :group.split], 0, skip)
            assert group.right is not None
            right, _ = _vector(group.right, columns[:, group.split:], 0, skip)
            failing = np.flatnonzero(~skip & ~_holds_vector(group.op, left, right))
            for row in failing.tolist():
                rule_no, instance_no = group.owners[row].tolist()
                found.append((rule_no, instance_no, float(left[row]), float(right[row])))
        found.sort(key=lambda item: (item[0], item[1]))
        return found


_ENGINES: weakref.WeakKeyDictionary[Form, _Engine] = weakref.WeakKeyDictionary()


def _engine(form: Form) -> _Engine:
    engine = _ENGINES.get(form)
    if engine is None:
        engine = _ENGINES[form] = _Engine(form, _lookups(form))
    return engine


def compute(form: Form, values: Values) -> dict[CellKey, float | None]:
    """Return every computed cell (percentages, sex ratio at birth) recomputed from the inputs.

    A computed cell is None when an input it needs is blank or its denominator is zero.  Values
    given for computed cells are ignored: they are never read from a file.
    """
    engine = _engine(form)
    with np.errstate(all="ignore"):
        numbers, present = engine.load(values)
        engine.compute(numbers, present)
    tail = slice(engine.inputs, None)
    return {key: (value if ok else None) for key, value, ok in
            zip(engine.keys[tail], numbers[tail].tolist(), present[tail].tolist())}


def _generic_issues(form: Form, engine: _Engine, lookups: _FormLookups, numbers: np.ndarray,
                    present: np.ndarray) -> list[Issue]:
    count = engine.inputs
    values, given = numbers[:count], present[:count]
    invalid = given & ~np.isfinite(values)
    negative = given & ~invalid & (values < 0)
    fraction = given & ~invalid & ~negative & engine.integer & (values != np.floor(values))
    issues: list[Issue] = []
    for index in np.flatnonzero(invalid | negative | fraction).tolist():
        info, value = engine.infos[index], float(values[index])
        if invalid[index]:
            issues.append(_not_a_number_issue(info))
        elif negative[index]:
            issues.append(_negative_issue(info, value))
        else:
            issues.append(_fraction_issue(info, value))
    ratio = form.stock_change_ratio
    if ratio > 0 and len(engine.stock_base):
        base, current = numbers[engine.stock_base], numbers[engine.stock_current]
        usable = present[engine.stock_base] & present[engine.stock_current] & (base > 0)
        change = np.abs(current - base) / np.where(usable, base, 1.0)
        for index in np.flatnonzero(usable & (change > ratio)).tolist():
            base_key, current_key = engine.stock_pairs[index]
            issues.append(_stock_issue(lookups.cells[current_key], lookups.cells[base_key], float(base[index]),
                                       float(current[index]), float(change[index]), ratio))
    return issues


def check(form: Form, values: Values) -> tuple[list[Issue], dict[CellKey, float | None]]:
    """Return (every issue, as ``evaluate`` gives them; every computed cell, as ``compute`` gives them)."""
    lookups = _lookups(form)
    engine = _engine(form)
    with np.errstate(all="ignore"):
        numbers, present = engine.load(values)
        engine.compute(numbers, present)
        issues = _generic_issues(form, engine, lookups, numbers, present)
        failures = engine.failures(numbers, present)
    for rule_no, instance_no, left, right in failures:
        rule = form.rules[rule_no]
        issues.append(_rule_issue(rule, rule.instances[instance_no], left, right, lookups))
    issues.sort(key=lambda issue: lookups.position.get((issue.sheet, issue.cell), (0, 0, 0)))
    tail = slice(engine.inputs, None)
    computed = {key: (value if ok else None) for key, value, ok in
                zip(engine.keys[tail], numbers[tail].tolist(), present[tail].tolist())}
    return issues, computed


def evaluate(form: Form, values: Values) -> list[Issue]:
    """Return every issue of a return: the form's rules, non-negative (integer) numbers, stock moves.

    ``values`` maps (sheet, row, column) to the parsed number or None for a blank; computed cells
    are recomputed.  Issues come in sheet, row and column order.  Raises nothing for unknown keys.
    """
    return check(form, values)[0]
