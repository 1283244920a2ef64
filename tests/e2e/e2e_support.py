"""Constants and small helpers shared by the browser journeys (the fixtures live in conftest.py).

Test modules import from here, never from ``conftest``: with two conftest.py files in the run, the name
``conftest`` means whichever pytest loaded last."""
from __future__ import annotations

from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PLAN = "bacgiang-2024"
PASSWORD = "demo-2024"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# The list: no sandbox (containers), no GPU, and nothing that phones home during a test.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# One slow page should fail one test quickly instead of hanging the run.
TIMEOUT_MS = 15_000
# Three mistakes an officer really makes in Phụ lục 03: text in a number cell, a negative count, and a
# total that does not add up (criminal + administrative + pending must equal the number of cases).
TEXT_CELL = ("B01", "children_0_6", "current_female")
NEGATIVE_CELL = ("B01", "communes", "current_total")
SUM_CELL = ("B03", "handled_pending", "base_total")


def download(page: Any, name: str, role: str = "link") -> tuple[str, bytes]:
    """Click the link (or button) called ``name``; return the suggested file name and the file's bytes."""
    with page.expect_download() as info:
        page.get_by_role(role, name=name).click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


# sessionStorage outlives the redirect to the result page, so it keeps the highest value the bar showed.
_WATCH_PROGRESS = """() => {
  const bar = document.getElementById('upload-progress');
  sessionStorage.removeItem('progress-seen');
  new MutationObserver(() => {
    if (!bar.hidden) sessionStorage.setItem('progress-seen', String(bar.value));
  }).observe(bar, {attributes: true});
}"""


def upload_return(page: Any, path: Path) -> None:
    """Choose ``path`` in the unit page's file input and press «Tải lên báo cáo», as an officer would.

    Holds the POST for a moment to check what the page shows meanwhile («Đang tải lên…» in a live
    region), then lets it through and waits for the result page. Fails if the progress bar never
    showed 100%.
    """
    import re

    held: list[Any] = []
    page.evaluate(_WATCH_PROGRESS)
    page.route("**/returns", lambda route: held.append(route))
    page.get_by_label(re.compile("chọn tệp báo cáo")).set_input_files(str(path))
    page.get_by_role("button", name="Tải lên báo cáo").click()
    page.wait_for_function("document.getElementById('upload-status').textContent.startsWith('Đang tải lên')")
    assert page.locator("#upload-status").get_attribute("aria-live") == "polite"
    page.wait_for_function("() => true")  # gives the route callback its turn
    assert held, "the upload never left the browser"
    with page.expect_navigation(url=re.compile(r"/versions/\d+$")):
        held[0].continue_()
    page.unroute("**/returns")
    assert page.evaluate("sessionStorage.getItem('progress-seen')") == "100", "the progress bar never reached 100%"


def api_upload(app: Any, token: str, unit_code: str, data: bytes, name: str = "bao-cao.xlsx") -> dict[str, Any]:
    """Upload a return the way a unit's script would (the API, with a bearer token); return the JSON body."""
    import io

    response = app.test_client().post(f"/api/v1/plans/{PLAN}/units/{unit_code}/returns",
                                      headers={"Authorization": f"Bearer {token}"},
                                      data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    return response.get_json()


def filled_return(app: Any, unit_code: str = "219", broken: bool = False) -> bytes:
    """Return a unit's blank form filled with consistent values (with the three mistakes when ``broken``)."""
    from forms_fixtures import consistent_values, shipped_forms
    from returns_fixtures import fill_workbook, sample_texts
    from tracker import forms
    from tracker.extensions import db
    from tracker.models import Assignment, Plan, Unit
    from tracker.workbook import build_blank

    with app.app_context():
        assignment = db.session.scalar(db.select(Assignment).join(Plan).join(Unit, Assignment.unit_id == Unit.id)
                                       .where(Plan.code == PLAN, Unit.code == unit_code))
        form = shipped_forms()[assignment.form_code]
        blank = build_blank(forms.get(form.code), forms.workbook_context(assignment),
                            app.config["SECRET_KEY"])
    values = broken_values(form) if broken else consistent_values(form)
    return fill_workbook(blank, form, values, sample_texts(form))


def broken_values(form: Any) -> dict[Any, Any]:
    """Return consistent values for Phụ lục 03 with the three mistakes above typed in."""
    from forms_fixtures import consistent_values

    values: dict[Any, Any] = dict(consistent_values(form))
    values[TEXT_CELL] = "khoảng 500"
    values[NEGATIVE_CELL] = -3
    values[SUM_CELL] = values[SUM_CELL] + 5
    return values


def move_deadline(app: Any, days: int) -> tuple[Any, str | None]:
    """Put the plan's deadline at midnight (Vietnam time) ``days`` days from today, its wording to match.

    Returns the previous (deadline, deadline_text), for ``restore_deadline``.
    """
    from datetime import datetime, time, timedelta

    from tracker.timeutil import LOCAL_TZ, local, utc_now

    day = local(utc_now()).date() + timedelta(days=days)
    deadline = datetime.combine(day, time(0, 0), tzinfo=LOCAL_TZ)
    return restore_deadline(app, (deadline, f"trước ngày {day.day}/{day.month}/{day.year}"))


def restore_deadline(app: Any, saved: tuple[Any, str | None]) -> tuple[Any, str | None]:
    """Set the plan's (deadline, deadline_text); return the values they replace."""
    from tracker.extensions import db
    from tracker.models import Plan

    with app.app_context():
        plan = db.session.scalar(db.select(Plan).where(Plan.code == PLAN))
        previous = (plan.deadline, plan.deadline_text)
        plan.deadline, plan.deadline_text = saved
        db.session.commit()
    return previous


AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# Rules we hold ourselves to: axe's serious and critical findings, on every page a journey visits.
BLOCKING = ("serious", "critical")


def axe_violations(page: Any) -> list[str]:
    """Run axe-core (vendored, never fetched) on the page; return its serious and critical violations.

    The script goes in through the DevTools protocol, so the page's Content-Security-Policy (which
    rightly refuses inline scripts) stays as it is.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [f"{v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in result if v["impact"] in BLOCKING]


def fits_width(page: Any, width: int = 390) -> int:
    """Return the page's scrollWidth at ``width`` px wide (the viewport is put back afterwards)."""
    size = page.viewport_size
    page.set_viewport_size({"width": width, "height": 844})
    try:
        return int(page.evaluate("document.documentElement.scrollWidth"))
    finally:
        page.set_viewport_size(size)


def check_page(page: Any, problems: list[str]) -> None:
    """Add to ``problems`` this page's axe violations and a sideways scroll at 390 px, named by its path."""
    where = page.url.split("//", 1)[-1].split("/", 1)[-1]
    problems.extend(f"/{where}: {v}" for v in axe_violations(page))
    width = fits_width(page)
    if width > 390:
        problems.append(f"/{where}: scrollWidth {width} px at 390 px wide")


def launch(playwright: Any, chromium_path: str, profile: Path, locale: str, timezone_id: str) -> Any:
    """Start a headless Chromium on a fresh ``profile`` folder with that language and clock."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS,
        accept_downloads=True, viewport=DESKTOP, locale=locale, timezone_id=timezone_id)
    context.set_default_timeout(TIMEOUT_MS)
    return context
