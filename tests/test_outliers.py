"""Issue 18: outlier flags (pure): robust score per population, year over year, staff bounds; and the diff."""
from __future__ import annotations

import math

import numpy as np
import pytest

from forms_fixtures import consistent_values, shipped_forms
from tracker.changes import compare
from tracker.outliers import (BOUNDS, ROBUST, YEAR_OVER_YEAR, FormValues, bound_flags, cell_key, find_flags,
                              fmt_number, robust_flags, year_over_year_flags)
from tracker.value_packs import pack, unpack

FORMS = shipped_forms()
PL03 = FORMS["PL03"]


def full_values(form, scale: float = 1.0) -> dict[str, float]:
    """Every input cell of a consistent return, every count scaled by ``scale`` (so rates stay the same)."""
    values = {}
    for (sheet, row, column_key), value in consistent_values(form).items():
        column = form.sheet(sheet).column(column_key)
        values[cell_key(f"{sheet}.{row}", column.period, column.breakdown)] = float(value) * scale
    return values


def frame(units: dict[str, dict[str, float]], form_code: str = "PL03") -> FormValues:
    keys = tuple(sorted({k for values in units.values() for k in values}))
    matrix = np.array([[units[u].get(k, np.nan) for k in keys] for u in units], dtype=float)
    return FormValues(form_code, tuple(units), keys, matrix)


def eleven_units(target_victims_factor: float = 50.0) -> dict[str, dict[str, float]]:
    # Ten units of different sizes with the same figures per child, and one (U10) whose abused children
    # per child are fifty times the others'.
    units = {f"U{i:02d}": full_values(PL03, 1.0 + i * 0.37) for i in range(11)}
    victims = cell_key("B03.victims", "base", "total")
    units["U10"][victims] *= target_victims_factor
    return units


def test_one_unit_at_fifty_times_the_others_per_child_is_the_only_flag() -> None:
    values = eleven_units()
    flags = robust_flags(PL03, frame(values))
    assert [(f.unit, f.indicator, f.period, f.breakdown, f.reason) for f in flags] == [
        ("U10", "B03.victims", "base", "total", ROBUST)]
    flag = flags[0]
    children = values["U10"][cell_key("B01.children", "base", "total")]
    assert flag.value == values["U10"][cell_key("B03.victims", "base", "total")]
    assert flag.rate == pytest.approx(flag.value / children * 1000)
    # The median is the other units' common rate, and the unit sits fifty times above it.
    assert flag.rate / flag.reference == pytest.approx(50)
    assert flag.per == "1.000 trẻ em"
    assert "trên 1.000 trẻ em" in flag.message and "trung vị" in flag.message


def test_the_same_raw_counts_are_not_outliers_when_the_units_differ_in_size() -> None:
    # Per child, the big unit's counts are ordinary: only the raw comparison would single it out.
    units = {f"U{i:02d}": full_values(PL03, 1.0) for i in range(10)}
    units["BIG"] = full_values(PL03, 50.0)
    flags = robust_flags(PL03, frame(units))
    assert all(f.indicator.startswith(("B04.", "B06.", "B07.")) or f.per == "" for f in flags)
    assert not [f for f in flags if f.indicator == "B03.victims"]
    assert [f for f in flags if f.indicator == "B04.staff_district" and f.unit == "BIG"]  # compared raw


def test_no_cross_unit_score_below_the_minimum_number_of_units() -> None:
    units = {f"U{i}": full_values(PL03) for i in range(4)}
    units["U3"][cell_key("B03.victims", "base", "total")] *= 50
    assert robust_flags(PL03, frame(units)) == []


def test_a_halving_since_last_year_is_flagged_and_small_counts_are_not() -> None:
    before = {"U1": full_values(PL03), "U2": full_values(PL03)}
    now = {"U1": full_values(PL03), "U2": full_values(PL03)}
    births = cell_key("B01.births", "base", "total")  # 105 last year
    now["U1"][births] = before["U1"][births] / 2
    cases = cell_key("B03.cases", "base", "total")  # 5 -> 2: below year_over_year_min (10)
    now["U2"][cases] = 2
    flags = year_over_year_flags(PL03, frame(now), frame(before))
    assert [(f.unit, f.indicator, f.period, f.breakdown, f.reason) for f in flags] == [
        ("U1", "B01.births", "base", "total", YEAR_OVER_YEAR)]
    assert flags[0].value == 52.5 and flags[0].reference == 105 and flags[0].score == pytest.approx(0.5)
    # A little less than half is flagged too; a drop to 60% is not.
    now["U1"][births] = before["U1"][births] * 0.6
    assert year_over_year_flags(PL03, frame(now), frame(before)) == []


def test_year_over_year_needs_the_indicator_in_both_years() -> None:
    before = {"U1": {cell_key("B01.births", "base", "total"): 100.0}}
    now = {"U1": {cell_key("B01.minority", "base", "total"): 20.0, cell_key("B01.births", "current", "total"): 10.0}}
    assert year_over_year_flags(PL03, frame(now), frame(before)) == []


