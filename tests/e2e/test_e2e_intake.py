"""Issue 19: staff confirm a return that arrived by email from an address the tracker does not know."""
from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from e2e_support import ARTIFACTS, DESKTOP, PHONE, PLAN, check_page

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from intake_fixtures import XLSX, filled_return, make_email  # noqa: E402

pytestmark = pytest.mark.e2e

STAFF = "canbo@demo.bacgiang.vn"
STRANGER = "nguyenvana.lucngan@gmail.com"


def test_staff_confirm_a_held_email_return(page: Any, live_server: str, login: Any, app: Any,
                                           tmp_path: Path) -> None:
    held = tmp_path / "held.eml"
    held.write_bytes(make_email(STRANGER, [("Báo cáo Lục Ngạn.xlsx", filled_return(app, "219"), XLSX)],
                                extra={"Received": "by mx.bacgiang.gov.vn; Thu, 9 May 2024 10:00:00 +0700"}))
    link = tmp_path / "link.eml"
    link.write_bytes(make_email("ldtbxh218@demo.bacgiang.vn", body="Báo cáo: https://drive.google.com/file/d/1/view"))
    result = app.test_cli_runner().invoke(args=["ingest-mail", "--eml", str(held), str(link)])
    assert result.exit_code == 0, result.output

    login(STAFF)
    page.get_by_role("link", name="Thư gửi báo cáo").click()
    expect(page.locator("#held-title")).to_have_text("Thư chờ xác nhận (1)")
    row = page.locator("[data-testid^=held-]")
    expect(row).to_contain_text(STRANGER)
    expect(row).to_contain_text("Huyện Lục Ngạn (mã 219)")
    expect(page.locator("main")).to_contain_text("drive.google.com")
    problems: list[str] = []
    check_page(page, problems)  # axe-core, and no sideways scrolling at 390 px
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "intake-held-1366.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / "intake-held-390.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

    row.get_by_role("button", name="Xác nhận và tính báo cáo").click()
    expect(page.locator("p.flash-ok[role=status]")).to_contain_text("phiên bản 1")
    expect(page.locator("#held-title")).to_have_text("Thư chờ xác nhận (0)")
    check_page(page, problems)
    assert problems == []
    page.get_by_role("link", name="Đã nhận: phiên bản 1").click()
    assert page.url.endswith(f"/plans/{PLAN}/units/219/versions/1")
    # Counted at the time the mailbox received it, not when staff confirmed it.
    expect(page.locator("dl.facts")).to_contain_text("09/05/2024 10:00")
    assert datetime.now(UTC).year > 2024
