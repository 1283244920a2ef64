"""Chasing and reviewing: manual reminders (web and API), the timeliness series against the status API,
the review queue, the version page's review and next step, the comment thread and its emails."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from versions import add_sample_returns

from tracker.extensions import db
from tracker.models import AuditEvent, OutboundMessage, Review, ReturnVersion, User, VersionComment

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
PLAN = "bacgiang-2024"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def manual_rows(app, unit: str | None = None) -> list[OutboundMessage]:
    with app.app_context():
        query = select(OutboundMessage).where(OutboundMessage.kind == "manual_reminder")
        if unit:
            query = query.where(OutboundMessage.unit_key == unit)
        rows = db.session.scalars(query.order_by(OutboundMessage.id)).all()
        db.session.expunge_all()
        return list(rows)


@pytest.fixture
def returns(app):
    """213 on time, 215 incomplete, 216 late, 219 complete twice (v2 unreviewed), the others never sent."""
    add_sample_returns(app)


# ------------------------------------------------------------------------------------ manual reminders

def test_remind_api_queues_once_per_day_and_says_when(app, client, token_for, smtp_server, returns):
    smtp_server.configure(app)
    token = token_for("staff")
    first = client.post(f"/api/v1/plans/{PLAN}/units/220/remind", headers=bearer(token))
    assert first.status_code == 201, first.get_data(as_text=True)
    body = first.get_json()
    assert body["unit"] == "220" and body["recipients"] == ["ldtbxh220@demo.bacgiang.vn"]
    # Queued in the transaction, delivered after the commit: the server got exactly one message.
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ldtbxh220@demo.bacgiang.vn"]]
    assert "Đề nghị hoàn thiện và gửi báo cáo" in smtp_server.messages[0].subject
    letter = smtp_server.messages[0].text()
    assert "Huyện Sơn Động" in letter and "hạn nộp: " in letter and "Quá hạn chưa nộp" in letter
    assert "người nhắc: Cán bộ Phòng Trẻ em và Bình đẳng giới" in letter

    again = client.post(f"/api/v1/plans/{PLAN}/units/220/remind", headers=bearer(token))
    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "already_reminded" and error["last_reminded_at"] == body["queued_at"]
    shown = datetime.fromisoformat(body["queued_at"]).strftime("%d/%m/%Y %H:%M")
    assert shown in error["message"]
    assert len(manual_rows(app, "220")) == 1 and len(smtp_server.messages) == 1

    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "reminder.manual"))
        assert event.target == f"{PLAN}/220" and event.detail["unit_name"] == "Huyện Sơn Động"

    status = client.get(f"/api/v1/plans/{PLAN}/status", headers=bearer(token)).get_json()
    reminded = {u["code"]: u["last_reminded_at"] for u in status["units"]}
    assert reminded["220"] == body["queued_at"] and reminded["219"] is None


@pytest.mark.parametrize("unit", ["213", "216", "219", "223"])
def test_remind_api_refuses_units_with_nothing_to_chase(app, client, token_for, returns, unit):
    """On time, late, complete: nothing to chase; 223 is exempt."""
    response = client.post(f"/api/v1/plans/{PLAN}/units/{unit}/remind", headers=bearer(token_for("staff")))
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "nothing_to_chase"
    assert "không cần nhắc" in response.get_json()["error"]["message"]
    assert manual_rows(app) == []


def test_remind_api_refuses_a_unit_without_contacts(app, client, token_for):
    with app.app_context():
        from tracker.models import Contact, Unit
        unit = db.session.scalar(select(Unit).where(Unit.code == "221"))
        db.session.execute(Contact.__table__.delete().where(Contact.unit_id == unit.id))
        db.session.commit()
    response = client.post(f"/api/v1/plans/{PLAN}/units/221/remind", headers=bearer(token_for("admin")))
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "no_contacts"
    assert manual_rows(app) == []


def test_remind_api_unknown_unit_and_plan_are_404(client, token_for):
    token = token_for("staff")
    assert client.post(f"/api/v1/plans/{PLAN}/units/99999/remind", headers=bearer(token)).status_code == 404
    response = client.post("/api/v1/plans/nope/units/220/remind", headers=bearer(token))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_dashboard_chase_list_reminds_one_and_all_selected(app, client, login_as, returns):
    login_as("staff")
    html = client.get(f"/plans/{PLAN}/dashboard").get_data(as_text=True)
    chased = sorted(set(__import__("re").findall(r'<tr data-chase="(\d+)">', html)))
    # Now (long after the deadline): 215 has errors; 217, 218, 220, 221, 222 never sent. 213/216/219 complete.
    assert chased == ["215", "217", "218", "220", "221", "222"]
    assert "ldtbxh215@demo.bacgiang.vn" in html and "Chưa nhắc" in html

    one = client.post(f"/plans/{PLAN}/remind", data={"one": "215"}, follow_redirects=True)
    assert "Đã xếp thư nhắc vào hàng gửi cho 1 đơn vị: Huyện Yên Thế" in one.get_data(as_text=True)
    bulk = client.post(f"/plans/{PLAN}/remind", data={"unit": ["215", "217", "218"], "bulk": "1"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Đã xếp thư nhắc vào hàng gửi cho 2 đơn vị" in bulk and "đã được nhắc hôm nay lúc" in bulk
    assert sorted(m.unit_key for m in manual_rows(app)) == ["215", "217", "218"]
    none = client.post(f"/plans/{PLAN}/remind", data={"bulk": "1"}, follow_redirects=True)
    assert "Chưa chọn đơn vị nào" in none.get_data(as_text=True)
    after = client.get(f"/plans/{PLAN}/dashboard").get_data(as_text=True)
    assert after.count("Chưa nhắc") == 3

    log = client.get("/mail-log").get_data(as_text=True)
    assert log.count("Nhắc nộp (cán bộ Sở gửi)") >= 3 and "Huyện Yên Thế" in log


# ------------------------------------------------------------------------------------------ timeliness

@pytest.mark.parametrize("as_of", ["2024-05-07T00:00:00+07:00", "2024-05-10T00:00:00+07:00",
                                   "2024-05-10T05:00:00+07:00", "2024-05-12T09:30:00+07:00"])
def test_timeliness_counts_match_the_status_api(app, client, token_for, returns, as_of):
    with app.app_context():
        staff = db.session.scalar(select(User).where(User.email == "canbo@demo.bacgiang.vn"))
        v = db.session.scalar(select(ReturnVersion).where(ReturnVersion.filename == "213-1.xlsx"))
        db.session.add(Review(version_id=v.id, state="returned", reason="Thiếu số liệu quý I",
                              reviewer_id=staff.id, created_at=DEADLINE + timedelta(days=1)))
        db.session.commit()
    token = token_for("staff")
    query = {"as_of": as_of}
    series = client.get(f"/api/v1/plans/{PLAN}/timeliness", query_string=query, headers=bearer(token))
    assert series.status_code == 200
    body = series.get_json()
    status = client.get(f"/api/v1/plans/{PLAN}/status", query_string=query, headers=bearer(token)).get_json()
    required = [u for u in status["units"] if u["status"] != "exempt"]
    last = body["days"][-1]
    assert set(last) == {"date", "received", "complete", "on_time", "reminders_sent"}
    assert last["date"] == as_of[:10]
    assert body["required"] == len(required) == 9
    assert last["received"] == sum(1 for u in required if u["first_received_at"])
    assert last["complete"] == sum(1 for u in required if u["complete"])
    if datetime.fromisoformat(as_of) >= DEADLINE:
        assert last["on_time"] == sum(1 for u in required if not u["late"])
    # Cumulative receipts never fall; the dates are consecutive days.
    received = [d["received"] for d in body["days"]]
    assert received == sorted(received)
    dates = [datetime.fromisoformat(d["date"]) for d in body["days"]]
    assert all(b - a == timedelta(days=1) for a, b in zip(dates, dates[1:]))


def test_timeliness_complete_dips_when_staff_return_a_version(app, client, token_for, returns):
    with app.app_context():
        staff = db.session.scalar(select(User).where(User.email == "canbo@demo.bacgiang.vn"))
        v = db.session.scalar(select(ReturnVersion).where(ReturnVersion.filename == "213-1.xlsx"))
        db.session.add(Review(version_id=v.id, state="returned", reason="Sai", reviewer_id=staff.id,
                              created_at=DEADLINE + timedelta(days=1, hours=9)))
        db.session.commit()
    body = client.get(f"/api/v1/plans/{PLAN}/timeliness", query_string={"as_of": "2024-05-13T00:00:00+07:00"},
                      headers=bearer(token_for("admin"))).get_json()
    by_day = {d["date"]: d for d in body["days"]}
    assert by_day["2024-05-09"]["complete"] == 2 and by_day["2024-05-09"]["on_time"] == 2
    assert by_day["2024-05-10"]["complete"] == 3  # 216 completed late
    assert by_day["2024-05-11"]["complete"] == 2 and by_day["2024-05-11"]["on_time"] == 2


def test_timeliness_counts_sent_reminders_per_day(app, client, token_for, runner, returns):
    result = runner.invoke(args=["send-reminders", "--as-of", "2024-05-07T08:00:00+07:00"])
    assert result.exit_code == 0, result.output
    body = client.get(f"/api/v1/plans/{PLAN}/timeliness", query_string={"as_of": "2024-05-08T00:00:00+07:00"},
                      headers=bearer(token_for("staff"))).get_json()
    with app.app_context():
        sent = db.session.scalar(select(func.count()).select_from(OutboundMessage).where(
            OutboundMessage.kind == "deadline_approaching", OutboundMessage.status == "sent"))
    by_day = {d["date"]: d["reminders_sent"] for d in body["days"]}
    assert sent > 0 and by_day["2024-05-07"] == sent and sum(by_day.values()) == sent


def test_timeliness_bad_as_of_is_400(client, token_for):
    response = client.get(f"/api/v1/plans/{PLAN}/timeliness?as_of=10/05/2024", headers=bearer(token_for("staff")))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_as_of"


def test_dashboard_draws_charts_with_a_colour_per_status(client, login_as, returns):
    login_as("staff")
    html = client.get(f"/plans/{PLAN}/dashboard?as_of=2024-05-12T00:00%2B07:00").get_data(as_text=True)
    assert 'data-testid="timeliness-chart"' in html and 'data-testid="deadline-line"' in html
    assert html.count('<polyline points="') == 3
    import re
    fills = dict(re.findall(r'fill="(#[0-9A-F]{6})" stroke="#333" stroke-width="0.5" data-status="(\w+)"', html))
    assert len(fills) == 6 and len(set(fills)) == 6  # six statuses, six colours
    assert 'data-testid="reporting-rate">33%' in html  # 213, 216, 219 of 9


# -------------------------------------------------------------------------------------------- review

def test_review_queue_oldest_first_and_empties_as_staff_review(app, client, login_as, token_for, returns):
    token = token_for("staff")
    queue = client.get(f"/api/v1/plans/{PLAN}/review-queue", headers=bearer(token)).get_json()["versions"]
    # Newest complete unreviewed version of each unit, oldest receipt first: 213 (2 days early), 219 v2, 216 v2.
    assert [(v["unit"], v["version"]) for v in queue] == [("213", 1), ("219", 2), ("216", 2)]
    assert [v["late"] for v in queue] == [False, False, True]
    login_as("staff")
    page = client.get(f"/plans/{PLAN}/review-queue").get_data(as_text=True)
    assert "Chờ Sở xem xét (3)" in page
    response = client.post(f"/plans/{PLAN}/units/213/versions/1/accept", data={"next": "review-queue"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/plans/{PLAN}/review-queue")
    client.post(f"/plans/{PLAN}/units/219/versions/2/return", data={"reason": "Thiếu số liệu", "next": "version"})
    queue = client.get(f"/api/v1/plans/{PLAN}/review-queue", headers=bearer(token)).get_json()["versions"]
    assert [(v["unit"], v["version"]) for v in queue] == [("216", 2)]
    client.post(f"/plans/{PLAN}/units/216/versions/2/accept", data={"next": "review-queue"})
    page = client.get(f"/plans/{PLAN}/review-queue").get_data(as_text=True)
    assert 'data-testid="queue-empty"' in page and "Chờ Sở xem xét (0)" in page


def test_officer_version_page_shows_the_return_reason_and_next_step(app, client, login_as, returns):
    login_as("staff")
    client.post(f"/plans/{PLAN}/units/219/versions/2/return", data={"reason": "Biểu 03 thiếu số liệu quý I"})
    login_as("unit", "219")
    html = client.get(f"/plans/{PLAN}/units/219/versions/2").get_data(as_text=True)
    assert "Sở trả lại để chỉnh sửa" in html and "Biểu 03 thiếu số liệu quý I" in html
    assert "Cán bộ Phòng Trẻ em và Bình đẳng giới" in html and "Tải lên bản đã sửa" in html
    assert "Đầy đủ, không có lỗi" not in html
    older = client.get(f"/plans/{PLAN}/units/219/versions/1").get_data(as_text=True)
    assert "Đã có phiên bản mới hơn" in older
    login_as("staff")
    client.post(f"/plans/{PLAN}/units/213/versions/1/accept")
    login_as("unit", "213")
    accepted = client.get(f"/plans/{PLAN}/units/213/versions/1").get_data(as_text=True)
    assert "Sở đã chấp nhận" in accepted and "không cần làm gì thêm" in accepted


def test_comment_reaches_the_other_side_once(app, client, login_as, smtp_server, returns):
    smtp_server.configure(app)
    login_as("staff")
    response = client.post(f"/plans/{PLAN}/units/219/versions/2/comments", data={"body": "Đề nghị giải trình ô D6."})
    assert response.status_code == 302
    assert len(smtp_server.messages) == 1
    to_unit = smtp_server.messages[0]
    assert sorted(to_unit.rcpt_tos) == ["donvi219@demo.bacgiang.vn", "ldtbxh219@demo.bacgiang.vn"]
    assert "Đề nghị giải trình ô D6." in to_unit.text()
    login_as("unit", "219")
    client.post(f"/plans/{PLAN}/units/219/versions/2/comments", data={"body": "Đã bổ sung giải trình."})
    assert len(smtp_server.messages) == 2
    # The staff member who wrote first is the one answered.
    assert smtp_server.messages[1].rcpt_tos == ["canbo@demo.bacgiang.vn"]
    html = client.get(f"/plans/{PLAN}/units/219/versions/2").get_data(as_text=True)
    assert "Đề nghị giải trình ô D6." in html and "Đã bổ sung giải trình." in html
    # Sending again changes nothing: one message per comment.
    with app.app_context():
        from tracker import outbox
        outbox.flush_pending(as_of=datetime.now(timezone.utc) + timedelta(hours=1))
        assert db.session.scalar(select(func.count()).select_from(VersionComment)) == 2
    assert len(smtp_server.messages) == 2


@pytest.mark.parametrize("body", ["", "   ", "x" * 2001])
def test_bad_comment_is_422_and_stores_nothing(app, client, login_as, returns, body):
    login_as("unit", "219")
    response = client.post(f"/plans/{PLAN}/units/219/versions/2/comments", data={"body": body})
    assert response.status_code == 422
    assert "ý kiến" in response.get_data(as_text=True).lower()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(VersionComment)) == 0


def test_officer_cannot_comment_on_another_unit(client, login_as, returns):
    login_as("unit", "218")
    assert client.post(f"/plans/{PLAN}/units/219/versions/2/comments", data={"body": "x"}).status_code == 403


# --------------------------------------------------------------------------------------------- access

ROUTES = [("post", f"/api/v1/plans/{PLAN}/units/220/remind"), ("get", f"/api/v1/plans/{PLAN}/timeliness"),
          ("get", f"/api/v1/plans/{PLAN}/review-queue"), ("get", f"/plans/{PLAN}/review-queue"),
          ("post", f"/plans/{PLAN}/remind")]


@pytest.mark.parametrize("method,url", ROUTES)
def test_new_department_routes_by_role(app, client, login_as, token_for, method, url):
    anonymous = getattr(client, method)(url)
    assert anonymous.status_code == (401 if url.startswith("/api/") else 302)
    login_as("unit", "220")
    assert getattr(client, method)(url, data={"one": "220"}).status_code == 403
    assert getattr(app.test_client(), method)(url, headers=bearer(token_for("unit", "220"))).status_code == 403
    login_as("staff")
    assert getattr(client, method)(url, data={"one": "220"}).status_code in (200, 201, 302)
    assert manual_rows(app, "220") == [] or url.endswith("remind")


# ------------------------------------------------------------------------------------- words, login

def test_journal_and_audit_log_speak_vietnamese_with_unit_names(app, client, login_as, returns):
    import io
    login_as("unit", "219")
    refused = client.post(f"/plans/{PLAN}/units/219/returns", data={"file": (io.BytesIO(b"not a workbook"), "bao-cao.xlsx")},
                          content_type="multipart/form-data")
    assert refused.status_code >= 400
    login_as("staff")
    client.post(f"/plans/{PLAN}/units/219/versions/2/return", data={"reason": "Thiếu Biểu 03"})
    client.post(f"/plans/{PLAN}/remind", data={"one": "215"})
    other = client.get(f"/plans/{PLAN}/units/215").get_data(as_text=True)
    assert "Nhắc Huyện Yên Thế nộp báo cáo, gửi tới ldtbxh215@demo.bacgiang.vn." in other
    journal = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    section = journal[journal.index('id="audit-title"'):]
    assert ">upload_refused<" not in section and "Từ chối tệp tải lên" in section and ".." not in section
    assert "Tệp «bao-cao.xlsx» của Huyện Lục Ngạn không được nhận; lý do:" in section
    assert "Phiên bản 2 của Huyện Lục Ngạn; lý do: «Thiếu Biểu 03»" in section
    login_as("admin")
    log = client.get("/admin/audit").get_data(as_text=True)
    body = log[log.index("<tbody>"):]
    assert "\\u" not in body and "{&#34;" not in body and '{"' not in body
    assert ">Trả lại để chỉnh sửa<" in body and ">Huyện Lục Ngạn<" in body and ">review.return<" not in body


@pytest.mark.parametrize("form,missing", [({}, "email và mật khẩu"), ({"email": "canbo@demo.bacgiang.vn"}, "mật khẩu"),
                                          ({"password": "x"}, "email")])
def test_empty_login_says_what_is_missing(client, form, missing):
    response = client.post("/login", data=form)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert f"Vui lòng nhập {missing} để đăng nhập." in text and "không đúng" not in text


def test_login_page_says_what_the_system_is_and_whom_to_ask(client):
    page = client.get("/login").get_data(as_text=True)
    assert "Hệ thống theo dõi báo cáo là gì?" in page and "Cán bộ phòng LĐTBXH huyện" in page
    assert "Chưa có tài khoản?" in page and "mailto:tuyetot_sldtbxh@bacgiang.gov.vn" in page
    for path in ("/password/forgot",):
        assert 'href="/login"' in client.get(path).get_data(as_text=True)
    empty = client.post("/password/forgot", data={"email": ""})
    assert empty.status_code == 400 and "Vui lòng nhập email" in empty.get_data(as_text=True)


# ----------------------------------------------------------------------------- almost empty upload

def _returns_of(app, unit: str) -> tuple[bytes, bytes]:
    """Return (a complete return, the same blank form left empty) of ``unit``, from its real blank form."""
    from forms_fixtures import consistent_values, shipped_forms
    from returns_fixtures import fill_workbook, sample_texts
    from tracker import forms
    from tracker.models import Assignment, Plan, Unit
    from tracker.workbook import build_blank

    with app.app_context():
        assignment = db.session.scalar(select(Assignment).join(Plan).join(Unit, Assignment.unit_id == Unit.id)
                                       .where(Plan.code == PLAN, Unit.code == unit))
        form = shipped_forms()[assignment.form_code]
        blank = build_blank(forms.get(form.code), forms.workbook_context(assignment),
                            app.config["SECRET_KEY"])
    return fill_workbook(blank, form, consistent_values(form), sample_texts(form)), fill_workbook(blank, form, {})


def test_blank_workbook_result_page_groups_blank_cells_as_ranges(app, client, login_as):
    """The unit's own blank form sent back empty: a few expandable ranges per sheet, not one row per cell."""
    import io
    import re

    _, empty = _returns_of(app, "219")
    login_as("unit", "219")
    sent = client.post(f"/plans/{PLAN}/units/219/returns", data={"file": (io.BytesIO(empty), "trong.xlsx")},
                       content_type="multipart/form-data")
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/versions/1")
    with app.app_context():
        version = db.session.scalar(select(ReturnVersion))
        blank = [i for i in version.issues if "còn trống." in i.message]
        others = len(version.issues) - len(blank)
    assert len(blank) > 400  # one issue per cell is stored, and the API still lists each one
    html = client.get(sent.headers["Location"]).get_data(as_text=True)
    section = html[html.index('data-testid="blanks"'):html.index("</section>", html.index('data-testid="blanks"'))]
    assert f"Ô bắt buộc còn trống: {len(blank)} ô" in section
    summaries = re.findall(r"<summary><strong>(.+?)</strong>: (\d+) ô trống, (.+?)</summary>", section)
    assert summaries and sum(int(n) for _, n, _ in summaries) == len(blank)
    assert all(re.fullmatch(r"[A-Z]+\d+(:[A-Z]+\d+)?(, [A-Z]+\d+(:[A-Z]+\d+)?)*(, …)?", r) for _, _, r in summaries)
    # The per-sheet issue tables keep only what is not a blank cell.
    assert html.count('<tr class="issue-') == others and "còn trống. Nếu" not in html


