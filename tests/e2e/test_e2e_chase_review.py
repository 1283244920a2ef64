"""Issue 16 in a real browser: chase a unit from the dashboard, return a version and see it as the officer,
a comment reaching the other side's inbox once, the review queue emptying, the as-of field typed the
Vietnamese way in an English-language browser. Every page visited is checked with axe-core (no serious
or critical violation) and for sideways scrolling at 390 px."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e_support import PASSWORD, PLAN, api_upload, check_page, filled_return, launch

pytestmark = pytest.mark.e2e

STAFF = "canbo@demo.bacgiang.vn"
REASON = "Biểu 03: số vụ việc chưa khớp sổ theo dõi của huyện, đề nghị đối chiếu lại."


def mail_rows(page: Any, live_server: str, kind: str) -> Any:
    page.goto(f"{live_server}/mail-log?kind={kind}")
    return page.locator(f"#mail-log tbody tr[data-kind='{kind}']")


def test_staff_chase_an_overdue_unit_once_a_day(page: Any, live_server: str, login: Any) -> None:
    problems: list[str] = []
    login(STAFF)
    page.goto(f"{live_server}/plans/{PLAN}/dashboard")
    check_page(page, problems)
    row = page.locator("#chase-list tr[data-chase='220']")
    assert "ldtbxh220@demo.bacgiang.vn" in row.inner_text()
    assert row.get_by_test_id("last-reminded").inner_text() == "Chưa nhắc"
    row.get_by_role("button", name="Gửi nhắc Huyện Sơn Động").click()
    expect(page.locator(".flash-ok")).to_contain_text("Đã xếp thư nhắc vào hàng gửi cho 1 đơn vị: Huyện Sơn Động")
    last = page.locator("#chase-list tr[data-chase='220']").get_by_test_id("last-reminded").inner_text()
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", last), last

    rows = mail_rows(page, live_server, "manual_reminder")
    expect(rows).to_have_count(1)
    assert "Huyện Sơn Động" in rows.first.inner_text() and "Đã ghi vào hộp thư đi" in rows.first.inner_text()
    check_page(page, problems)

    # A second press the same day is refused, with the time of the first.
    page.goto(f"{live_server}/plans/{PLAN}/dashboard")
    page.locator("#chase-list tr[data-chase='220']").get_by_role("button", name="Gửi nhắc Huyện Sơn Động").click()
    expect(page.locator(".flash-info")).to_contain_text(f"đã được nhắc hôm nay lúc {last}")
    expect(mail_rows(page, live_server, "manual_reminder")).to_have_count(1)

    # Ticking two units and pressing the bulk button reminds both.
    page.goto(f"{live_server}/plans/{PLAN}/dashboard")
    page.get_by_label("Chọn Huyện Yên Dũng").check()
    page.get_by_label("Chọn Thị xã Việt Yên").check()
    page.get_by_role("button", name="Gửi nhắc các đơn vị đã chọn").click()
    expect(page.locator(".flash-ok")).to_contain_text("Đã xếp thư nhắc vào hàng gửi cho 2 đơn vị")
    expect(mail_rows(page, live_server, "manual_reminder")).to_have_count(3)
    assert not problems, "\n".join(problems)


def test_return_reaches_the_officer_version_page_and_comments_reach_inboxes_once(
        page: Any, live_server: str, login: Any, logout: Any, app: Any, token_for: Any, smtp_server: Any) -> None:
    problems: list[str] = []
    smtp_server.configure(app)
    api_upload(app, token_for("unit", "219"), "219", filled_return(app, "219"))
    smtp_server.clear()  # the receipt

    login(STAFF)
    page.goto(f"{live_server}/plans/{PLAN}/review-queue")
    check_page(page, problems)
    page.get_by_role("link", name="Xem và trả lại Huyện Lục Ngạn").click()
    assert page.url.endswith(f"/plans/{PLAN}/units/219/versions/1#review")
    check_page(page, problems)
    page.get_by_label(re.compile("^Lý do trả lại để chỉnh sửa")).fill(REASON)
    page.get_by_role("button", name="Trả lại để chỉnh sửa").click()
    assert page.url.endswith(f"/plans/{PLAN}/units/219/versions/1")
    expect(page.locator(".flash-ok[role=status]")).to_contain_text("Đã trả lại phiên bản 1")
    returned = [m for m in smtp_server.messages if "trả lại" in m.subject]
    assert len(returned) == 1

    page.get_by_label(re.compile("^Gửi ý kiến cho Huyện Lục Ngạn")).fill("Đề nghị gửi kèm sổ theo dõi vụ việc.")
    page.get_by_role("button", name="Gửi ý kiến").click()
    expect(page.get_by_test_id("comments")).to_contain_text("Đề nghị gửi kèm sổ theo dõi vụ việc.")
    to_unit = [m for m in smtp_server.messages if m.subject.endswith("Ý kiến về báo cáo phiên bản 1 – Huyện Lục Ngạn")
               or "Ý kiến về báo cáo" in m.subject]
    assert len(to_unit) == 1 and "ldtbxh219@demo.bacgiang.vn" in to_unit[0].rcpt_tos
    logout()

    login("donvi219@demo.bacgiang.vn")
    page.get_by_role("link", name="Xem kết quả phiên bản 1").click()
    step = page.get_by_test_id("next-step")
    assert "Sở trả lại để chỉnh sửa" in step.inner_text()
    assert page.get_by_test_id("review-reason").inner_text() == REASON
    assert "Đầy đủ, không có lỗi" not in page.get_by_test_id("result").inner_text()
    expect(step.get_by_role("link", name="Tải lên bản đã sửa")).to_be_visible()
    check_page(page, problems)
    page.get_by_label("Gửi ý kiến cho Sở (thư báo được gửi tới bên kia)").fill("Đơn vị sẽ gửi lại trong tuần.")
    page.get_by_role("button", name="Gửi ý kiến").click()
    expect(page.get_by_test_id("comments")).to_contain_text("Đơn vị sẽ gửi lại trong tuần.")
    comments = [m for m in smtp_server.messages if "Ý kiến về báo cáo" in m.subject]
    assert len(comments) == 2 and comments[1].rcpt_tos == [STAFF]
    assert "Đơn vị sẽ gửi lại trong tuần." in comments[1].text()
    page.reload()
    page.goto(f"{live_server}/plans/{PLAN}/units/219")
    check_page(page, problems)
    assert len([m for m in smtp_server.messages if "Ý kiến về báo cáo" in m.subject]) == 2
    assert not problems, "\n".join(problems)


def test_review_queue_empties_as_staff_review(page: Any, live_server: str, login: Any, app: Any,
                                              token_for: Any) -> None:
    problems: list[str] = []
    api_upload(app, token_for("unit", "213"), "213", filled_return(app, "213"))
    api_upload(app, token_for("unit", "219"), "219", filled_return(app, "219"))
    login(STAFF)
    page.goto(f"{live_server}/plans/{PLAN}/dashboard")
    page.get_by_role("link", name="Chờ Sở xem xét (2)").click()
    expect(page.locator("#review-queue tbody tr")).to_have_count(2)
    check_page(page, problems)
    page.get_by_role("button", name="Chấp nhận phiên bản 1 của Thành phố Bắc Giang").click()
    expect(page.locator(".flash-ok")).to_contain_text("Đã chấp nhận")
    expect(page.locator("#review-queue tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Chấp nhận phiên bản 1 của Huyện Lục Ngạn").click()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    assert page.locator("h1").inner_text() == "Chờ Sở xem xét (0)"
    check_page(page, problems)
    assert not problems, "\n".join(problems)


@pytest.fixture
def english_page(playwright_driver: Any, chromium_path: str, live_server: str, tmp_path: Any) -> Iterator[Any]:
    """A tab of a second Chromium whose language is English (en-US), where datetime-local reads mm/dd/yyyy."""
    context = launch(playwright_driver, chromium_path, tmp_path / "profile-en", "en-US", "America/New_York")
    try:
        yield context.new_page()
    finally:
        context.close()


def test_as_of_typed_the_vietnamese_way_in_an_english_browser(english_page: Any, live_server: str) -> None:
    page = english_page
    problems: list[str] = []
    assert page.evaluate("navigator.language") == "en-US"
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(STAFF)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.goto(f"{live_server}/plans/{PLAN}/dashboard")
    field = page.get_by_label("Tính tại thời điểm (giờ Việt Nam)")
    field.fill("10/05/2024 08:00")
    page.get_by_role("button", name="Xem").click()
    # 10 May 2024, 08:00 in Vietnam — not 5 October, and not New York's clock.
    expect(page.get_by_test_id("as-of")).to_contain_text("10/05/2024 08:00")
    assert page.get_by_label("Tính tại thời điểm (giờ Việt Nam)").input_value() == "10/05/2024 08:00"
    assert page.locator(".stats li[data-status='overdue'] strong").inner_text() == "9"
    assert "Trễ 1 ngày" in page.locator("#units tbody tr[data-unit='219']").inner_text()
    check_page(page, problems)
    page.get_by_role("link", name="7 ngày sau hạn").click()
    expect(page.get_by_test_id("as-of")).to_contain_text("17/05/2024 00:00")
    page.get_by_label("Tính tại thời điểm (giờ Việt Nam)").fill("05/10/2024 8 giờ")
    page.get_by_role("button", name="Xem").click()
    assert "không hợp lệ" in page.locator("main").inner_text() and "10/05/2024 08:00" in page.locator("main").inner_text()
    assert not problems, "\n".join(problems)


def test_the_axe_check_can_fail(page: Any) -> None:
    """The vendored axe-core really runs: a button without a name and an image without text are caught."""
    page.set_content('<html lang="vi"><head><title>x</title></head><body><main><button></button>'
                     '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main></body></html>')
    found = " ".join(__import__("e2e_support").axe_violations(page))
    assert "button-name" in found and "image-alt" in found
