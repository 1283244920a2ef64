"""Issue 18 in the browser: staff read what changed, the "Số liệu bất thường" list, verify a flag with a
note, and set a bound on the form's page; each page at 1366 px and 390 px wide (tests/e2e/artifacts/)."""
from __future__ import annotations

from typing import Any

import pytest

from e2e_support import ARTIFACTS, DESKTOP, PHONE, PLAN, axe_violations
from test_e2e_screenshots import UNLABELLED, fits_phone
from test_outliers import full_values
from test_review_tools import PL03_UNITS, province_with_one_outlier, store
from tracker.outliers import cell_key

pytestmark = pytest.mark.e2e


def shoot_both(page: Any, name: str) -> None:
    """Screenshot the page at desktop and phone width; the phone view must not scroll sideways."""
    ARTIFACTS.mkdir(exist_ok=True)
    for label, size in (("1366", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(100)
        page.screenshot(path=str(ARTIFACTS / f"reviewer-{name}-{label}.png"), full_page=True)
        if label == "390":
            assert fits_phone(page), f"{name} scrolls sideways at 390 px"
    page.set_viewport_size(DESKTOP)
    assert page.evaluate(UNLABELLED) == [], name
    assert axe_violations(page) == [], name


def test_staff_review_tools_in_the_browser(app: Any, page: Any, live_server: str, login: Any) -> None:
    province_with_one_outlier(app)
    form = app.extensions["tracker.forms"]["PL03"]
    second = full_values(form, 1.0 + PL03_UNITS.index("219") * 0.25)
    second[cell_key("B03.victims", "base", "total")] *= 50
    second[cell_key("B04.comm_events", "base", "total")] += 4
    second[cell_key("B04.comm_events", "current", "total")] += 2
    store(app, "219", 2, second)
    login("canbo@demo.bacgiang.vn")

    page.goto(f"{live_server}/plans/{PLAN}/units/219")
    summary = page.get_by_test_id("changes-summary")
    assert "So với lần 1: 2 ô thay đổi" in summary.inner_text()
    assert page.locator("table.changes tbody tr").count() == 2
    shoot_both(page, "unit-page")

    page.goto(f"{live_server}/plans/{PLAN}/units/219/versions/2")
    assert "So với lần 1: 2 ô thay đổi" in page.get_by_test_id("changes-summary").inner_text()
    page.get_by_text("Xem các ô đã thay đổi").click()
    shoot_both(page, "version-page")

    page.goto(f"{live_server}/plans/{PLAN}/outliers")
    rows = page.locator("table.flags tbody tr")
    assert rows.count() == 1 and "Huyện Lục Ngạn" in rows.first.inner_text()
    shoot_both(page, "outliers")
    rows.first.get_by_label("Ghi chú xác minh").fill("Đã gọi điện cho huyện: số liệu đúng.")
    rows.first.get_by_role("button", name="Đã xác minh").click()
    page.wait_for_load_state()
    assert "Đã ghi nhận" in page.locator("main").inner_text()
    verified = page.locator("table.flags tbody tr.flag-verified")
    assert verified.count() == 1 and "Đã gọi điện cho huyện" in verified.inner_text()
    shoot_both(page, "outliers-verified")

    page.goto(f"{live_server}/forms/PL03")
    page.get_by_label("Tối đa: Số thôn, tổ dân phố", exact=True).fill("300")
    page.get_by_role("button", name="Lưu khoảng giá trị").click()
    page.wait_for_load_state()
    assert "Đã lưu khoảng giá trị của 1 chỉ tiêu" in page.locator("main").inner_text()
    shoot_both(page, "form-bounds")
    page.goto(f"{live_server}/plans/{PLAN}/outliers")
    assert page.locator("table.flags tbody tr[data-reason='bounds']").count() > 0
