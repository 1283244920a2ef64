"""Issue 12: one rule decides which version counts for a unit (phiên bản được tính), everywhere.

Uploads go through the HTTP interface with workbooks built from the generated blank forms; the
status API, the dashboard, the export and the unit page must all name the same counted version.
"""
from __future__ import annotations

import io
import random
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from versions import add_version

from forms_fixtures import consistent_values, shipped_forms
from returns_fixtures import fill_workbook
from tracker.compliance import ReviewState, VersionFacts, counted_version
from tracker.extensions import db
from tracker.models import AuditEvent, Plan, ReturnVersion, Review
from tracker.standings import plan_standings

PLAN = "bacgiang-2024"
FORMS = shipped_forms()
VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, tzinfo=VN)
BIRTHS = ("B01", "births", "base_male")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def blank(client, login_as):
    login_as("staff")
    response = client.get(f"/plans/{PLAN}/units/219/blank-form.xlsx")
    assert response.status_code == 200
    client.get("/logout")
    return response.data


def full_return(blank: bytes, births: int = 55) -> bytes:
    form = FORMS["PL03"]
    values = dict(consistent_values(form))
    values[BIRTHS] = births
    values[("B01", "births", "base_female")] = 50
    values[("B01", "births", "base_total")] = births + 50
    texts = {s.code: f"Nội dung mục {s.code}." for s in form.narrative.sections if s.answer}
    return fill_workbook(blank, form, values, texts)


def upload(client, token: str, data: bytes, unit: str = "219"):
    return client.post(f"/api/v1/plans/{PLAN}/units/{unit}/returns", headers=bearer(token),
                       data={"file": (io.BytesIO(data), "bao-cao.xlsx")}, content_type="multipart/form-data")


def status_of(client, token: str, unit: str = "219") -> dict:
    body = client.get(f"/api/v1/plans/{PLAN}/status", headers=bearer(token)).get_json()
    return {u["code"]: u for u in body["units"]}[unit]


def withdraw(client, token: str, number: int, unit: str = "219"):
    return client.post(f"/api/v1/plans/{PLAN}/units/{unit}/versions/{number}/withdraw", headers=bearer(token))


def dashboard_counted(client, token: str) -> dict[str, str]:
    html = client.get(f"/plans/{PLAN}/dashboard", headers=bearer(token)).get_data(as_text=True)
    return dict(re.findall(r'<tr data-unit="(\d+)">.*?data-counted="(\d*)"', html, re.S))


def export_used(client, token: str) -> tuple[dict[str, int | None], float | None]:
    """Return {unit name: version used} from the export's first sheet, and Lục Ngạn's births (Năm 2023, Nam)."""
    from test_export import biểu_values, book, line_of

    response = client.get(f"/api/v1/plans/{PLAN}/export.xlsx", headers=bearer(token))
    assert response.status_code == 200
    wb = book(response.data)
    rows = list(wb["Thông tin"].iter_rows(values_only=True))
    missing_at = next(i for i, r in enumerate(rows) if r[0] == "III. ĐƠN VỊ CHƯA CÓ BÁO CÁO ĐẦY ĐỦ")
    used = {}
    for r in rows[:missing_at]:
        if r[0] and str(r[0]).isdigit() and r[1]:
            match = re.fullmatch(r"Lần (\d+)", str(r[4] or ""))
            used[r[1]] = int(match.group(1)) if match else None
    sheet = FORMS["PL03"].sheet("B01")
    line = line_of(biểu_values(wb["Biểu 01"]), sheet.column("base_male"), sheet, sheet.row("births"))
    return used, line.get("Lục Ngạn")


