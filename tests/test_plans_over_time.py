"""Plans over time: a copy that moves the calendar, a copy onto the 2025 map confirmed unit by unit,
every plan reachable (officer list, landing, switcher, API), closed plans, and the seeded 2026 plan."""
from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import Assignment, AuditEvent, OutboundMessage, Plan, PlanState, ReturnVersion, Unit
from tracker.plan_calendar import rewrite_years, shift_between, shift_periods
from tracker.wording import plan_phrase

PLAN = "bacgiang-2024"


def plan(code: str) -> Plan:
    return db.session.scalar(select(Plan).where(Plan.code == code))


def copy_2025(runner, *extra: str, code: str = "bacgiang-2025", deadline: str = "2025-05-10T00:00:00+07:00"):
    result = runner.invoke(args=["plan-copy", PLAN, code, "--deadline", deadline, *extra])
    assert result.exit_code == 0, result.output
    return result.output


# ------------------------------------------------------------------------------------------- calendar

def test_copied_2025_plan_moves_periods_visits_and_drops_the_exemption(app, runner):
    output = copy_2025(runner)
    assert "Năm 2024; Quý I/2025" in output
    assert "hạn nộp: hết ngày 09/05/2025 (hạn: trước ngày 10/5/2025)" in output  # the one wording
    with app.app_context():
        copy, source = plan("bacgiang-2025"), plan(PLAN)
        assert [(p["label"], p["start"], p["end"]) for p in copy.periods] == [
            ("Năm 2024", "2024-01-01", "2024-12-31"), ("Quý I/2025", "2025-01-01", "2025-03-31")]
        assert copy.deadline == datetime(2025, 5, 9, 17, 0, tzinfo=UTC)
        assert copy.deadline_text == "trước ngày 10/5/2025"
        assert copy.title.endswith("năm 2025") and source.title.endswith("năm 2024")
        assert copy.doc_number == "" and copy.doc_date is None
        dates = sorted(v.visit_date for v in copy.visits)
        assert dates[0] == date(2025, 5, 20) and dates[-1] == date(2025, 6, 13)
        assert all(date(2025, 5, 1) <= d <= date(2025, 6, 30) for d in dates) and len(dates) == 10
        assert {v.unit.code: v.visit_date.replace(year=2024) for v in copy.visits} == \
               {v.unit.code: v.visit_date for v in source.visits}
        assert sum(len(v.communes) for v in copy.visits) == 20
        assert not any(a.exempt for a in copy.assignments)
        assert not any(a.exempt_reason for a in copy.assignments)
        assert {a.unit_id for a in copy.assignments} == {a.unit_id for a in source.assignments}
        assert copy.state == PlanState.OPEN and copy.units_on == source.units_on == date(2024, 5, 10)
        assert copy.reminder_settings == source.reminder_settings


def test_the_copied_plans_blank_form_reads_its_own_years(app, client, runner, login_as):
    """The form's texts are written for 2023 and Q1/2024; next year's blank says 2024 and Q1/2025 throughout,
    while the decree's number (09/2019/NĐ-CP) and the 2024 plan's own blank stay as they were."""
    import openpyxl

    copy_2025(runner)
    login_as("staff")

    def texts(plan_code: str) -> str:
        data = client.get(f"/plans/{plan_code}/units/219/blank-form.xlsx").data
        book = openpyxl.load_workbook(io.BytesIO(data))
        return "\n".join(str(c.value) for ws in book.worksheets if ws.sheet_state == "visible"
                         for row in ws.iter_rows() for c in row if isinstance(c.value, str))

    new, old = texts("bacgiang-2025"), texts(PLAN)
    assert "năm 2023 và quý I/2024" in old and "năm 2023 và quý I/2024" not in new
    assert "Biểu 01" in new and "năm 2024 và quý I/2025" in new
    assert "từ 01/01/2024 đến 31/12/2024" in new and "31/12/2023" not in new
    assert "09/2019/NĐ-CP" in new and "09/2020/NĐ-CP" not in new
    assert "Kỳ số liệu: Năm 2024; Quý I/2025" in new


