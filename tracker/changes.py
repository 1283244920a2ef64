"""What changed between two versions of a unit's return: every value that differs, and the issues that
appeared or disappeared.

Pure: plain values in (the stored value rows and issue rows of the two versions, and the unit's form
for labels and cell addresses), a ``VersionChanges`` out. Nothing here reads the database or the clock,
and nothing here changes a version, a review or a status.

A value row is ``(sheet, indicator, period, breakdown, value, text)`` as ``models.ReturnValue`` stores
it ("B01", "B01.children", "base", "total", 4219.0, None); the narrative's answers have the sheet
``NARRATIVE`` and the section code as indicator. An issue row is ``(severity, sheet, cell, indicator,
message)``; the same issue in both versions (all five equal) is neither added nor removed.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .catalog import Form
from .rules import Issue

NARRATIVE_SHEET_CODE = "NARRATIVE"  # as parsing stores the narrative's answers

ValueRow = tuple[str, str, str, str, "float | None", "str | None"]
IssueRow = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Change:
    """One cell whose content differs: where it is (Excel sheet name, A1 cell), what it is, before and after.

    ``indicator``, ``period`` and ``breakdown`` are the labels an officer reads on the form; the codes
    are kept beside them. ``old``/``new`` are a number, a text, or None for a blank.
    """

    sheet: str
    cell: str
    indicator: str
    period: str
    breakdown: str
    old: float | str | None
    new: float | str | None
    indicator_code: str
    period_key: str
    breakdown_key: str


@dataclass(frozen=True)
class VersionChanges:
    """The difference from version ``since`` to version ``version`` of one return."""

    version: int
    since: int
    changes: tuple[Change, ...]
    issues_added: tuple[Issue, ...]
    issues_removed: tuple[Issue, ...]

    @property
    def summary(self) -> str:
        """Return the one-line Vietnamese summary, e.g. "so với lần 3: 2 ô thay đổi"."""
        text = f"so với lần {self.since}: {len(self.changes)} ô thay đổi" if self.changes else \
            f"so với lần {self.since}: không có ô nào thay đổi"
        if self.issues_added or self.issues_removed:
            text += f"; {len(self.issues_added)} lỗi/cảnh báo mới, {len(self.issues_removed)} đã hết"
        return text


def _content(value: float | None, text: str | None) -> float | str | None:
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        number = float(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return text if text not in (None, "") else None


class _Places:
    """Labels, addresses and form order of a form's cells and narrative sections."""

    def __init__(self, form: Form | None) -> None:
        self.form = form
        self.order: dict[tuple[str, str, str, str], tuple[int, int, int]] = {}
        self.place: dict[tuple[str, str, str, str], tuple[str, str, str, str, str]] = {}
        if form is None:
            return
        for sheet_index, sheet in enumerate(form.sheets):
            for row in sheet.data_rows:
                for column in sheet.columns:
                    if column.breakdown not in row.breakdowns:
                        continue
                    key = (sheet.code, row.indicator, column.period, column.breakdown)
                    self.order[key] = (sheet_index + 1, row.excel_row, column.index)
                    self.place[key] = (sheet.name, f"{column.letter}{row.excel_row}", row.label,
                                       column.period_label, column.breakdown_label)
        for section in form.narrative.sections:
            key = (NARRATIVE_SHEET_CODE, section.code, "", "")
            self.order[key] = (0, section.excel_row, 0)
            self.place[key] = (form.narrative.name, section.cell, f"{section.code} {section.heading}", "", "")

    def describe(self, key: tuple[str, str, str, str]) -> tuple[str, str, str, str, str]:
        # A value the form no longer has still shows, under its stored codes.
        return self.place.get(key, (key[0], "", key[1], key[2], key[3]))

    def sort_key(self, key: tuple[str, str, str, str]) -> tuple[int, int, int, tuple[str, str, str, str]]:
        return (*self.order.get(key, (10**6, 0, 0)), key)


def _by_key(rows: Iterable[ValueRow]) -> dict[tuple[str, str, str, str], float | str | None]:
    return {(sheet, indicator, period or "", breakdown or ""): _content(value, text)
            for sheet, indicator, period, breakdown, value, text in rows}


def _issue_keys(rows: Iterable[IssueRow]) -> Counter[Issue]:
    # Stored issues do not keep the rule's id; two issues are the same when all five stored fields are.
    return Counter(Issue(*row, rule_id="") for row in rows)


def compare(form: Form | None, version: int, since: int, new_values: Iterable[ValueRow],
            old_values: Iterable[ValueRow], new_issues: Sequence[IssueRow] = (),
            old_issues: Sequence[IssueRow] = ()) -> VersionChanges:
    """Return every value that differs from version ``since`` (old) to ``version`` (new), in form order,
    and the issues only the new version has (added) or only the old one had (removed).

    A cell blank in one version and filled in the other is a change (None on the blank side); a number
    and the same number are equal whatever their float spelling. ``form`` None lists the stored codes.
    """
    places = _Places(form)
    old, new = _by_key(old_values), _by_key(new_values)
    changed = [key for key in set(old) | set(new) if old.get(key) != new.get(key)]
    changed.sort(key=places.sort_key)
    changes = []
    for key in changed:
        sheet, cell, indicator, period, breakdown = places.describe(key)
        changes.append(Change(sheet, cell, indicator, period, breakdown, old.get(key), new.get(key),
                              key[1], key[2], key[3]))
    old_issues_count, new_issues_count = _issue_keys(old_issues), _issue_keys(new_issues)
    added = new_issues_count - old_issues_count
    removed = old_issues_count - new_issues_count
    return VersionChanges(version, since, tuple(changes), tuple(added.elements()), tuple(removed.elements()))