def test_blank_upload_after_a_complete_one_leaves_the_unit_complete(client, blank, token_for):
    unit_token, staff_token = token_for("unit", "219"), token_for("staff")
    first = upload(client, unit_token, full_return(blank, births=77))
    assert first.status_code == 201 and first.get_json()["complete"] is True
    before = status_of(client, unit_token)
    assert before["complete"] is True and before["counted_version"] == 1

    # The officer uploads the blank form by mistake: kept as a draft, with its issues.
    mistake = upload(client, unit_token, blank)
    assert mistake.status_code == 201
    body = mistake.get_json()
    assert body["version"] == 2 and body["complete"] is False and body["errors"] > 100
    assert body["status"] == before["status"]
    after = status_of(client, unit_token)
    assert after["complete"] is True and after["status"] == before["status"]
    assert after["counted_version"] == 1 and after["errors"] == body["errors"]

    # Dashboard and export name the same version, and the export's figures are v1's.
    assert dashboard_counted(client, staff_token)["219"] == "1"
    used, births = export_used(client, staff_token)
    assert used["Huyện Lục Ngạn"] == 1 and births == 77
    page = client.get(f"/plans/{PLAN}/units/219", headers=bearer(unit_token)).get_data(as_text=True)
    assert "Phiên bản 1, nhận lúc" in page and "Bản nháp: còn lỗi" in page
    assert "phiên bản 1 vẫn là phiên bản được tính" in page


def test_a_returned_version_stops_counting(client, login_as, blank, token_for):
    unit_token, staff_token = token_for("unit", "219"), token_for("staff")
    assert upload(client, unit_token, full_return(blank, births=61)).status_code == 201
    assert upload(client, unit_token, full_return(blank, births=62)).status_code == 201
    assert status_of(client, unit_token)["counted_version"] == 2
    login_as("staff")
    returned = client.post(f"/plans/{PLAN}/units/219/versions/2/return", data={"reason": "Biểu 01 chưa khớp"})
    assert returned.status_code == 302
    state = status_of(client, unit_token)
    assert state["counted_version"] == 1 and state["complete"] is True
    assert state["review"] == {"state": "returned", "reason": "Biểu 01 chưa khớp"}
    used, births = export_used(client, staff_token)
    assert used["Huyện Lục Ngạn"] == 1 and births == 61
    assert dashboard_counted(client, staff_token)["219"] == "1"


def test_only_version_returned_leaves_nothing_counted(app, client, login_as, token_for):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    login_as("staff")
    assert client.post(f"/plans/{PLAN}/units/219/versions/1/return", data={"reason": "Sai"}).status_code == 302
    state = status_of(client, token_for("staff"))
    assert (state["status"], state["complete"], state["counted_version"], state["late"]) == (
        "incomplete", False, None, False)


def test_a_withdrawn_version_stops_counting_and_stays_in_the_history(app, client, blank, token_for):
    unit_token, staff_token = token_for("unit", "219"), token_for("staff")
    assert upload(client, unit_token, full_return(blank, births=71)).status_code == 201
    assert upload(client, unit_token, full_return(blank, births=72)).status_code == 201

    # Staff return versions; they do not withdraw them. Another unit cannot either.
    assert withdraw(client, staff_token, 2).status_code == 403
    assert withdraw(client, token_for("unit", "218"), 2, unit="219").status_code == 403
    assert withdraw(client, unit_token, 9).status_code == 404

    response = withdraw(client, unit_token, 2)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["counted_version"] == 1
    again = withdraw(client, unit_token, 2)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_withdrawn"
    assert status_of(client, unit_token)["counted_version"] == 1
    used, births = export_used(client, staff_token)
    assert used["Huyện Lục Ngạn"] == 1 and births == 71
    assert dashboard_counted(client, staff_token)["219"] == "1"

    assert withdraw(client, unit_token, 1).status_code == 200
    state = status_of(client, unit_token)
    assert (state["status"], state["complete"], state["counted_version"]) == ("incomplete", False, None)
    assert export_used(client, staff_token)[0]["Huyện Lục Ngạn"] is None
    assert dashboard_counted(client, staff_token)["219"] == ""
    with app.app_context():
        versions = db.session.scalars(select(ReturnVersion).order_by(ReturnVersion.version)).all()
        assert [(v.version, v.withdrawn_at is not None, v.file is not None) for v in versions] == [
            (1, True, True), (2, True, True)]
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "version.withdraw")).all()
        assert [(e.target, e.detail["version"], e.actor) for e in events] == [
            (f"{PLAN}/219", 2, "donvi219@demo.bacgiang.vn"), (f"{PLAN}/219", 1, "donvi219@demo.bacgiang.vn")]
    page = client.get(f"/plans/{PLAN}/units/219", headers=bearer(unit_token)).get_data(as_text=True)
    assert page.count("Đã rút lúc") == 2 and "Chưa có phiên bản nào được tính" in page


