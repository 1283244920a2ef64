"""One wording of the deadline and one style of numbers, on every page, workbook, message and email."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tracker.catalog_folder import load_forms
from tracker.parsing import parse_return
from tracker.rules import format_number as rules_format_number
from tracker.wording import deadline_wording, format_number

from returns_fixtures import filled_return

VN = timezone(timedelta(hours=7))
WORDING = "hết ngày 09/05/2024 (hạn: trước ngày 10/5/2024)"


@pytest.fixture(scope="module")
def forms():
    return load_forms(Path(__file__).resolve().parent.parent / "report_forms")


@pytest.mark.parametrize(("value", "text"), [
    (2895.75, "2.895,75"), (92.3077, "92,31"), (26900, "26.900"), (0, "0"), (1234567, "1.234.567"),
    (210.5, "210,5"), (-3, "-3"), (0.004, "0"), (None, ""),
])
def test_numbers_are_written_the_vietnamese_way(value, text):
    assert format_number(value) == text


def test_the_rules_messages_use_the_same_helper():
    assert rules_format_number(2895.75) == "2.895,75" and rules_format_number(None) == "trống"


def test_a_midnight_deadline_reads_as_the_last_day_then_the_plans_phrase():
    assert deadline_wording(datetime(2024, 5, 10, tzinfo=VN)) == WORDING
    # Stored in UTC, shown in Vietnam time: the same instant gives the same words.
    assert deadline_wording(datetime(2024, 5, 9, 17, tzinfo=timezone.utc)) == WORDING
    assert deadline_wording(datetime(2024, 5, 9, 17, 0, tzinfo=VN)) == "trước 17:00 ngày 09/05/2024"


def test_pages_filters_show_the_wording_and_numbers(app):
    env = app.jinja_env
    assert env.from_string("{{ d|deadline }}").render(d=datetime(2024, 5, 10, tzinfo=VN)) == WORDING
    assert env.from_string("{{ v|num }}").render(v=2895.75) == "2.895,75"


def test_plan_unit_and_dashboard_pages_say_the_deadline_one_way(client, login_as):
    login_as("staff")
    for path in ("/plans/bacgiang-2024", "/plans/bacgiang-2024/units/219", "/plans/bacgiang-2024/dashboard"):
        page = client.get(path).get_data(as_text=True)
        assert WORDING in page, path
        assert "hạn chót" not in page and "10/05/2024 00:00" not in page.split("Hạn nộp", 1)[-1][:200], path


def test_officer_home_speaks_of_shaded_cells_not_cars(client, login_as):
    login_as("unit", "219")
    page = client.get("/plans/bacgiang-2024/units/219").get_data(as_text=True)
    assert "ô tô màu" not in page and "ô có nền vàng nhạt" in page


def test_a_non_integer_count_is_one_error_at_its_cell(forms):
    form = forms["PL03"]
    values = {key: 0 for key in form.input_keys()}
    key = ("B01", "children", "base_male")
    values[key] = 210.5
    parsed = parse_return(filled_return(form, values), form)
    _, address = form.address(key)
    at_cell = [i for i in parsed.issues if i.cell == address and i.sheet == "Biểu 01"]
    assert len(at_cell) == 1 and at_cell[0].rule_id == "integer", at_cell
    assert "210,5" in at_cell[0].message
    # The bad count takes no part in the sums either: no rule names the cell.
    assert not [i for i in parsed.issues if i.rule_id.startswith("B01.") and address in i.message]


@pytest.mark.parametrize(("typed", "expected"), [("450,25", 450.25), ("1.450,25", 1450.25), ("150,5", 150.5),
                                                 ("12", 12.0)])
def test_money_cells_accept_the_forms_decimal_style(forms, typed, expected):
    form = forms["PL03"]
    values = {key: 0 for key in form.input_keys()}
    key = ("B07", "total", "base_total")
    values[key] = typed
    parsed = parse_return(filled_return(form, values), form)
    _, address = form.address(key)
    assert not [i for i in parsed.issues if i.cell == address and i.rule_id == "number"]
    stored = [v.value for v in parsed.values if (v.indicator, v.period, v.breakdown) == ("B07.total", "base", "total")]
    assert stored == [expected]


def test_a_count_cell_still_refuses_separators(forms):
    form = forms["PL03"]
    values = {key: 0 for key in form.input_keys()}
    values[("B01", "children", "base_total")] = "1.234"
    parsed = parse_return(filled_return(form, values), form)
    assert [i.rule_id for i in parsed.issues if i.cell == form.address(("B01", "children", "base_total"))[1]
            and i.sheet == "Biểu 01"] == ["number"]
