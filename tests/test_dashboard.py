"""The department's dashboard and schedule over real database rows, at fixed instants."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from versions import add_sample_returns

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
PLAN = "bacgiang-2024"
AFTER = "2024-05-11T00:00:00%2B07:00"  # one day after the deadline, "+" encoded


@pytest.fixture
def returns(app):
    """213 on time, 215 incomplete, 216 late (first complete after the deadline), 219 on time then fixed."""
    add_sample_returns(app)


def counts(html: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'<li data-status="(\w+)"><strong>(\d+)</strong>', html)}


def units_in_table(html: str) -> list[str]:
    return re.findall(r'<tr data-unit="(\d+)">', html)


def status_of(html: str, unit: str) -> str:
    row = re.search(rf'<tr data-unit="{unit}">(.*?)</tr>', html, re.S)
    assert row is not None, unit
    return re.search(r'data-status="(\w+)"', row.group(1)).group(1)


DEPARTMENT_PAGES = [f"/plans/{PLAN}/dashboard", f"/plans/{PLAN}/schedule", f"/plans/{PLAN}/export.xlsx"]


@pytest.mark.parametrize("url", DEPARTMENT_PAGES)
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("url", DEPARTMENT_PAGES)
def test_unit_users_are_refused(client, login_as, url):
    login_as("unit", "219")
    response = client.get(url)
    assert response.status_code == 403
    assert "không có quyền" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_department_sees_dashboard(client, login_as, role):
    login_as(role)
    response = client.get(f"/plans/{PLAN}/dashboard")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Tải bảng tổng hợp" in html and f'href="/plans/{PLAN}/blank-forms.zip"' in html
    assert len(units_in_table(html)) == 10


def test_unknown_plan_is_404(client, login_as):
    login_as("staff")
    assert client.get("/plans/khong-co/dashboard").status_code == 404


def test_counts_progress_and_statuses_after_deadline(client, login_as, returns):
    login_as("staff")
    html = client.get(f"/plans/{PLAN}/dashboard?as_of={AFTER}").get_data(as_text=True)
    assert counts(html) == {"exempt": 1, "not_due": 0, "overdue": 5, "incomplete": 1, "on_time": 2, "late": 1}
    assert "<strong>3/9</strong>" in html and "(33%)" in html
    assert 'class="w-33"' in html  # the progress bar, sized by class (CSP forbids inline styles)
    assert status_of(html, "213") == "on_time" and status_of(html, "216") == "late"
    assert status_of(html, "215") == "incomplete" and status_of(html, "223") == "exempt"
    assert status_of(html, "217") == "overdue"
    row_216 = re.search(r'<tr data-unit="216">(.*?)</tr>', html, re.S).group(1)
    assert "10/05/2024 05:00" in row_216 and "07/05/2024 00:00" in row_216 and "Trễ 1 ngày" in row_216
    assert "Nộp muộn" in row_216 and "badge-warn" in row_216
    assert "11/05/2024 00:00" in html and "thời điểm đã chọn" in html


def test_as_of_before_deadline_and_before_any_upload(client, login_as, returns):
    login_as("staff")
    early = client.get(f"/plans/{PLAN}/dashboard?as_of=2024-05-01T08:00").get_data(as_text=True)
    assert counts(early) == {"exempt": 1, "not_due": 9, "overdue": 0, "incomplete": 0, "on_time": 0, "late": 0}
    assert "01/05/2024 08:00" in early and "Còn 9 ngày" in early
    # The datetime-local picker's value is Vietnam time: one minute before the deadline.
    before = client.get(f"/plans/{PLAN}/dashboard?as_of=2024-05-09T23:59").get_data(as_text=True)
    assert counts(before)["on_time"] == 2 and counts(before)["not_due"] == 5
    assert status_of(before, "216") == "incomplete"
    # The same instant in full ISO 8601 with an offset gives the same answer.
    iso = client.get(f"/plans/{PLAN}/dashboard?as_of=2024-05-09T16:59:00Z").get_data(as_text=True)
    assert counts(iso) == counts(before)


@pytest.mark.parametrize("bad", ["hôm qua", "2024-13-01T00:00", "2024-05-10", "31/02/2024 08:00",
                                 "10/05/24 08:00", "10/05/2024 25:00", "05/10/2024 8 giờ"])
def test_bad_as_of_is_400_in_vietnamese(client, login_as, bad):
    login_as("staff")
    response = client.get(f"/plans/{PLAN}/dashboard", query_string={"as_of": bad})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "không hợp lệ" in text and "10/05/2024 08:00" in text


@pytest.mark.parametrize("page", ["dashboard", "schedule"])
def test_as_of_field_reads_day_first_on_vietnam_time(client, login_as, page):
    login_as("staff")
    html = client.get(f"/plans/{PLAN}/{page}", query_string={"as_of": "10/05/2024 08:00"}).get_data(as_text=True)
    # 10 May, not 5 October; shown back in the field the way it was typed.
    assert "<strong>10/05/2024 08:00</strong>" in html
    assert 'value="10/05/2024 08:00"' in html and 'type="datetime-local"' not in html
    for preset in ("Tại hạn nộp", "Hôm nay", "1 ngày trước hạn", "7 ngày sau hạn"):
        assert preset in html
    at_deadline = client.get(f"/plans/{PLAN}/{page}", query_string={"as_of": "2024-05-10T00:00+07:00"})
    assert "<strong>10/05/2024 00:00</strong>" in at_deadline.get_data(as_text=True)


def test_filter_by_status(client, login_as, returns):
    login_as("staff")
    html = client.get(f"/plans/{PLAN}/dashboard?status=overdue&as_of={AFTER}").get_data(as_text=True)
    assert sorted(units_in_table(html)) == ["217", "218", "220", "221", "222"]
    assert counts(html)["on_time"] == 2  # the summary still covers every unit
    html = client.get(f"/plans/{PLAN}/dashboard?status=late&as_of={AFTER}").get_data(as_text=True)
    assert units_in_table(html) == ["216"]
    assert client.get(f"/plans/{PLAN}/dashboard?status=nope").status_code == 400


def test_sort_by_columns(client, login_as, returns):
    login_as("staff")
    base = f"/plans/{PLAN}/dashboard?as_of={AFTER}"
    html = client.get(base + "&sort=latest&dir=desc").get_data(as_text=True)
    order = units_in_table(html)
    assert order[:4] == ["216", "219", "215", "213"]  # newest receipt first, units without one last
    assert 'aria-sort="descending"' in html
    html = client.get(base + "&sort=latest&dir=asc").get_data(as_text=True)
    assert units_in_table(html)[:4] == ["213", "215", "219", "216"]
    assert 'aria-sort="ascending"' in html
    html = client.get(base + "&sort=errors&dir=desc").get_data(as_text=True)
    assert units_in_table(html)[0] == "215"
    html = client.get(base + "&sort=warnings&dir=desc").get_data(as_text=True)
    assert units_in_table(html)[:4] == ["219", "215", "213", "216"]
    html = client.get(base + "&sort=warnings&dir=asc").get_data(as_text=True)
    assert units_in_table(html)[:4] == ["216", "213", "215", "219"]
    html = client.get(base + "&sort=status&dir=asc").get_data(as_text=True)
    statuses = [status_of(html, u) for u in units_in_table(html)]
    assert statuses[0] == "overdue" and statuses[-1] == "exempt"
    # Header links keep the instant and flip the direction of the active column.
    assert "sort=latest&amp;dir=desc" in client.get(base + "&sort=latest").get_data(as_text=True)
    assert "as_of=2024-05-11T00:00%2B07:00" in html


def test_schedule_flags_upcoming_visits_without_complete_return(client, login_as, returns):
    login_as("staff")
    html = client.get(f"/plans/{PLAN}/schedule?as_of=2024-05-15T08:00").get_data(as_text=True)
    order = re.findall(r'<tr data-unit="(\d+)"', html)
    assert order == ["220", "219", "218", "217", "215", "223", "222", "216", "221", "213"]
    flagged = re.findall(r'<tr data-unit="(\d+)" class="attention">', html)
    # 219 has a complete return; 223 (6/6) is exempt and beyond 14 days; 215 on 29/5 is exactly 14 days away.
    assert flagged == ["220", "218", "217", "215"]
    assert html.count("Cần chú ý: sắp kiểm tra") == 4
    assert "Xã Kiên Thành" in html and "07:00 và 13:30" in html and "20/05/2024" in html
    # Before the reports were due nothing is urgent yet at a date far from the visits.
    calm = client.get(f"/plans/{PLAN}/schedule?as_of=2024-04-01T08:00").get_data(as_text=True)
    assert 'class="attention"' not in calm
    assert client.get(f"/plans/{PLAN}/schedule?as_of=bad").status_code == 400