def test_almost_empty_upload_after_a_complete_one_asks_first_on_the_web_only(app, client, login_as, token_for):
    import io

    full, empty = _returns_of(app, "219")
    login_as("unit", "219")
    first = client.post(f"/plans/{PLAN}/units/219/returns", data={"file": (io.BytesIO(full), "du.xlsx")},
                        content_type="multipart/form-data")
    assert first.status_code == 303 and first.headers["Location"].endswith("/versions/1")

    asked = client.post(f"/plans/{PLAN}/units/219/returns", data={"file": (io.BytesIO(empty), "trong.xlsx")},
                        content_type="multipart/form-data")
    assert asked.status_code == 303 and "/returns/held/" in asked.headers["Location"]
    page = client.get(asked.headers["Location"]).get_data(as_text=True)
    assert "Tệp gần như trống" in page and "Phiên bản 1 đã nộp trước đó là báo cáo đầy đủ" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 1
    dropped = client.post(asked.headers["Location"], data={"decision": "drop"})
    assert dropped.status_code == 303
    assert client.get(asked.headers["Location"]).status_code == 404  # gone once decided

    # The page's XHR upload gets the same question as JSON; storing it anyway makes version 2.
    again = client.post(f"/plans/{PLAN}/units/219/returns", data={"file": (io.BytesIO(empty), "trong.xlsx")},
                        content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert again.status_code == 202 and again.get_json()["confirm"] is True
    login_as("unit", "218")
    assert client.get(again.get_json()["redirect"]).status_code == 403  # not theirs
    login_as("unit", "219")
    stored = client.post(again.get_json()["redirect"], data={"decision": "store"})
    assert stored.status_code == 303 and stored.headers["Location"].endswith("/versions/2")

    # The API stores what it is sent, without a question, as before.
    full_213, empty_213 = _returns_of(app, "213")
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token_for('unit', '213')}"}
    for data, number in ((full_213, 1), (empty_213, 2)):
        response = api.post(f"/api/v1/plans/{PLAN}/units/213/returns", headers=headers,
                            data={"file": (io.BytesIO(data), "bao-cao.xlsx")}, content_type="multipart/form-data")
        assert response.status_code == 201 and response.get_json()["version"] == number
