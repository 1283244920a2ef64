"""Plausible numbers for a demo return: every input cell of a form filled so that no error rule fires.

Pure: a Form in, values out. Small numbers derived from each cell's position (no randomness, so two
seeds write the same files), then every equality rule whose left side is one input cell is solved for
it, and any cell still named by an error is set to 0 (zeros pass every rule of the shipped forms).
"""
from __future__ import annotations

import hashlib
import re

from .catalog import Form
from .expressions import Cell, CellKey
from .rules import evaluate, evaluate_expression


_CELLS = re.compile(r"\b[A-Z]{1,3}\d+\b")


def _seed_value(key: CellKey) -> int:
    # The same number in both periods (column keys are "<period>_<breakdown>"): no stock-movement warning.
    sheet, row, column = key
    digest = hashlib.sha256(f"{sheet}/{row}/{column.split('_', 1)[-1]}".encode()).digest()
    return 1 + digest[0] % 40


def demo_values(form: Form, scale: int = 1) -> dict[CellKey, float]:
    """Return a value for every input cell of ``form`` passing all its error rules."""
    inputs = form.input_keys()
    values: dict[CellKey, float] = {key: float(_seed_value(key) * scale) for key in inputs}
    where = {form.address(key): key for key in inputs}
    def solve() -> list[str]:
        for _ in range(3):
            for rule in form.rules:
                for instance in rule.instances:
                    if (rule.check.op == "=" and isinstance(instance.left, Cell)
                            and instance.left.key in values):
                        solved = evaluate_expression(instance.right, values)
                        if solved is not None:
                            values[instance.left.key] = solved
        return [i.sheet for i in evaluate(form, values) if i.severity == "error"]

    for _ in range(40):
        bad = solve()
        if not bad:
            break
        for issue in evaluate(form, values):
            if issue.severity != "error":
                continue
            # The message names the cells to check ("Kiểm tra lại ô D7, D8, …"): zero the largest of them.
            named = [issue.cell] + _CELLS.findall(issue.message.split("Kiểm tra lại ô")[-1])
            keys = [where[(issue.sheet, c)] for c in named if (issue.sheet, c) in where]
            if keys:
                biggest = max(keys, key=lambda k: values[k])
                values[biggest] = 0.0
    else:
        # What a cell-by-cell repair cannot settle (a total against its largest group) gets zeros, sheet-wide.
        for sheet in set(solve()):
            for key in inputs:
                if form.address(key)[0] == sheet:
                    values[key] = 0.0
        if solve():
            values = dict.fromkeys(inputs, 0.0)
    return {k: (int(v) if float(v).is_integer() else v) for k, v in values.items()}