def test_withdraw_from_the_unit_page_needs_the_confirmation(app, client, login_as):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    login_as("unit", "219")
    page = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    assert 'name="confirm" value="yes" required' in page and "Rút phiên bản 1" in page
    unconfirmed = client.post(f"/plans/{PLAN}/units/219/versions/1/withdraw")
    assert unconfirmed.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(ReturnVersion.withdrawn_at)) is None
    done = client.post(f"/plans/{PLAN}/units/219/versions/1/withdraw", data={"confirm": "yes"},
                       follow_redirects=True)
    assert "Đã rút phiên bản 1" in done.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(ReturnVersion.withdrawn_at)) is not None
    login_as("staff")
    assert client.post(f"/plans/{PLAN}/units/219/versions/1/withdraw", data={"confirm": "yes"}).status_code == 403


def test_the_sql_rule_agrees_with_the_pure_rule(app):
    """``standings.key_versions`` (SQL, for whole plans) picks what ``compliance.counted_version`` picks."""
    rng = random.Random(12)
    units = ["213", "215", "216", "217", "219", "220", "221", "222"]
    histories: dict[str, list[VersionFacts]] = {}
    base = DEADLINE - timedelta(days=20)
    for unit in units:
        facts = []
        for number in range(1, rng.randint(1, 6) + 1):
            received = base + timedelta(hours=rng.randint(0, 900))
            complete = rng.random() < 0.6
            vid = add_version(app, unit, number, received, complete, errors=0 if complete else 3)
            review = rng.choice([None, None, ReviewState.ACCEPTED, ReviewState.RETURNED])
            reviewed = received + timedelta(hours=rng.randint(1, 200)) if review else None
            withdrawn = received + timedelta(hours=rng.randint(1, 200)) if rng.random() < 0.25 else None
            with app.app_context():
                if review:
                    # An earlier, overridden decision first: only the latest one at as_of counts.
                    db.session.add(Review(version_id=vid, state=ReviewState.RETURNED.value
                                          if review is ReviewState.ACCEPTED else ReviewState.ACCEPTED.value,
                                          reason="trước", created_at=reviewed - timedelta(minutes=1)))
                    db.session.add(Review(version_id=vid, state=review.value, reason="x", created_at=reviewed))
                db.session.get(ReturnVersion, vid).withdrawn_at = withdrawn
                db.session.commit()
            facts.append((VersionFacts(number, received, complete, 0 if complete else 3, 0, review,
                                       "x" if review else None, reviewed, withdrawn),
                          reviewed - timedelta(minutes=1) if review else None))
        histories[unit] = facts
    checked = 0
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        for hours in range(0, 1200, 37):
            as_of = base + timedelta(hours=hours)
            got = {s.unit_code: s.standing.counted_version for s in plan_standings(plan, as_of)}
            for unit, facts in histories.items():
                seen = []
                for v, earlier_at in facts:
                    if v.reviewed_at is not None and v.reviewed_at > as_of:
                        # The latest review at as_of is the earlier, opposite decision (if made by then).
                        earlier = (ReviewState.RETURNED if v.review is ReviewState.ACCEPTED else ReviewState.ACCEPTED)
                        v = VersionFacts(v.version, v.received_at, v.complete, v.errors, v.warnings,
                                         earlier if earlier_at <= as_of else None, None,
                                         earlier_at if earlier_at <= as_of else None, v.withdrawn_at)
                    seen.append(v)
                expected = counted_version(seen, as_of)
                assert got[unit] == (expected.version if expected else None), (unit, as_of)
                checked += 1
    assert checked > 200
