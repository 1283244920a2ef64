"""Issue 20: the vectorised checks give exactly the issues (and values) of the scalar checks they replaced.

Two comparisons against tests/legacy_checks.py: the fuzzed returns of the property test
(tests/test_parser_property.py), parsed in the worker both ways; and random value sets of both shipped
forms (blanks, negatives, fractions, huge and non-finite numbers, broken totals) given to ``evaluate``
and ``compute``.
"""
from __future__ import annotations

import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import legacy_checks
from forms_fixtures import consistent_values, shipped_forms
from test_parser_property import FORM, LIMITS, MUTATED, SECRET, valid_return
from tracker import isolation
from tracker.catalog import Form
from tracker.expressions import CellKey
from tracker.guard import Refusal, inspect
from tracker.parsing import NARRATIVE_SHEET_CODE, ParseResult
from tracker.rules import compute, evaluate

FORMS = shipped_forms()
EXAMPLES = int(os.environ.get("TRACKER_FUZZ_EXAMPLES", "200"))


def _same_number(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _compare_parse(data: bytes) -> bool:
    """Parse ``data`` both ways in the worker; assert the same outcome. Return True when checks ran."""
    try:
        inspect(data, "bao-cao.xlsx", LIMITS)
        new, old = isolation.run("legacy_checks:parse_both", FORMS.ref, data, FORM.code, SECRET,
                                 timeout=20.0, memory_limit=1024 * 1024 * 1024)
    except (Refusal, isolation.WorkerError):
        return False  # refused by the guard, or the reader took the worker down: no result either way
    if not isinstance(new, ParseResult):
        assert new == old, (new, old)
        return False
    assert not isinstance(old[0], str), (new.issues[:3], old)
    old_identity, old_values, old_texts, old_issues = old
    assert new.identity == old_identity
    if not old_values and not new.values:
        return False  # another form's identity: no checks ran
    assert list(new.issues) == old_issues
    assert [v.text for v in new.values if v.sheet == NARRATIVE_SHEET_CODE] == old_texts
    numbers = [v for v in new.values if v.sheet != NARRATIVE_SHEET_CODE]
    assert len(numbers) == len(old_values)
    rows = {(s.code, r.code): r.indicator for s in FORM.sheets for r in s.data_rows}
    columns = {(s.code, c.key): (c.period, c.breakdown) for s in FORM.sheets for c in s.columns}
    for parsed, ((sheet, row, column), value) in zip(numbers, old_values.items()):
        assert (parsed.sheet, parsed.indicator, parsed.period, parsed.breakdown) == \
            (sheet, rows[(sheet, row)], *columns[(sheet, column)])
        assert _same_number(parsed.value, value), (sheet, row, column, parsed.value, value)
    return True


def test_the_valid_return_parses_the_same_both_ways() -> None:
    assert _compare_parse(valid_return())


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(MUTATED)
def test_fuzzed_returns_give_the_same_issues_and_values(data: bytes) -> None:
    _compare_parse(data)


# ------------------------------------------------------------------- values given to the rules directly

# What the parser can hand the rules (finite, at most MAX_VALUE = 1e12), and NaN, which only a direct
# caller can. (Infinities are left out: the parser refuses them at the cell, and a stock move to infinity is
# a message of its own.)
ODD_NUMBERS = st.sampled_from([None, 0.0, -1.0, -0.0, 0.5, 2.25, 1e12, -1e12, 999999999999.5, math.nan,
                               3.0000000001, 0.1 + 0.2, 0.15, 1.005])


class Case(tuple):  # type: ignore[type-arg]
    """(form, values) with a short repr: Hypothesis prints the examples it reports."""

    def __repr__(self) -> str:
        form, values = self
        consistent = consistent_values(form)
        changed = {k: v for k, v in values.items() if consistent.get(k, "computed") != v}
        return f"<{form.code} with {changed!r}>"



@st.composite
def value_sets(draw: Any) -> Case:
    form = FORMS[draw(st.sampled_from(sorted(FORMS)))]
    values: dict[CellKey, float | None] = dict(consistent_values(form))
    keys = sorted(values)
    for _ in range(draw(st.integers(0, 40))):
        key = keys[draw(st.integers(0, len(keys) - 1))]
        current = values[key]
        values[key] = draw(st.one_of(
            ODD_NUMBERS,
            st.integers(0, 5000).map(float),
            st.just(None if current is None else current + draw(st.integers(-3, 3))),
            st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
            st.decimals(0, 10**6, places=2).map(float),
        ))
    if draw(st.booleans()):
        # A value given for a computed cell is ignored by both.
        computed = form.computed[draw(st.integers(0, len(form.computed) - 1))].key
        values[computed] = 12345.0
    return Case((form, values))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value_sets())
def test_random_values_give_the_same_issues_and_computed_cells(case: Case) -> None:
    form, values = case
    assert evaluate(form, values) == legacy_checks.evaluate(form, values)
    new, old = compute(form, values), legacy_checks.compute(form, {k: v for k, v in values.items()
                                                                   if k not in {c.key for c in form.computed}})
    assert list(new) == list(old)
    assert all(_same_number(new[key], old[key]) for key in new), [(k, new[k], old[k]) for k in new
                                                                  if not _same_number(new[k], old[k])]


@pytest.mark.parametrize("code", sorted(FORMS))
def test_every_rule_instance_failing_at_once_reports_the_same(code: str) -> None:
    form = FORMS[code]
    values: dict[CellKey, float | None] = {key: float(7 + index % 13) for index, key in
                                           enumerate(sorted(consistent_values(form)))}
    new = evaluate(form, values)
    assert len(new) > 50  # far from consistent: most rules fail somewhere
    assert new == legacy_checks.evaluate(form, values)


def test_every_kind_of_cell_an_officer_can_type_parses_the_same_both_ways() -> None:
    """Dates, times, booleans, text numbers, thousands separators, spaces, errors, huge numbers, blanks —
    in data cells and in the narrative — give the same values, texts and issues as before."""
    from datetime import date, datetime, time, timedelta

    from returns_fixtures import filled_return, sample_texts

    odd: list[Any] = [date(2024, 5, 1), datetime(2024, 5, 1, 8, 30), time(7, 0), timedelta(days=2), True, False,
                      "12", " 12 ", "1.234,5", "1 234", "-3", "  ", "", None, "#REF!", "NaN", "N/A", "x", 1e13, 1e308,
                      -5, 2.5, 0.0, 10**15, "٣", "１２"]
    values: dict[CellKey, Any] = dict(consistent_values(FORM))
    keys = sorted(values)
    for index, value in enumerate(odd):
        values[keys[index * 7]] = value
    texts = dict(sample_texts(FORM))
    first, second = list(texts)[:2]
    data = filled_return(FORM, values, {**texts, first: date(2024, 5, 1), second: 12.0}, secret=SECRET)  # type: ignore[dict-item]
    assert _compare_parse(data)
