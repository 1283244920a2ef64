"""Issue 8: the administrator creates an account, edits a unit's contacts and copies the plan."""
from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from e2e_support import PLAN

pytestmark = pytest.mark.e2e

ADMIN = "admin@demo.bacgiang.vn"
NEW_USER = "phongldtbxh.lucngan@demo.bacgiang.vn"


def test_admin_journey_user_contacts_plan_copy(page: Any, live_server: str, login: Any, logout: Any) -> None:
    login(ADMIN)

    # A new officer account for Huyện Lục Ngạn; the first try has too short a password.
    page.get_by_role("link", name="Người dùng").click()
    page.get_by_label("Email").fill(NEW_USER)
    page.get_by_label("Họ tên").fill("Nguyễn Thị Hoà")
    page.get_by_label("Vai trò").select_option(label="Cán bộ đơn vị")
    page.get_by_label("Đơn vị (chỉ cho tài khoản cán bộ đơn vị)").select_option(label="219 · Huyện Lục Ngạn")
    page.get_by_label("Mật khẩu ban đầu (ít nhất 8 ký tự)").fill("ngan")
    page.get_by_role("button", name="Tạo tài khoản").click()
    expect(page.get_by_role("alert")).to_have_count(1)
    # What was typed is still there after the error, except the password.
    assert page.get_by_label("Email").input_value() == NEW_USER
    assert page.get_by_label("Họ tên").input_value() == "Nguyễn Thị Hoà"
    assert page.get_by_label("Vai trò").input_value() == "unit"
    assert page.get_by_label("Đơn vị (chỉ cho tài khoản cán bộ đơn vị)").input_value() == "219"
    page.get_by_label("Mật khẩu ban đầu (ít nhất 8 ký tự)").fill("luc-ngan-2024")
    page.get_by_role("button", name="Tạo tài khoản").click()
    assert f"Đã tạo tài khoản {NEW_USER}." in page.locator(".flash-ok").inner_text()
    row = page.locator(f"tr[data-user='{NEW_USER}']")
    assert "Huyện Lục Ngạn" in row.inner_text() and "Cán bộ đơn vị" in row.inner_text()

    # The unit's contact addresses, edited from the unit's page.
    page.goto(f"{live_server}/plans/{PLAN}/units/219")
    contacts = page.get_by_label("Địa chỉ email nhận thư nhắc và xác nhận của Huyện Lục Ngạn")
    assert contacts.input_value() == "ldtbxh219@demo.bacgiang.vn"
    contacts.fill("ldtbxh219@demo.bacgiang.vn\ntreem.lucngan@demo.bacgiang.vn")
    page.get_by_role("button", name="Lưu địa chỉ liên hệ").click()
    assert "treem.lucngan@demo.bacgiang.vn" in page.locator(".flash-ok").inner_text()
    assert page.url.endswith(f"/plans/{PLAN}/units/219")
    assert page.get_by_label("Địa chỉ email nhận thư nhắc và xác nhận của Huyện Lục Ngạn").input_value().split() == [
        "ldtbxh219@demo.bacgiang.vn", "treem.lucngan@demo.bacgiang.vn"]

    # Next year's plan, copied from 2024's.
    page.get_by_role("link", name="Người dùng").click()
    page.get_by_role("link", name="Sao chép kế hoạch sang năm mới").click()
    page.get_by_label("Kế hoạch gốc").select_option(PLAN)
    page.get_by_label("Mã kế hoạch mới (chữ thường không dấu, số, dấu gạch ngang)").fill("bacgiang-2025")
    page.get_by_label("Tên kế hoạch mới").fill("Kế hoạch kiểm tra công tác trẻ em và bình đẳng giới năm 2025")
    page.get_by_label("Hạn nộp báo cáo (giờ Việt Nam, UTC+7)").fill("2025-05-10T00:00")
    page.get_by_role("button", name="Tạo kế hoạch mới").click()
    assert page.url.endswith("/plans/bacgiang-2025")
    assert page.locator("h1").inner_text() == "Kế hoạch kiểm tra công tác trẻ em và bình đẳng giới năm 2025"
    assert page.get_by_test_id("deadline").inner_text() == "hết ngày 09/05/2025 (hạn: trước ngày 10/5/2025)"
    expect(page.locator("#units tbody tr")).to_have_count(10)
    page.get_by_role("link", name="Kế hoạch", exact=True).click()
    expect(page.get_by_role("link", name="Kế hoạch kiểm tra công tác trẻ em và bình đẳng giới năm 2025")).to_have_count(1)

    # The new account works.
    logout()
    login(NEW_USER, "luc-ngan-2024")
    assert "Huyện Lục Ngạn" in page.locator("h1").inner_text()
