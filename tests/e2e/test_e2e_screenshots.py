"""Issue 8: screenshots of the main pages at 1366×768 and at phone width (390×844).

Every run writes them to tests/e2e/artifacts/ (not committed); ``make screenshots`` sets
TRACKER_SCREENSHOTS_DIR=docs/screenshots and so refreshes the four the README shows.
"""
from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from e2e_support import DESKTOP, PHONE, PLAN, api_upload, filled_return, move_deadline, restore_deadline
from tracker.extensions import db
from tracker.models import ReturnVersion
from tracker.timeutil import LOCAL_TZ

pytestmark = pytest.mark.e2e

# A picture of the plan a few days after its deadline: Bắc Giang city on time, Lục Ngạn with errors.
AS_OF = "2024-05-12T08:00"
RECEIVED = {"213": datetime(2024, 5, 8, 10, 15, tzinfo=LOCAL_TZ), "219": datetime(2024, 5, 9, 16, 40, tzinfo=LOCAL_TZ)}


def png_size(path: Path) -> tuple[int, int]:
    """Return (width, height) read from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def backdate(app: Any) -> None:
    with app.app_context():
        for version in db.session.scalars(db.select(ReturnVersion)):
            unit_code = version.assignment.unit.code
            version.received_at = RECEIVED[unit_code]
        db.session.commit()


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => el.type !== 'hidden' && !el.labels?.length && !el.getAttribute('aria-label')
                && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 120))"""


def fits_phone(page: Any) -> bool:
    """Return True when nothing makes the page scroll sideways (wide tables scroll inside their box)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def printed(page: Any, shoot: Any, name: str, table: str) -> None:
    """Check the print stylesheet keeps the table and the "as of" line and drops navigation and forms."""
    page.emulate_media(media="print")
    try:
        assert page.locator(table).is_visible() and page.get_by_test_id("as-of").is_visible()
        assert page.locator(".filters").is_hidden() and page.locator(".topbar nav").is_hidden()
        assert page.locator("main .button").first.is_hidden()
        shoot(f"{name}-print")
    finally:
        page.emulate_media(media="screen")


def test_screenshots_of_main_pages(page: Any, live_server: str, login: Any, logout: Any, app: Any,
                                   token_for: Any, shoot: Any) -> None:
    api_upload(app, token_for("unit", "213"), "213", filled_return(app, "213"))
    version = api_upload(app, token_for("unit", "219"), "219", filled_return(app, "219", broken=True))["version"]
    shots: dict[str, Path] = {}
    overflow: list[str] = []

    def both(name: str, publish: bool = True) -> None:
        assert page.evaluate(UNLABELLED) == [], f"controls without a label on {name}"
        page.set_viewport_size(DESKTOP)
        shots[name] = shoot(name, publish=publish)
        page.set_viewport_size(PHONE)
        if not fits_phone(page):
            overflow.append(name)
        shots[f"{name}-phone"] = shoot(f"{name}-phone")
        page.set_viewport_size(DESKTOP)

    page.goto(f"{live_server}/login")
    both("login", publish=False)

    # The officer a week before the deadline.
    original_deadline = move_deadline(app, 7)
    login("donvi219@demo.bacgiang.vn")
    assert page.get_by_test_id("status").inner_text().strip() == "Chưa đầy đủ"
    both("officer-home-week-before", publish=False)
    page.goto(f"{live_server}/plans/{PLAN}/units/219/versions/{version}")
    assert page.locator("tr.issue-error").count() >= 3
    both("result-errors")
    logout()

    # Staff, a few days after the deadline.
    restore_deadline(app, original_deadline)
    backdate(app)
    login("canbo@demo.bacgiang.vn")
    both("plans", publish=False)
    page.goto(f"{live_server}/plans/{PLAN}/dashboard?as_of={AS_OF}")
    assert page.locator("#units tbody tr[data-unit='213'] .badge").inner_text() == "Đúng hạn"
    both("dashboard-after-deadline", publish=False)
    printed(page, shoot, "dashboard", "#units")
    page.goto(f"{live_server}/plans/{PLAN}/schedule?as_of={AS_OF}")
    assert page.locator("#visits tbody tr.attention").count() >= 1
    both("schedule")
    printed(page, shoot, "schedule", "#visits")
    page.goto(f"{live_server}/plans/{PLAN}/units/219")
    both("unit-staff", publish=False)

    for name, path in shots.items():
        width, height = png_size(path)
        assert width == (PHONE if name.endswith("-phone") else DESKTOP)["width"], (name, width)
        assert height >= 600, (name, height)
    assert not overflow, f"these pages scroll sideways on a phone: {overflow}"


def test_screenshots_of_the_demo_story(page: Any, live_server: str, login: Any, logout: Any, app: Any,
                                       shoot: Any) -> None:
    """The README's pictures of issue 16, on what `seed --demo` leaves: the dashboard with its chart and
    chase list, the version the Sở returned, and that officer's home; each at 1366 and 390 px."""
    from tracker.demo_story import tell_story

    with app.app_context():
        assert tell_story().told
    shots: dict[str, Path] = {}

    def both(name: str) -> None:
        page.set_viewport_size(DESKTOP)
        shots[name] = shoot(name, publish=True)
        page.set_viewport_size(PHONE)
        assert fits_phone(page), f"{name} scrolls sideways at 390 px"
        shots[f"{name}-phone"] = shoot(f"{name}-phone", publish=True)
        page.set_viewport_size(DESKTOP)

    login("canbo@demo.bacgiang.vn")
    # Six days after the deadline, the day after the last overdue notice.
    page.goto(f"{live_server}/plans/{PLAN}/dashboard?as_of=2024-05-15T17:00%2B07:00")
    assert page.get_by_test_id("timeliness-chart").is_visible() and page.locator("#chase-list").is_visible()
    assert page.locator("#chase-list tbody tr").count() == 5
    both("dashboard")
    logout()

    login("donvi217@demo.bacgiang.vn")
    both("officer-home")
    page.get_by_role("link", name="Xem kết quả phiên bản 1").click()
    assert "Sở trả lại để chỉnh sửa" in page.get_by_test_id("next-step").inner_text()
    both("version-returned")

    for name, path in shots.items():
        width, _ = png_size(path)
        assert width == (PHONE if name.endswith("-phone") else DESKTOP)["width"], (name, width)
