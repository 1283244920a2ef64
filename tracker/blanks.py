"""Blank cells of a return grouped per sheet as rectangular ranges ("Biểu 03: 130 ô trống, D6:I33").

Pure: the parser names each blank required cell in its own issue; a blank workbook makes hundreds of
them, which read better as a few ranges. Issues in, groups out.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The parser's wording for a required cell left empty (parsing.py): "… còn trống. Nếu không có số liệu…".
BLANK_MARK = "còn trống."
_CELL = re.compile(r"^([A-Z]{1,3})(\d+)$")


@dataclass(frozen=True)
class BlankGroup:
    sheet: str
    count: int
    ranges: tuple[str, ...]

    @property
    def summary(self) -> str:
        return f"{self.sheet}: {self.count} ô trống, {', '.join(self.ranges)}"


@dataclass(frozen=True)
class Blanks:
    groups: tuple[BlankGroup, ...]
    issue_ids: frozenset[int]

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups)


def _column_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - 64
    return index


def _column_letters(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_ranges(cells: Iterable[str]) -> tuple[str, ...]:
    """Return ``cells`` ("D6", "E6", …) merged into rectangles, top to bottom then left to right.

    Consecutive cells of a row make a run; runs with the same columns on consecutive rows make a
    rectangle. Cells that are not A1 references are kept as they are, at the end.
    """
    rows: dict[int, set[int]] = {}
    odd: list[str] = []
    for cell in cells:
        match = _CELL.match(cell.strip().upper())
        if match is None:
            odd.append(cell)
            continue
        rows.setdefault(int(match.group(2)), set()).add(_column_index(match.group(1)))
    open_rects: dict[tuple[int, int], list[int]] = {}
    closed: list[tuple[int, int, int, int]] = []
    for row in sorted(rows):
        columns = sorted(rows[row])
        runs: list[tuple[int, int]] = []
        for column in columns:
            if runs and column == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], column)
            else:
                runs.append((column, column))
        seen = set()
        for run in runs:
            rect = open_rects.get(run)
            if rect is not None and rect[1] == row - 1:
                rect[1] = row
            else:
                if rect is not None:
                    closed.append((rect[0], run[0], rect[1], run[1]))
                open_rects[run] = [row, row]
            seen.add(run)
        for run in [r for r in open_rects if r not in seen and open_rects[r][1] < row]:
            first, last = open_rects.pop(run)
            closed.append((first, run[0], last, run[1]))
    closed.extend((first, run[0], last, run[1]) for run, (first, last) in open_rects.items())
    closed.sort()
    out = []
    for top, left, bottom, right in closed:
        start = f"{_column_letters(left)}{top}"
        end = f"{_column_letters(right)}{bottom}"
        out.append(start if start == end else f"{start}:{end}")
    return tuple(out) + tuple(odd)


def blank_groups(issues: Iterable[Any]) -> Blanks:
    """Return the blank-cell issues of ``issues`` (objects with id, sheet, cell, severity, message) per sheet."""
    by_sheet: dict[str, list[str]] = {}
    ids: set[int] = set()
    for issue in issues:
        if issue.severity == "error" and BLANK_MARK in issue.message and issue.cell:
            by_sheet.setdefault(issue.sheet, []).append(issue.cell)
            ids.add(issue.id)
    groups = tuple(BlankGroup(sheet, len(cells), cell_ranges(cells)) for sheet, cells in by_sheet.items())
    return Blanks(groups, frozenset(ids))


# Half the form's input cells empty: a blank form sent by mistake, or the wrong file.
ALMOST_EMPTY_SHARE = 0.5


def almost_empty(issues: Iterable[Any], input_cells: int) -> int | None:
    """Return how many required cells ``issues`` say are blank when that is at least ALMOST_EMPTY_SHARE of
    ``input_cells``; None otherwise."""
    blank = sum(1 for i in issues if getattr(i, "rule_id", "") == "required"
                or (i.severity == "error" and BLANK_MARK in i.message))
    return blank if input_cells and blank >= ALMOST_EMPTY_SHARE * input_cells else None
