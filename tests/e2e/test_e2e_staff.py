"""Issue 8: a staff member of the department follows the plan in a real browser."""
from __future__ import annotations

import io
import re
from typing import Any

import pytest
from playwright.sync_api import expect
from openpyxl import load_workbook

from e2e_support import PLAN, api_upload, check_page, filled_return, download

pytestmark = pytest.mark.e2e

STAFF = "canbo@demo.bacgiang.vn"
REASON = "Biểu 03: số vụ xâm hại chưa khớp với báo cáo của Công an huyện, đề nghị rà soát lại."


def test_staff_journey_dashboard_review_schedule_export(page: Any, live_server: str, login: Any, app: Any,
                                                        token_for: Any) -> None:
    # Lục Ngạn has sent a complete return (after the 2024 deadline, as every upload made today is).
    api_upload(app, token_for("unit", "219"), "219", filled_return(app, "219"))

    problems: list[str] = []
    login(STAFF)
    check_page(page, problems)
    # The plans page lists the 2026 plan of the new map too: take the 2024 plan's dashboard.
    page.locator(f'a[href="/plans/{PLAN}/dashboard"]').first.click()
    assert page.locator("h1").inner_text().startswith("Bảng theo dõi")
    check_page(page, problems)

    # Filter to the units that have sent nothing, from the overview's count.
    page.locator(".stats").get_by_role("link", name="Quá hạn chưa nộp").click()
    assert "status=overdue" in page.url
    rows = page.locator("#units tbody tr")
    expect(rows).to_have_count(8)
    assert set(rows.locator(".badge").all_inner_texts()) == {"Quá hạn chưa nộp"}
    expect(rows.filter(has_text="Huyện Lục Nam")).to_have_count(1)
    expect(rows.filter(has_text="Huyện Lục Ngạn")).to_have_count(0)
    assert page.get_by_label("Tình trạng", exact=True).input_value() == "overdue", "the filter keeps its choice"

    # Open the unit that has sent, and return its version for correction.
    page.get_by_role("link", name="Bỏ lọc").click()
    page.get_by_role("link", name="Xem đơn vị Huyện Lục Ngạn").click()
    assert page.locator("h1").inner_text().startswith("Huyện Lục Ngạn")
    assert page.get_by_test_id("status").inner_text().strip() == "Nộp muộn"
    check_page(page, problems)
    page.get_by_label(re.compile("Lý do trả lại")).fill(REASON)
    page.get_by_role("button", name="Trả lại để chỉnh sửa").click()
    assert page.url.endswith(f"/plans/{PLAN}/units/219")
    expect(page.locator(".flash-ok")).to_have_count(1)
    assert REASON in page.locator("#status-h + dl").inner_text()
    assert "Trả lại" in page.locator("#status-h + dl").inner_text()

    # Back on the dashboard the review shows in Lục Ngạn's row.
    page.goto(f"{live_server}/plans/{PLAN}/dashboard")
    row = page.locator("#units tbody tr[data-unit='219']")
    assert REASON in row.inner_text()

    # At the deadline nobody had sent anything: every unit that must report is overdue.
    page.get_by_role("link", name="Tại hạn nộp").click()
    assert "10/05/2024 00:00" in page.get_by_test_id("as-of").inner_text()
    overdue = page.locator(".stats li[data-status='overdue'] strong").inner_text()
    assert overdue == "9"

    _, export = download(page, "Tải bảng tổng hợp")
    book = load_workbook(io.BytesIO(export), read_only=True)
    assert len(book.sheetnames) >= 2
    texts = {str(c) for ws in book.worksheets for r in ws.iter_rows(values_only=True) for c in r if c}
    assert any("Lục Nam" in t for t in texts)

    # The schedule, moved to the deadline with the picker.
    page.get_by_role("link", name="Lịch kiểm tra").click()
    assert page.locator("h1").inner_text().startswith("Lịch kiểm tra")
    visits = page.locator("#visits tbody tr")
    expect(visits).to_have_count(10)
    assert re.search(r"20/05/2024", visits.first.inner_text())
    check_page(page, problems)
    page.get_by_label("Tính tại thời điểm (giờ Việt Nam)").fill("10/05/2024 00:00")
    page.get_by_role("button", name="Xem").click()
    assert "10/05/2024 00:00" in page.get_by_test_id("as-of").inner_text()
    assert page.get_by_label("Tính tại thời điểm (giờ Việt Nam)").input_value() == "10/05/2024 00:00"  # shown back dd/mm/yyyy HH:MM
    flagged = page.locator("#visits tbody tr.attention")
    assert {flagged.nth(i).get_attribute("data-unit") for i in range(flagged.count())} == {"220", "219", "218"}
    assert not problems, "\n".join(problems)


def test_filtering_with_the_form_keeps_the_current_time(page: Any, live_server: str, login: Any, app: Any,
                                                        token_for: Any) -> None:
    api_upload(app, token_for("unit", "219"), "219", filled_return(app, "219"))
    login(STAFF)
    page.goto(f"{live_server}/plans/{PLAN}/dashboard")
    page.get_by_label("Tình trạng", exact=True).select_option(label="Quá hạn chưa nộp")
    page.get_by_role("button", name="Xem").click()
    assert page.get_by_label("Tình trạng", exact=True).input_value() == "overdue", "the filter keeps its choice"
    assert "thời điểm hiện tại" in page.get_by_test_id("as-of").inner_text()
    expect(page.locator("#units tbody tr[data-unit='219']")).to_have_count(0)