def test_the_2026_commune_blank_names_its_own_department_and_years(client, login_as):
    import openpyxl

    login_as("staff")
    data = client.get("/plans/bacninh-2026/units/07210/blank-form.xlsx").data
    guide = openpyxl.load_workbook(io.BytesIO(data))["Hướng dẫn"]
    text = "\n".join(str(c.value) for row in guide.iter_rows() for c in row if isinstance(c.value, str))
    assert "Sở Y tế tỉnh Bắc Ninh." in text and "Bắc Giang (Phòng" not in text
    assert "năm 2025 và quý I/2026" in text and "2023" not in text


def test_a_form_follows_only_a_plan_moved_by_whole_years():
    from tracker.catalog import Period
    from tracker.form_levels import years_after

    form = [Period("base", "Năm 2023", date(2023, 1, 1), date(2023, 12, 31)),
            Period("current", "Quý I/2024", date(2024, 1, 1), date(2024, 3, 31))]
    assert years_after(form, [{"key": "base", "start": "2024-01-01", "end": "2024-12-31"},
                              {"key": "current", "start": "2025-01-01", "end": "2025-03-31"}]) == 1
    assert years_after(form, [{"key": "base", "start": "2023-01-01", "end": "2023-12-31"}]) == 0
    # Periods moved by days, or by different years, leave the texts alone.
    assert years_after(form, [{"key": "base", "start": "2024-01-11", "end": "2025-01-10"}]) == 0
    assert years_after(form, [{"key": "base", "start": "2024-01-01", "end": "2024-12-31"},
                              {"key": "current", "start": "2026-01-01", "end": "2026-03-31"}]) == 0


def test_keep_exemptions_keeps_them(app, runner):
    copy_2025(runner, "--keep-exemptions")
    with app.app_context():
        hiep_hoa = next(a for a in plan("bacgiang-2025").assignments if a.unit.code == "223")
        assert hiep_hoa.exempt and "1982/QĐ-UBND" in hiep_hoa.exempt_reason


def test_reminder_schedule_moves_with_the_deadline(app, runner):
    from tracker import reminders

    copy_2025(runner)
    with app.app_context():
        copy = plan("bacgiang-2025")
        drafts, _ = reminders.decide(copy, datetime(2025, 5, 3, 1, 0, tzinfo=UTC))  # 7 days before
        approaching = [d for d in drafts if d.kind == "deadline_approaching"]
        # Ten units, Hiệp Hòa included now that its 2024 exemption stayed behind.
        assert {d.unit_key for d in approaching} == {a.unit.code for a in copy.assignments}
        assert len(approaching) == 10
        drafts, _ = reminders.decide(copy, datetime(2025, 5, 16, 1, 0, tzinfo=UTC))  # visit of 20/5 in 5 days
        assert any(d.kind == "visit_approaching" and d.unit_key == "220" for d in drafts)
        old, _ = reminders.decide(plan(PLAN), datetime(2025, 5, 3, 1, 0, tzinfo=UTC))
        assert not [d for d in old if d.kind == "deadline_approaching"]


def test_an_offset_of_days_moves_dates_by_days_and_labels_follow_their_start():
    old = datetime(2024, 5, 9, 17, 0, tzinfo=UTC)
    shift = shift_between(old, old + timedelta(days=367))
    assert shift.years is None and shift.days == 367
    periods = shift_periods([{"key": "base", "label": "Năm 2023", "start": "2023-01-01", "end": "2023-12-31"}], shift)
    assert periods == [{"key": "base", "label": "Năm 2024", "start": "2024-01-03", "end": "2025-01-01"}]
    whole = shift_between(old, datetime(2026, 5, 9, 17, 0, tzinfo=UTC))
    assert whole.years == 2 and whole.move(date(2024, 2, 29)) == date(2026, 2, 28)
    assert rewrite_years("Năm 2023; Quý I/2024 (mã 12024)", 1) == "Năm 2024; Quý I/2025 (mã 12024)"
    assert plan_phrase(datetime(2025, 5, 9, 17, 0, tzinfo=UTC)) == "trước ngày 10/5/2025"
    assert plan_phrase(datetime(2025, 5, 9, 10, 0, tzinfo=UTC)) == "trước 17:00 ngày 9/5/2025"


def test_bad_units_as_of_is_refused(runner):
    result = runner.invoke(args=["plan-copy", PLAN, "x-2025", "--deadline", "2025-05-10T00:00:00+07:00",
                                 "--units-as-of", "1/7/2025"])
    assert result.exit_code != 0 and "--units-as-of" in result.output
    result = runner.invoke(args=["plan-copy", PLAN, "x-2025", "--deadline", "2025-05-10T00:00:00+07:00",
                                 "--units-as-of", "1990-01-01"])
    assert result.exit_code != 0 and "units-import" in result.output


