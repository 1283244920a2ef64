"""Issue 17 in the browser: staff switch plans from the top bar; an admin copies the 2024 plan onto the
map of 01/07/2025 with the wizard, previews it, and opens it after confirming every unit."""
from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from e2e_support import ARTIFACTS, DESKTOP, PHONE, PLAN

pytestmark = pytest.mark.e2e

STAFF = "canbo@demo.bacgiang.vn"
ADMIN = "admin@demo.bacgiang.vn"


def _switch(page: Any, code: str) -> None:
    page.get_by_label("Kế hoạch", exact=True).select_option(code)
    page.get_by_role("button", name="Chuyển").click()
    page.wait_for_load_state()


def test_staff_switch_plans_from_the_top_bar(page: Any, live_server: str, login: Any) -> None:
    login(STAFF)
    page.goto(f"{live_server}/plans/{PLAN}/dashboard")
    assert "Huyện Lục Ngạn" in page.locator("main").inner_text()
    switcher = page.get_by_label("Kế hoạch", exact=True)
    assert switcher.input_value() == PLAN
    _switch(page, "bacninh-2026")
    assert page.url.endswith("/plans/bacninh-2026/dashboard")
    assert page.get_by_label("Kế hoạch", exact=True).input_value() == "bacninh-2026"
    main = page.locator("main").inner_text()
    assert "Phường Bắc Giang" in main and "Huyện Lục Ngạn" not in main
    # From the schedule, the switcher keeps the reader on the schedule.
    page.goto(f"{live_server}/plans/bacninh-2026/schedule")
    _switch(page, PLAN)
    assert page.url.endswith(f"/plans/{PLAN}/schedule")
    # And from a page of no plan (the mail log), it goes to the plan's page.
    page.goto(f"{live_server}/mail-log")
    _switch(page, "bacninh-2026")
    assert page.url.endswith("/plans/bacninh-2026")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "plan-switcher-desktop.png"))
    page.set_viewport_size(PHONE)
    expect(page.get_by_label("Kế hoạch", exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "plan-switcher-phone.png"))
    page.set_viewport_size(DESKTOP)


def test_copy_wizard_onto_the_2025_map(page: Any, live_server: str, login: Any, logout: Any) -> None:
    login(ADMIN)
    page.goto(f"{live_server}/admin/plans/copy")
    page.get_by_label("Kế hoạch gốc").select_option(PLAN)
    page.get_by_label("Mã kế hoạch mới (chữ thường không dấu, số, dấu gạch ngang)").fill("bacninh-2025")
    page.get_by_label("Tên kế hoạch mới").fill("Kế hoạch kiểm tra công tác trẻ em và bình đẳng giới cấp xã năm 2025")
    page.get_by_label("Hạn nộp báo cáo (giờ Việt Nam, UTC+7)").fill("2025-05-10T00:00")
    page.get_by_label("Chuyển đơn vị sang danh mục đơn vị hành chính ngày (để trống: giữ nguyên đơn vị)").fill(
        "2025-07-01")
    page.get_by_role("button", name="Xem trước").click()

    # The preview: the calendar moved by a year, both sides of every unit, nothing stored yet.
    expect(page.locator("h1")).to_have_text("Xem trước: kế hoạch bacninh-2025")
    periods = page.locator("#preview-periods").inner_text()
    assert "Năm 2024" in periods and "Quý I/2025" in periods and "2025-01-01" in periods
    visits = page.locator("#preview-visits").inner_text()
    assert "20/05/2025" in visits and "13/06/2025" in visits
    units = page.locator("#preview-units").inner_text()
    assert "Phường Bắc Giang (07210)" in units and "Phường Thọ Xương (213 Thành phố Bắc Giang)" in units
    assert "Huyện Hiệp Hòa" in page.locator("#preview-dropped").inner_text()
    expect(page.locator("#preview-unmatched")).to_contain_text("Xã Đại Hóa")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "copy-wizard-preview.png"), full_page=True)
    page.get_by_role("button", name="Tạo kế hoạch", exact=True).click()

    # The draft: opened only when every unit is confirmed (or dropped).
    assert page.url.endswith("/plans/bacninh-2025/draft")
    open_button = page.get_by_role("button", name="Mở kế hoạch")
    expect(open_button).to_be_disabled()
    row = page.locator("tr[data-unit='07210']")
    assert "Phường Thọ Xương (07201) — thuộc 213 Thành phố Bắc Giang" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "copy-wizard-draft.png"), full_page=True)
    waiting = int(page.get_by_test_id("waiting").inner_text())
    assert waiting > 50
    page.get_by_role("button", name="Bỏ Phường Đa Mai").click()
    assert "Đã bỏ Phường Đa Mai" in page.locator(".flash-ok").inner_text()
    for _ in range(waiting - 1):
        page.locator("#draft-units button[value='confirm']").first.click()
        page.wait_for_load_state()
    expect(page.locator("#draft-units button[value='confirm']")).to_have_count(0)
    expect(page.get_by_role("button", name="Mở kế hoạch")).to_be_enabled()
    page.get_by_role("button", name="Mở kế hoạch").click()
    assert page.url.endswith("/plans/bacninh-2025")
    assert "đã mở" in page.locator(".flash-ok").inner_text()
    expect(page.locator("#units tbody tr")).to_have_count(waiting - 1)
    assert page.get_by_label("Kế hoạch", exact=True).input_value() == "bacninh-2025"