def test_a_staff_bound_flags_values_outside_it() -> None:
    units = {"U1": full_values(PL03), "U2": full_values(PL03)}
    villages = cell_key("B01.villages", "base", "total")  # 200
    units["U2"][villages] = 900
    flags = bound_flags(frame(units), {"B01.villages": (50.0, 500.0)})
    assert [(f.unit, f.indicator, f.reason, f.bound, f.reference) for f in flags] == [
        ("U2", "B01.villages", BOUNDS, "max", 500.0)]
    assert "lớn hơn mức tối đa 500" in flags[0].message
    low = bound_flags(frame(units), {"B01.villages": (250.0, None)})
    # Every period of the indicator is held to the bound: U2's first-quarter figure (200) too.
    assert sorted((f.unit, f.period) for f in low) == [("U1", "base"), ("U1", "current"), ("U2", "current")]
    assert {f.bound for f in low} == {"min"}


def test_verified_flags_stay_and_say_so() -> None:
    values = eleven_units()
    flags = find_flags(FORMS, [frame(values)])
    assert len(flags) == 1 and not flags[0].verified
    again = find_flags(FORMS, [frame(values)], verified={flags[0].key})
    assert len(again) == 1 and again[0].verified and again[0].key == flags[0].key
    # A different figure is a different flag: the verification does not carry over.
    values["U10"][cell_key("B03.victims", "base", "total")] += 1
    changed = find_flags(FORMS, [frame(values)], verified={flags[0].key})
    assert len(changed) == 1 and not changed[0].verified


def test_packs_round_trip() -> None:
    rows = [("B01.children", "base", "total", 2620.0), ("B01.children", "base", "male", None),
            ("B03.cases", "current", "total", float("nan")), ("B01.births", "base", "total", 105.0)]
    keys, data = pack(rows)
    assert keys == ("B01.births|base|total", "B01.children|base|total")
    assert list(unpack(data)) == [105.0, 2620.0]


def test_numbers_in_vietnamese() -> None:
    assert fmt_number(12345.6) == "12.345,6" and fmt_number(1000) == "1.000" and fmt_number(None) == "—"
    assert fmt_number(0.5) == "0,5" and fmt_number(-1234.25) == "-1.234,25"
    assert fmt_number(math.inf) == "∞"


# --------------------------------------------------------------------------------------- the diff (pure)

def test_compare_lists_changed_blank_and_text_cells_in_form_order() -> None:
    old = [("B03", "B03.victims", "base", "total", 10.0, None), ("B01", "B01.children", "base", "total", 2620.0, None),
           ("NARRATIVE", "I", "", "", None, "Cũ"), ("B01", "B01.births", "base", "total", 105.0, None)]
    new = [("B03", "B03.victims", "base", "total", 12.0, None), ("B01", "B01.children", "base", "total", 2620, None),
           ("NARRATIVE", "I", "", "", None, "Mới"), ("B01", "B01.births", "base", "total", None, None)]
    result = compare(PL03, 2, 1, new, old, [("error", "Biểu 01", "D14", "B01.births", "Thiếu số liệu")], [])
    assert [(c.sheet, c.indicator_code, c.old, c.new) for c in result.changes] == [
        ("Đề cương", "I", "Cũ", "Mới"), ("Biểu 01", "B01.births", 105, None), ("Biểu 03", "B03.victims", 10, 12)]
    births = result.changes[1]
    assert births.cell == PL03.address(("B01", "births", "base_total"))[1]
    assert births.indicator == "Số trẻ em sinh ra sống trong kỳ" and births.period == "Năm 2023"
    assert births.breakdown == "Tổng số"
    assert [i.cell for i in result.issues_added] == ["D14"] and result.issues_removed == ()
    assert result.summary.startswith("so với lần 1: 3 ô thay đổi")


def test_a_small_difference_from_units_that_all_agree_is_not_far_out() -> None:
    # Ten units with the same births per child and one 2% above them: no flag (the 5% floor of the spread).
    units = {f"U{i:02d}": full_values(PL03, 1.0 + i * 0.37) for i in range(11)}
    units["U10"][cell_key("B01.births", "base", "total")] *= 1.02
    assert robust_flags(PL03, frame(units)) == []
    units["U10"][cell_key("B01.births", "base", "total")] *= 3
    assert [f.unit for f in robust_flags(PL03, frame(units))] == ["U10"]


def test_rare_events_reported_by_few_units_get_no_cross_unit_score() -> None:
    # Most units had no trafficked child (median and MAD 0): one unit with two is not "far out" by this score.
    units = {f"U{i:02d}": full_values(PL03) for i in range(11)}
    trafficking = cell_key("B03.form_trafficking", "base", "male")
    assert all(values[trafficking] == 0 for values in units.values())
    units["U03"][trafficking] = 2
    assert robust_flags(PL03, frame(units)) == []
