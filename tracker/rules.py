"""Evaluate a form's checks on the numbers of a return.

Values are keyed ``(sheet_code, row_code, column_key)``; None is a blank cell.  Nothing here runs
Python code taken from a definition: rules were parsed into a small tree by ``tracker.catalog`` and
are walked here.  A rule instance touching a blank cell is skipped (blanks are reported as missing
by the parser), and so is one that would divide by zero.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from tracker import wording
from tracker.catalog import (
    BinOp,
    Call,
    Cell,
    CellKey,
    Expr,
    Form,
    Neg,
    Number,
    Rule,
    RuleInstance,
    Severity,
)

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


class _Plan:
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


_PLANS: weakref.WeakKeyDictionary[Form, _Plan] = weakref.WeakKeyDictionary()


def _plan(form: Form) -> _Plan:
    plan = _PLANS.get(form)
    if plan is None:
        plan = _PLANS[form] = _Plan(form)
    return plan


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


def _holds(op: str, left: float, right: float) -> bool:
    # Sums of decimal amounts (million VND) pick up float noise; counts are exact either way.
    if math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6):
        return op in ("=", "<=", ">=")
    if op == "=":
        return False
    if op == "<=" or op == "<":
        return left < right
    return left > right


def compute(form: Form, values: Values) -> dict[CellKey, float | None]:
    """Return every computed cell (percentages, sex ratio at birth) recomputed from the inputs.

    A computed cell is None when an input it needs is blank or its denominator is zero.  Values
    given for computed cells are ignored: they are never read from a file.
    """
    return {cell.key: _eval(cell.expr, values) for cell in form.computed}


def _side_label(expr: Expr, plan: _Plan) -> str:
    if isinstance(expr, Cell):
        info = plan.cells.get(expr.key)
        return f"«{info.row_label}»" if info else "ô"
    if isinstance(expr, Call) and expr.args and all(isinstance(a, Cell) for a in expr.args):
        first, last = expr.args[0], expr.args[-1]
        assert isinstance(first, Cell) and isinstance(last, Cell)
        names = [plan.cells[first.key].row_label, plan.cells[last.key].row_label]
        return f"{_FUNCTION_TEXT[expr.func]} các chỉ tiêu từ «{names[0]}» đến «{names[1]}»"
    return "vế còn lại"


def _cells_text(instance: RuleInstance, plan: _Plan, anchor: _CellInfo) -> str:
    parts = []
    for key in instance.cells:
        info = plan.cells[key]
        parts.append(info.address if info.sheet_name == anchor.sheet_name
                     else f"{info.address} ({info.sheet_name})")
    return ", ".join(parts)


def _rule_issue(rule: Rule, instance: RuleInstance, left: float, right: float, plan: _Plan) -> Issue:
    anchor = plan.cells[instance.anchor]
    cells = _cells_text(instance, plan, anchor)
    context = {
        "left": format_number(left),
        "right": format_number(right),
        "cells": cells,
        "row": anchor.row_label,
        "column": anchor.column_label,
        "period": anchor.period_label,
        "left_label": _side_label(instance.left, plan),
        "right_label": _side_label(instance.right, plan),
    }
    template = rule.message or (
        "{left_label} ({left}) " + _OPERATOR_TEXT[rule.check.op] + " {right_label} ({right}), cột {column}."
    )
    text = _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), template)
    if "{cells}" not in template:
        text = f"{text} Kiểm tra lại ô {cells}."
    return Issue(rule.severity, anchor.sheet_name, anchor.address, anchor.indicator, text, rule.id)


def _generic_issues(form: Form, values: Values, plan: _Plan) -> list[Issue]:
    issues: list[Issue] = []
    for key in plan.inputs:
        value = values.get(key)
        if value is None:
            continue
        info = plan.cells[key]
        where = f"Ô {info.address} («{info.row_label}», {info.column_label})"
        if math.isnan(value) or math.isinf(value):
            issues.append(Issue("error", info.sheet_name, info.address, info.indicator,
                                f"{where} không phải là số hợp lệ. Nhập lại một số.", "number"))
        elif value < 0:
            issues.append(Issue("error", info.sheet_name, info.address, info.indicator,
                                f"{where} phải là số không âm (đang là {format_number(value)}). "
                                "Sửa lại số liệu.", "nonnegative"))
        elif info.integer and value != math.floor(value):
            issues.append(Issue("error", info.sheet_name, info.address, info.indicator,
                                f"{where} phải là số nguyên (đang là {format_number(value)}). "
                                "Sửa lại số liệu.", "integer"))
    ratio = form.stock_change_ratio
    if ratio > 0:
        for base_key, current_key in plan.stock_pairs:
            base, current = values.get(base_key), values.get(current_key)
            if base is None or current is None or base <= 0:
                continue
            change = abs(current - base) / base
            if change > ratio:
                info = plan.cells[current_key]
                base_info = plan.cells[base_key]
                issues.append(Issue(
                    "warning", info.sheet_name, info.address, info.indicator,
                    f"«{info.row_label}» thay đổi {format_number(round(change * 100))}% giữa "
                    f"{base_info.period_label} ({format_number(base)}) và {info.period_label} "
                    f"({format_number(current)}), vượt ngưỡng {format_number(ratio * 100)}%. "
                    f"Kiểm tra lại ô {base_info.address} và {info.address}; nếu số liệu đúng, "
                    "ghi lý do vào cột Ghi chú.",
                    "stock_change",
                ))
    return issues


def evaluate(form: Form, values: Values) -> list[Issue]:
    """Return every issue of a return: the form's rules, non-negative (integer) numbers, stock moves.

    ``values`` maps (sheet, row, column) to the parsed number or None for a blank; computed cells
    are recomputed.  Issues come in sheet, row and column order.  Raises nothing for unknown keys.
    """
    plan = _plan(form)
    merged: dict[CellKey, float | None] = {
        key: value for key, value in values.items() if key not in plan.computed_keys
    }
    merged.update(compute(form, merged))
    issues = _generic_issues(form, merged, plan)
    for rule in form.rules:
        for instance in rule.instances:
            if any(merged.get(key) is None for key in instance.cells):
                continue
            left = _eval(instance.left, merged)
            right = _eval(instance.right, merged)
            if left is None or right is None:
                continue
            if not _holds(rule.check.op, left, right):
                issues.append(_rule_issue(rule, instance, left, right, plan))
    issues.sort(key=lambda issue: plan.position.get((issue.sheet, issue.cell), (0, 0, 0)))
    return issues
