"""Issue 8: the officer of Huyện Lục Ngạn in a real browser, from login to a complete return."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from openpyxl import load_workbook

from e2e_support import (NEGATIVE_CELL, PLAN, TEXT_CELL, broken_values, check_page, download, move_deadline,
                          upload_return)
from forms_fixtures import consistent_values, shipped_forms
from returns_fixtures import fill_workbook, sample_texts
from tracker.timeutil import local, utc_now

pytestmark = pytest.mark.e2e

FORM = shipped_forms()["PL03"]
OFFICER = "donvi219@demo.bacgiang.vn"
HOME = f"/plans/{PLAN}/units/219"


def receipt_in_mail_log(page: Any, live_server: str, login: Any, logout: Any, app: Any) -> None:
    """As staff, find the receipt of version 2 in the mail log."""
    logout()
    login("canbo@demo.bacgiang.vn")
    page.get_by_role("link", name="Thư đã gửi").click()
    assert page.locator("h1").inner_text() == "Thư đã gửi"
    listed = page.locator("main tr[data-kind='receipt']", has_text="Huyện Lục Ngạn").filter(has_text="phiên bản 2")
    expect(listed).to_have_count(1)
    assert "Lục Ngạn" in listed.first.inner_text()


def test_officer_journey_from_blank_form_to_complete_return(page: Any, live_server: str, login: Any,
                                                            logout: Any, app: Any, tmp_path: Path) -> None:
    move_deadline(app, 10)
    deadline = (local(utc_now()).date() + timedelta(days=10)).strftime("%d/%m/%Y")

    problems: list[str] = []
    # A mistyped password keeps the email that was typed, and says why in Vietnamese.
    page.goto(f"{live_server}/login")
    check_page(page, problems)
    page.get_by_label("Email").fill(OFFICER)
    page.get_by_label("Mật khẩu").fill("sai-mat-khau")
    page.get_by_role("button", name="Đăng nhập").click()
    assert page.get_by_role("alert").inner_text() == "Email hoặc mật khẩu không đúng."
    assert page.get_by_label("Email").input_value() == OFFICER

    login(OFFICER)
    assert page.url == f"{live_server}{HOME}", "an officer lands on their own unit's page"
    assert page.locator("h1").inner_text().startswith("Huyện Lục Ngạn")
    facts = page.locator("#status-h + dl").inner_text()
    last_day = (local(utc_now()).date() + timedelta(days=9)).strftime("%d/%m/%Y")
    assert f"Hạn nộp\nhết ngày {last_day} (hạn: trước ngày " in facts and "giờ Việt Nam" in facts, facts
    assert deadline not in facts.split("(hạn:")[0], facts  # the last day, not the first late one
    assert page.get_by_test_id("status").inner_text().strip() == "Chưa đến hạn"
    assert re.search(r"Thời gian còn lại\n(9|10) ngày", facts), facts
    assert page.locator("#history-h ~ .empty").inner_text() == "Chưa có báo cáo nào."
    check_page(page, problems)

    name, blank = download(page, "Tải biểu mẫu trống (Phụ lục 03)")
    assert name.endswith(".xlsx") and blank[:2] == b"PK"
    assert "Biểu 01" in load_workbook(io.BytesIO(blank), read_only=True).sheetnames

    with_errors = tmp_path / "bao-cao-luc-ngan.xlsx"
    with_errors.write_bytes(fill_workbook(blank, FORM, broken_values(FORM), sample_texts(FORM)))
    upload_return(page, with_errors)

    # The result page lists each error under its sheet, at its cell.
    assert page.locator("h1").inner_text() == "Kết quả kiểm tra: phiên bản 1"
    assert "Chưa đầy đủ" in page.get_by_test_id("result").inner_text()
    for key in (TEXT_CELL, NEGATIVE_CELL):
        sheet, cell = FORM.address(key)
        section = page.locator("section", has=page.get_by_role("heading", name=re.compile(f"«{sheet}»")))
        row = section.locator("tr.issue-error", has=page.locator("td strong", has_text=re.compile(f"^{cell}$")))
        assert row.count() >= 1, f"no error listed at {sheet}!{cell}"
        assert "Lỗi" in row.first.inner_text()
    assert page.locator("tr.issue-error").count() >= 3
    check_page(page, problems)

    name, annotated = download(page, "Tải bản đánh dấu lỗi (.xlsx)")
    assert name.endswith(".xlsx")
    book = load_workbook(io.BytesIO(annotated))
    sheet, cell = FORM.address(TEXT_CELL)
    assert book[sheet][cell].comment is not None, "the annotated copy does not mark the wrong cell"
    assert "Lỗi" in book[sheet][cell].comment.text

    page.get_by_role("link", name="Tải lên bản đã sửa").click()
    assert page.get_by_test_id("status").inner_text().strip() == "Chưa đầy đủ"
    assert "Xem danh sách lỗi theo từng ô" in page.locator(".flash-warning").inner_text()

    corrected = tmp_path / "bao-cao-luc-ngan-da-sua.xlsx"
    corrected.write_bytes(fill_workbook(blank, FORM, consistent_values(FORM), sample_texts(FORM)))
    upload_return(page, corrected)
    assert page.locator("h1").inner_text() == "Kết quả kiểm tra: phiên bản 2"
    assert "Đầy đủ, không có lỗi" in page.get_by_test_id("result").inner_text()
    check_page(page, problems)

    page.get_by_role("link", name="Huyện Lục Ngạn").click()
    assert page.get_by_test_id("status").inner_text().strip() == "Đúng hạn"
    rows = page.locator("#versions tbody tr")
    expect(rows).to_have_count(2)
    assert "Đầy đủ" in rows.nth(0).inner_text() and "Bản nháp: còn lỗi" in rows.nth(1).inner_text()
    received = rows.nth(0).locator("td").nth(1).inner_text().strip()
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", received), received
    check_page(page, problems)
    assert not problems, "\n".join(problems)

    receipt_in_mail_log(page, live_server, login, logout, app)


def test_officer_cannot_reach_luc_nam(page: Any, live_server: str, login: Any) -> None:
    login(OFFICER)
    for path in (f"/plans/{PLAN}/units/218", f"/plans/{PLAN}/units/218/blank-form.xlsx",
                 f"/plans/{PLAN}/units/218/versions/1", f"/plans/{PLAN}/dashboard"):
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == 403, path
        assert page.locator("h1").inner_text() == "Lỗi 403", path
        assert page.locator("main").inner_text().count("Bạn không có quyền truy cập trang này.") == 1, path
        assert "Lục Nam" not in page.locator("main").inner_text(), path
    page.get_by_role("link", name="Về trang chủ").click()
    assert page.url == f"{live_server}{HOME}"


def test_officer_plan_page_lists_only_their_unit(page: Any, live_server: str, login: Any) -> None:
    login(OFFICER)
    page.goto(f"{live_server}/plans/{PLAN}")
    units = page.locator("#units tbody tr")
    assert units.count() == 1 and "Huyện Lục Ngạn" in units.inner_text()
    expect(page.get_by_role("link", name="Huyện Lục Nam")).to_have_count(0)


def tab_to(page: Any, check: str, limit: int = 40) -> list[str]:
    """Press Tab until the JS predicate ``check`` holds for the focused element; return what was visited."""
    visited: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        visited.append(page.evaluate("(document.activeElement.id || document.activeElement.textContent || '').trim()"))
        if page.evaluate(f"(el => {check})(document.activeElement)"):
            return visited
    raise AssertionError(f"never reached {check} with Tab; visited {visited}")


def test_officer_can_log_in_and_reach_the_upload_with_the_keyboard(page: Any, live_server: str) -> None:
    page.goto(f"{live_server}/login")
    visited = tab_to(page, "el.id === 'email'")
    assert visited[0] == "Bỏ qua tới nội dung chính", "the skip link comes first"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    assert outline == "rgb(255, 221, 0)", "the focused field shows the focus ring"
    page.keyboard.type(OFFICER)
    page.keyboard.press("Tab")
    page.keyboard.type("demo-2024")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}{HOME}")

    tab_to(page, "el.textContent.trim() === 'Tải biểu mẫu trống (Phụ lục 03)'")
    tab_to(page, "el.id === 'file'", limit=5)
    tab_to(page, "el.textContent.trim() === 'Tải lên báo cáo'", limit=5)


def test_signed_report_goes_through_our_own_file_picker(page: Any, live_server: str, login: Any) -> None:
    """The signed PDF is chosen in a Vietnamese drop zone like the return: the browser's own control (its
    «Choose File / No file chosen» in the browser's language) is never what the officer sees."""
    import pdf_fixtures

    problems: list[str] = []
    login(OFFICER)
    page.goto(f"{live_server}{HOME}#signed-report")
    native = page.locator("#signed-file")
    box = native.bounding_box()
    assert box is not None and box["width"] <= 1 and box["height"] <= 1
    assert native.evaluate("el => getComputedStyle(el).opacity") == "0"
    label = page.locator("#signed-dropzone .pick-button")
    expect(label).to_be_visible()
    expect(label).to_have_text("Kéo thả tệp vào đây hoặc chọn tệp PDF đã ký")
    expect(page.locator("#signed-file-name")).to_contain_text("Chưa chọn tệp nào (.pdf;")
    check_page(page, problems)
    page.get_by_label("Kéo thả tệp vào đây hoặc chọn tệp PDF đã ký").set_input_files(
        files=[{"name": "bao-cao-da-ky.pdf", "mimeType": "application/pdf", "buffer": pdf_fixtures.make_pdf(pages=2)}])
    expect(page.locator("#signed-file-name")).to_have_text("Đã chọn: bao-cao-da-ky.pdf")
    page.get_by_role("button", name="Gửi bản PDF đã ký").click()
    expect(page.locator("main")).to_contain_text("Đã nhận báo cáo đã ký (lần 1, 2 trang)")
    expect(page.locator("#signed-reports")).to_contain_text("bao-cao-da-ky.pdf")
    check_page(page, problems)
    assert not problems, "\n".join(problems)
