"""A copy of a shipped form with every data sheet's rows repeated N times, for the "20× larger" return.

The copy is made on the definition's text, so it goes through the same loader and checks as the
real forms: each sheet's row list is repeated as N blocks (block 1 keeps the codes, block k adds
``_rk`` to every row code and to the references of its computed rows), and every rule that names
rows is repeated for each block with the same suffix. Rules that apply to every row of a sheet
("B01: [total] = [male] + [female]") cover the new rows by themselves. So the large return has N
times the input cells, N times the rule instances, and a valid value for every cell.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from tracker.catalog import Form
from tracker.expressions import CellKey
from tracker.catalog_loader import load_form

_REF = re.compile(r"\b(B\d\d)\.([a-z][a-z0-9_]*)")
_CODE = re.compile(r'\bcode = "([^"]+)"')
_COMPUTED = re.compile(r'\bcomputed = "([^"]+)"')


def _suffix_refs(text: str, suffix: str) -> str:
    return _REF.sub(lambda m: f"{m.group(1)}.{m.group(2)}{suffix}", text)


def _row_copy(line: str, suffix: str) -> str:
    line = _CODE.sub(lambda m: f'code = "{m.group(1)}{suffix}"', line)
    return _COMPUTED.sub(lambda m: f'computed = "{_suffix_refs(m.group(1), suffix)}"', line)


def enlarge_text(text: str, times: int) -> str:
    """Return the TOML text of a form with each sheet's rows and each row-naming rule ``times`` times."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("rows = ["):
            block: list[str] = []
            i += 1
            while not lines[i].startswith("]"):
                block.append(lines[i])
                i += 1
            out.append(line)
            for k in range(1, times + 1):
                suffix = "" if k == 1 else f"_r{k}"
                out.extend(row if k == 1 else _row_copy(row, suffix) for row in block if row.strip())
            out.append(lines[i])
            i += 1
            continue
        if line.startswith("[[rules]]"):
            block = [line]
            i += 1
            while i < len(lines) and not lines[i].startswith("[") and not lines[i].startswith("# ---"):
                block.append(lines[i])
                i += 1
            out.extend(block)
            check = next((b for b in block if b.startswith("check = ")), "")
            if _REF.search(check):
                for k in range(2, times + 1):
                    suffix = f"_r{k}"
                    for b in block:
                        if b.startswith("id = "):
                            out.append(b[:-1] + suffix + '"')
                        elif b.startswith("check = "):
                            out.append(_suffix_refs(b, suffix))
                        else:
                            out.append(b)
            continue
        out.append(line)
        i += 1
    return "\n".join(out) + "\n"


def enlarged_form(source: Path, times: int) -> Form:
    """Return the form of ``source`` enlarged ``times`` times (same code and version)."""
    text = enlarge_text(source.read_text(encoding="utf-8"), times)
    with tempfile.TemporaryDirectory(prefix="bench-form-") as tmp:
        path = Path(tmp) / source.name
        path.write_text(text, encoding="utf-8")
        return load_form(path)


def enlarged_values(base_values: dict[CellKey, Any], big: Form) -> dict[CellKey, Any]:
    """Return a value for every input cell of ``big``: each block repeats the valid base values."""
    values: dict[CellKey, Any] = {}
    for sheet_code, row_code, column_key in big.input_keys():
        base_row = re.sub(r"_r\d+$", "", row_code)
        values[(sheet_code, row_code, column_key)] = base_values[(sheet_code, base_row, column_key)]
    return values