# ------------------------------------------------------------------------------------------- reachable

def test_officer_of_luc_ngan_reaches_both_plans_and_lands_on_the_one_needing_action(app, client, runner,
                                                                                      login_as):
    copy_2025(runner, deadline="2030-05-10T00:00:00+07:00", code="bacgiang-2030")
    with app.app_context():
        # The 2024 report was accepted: nothing to do there, the 2030 plan (not due yet) needs the officer.
        source = plan(PLAN)
        assignment = next(a for a in source.assignments if a.unit.code == "219")
        db.session.add(ReturnVersion(assignment=assignment, version=1, form_code="PL03", form_version=1,
                                     file_kind="xlsx", filename="bc.xlsx", size=1, sha256="a" * 64,
                                     received_at=datetime(2024, 5, 8, tzinfo=UTC), complete=True))
        db.session.commit()
    login_as("unit", "219")
    listing = client.get("/plans").get_data(as_text=True).split('id="plans"')[1]
    assert "bacgiang-2024" in listing and "bacgiang-2030" in listing and "bacninh-2026" not in listing
    assert listing.index("bacgiang-2030") < listing.index("bacgiang-2024")
    assert client.get("/").headers["Location"] == "/plans/bacgiang-2030/units/219"
    for code in ("bacgiang-2024", "bacgiang-2030"):
        page = client.get(f"/plans/{code}/units/219")
        assert page.status_code == 200 and "Huyện Lục Ngạn" in page.get_data(as_text=True)
    # The switcher is on every page and lists exactly the officer's plans.
    page = client.get("/plans/bacgiang-2030/units/219").get_data(as_text=True)
    assert 'id="plan-switch"' in page and '<option value="bacgiang-2024"' in page
    assert '<option value="bacninh-2026"' not in page
    switched = client.get("/plans?switch=bacgiang-2024&from=unit.home")
    assert switched.headers["Location"] == "/plans/bacgiang-2024/units/219"
    assert client.get("/plans?switch=bacninh-2026").status_code == 403
    body = client.get("/api/v1/plans").get_json()
    assert [p["code"] for p in body] == ["bacgiang-2030", "bacgiang-2024"]


def test_officer_with_an_overdue_return_lands_on_the_old_plan(app, client, runner, login_as):
    copy_2025(runner, deadline="2030-05-10T00:00:00+07:00", code="bacgiang-2030")
    login_as("unit", "219")
    # Nothing sent for 2024: overdue comes before a plan that is not due yet.
    assert client.get("/").headers["Location"] == "/plans/bacgiang-2024/units/219"


def test_staff_switch_plans_from_every_page_keeping_the_page(app, client, login_as):
    login_as("staff")
    for path in ("/", f"/plans/{PLAN}", f"/plans/{PLAN}/dashboard", f"/plans/{PLAN}/schedule", "/mail-log",
                 f"/plans/{PLAN}/units/219"):
        page = client.get(path).get_data(as_text=True)
        assert 'id="plan-switch"' in page and '<option value="bacninh-2026"' in page, path
    response = client.get("/plans?switch=bacninh-2026&from=dashboard.dashboard")
    assert response.headers["Location"] == "/plans/bacninh-2026/dashboard"
    response = client.get("/plans?switch=bacninh-2026&from=notify.mail_log")
    assert response.headers["Location"] == "/plans/bacninh-2026"
    assert client.get("/plans?switch=khong-co").status_code == 404


def test_plan_api_gives_calendar_and_map_date(client, token_for):
    headers = {"Authorization": f"Bearer {token_for('staff')}"}
    body = client.get(f"/api/v1/plans/{PLAN}", headers=headers).get_json()
    assert body["code"] == PLAN and body["deadline"] == "2024-05-10T00:00:00+07:00"
    assert body["periods"] == [{"label": "Năm 2023", "start": "2023-01-01", "end": "2023-12-31"},
                               {"label": "Quý I/2024", "start": "2024-01-01", "end": "2024-03-31"}]
    assert body["units_as_of"] == "2024-05-10" and body["title"].endswith("năm 2024")
    assert {"unit": "218", "date": "2024-05-23", "communes": ["07444", "07501"]} in body["visits"]
    assert len(body["visits"]) == 10
    body = client.get("/api/v1/plans/bacninh-2026", headers=headers).get_json()
    assert body["units_as_of"] == "2025-07-01" and body["deadline"].startswith("2026-06-10")
    response = client.get("/api/v1/plans/khong-co", headers=headers)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


