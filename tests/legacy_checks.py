"""The checks as they were before issue 20 vectorised them: a scalar walk of every cell and rule instance.

Kept for the equivalence tests only (tests/test_checks_equivalence.py): the vectorised checks must give
exactly these issues, in this order, and these values. The messages come from the same builders in
``tracker.rules`` and ``tracker.parsing``, so what is compared is which cells and instances are found
wanting, with which numbers, in which order.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from tracker.catalog import Form
from tracker.expressions import CellKey
from tracker.parsing import _at, _blank, _blank_issue, _grid, _missing_sheet_issue, _nfc, _number
from tracker.rules import (
    Issue,
    _eval,
    _fraction_issue,
    _negative_issue,
    _not_a_number_issue,
    _lookups,
    _rule_issue,
    _stock_issue,
)

Values = Mapping[CellKey, float | None]


def holds(op: str, left: float, right: float) -> bool:
    if math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6):
        return op in ("=", "<=", ">=")
    if op == "=":
        return False
    if op == "<=" or op == "<":
        return left < right
    return left > right


def compute(form: Form, values: Values) -> dict[CellKey, float | None]:
    return {cell.key: _eval(cell.expr, values) for cell in form.computed}


def _generic_issues(form: Form, values: Values) -> list[Issue]:
    lookups = _lookups(form)
    issues: list[Issue] = []
    for key in lookups.inputs:
        value = values.get(key)
        if value is None:
            continue
        info = lookups.cells[key]
        if math.isnan(value) or math.isinf(value):
            issues.append(_not_a_number_issue(info))
        elif value < 0:
            issues.append(_negative_issue(info, value))
        elif info.integer and value != math.floor(value):
            issues.append(_fraction_issue(info, value))
    ratio = form.stock_change_ratio
    if ratio > 0:
        for base_key, current_key in lookups.stock_pairs:
            base, current = values.get(base_key), values.get(current_key)
            if base is None or current is None or base <= 0:
                continue
            change = abs(current - base) / base
            if change > ratio:
                issues.append(_stock_issue(lookups.cells[current_key], lookups.cells[base_key], base, current, change,
                                           ratio))
    return issues


def evaluate(form: Form, values: Values) -> list[Issue]:
    lookups = _lookups(form)
    merged: dict[CellKey, float | None] = {
        key: value for key, value in values.items() if key not in lookups.computed_keys
    }
    merged.update(compute(form, merged))
    issues = _generic_issues(form, merged)
    for rule in form.rules:
        for instance in rule.instances:
            if any(merged.get(key) is None for key in instance.cells):
                continue
            left = _eval(instance.left, merged)
            right = _eval(instance.right, merged)
            if left is None or right is None:
                continue
            if not holds(rule.check.op, left, right):
                issues.append(_rule_issue(rule, instance, left, right, lookups))
    issues.sort(key=lambda issue: lookups.position.get((issue.sheet, issue.cell), (0, 0, 0)))
    return issues


def read_values(form: Form, frames: Mapping[str, Any]) -> tuple[dict[CellKey, float | None], list[Issue]]:
    """The per-cell loop of parse_return before issue 20: values of the input cells and their issues."""
    issues: list[Issue] = []
    values: dict[CellKey, float | None] = {}
    for sheet in form.sheets:
        frame = frames.get(_nfc(sheet.name))
        if frame is None:
            if not sheet.optional:
                issues.append(_missing_sheet_issue(sheet))
            continue
        grid = _grid(frame)
        cells = [(row, column, _at(grid, row.excel_row, column.index)) for row, column, _ in sheet.input_cells()]
        if sheet.optional and all(_blank(raw) for _, _, raw in cells):
            continue
        for row, column, raw in cells:
            key = (sheet.code, row.code, column.key)
            if _blank(raw):
                values[key] = None
                if row.required:
                    issues.append(_blank_issue(sheet, row, column))
                continue
            number, issue = _number(raw, sheet, row, column)
            values[key] = number
            if issue is not None:
                issues.append(issue)
    return values, issues


def read_sheets(data: bytes, names: Any) -> dict[str, Any]:
    """The reader before issue 20: pandas.read_excel's calamine engine, with its cell conversion."""
    import io

    import pandas as pd

    with pd.ExcelFile(io.BytesIO(data), engine="calamine") as book:
        present = {_nfc(str(name)): name for name in book.sheet_names}
        wanted = [present[n] for n in dict.fromkeys(_nfc(n) for n in names) if n in present]
        frames = pd.read_excel(book, sheet_name=wanted, header=None, keep_default_na=False,
                               na_values=[]) if wanted else {}
    return {_nfc(str(name)): frame for name, frame in frames.items()}


def parse_both(catalog: Any, data: bytes, form_code: str, secret: str = "") -> tuple[Any, Any]:
    """Run in the parse worker: the outcomes of today's parse_return and of the old read and checks.

    An outcome is a ParseResult-like tuple, ("refused", code) or ("failed", exception type) when the
    reader raised. The old way reads with pandas and checks with the per-cell loop and the rule walk
    above; the identity, the narrative and the ordering of issues are the same code.
    """
    from tracker import parsing
    from tracker.catalog_folder import catalog_at
    from tracker.guard import Refusal

    form = catalog_at(catalog)[form_code]
    try:
        new: Any = parsing.parse_return(data, form, secret)
    except Refusal as refusal:
        new = ("refused", refusal.code)
    except Exception as exc:  # noqa: BLE001 - the reader's own exceptions on a broken file
        new = ("failed", type(exc).__name__)
    try:
        old: Any = _old_parse(data, form, secret)
    except Refusal as refusal:
        old = ("refused", refusal.code)
    except Exception as exc:  # noqa: BLE001
        old = ("failed", type(exc).__name__)
    return new, old


def _old_parse(data: bytes, form: Form, secret: str) -> tuple[Any, ...]:
    from tracker import parsing
    from tracker.guard import Refusal

    from tracker.identity import Expected, check_identity, read_identity
    from tracker.layout import check_layout

    names = (parsing.META_SHEET_NAME, parsing.COVER_SHEET_NAME, form.narrative.name,
             *(sheet.name for sheet in form.sheets))
    frames = read_sheets(data, names)
    # The identity and layout checks (issue 12) are the same code both ways.
    grids = {name: parsing._grid(frame) for name, frame in frames.items()}
    identity = read_identity(grids.get(parsing.META_SHEET_NAME), secret)
    refusal = check_identity(identity, Expected(form.code, form.version, form.layout_fingerprint)) or \
        check_layout(grids, form)
    if refusal is not None:
        raise Refusal(refusal.code, "", 422)
    values, issues = read_values(form, frames)
    issues.extend(evaluate(form, values))
    values.update(compute(form, values))
    narrative = parsing._grid(frames.get(_nfc(form.narrative.name)))
    texts = []
    for section in form.narrative.sections:
        if section.answer:
            raw = _at(narrative, section.excel_row, parsing.NARRATIVE_ANSWER_COL)
            text = None if _blank(raw) else parsing._cell_text(raw)
            texts.append(text)
            if text is None and section.required:
                issues.append(parsing._narrative_issue(form, section))
    # The cover (issue 14) is read by the same code both ways.
    issues.extend(parsing.read_cover(frames.get(_nfc(parsing.COVER_SHEET_NAME)), form)[1])
    return identity, values, texts, list(parsing._in_sheet_order(form, issues))