# ------------------------------------------------------------------------------------------- closing

def _blank(client, unit: str) -> bytes:
    return client.get(f"/plans/{PLAN}/units/{unit}/blank-form.xlsx").data


def test_a_closed_plan_refuses_uploads_and_sends_no_reminders(app, client, login_as, token_for):
    from tracker import reminders

    login_as("staff")
    blank = _blank(client, "219")
    response = client.post(f"/plans/{PLAN}/state", data={"state": "closed"})
    assert response.status_code == 303
    with app.app_context():
        assert plan(PLAN).state == PlanState.CLOSED
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "plan_state_changed")).detail[
            "after"] == "closed"
    page = client.get(f"/plans/{PLAN}").get_data(as_text=True)
    assert "Đã đóng" in page and "không nhận báo cáo mới" in page
    token = token_for("unit", "219")
    response = client.post(f"/api/v1/plans/{PLAN}/units/219/returns", headers={"Authorization": f"Bearer {token}"},
                           data={"file": (io.BytesIO(blank), "bc.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "plan_closed" and "đã đóng" in error["message"]
    login_as("unit", "219")
    response = client.post(f"/plans/{PLAN}/units/219/returns", data={"file": (io.BytesIO(blank), "bc.xlsx")},
                           content_type="multipart/form-data")
    assert response.status_code == 409 and "đã đóng" in response.get_data(as_text=True)
    home = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    assert 'id="plan-closed"' in home and 'id="upload-form"' not in home
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 0
        report = reminders.run(datetime(2024, 5, 12, 1, 0, tzinfo=UTC), dry_run=True)
        assert PLAN not in report.plans and not [d for d in report.queued if d.kind == "overdue"]
        with pytest.raises(reminders.ReminderError, match="đã đóng"):
            reminders.run(datetime(2024, 5, 12, 1, 0, tzinfo=UTC), plan_code=PLAN, dry_run=True)
    login_as("staff")
    assert client.post(f"/plans/{PLAN}/state", data={"state": "open"}).status_code == 303
    with app.app_context():
        assert plan(PLAN).state == PlanState.OPEN
        report = reminders.run(datetime(2024, 5, 12, 1, 0, tzinfo=UTC), dry_run=True)
        assert PLAN in report.plans and [d for d in report.queued if d.kind == "overdue"]
    assert client.post(f"/plans/{PLAN}/state", data={"state": "nonsense"}).status_code == 400
    assert OutboundMessage  # the dry runs stored nothing
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 0


def _close(app) -> None:
    from tracker.plans import set_state

    with app.app_context():
        set_state(plan(PLAN), PlanState.CLOSED)
        db.session.commit()


def test_a_closed_plan_refuses_a_withdrawal_as_it_refuses_an_upload(app, client, login_as, token_for):
    login_as("unit", "219")
    blank = _blank(client, "219")
    bearer = {"Authorization": f"Bearer {token_for('unit', '219')}"}
    uploaded = client.post(f"/api/v1/plans/{PLAN}/units/219/returns", headers=bearer,
                           data={"file": (io.BytesIO(blank), "bc.xlsx")},
                           content_type="multipart/form-data")
    assert uploaded.status_code == 201, uploaded.get_data(as_text=True)
    _close(app)
    response = client.post(f"/api/v1/plans/{PLAN}/units/219/versions/1/withdraw", headers=bearer)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "plan_closed" and f"Kế hoạch {PLAN} đã đóng" in error["message"]
    page = client.post(f"/plans/{PLAN}/units/219/versions/1/withdraw", data={"confirm": "yes"},
                       follow_redirects=True).get_data(as_text=True)
    assert "không rút được phiên bản báo cáo" in page
    with app.app_context():
        assert db.session.scalar(select(ReturnVersion)).withdrawn_at is None
        assert not db.session.scalar(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.action == "version.withdraw"))


def test_a_closed_plan_refuses_returns_by_email_and_held_ones_confirmed_after_closing(app, runner, client,
                                                                                    login_as, tmp_path):
    from intake_fixtures import LUC_NGAN_CONTACT, XLSX, filled_return, make_email
    from tracker.models import IntakeRecord

    def ingest(name: str, raw: bytes) -> str:
        (tmp_path / name).write_bytes(raw)
        result = runner.invoke(args=["ingest-mail", "--eml", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        return result.output

    # Held while the plan was open (a sender the tracker does not know), then the plan closes.
    assert "Chờ xác nhận [218]" in ingest("held.eml", make_email(
        "nguoila.lucnam@gmail.com", [("bc.xlsx", filled_return(app, "218"), XLSX)]))
    _close(app)
    output = ingest("contact.eml", make_email(LUC_NGAN_CONTACT, [("bc.xlsx", filled_return(app, "219"), XLSX)]))
    assert "Không nhận [219]" in output and f"Kế hoạch {PLAN} đã đóng" in output
    with app.app_context():
        held = db.session.scalar(select(IntakeRecord).where(IntakeRecord.state == "held"))
        assert held is not None and held.unit.code == "218"
        held_id = held.id
    login_as("staff")
    assert client.post(f"/intake/{held_id}/confirm").status_code == 303
    with app.app_context():
        record = db.session.get(IntakeRecord, held_id)
        assert record.state == "refused" and f"Kế hoạch {PLAN} đã đóng" in record.reason
        assert db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 0


# ------------------------------------------------------------------------------------------- 2025 map

def test_copy_onto_the_2025_map_proposes_bac_ninh_communes_and_opens_only_after_confirmation(
        app, client, runner, login_as):
    output = copy_2025(runner, "--units-as-of", "2025-07-01", code="bacninh-2025",
                       deadline="2025-11-10T00:00:00+07:00")
    assert "bản nháp" in output
    # 17 communes of 2024 were merged on 01/01/2025, a list the repository does not hold: named, not lost.
    assert "17 đơn vị cũ không có liên kết" in output and "07312 Xã Đại Hóa (216 Huyện Tân Yên)" in output
    with app.app_context():
        draft = plan("bacninh-2025")
        assert draft.state == PlanState.DRAFT and draft.units_on == date(2025, 7, 1)
        units = [a.unit for a in draft.assignments]
        assert units and all(u.in_force(date(2025, 7, 1)) and u.level == 3 for u in units)
        assert all(u.parent.code == "24" and u.parent.name == "Tỉnh Bắc Ninh" for u in units)
        assert not any(a.confirmed for a in draft.assignments)
        by_code = {a.unit.code: a for a in draft.assignments}
        bac_giang = by_code["07210"]
        assert bac_giang.unit.name == "Phường Bắc Giang"
        sources = {s["code"]: s for s in bac_giang.carried_from}
        assert sources["07201"]["name"] == "Phường Thọ Xương" and sources["07207"]["name"] == "Phường Ngô Quyền"
        assert sources["07201"]["plan_unit"] == "213 Thành phố Bắc Giang"
        # Two old districts' communes in one new unit: both sides are recorded.
        merged = [a for a in draft.assignments if len({s["plan_unit"] for s in a.carried_from}) > 1]
        assert merged
        # Lục Nam reported on PL02; its communes keep that form where they make up the new unit.
        assert by_code["07444"].form_code == "PL02" and bac_giang.form_code == "PL03"
        # Every old commune of the 2024 districts is carried somewhere.
        carried = {s["code"] for a in draft.assignments for s in a.carried_from}
        old_communes = db.session.scalar(select(func.count()).select_from(Unit).where(
            Unit.level == 3, Unit.valid_from == date(2024, 5, 1)))
        assert len(carried) + 17 == old_communes == 209
        assert {v.visit_date.year for v in draft.visits} == {2025}
        assert all(v.unit.in_force(date(2025, 7, 1)) for v in draft.visits)
        waiting = len(draft.assignments)
        first_id = by_code["07210"].id
        ids = [a.id for a in draft.assignments]
    login_as("unit", "219")
    assert client.get("/plans/bacninh-2025").status_code == 404
    login_as("staff")
    page = client.get("/plans/bacninh-2025/draft").get_data(as_text=True)
    assert f'data-testid="waiting">{waiting}<' in page
    assert "Phường Thọ Xương (07201) — thuộc 213 Thành phố Bắc Giang" in page and "Gộp từ" in page
    # Opening before every unit is confirmed is refused, and the plan stays a draft.
    response = client.post("/plans/bacninh-2025/state", data={"state": "open"}, follow_redirects=True)
    assert "chưa được xác nhận" in response.get_data(as_text=True)
    with app.app_context():
        assert plan("bacninh-2025").state == PlanState.DRAFT
    response = client.post(f"/plans/bacninh-2025/draft/{first_id}", data={"decision": "confirm"})
    assert response.status_code == 303
    dropped = ids[-1]
    client.post(f"/plans/bacninh-2025/draft/{dropped}", data={"decision": "drop"})
    for assignment_id in ids[1:-1]:
        if assignment_id != first_id:
            client.post(f"/plans/bacninh-2025/draft/{assignment_id}", data={"decision": "confirm"})
    with app.app_context():
        assert db.session.get(Assignment, dropped) is None
        assert all(a.confirmed for a in plan("bacninh-2025").assignments)
    assert client.post("/plans/bacninh-2025/state", data={"state": "open"}).status_code == 303
    with app.app_context():
        opened = plan("bacninh-2025")
        assert opened.state == PlanState.OPEN and len(opened.assignments) == waiting - 1
    assert client.post(f"/plans/bacninh-2025/draft/{first_id}", data={"decision": "drop"}).status_code == 303
    with app.app_context():
        assert db.session.get(Assignment, first_id) is not None  # not a draft any more: nothing dropped


def test_split_communes_are_shown_on_both_sides(app, client, runner, login_as, tmp_path):
    # A commune split between two new units (a partial share) appears under each of them.
    import gzip
    import json
    from pathlib import Path

    source = Path(app.config["REPORT_FORMS_DIR"]) / "units" / "vn_units_20250701.json.gz"
    data = json.loads(gzip.decompress(source.read_bytes()))
    province = next(p for p in data["provinces"] if p["code"] == "24")
    province["communes"][1]["merged_from"].append(["07201", "partial"])  # Thọ Xương also into Đa Mai
    data["provinces"] = [province]
    edited = tmp_path / "split.json"
    edited.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(args=["units-import", str(edited), "--as-of", "2025-07-01"])
    assert result.exit_code == 0 and "1 liên kết" in result.output, result.output
    copy_2025(runner, "--units-as-of", "2025-07-01", code="bacninh-2025", deadline="2025-11-10T00:00:00+07:00")
    login_as("staff")
    page = client.get("/plans/bacninh-2025/draft").get_data(as_text=True)
    assert page.count("Tách cho: Phường Bắc Giang, Phường Đa Mai") == 2
    assert "một phần" in page


def test_seed_loads_the_2026_plan_on_the_2025_map_beside_the_2024_plan(app, client, login_as):
    with app.app_context():
        new, old = plan("bacninh-2026"), plan(PLAN)
        assert len(new.assignments) == 99 and len(old.assignments) == 10
        assert new.units_on == date(2025, 7, 1) and new.deadline.year == 2026
        assert all(a.unit.parent.name == "Tỉnh Bắc Ninh" and a.unit.level == 3 for a in new.assignments)
        assert {a.unit.parent.name for a in old.assignments} == {"Tỉnh Bắc Giang"}
    login_as("staff")
    page = client.get("/").get_data(as_text=True)
    assert "bacgiang-2024" in page and "bacninh-2026" in page
    dashboard = client.get("/plans/bacninh-2026/dashboard")
    assert dashboard.status_code == 200 and "Phường Bắc Giang" in dashboard.get_data(as_text=True)
    assert "Huyện Lục Ngạn" in client.get(f"/plans/{PLAN}/dashboard").get_data(as_text=True)


def test_a_deadline_moved_past_the_map_change_keeps_the_plans_units(app, client, login_as):
    """Staff extending the 2024 plan's deadline beyond 1/7/2025 must not lose Huyện Lục Ngạn (ended then)."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    from tracker.extensions import db
    from tracker.models import Plan

    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == "bacgiang-2024"))
        plan.deadline = datetime(2026, 12, 11, 17, 0, tzinfo=timezone.utc)
        db.session.commit()
    login_as("unit", unit="219")
    page = client.get("/plans/bacgiang-2024/units/219")
    assert page.status_code == 200 and "Huyện Lục Ngạn" in page.get_data(as_text=True)
    assert client.get("/api/v1/plans/bacgiang-2024").get_json()["units_as_of"] == "2024-05-10"
