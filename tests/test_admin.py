"""Admin pages: creating users, deactivating and reactivating them, revoking tokens, the audit log
and copying a plan; every change lands in the audit log."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import ApiToken, AuditEvent, Plan, Role, User
from tracker.views.admin import parse_local_deadline, suggested_deadline

PASSWORD = "demo-2024"


def user_by_email(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
        for row in rows:
            db.session.expunge(row)
        return list(rows)


def html(response) -> str:
    return response.get_data(as_text=True)


def labelled_inputs(page: str) -> None:
    """Assert every visible input, select and textarea of ``page`` has a <label for=...>."""
    ids = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', page)
    controls = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")[^>]*>', page)
    assert len(ids) == len(controls), "a control without an id cannot be labelled"
    for control_id in ids:
        assert f'<label for="{control_id}"' in page, control_id


# ------------------------------------------------------------------------------------------- users page

def test_users_page_lists_users_and_labels_every_input(app, client, login_as):
    login_as("admin")
    page = html(client.get("/admin/users"))
    assert "Người dùng" in page and "Tạo tài khoản" in page
    assert "donvi219@demo.bacgiang.vn" in page and "Cán bộ đơn vị" in page
    # The admin journey goes on from a unit's user to that unit's contact addresses.
    assert 'href="/admin/units/219/contacts"' in page
    labelled_inputs(page)


def test_unit_select_offers_only_units_assigned_in_a_plan(app, client, login_as):
    login_as("admin")
    page = html(client.get("/admin/users"))
    select_html = page.split('<select id="unit"', 1)[1].split("</select>", 1)[0]
    codes = re.findall(r'<option value="(\d+)"', select_html)
    # The 2024 plan's districts, then the communes of the 2026 plan on the 2025 map.
    assert [c for c in codes if len(c) == 3] == ["213", "215", "216", "217", "218", "219", "220", "221", "222", "223"]
    assert len(codes) == 10 + 99 and "07210" in codes
    # The province (24) and the 2024 communes exist as units but report nothing.
    assert '"24"' not in select_html and '"07558"' not in select_html


def test_admin_creates_a_unit_user_who_can_log_in(app, client, login_as):
    login_as("admin")
    response = client.post("/admin/users", data={"email": "  Moi.CanBo@LucNgan.vn ", "name": "Nguyễn Văn Mới",
                                                 "role": "unit", "unit": "219", "password": "mat-khau-moi"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/users")
    assert "Đã tạo tài khoản moi.canbo@lucngan.vn" in html(client.get("/admin/users"))
    user = user_by_email(app, "moi.canbo@lucngan.vn")
    assert user is not None and user.role is Role.UNIT and user.name == "Nguyễn Văn Mới" and user.active
    with app.app_context():
        assert db.session.get(User, user.id).unit.code == "219"
    [event] = events(app, "user_created")
    assert event.target == "moi.canbo@lucngan.vn" and event.detail == {"role": "unit", "unit": "219"}
    assert event.actor == "admin@demo.bacgiang.vn" and event.ip == "127.0.0.1"

    fresh = app.test_client()
    login = fresh.post("/login", data={"email": "moi.canbo@lucngan.vn", "password": "mat-khau-moi"})
    assert login.status_code == 302
    assert fresh.get("/plans/bacgiang-2024/units/219").status_code == 200
    assert fresh.get("/plans/bacgiang-2024/units/218").status_code == 403


def test_staff_user_gets_no_unit_even_if_one_is_selected(app, client, login_as):
    login_as("admin")
    response = client.post("/admin/users", data={"email": "canbo2@sldtbxh.vn", "name": "", "role": "staff",
                                                 "unit": "219", "password": "mat-khau-moi"})
    assert response.status_code == 303
    user = user_by_email(app, "canbo2@sldtbxh.vn")
    assert user.role is Role.STAFF and user.unit_id is None


@pytest.mark.parametrize(("data", "message"), [
    ({"email": "khong-hop-le", "role": "unit", "unit": "219", "password": "mat-khau-moi"}, "không hợp lệ"),
    ({"email": "donvi219@demo.bacgiang.vn", "role": "unit", "unit": "219", "password": "mat-khau-moi"},
     "đã có tài khoản"),
    ({"email": "a@lucngan.vn", "role": "unit", "unit": "219", "password": "ngan"}, "ít nhất 8 ký tự"),
    ({"email": "a@lucngan.vn", "role": "unit", "unit": "", "password": "mat-khau-moi"}, "phải gắn với một mã đơn vị"),
    ({"email": "a@lucngan.vn", "role": "unit", "unit": "07558", "password": "mat-khau-moi"},
     "không được giao báo cáo"),
    ({"email": "a@lucngan.vn", "role": "superuser", "unit": "", "password": "mat-khau-moi"}, "Vai trò không hợp lệ"),
    ({"email": "a@lucngan.vn", "role": "staff", "name": "x" * 201, "password": "mat-khau-moi"}, "Họ tên dài quá"),
])
def test_bad_user_input_is_a_422_that_keeps_what_was_typed(app, client, login_as, data, message):
    login_as("admin")
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(User))
    data = {"name": "Trần Thị Gõ", **data}
    response = client.post("/admin/users", data=data)
    assert response.status_code == 422
    page = html(response)
    assert message in page and 'role="alert"' in page
    assert f'value="{data["email"]}"' in page
    if len(data["name"]) <= 200:
        assert f'value="{data["name"]}"' in page
    if data["role"] in ("unit", "staff"):
        assert f'<option value="{data["role"]}" selected>' in page
    if data.get("unit"):
        assert f'<option value="{data["unit"]}" selected>' in page or data["unit"] == "07558"
    assert data["password"] not in page.replace(data["email"], "")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == before
    assert events(app, "user_created") == []


# ------------------------------------------------------------------------------------------- deactivate

def test_deactivating_a_user_ends_login_session_and_tokens(app, client, login_as, token_for):
    officer = app.test_client()
    assert officer.post("/login", data={"email": "donvi219@demo.bacgiang.vn", "password": PASSWORD}).status_code == 302
    assert officer.get("/plans/bacgiang-2024/units/219").status_code == 200
    token = token_for("unit", "219")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/plans", headers=bearer).status_code == 200

    login_as("admin")
    target = user_by_email(app, "donvi219@demo.bacgiang.vn")
    response = client.post(f"/admin/users/{target.id}/deactivate")
    assert response.status_code == 303
    assert "Đã khóa" in html(client.get("/admin/users"))
    assert user_by_email(app, "donvi219@demo.bacgiang.vn").active is False

    page = officer.get("/plans/bacgiang-2024/units/219")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert app.test_client().get("/api/v1/plans", headers=bearer).status_code == 401
    denied = app.test_client().post("/login", data={"email": "donvi219@demo.bacgiang.vn", "password": PASSWORD})
    assert denied.status_code == 401 and "Email hoặc mật khẩu không đúng" in html(denied)
    [event] = events(app, "user_deactivated")
    assert event.target == "donvi219@demo.bacgiang.vn" and event.detail == {"tokens_revoked": 1}

    # Reactivation restores the password login, but not the tokens revoked with the account.
    assert client.post(f"/admin/users/{target.id}/reactivate").status_code == 303
    assert user_by_email(app, "donvi219@demo.bacgiang.vn").active is True
    assert app.test_client().post("/login", data={"email": "donvi219@demo.bacgiang.vn",
                                                  "password": PASSWORD}).status_code == 302
    assert app.test_client().get("/api/v1/plans", headers=bearer).status_code == 401
    [event] = events(app, "user_reactivated")
    assert event.target == "donvi219@demo.bacgiang.vn"


def test_admin_cannot_lock_themself_out(app, client, login_as):
    admin_id = login_as("admin")
    response = client.post(f"/admin/users/{admin_id}/deactivate")
    assert response.status_code == 409 and "Không thể tự khóa" in html(response)
    assert user_by_email(app, "admin@demo.bacgiang.vn").active is True
    assert events(app, "user_deactivated") == []


def test_unknown_user_is_a_vietnamese_404(client, login_as):
    login_as("admin")
    for action in ("deactivate", "reactivate", "revoke-tokens"):
        response = client.post(f"/admin/users/999999/{action}")
        assert response.status_code == 404 and "Không tìm thấy người dùng này" in html(response)


def test_revoke_tokens_kills_every_live_token_and_keeps_the_account(app, client, login_as, token_for):
    first, second = token_for("staff"), token_for("staff")
    for token in (first, second):
        assert client.get("/api/v1/plans", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    login_as("admin")
    staff = user_by_email(app, "canbo@demo.bacgiang.vn")
    page = html(client.get("/admin/users"))
    assert f'/admin/users/{staff.id}/revoke-tokens' in page
    response = client.post(f"/admin/users/{staff.id}/revoke-tokens")
    assert response.status_code == 303
    assert "Đã thu hồi 2 mã API" in html(client.get("/admin/users"))
    for token in (first, second):
        assert app.test_client().get("/api/v1/plans", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiToken)
                                 .where(ApiToken.revoked_at.is_(None))) == 0
    assert user_by_email(app, "canbo@demo.bacgiang.vn").active is True
    [event] = events(app, "tokens_revoked")
    assert event.target == "canbo@demo.bacgiang.vn" and event.detail == {"count": 2}


@pytest.mark.parametrize("role", ["staff", "unit"])
def test_only_admins_change_users(app, client, login_as, role):
    login_as(role, "219")
    victim = user_by_email(app, "donvi218@demo.bacgiang.vn")
    assert client.post("/admin/users", data={"email": "x@y.vn", "role": "admin", "password": "mat-khau-moi"}
                       ).status_code == 403
    for action in ("deactivate", "revoke-tokens"):
        assert client.post(f"/admin/users/{victim.id}/{action}").status_code == 403
    assert user_by_email(app, "donvi218@demo.bacgiang.vn").active is True
    assert user_by_email(app, "x@y.vn") is None


# ------------------------------------------------------------------------------------------- audit log

def test_audit_log_shows_logins_and_filters_by_action_and_target(app, client, login_as):
    client.post("/login", data={"email": "donvi218@demo.bacgiang.vn", "password": "sai-mat-khau"})
    client.post("/login", data={"email": "donvi219@demo.bacgiang.vn", "password": PASSWORD})
    client.post("/logout")
    login_as("admin")
    page = html(client.get("/admin/audit"))
    assert "Nhật ký hệ thống" in page
    assert 'data-action="login_failed"' in page and 'data-action="login"' in page
    labelled_inputs(page)

    failed = html(client.get("/admin/audit?action=login_failed"))
    assert "donvi218@demo.bacgiang.vn" in failed and 'data-action="login"' not in failed
    assert '<option value="login_failed" selected>' in failed

    by_target = html(client.get("/admin/audit?target=DONVI219"))
    assert 'data-action="login"' in by_target and "donvi218@demo.bacgiang.vn" not in by_target
    assert 'value="DONVI219"' in by_target

    none = client.get("/admin/audit?target=%25_khong-co")
    assert none.status_code == 200 and "Không có sự kiện nào khớp bộ lọc" in html(none)


def test_audit_log_is_for_admins_only(client, login_as):
    login_as("staff")
    assert client.get("/admin/audit").status_code == 403


# ------------------------------------------------------------------------------------------- plan copy

def test_plan_copy_form_prefills_next_year_and_labels_inputs(client, login_as):
    login_as("admin")
    page = html(client.get("/admin/plans/copy?source=bacgiang-2024"))
    assert "Sao chép kế hoạch" in page
    assert '<option value="bacgiang-2024" selected>' in page
    assert 'type="datetime-local"' in page and 'value="2025-05-10T00:00"' in page
    labelled_inputs(page)


def test_admin_copies_the_plan_and_lands_on_it(app, client, login_as):
    login_as("admin")
    response = client.post("/admin/plans/copy", data={"source": "bacgiang-2024", "code": "bacgiang-2025",
                                                      "title": "Kế hoạch kiểm tra năm 2025",
                                                      "deadline": "2025-05-10T00:00"})
    assert response.status_code == 303 and response.headers["Location"] == "/plans/bacgiang-2025"
    page = html(client.get("/plans/bacgiang-2025"))
    assert "Kế hoạch kiểm tra năm 2025" in page and "trước ngày 10/5/2025" in page
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == "bacgiang-2025"))
        assert plan.deadline == datetime(2025, 5, 9, 17, 0, tzinfo=UTC)
        assert len(plan.assignments) == 10 and len(plan.visits) == 10
    [event] = events(app, "plan_copied")
    assert event.target == "bacgiang-2025" and event.detail["source"] == "bacgiang-2024"
    assert event.detail["deadline"] == "2025-05-09T17:00:00+00:00"


@pytest.mark.parametrize(("data", "message"), [
    ({"code": "bacgiang-2024"}, "đã tồn tại"),
    ({"code": "Bắc Giang 2025"}, "chỉ gồm chữ thường"),
    ({"code": ""}, "chỉ gồm chữ thường"),
    ({"source": "khong-co"}, "Không tìm thấy kế hoạch"),
    ({"deadline": ""}, "Hạn nộp «» không hợp lệ"),
    ({"deadline": "10/05/2025"}, "Hạn nộp «10/05/2025» không hợp lệ"),
    ({"deadline": "2025-02-30T00:00"}, "không hợp lệ"),
    ({"title": "t" * 501}, "dài quá 500 ký tự"),
])
def test_bad_plan_copy_is_a_422_that_keeps_what_was_typed(app, client, login_as, data, message):
    login_as("admin")
    form = {"source": "bacgiang-2024", "code": "bacgiang-2025", "title": "Kế hoạch năm 2025",
            "deadline": "2025-05-10T00:00", **data}
    response = client.post("/admin/plans/copy", data=form)
    assert response.status_code == 422
    page = html(response)
    assert message in page and 'role="alert"' in page
    assert f'value="{form["code"]}"' in page and f'value="{form["deadline"]}"' in page
    if len(form["title"]) <= 500:
        assert f'value="{form["title"]}"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Plan).where(Plan.code == "bacgiang-2025")) == 0
    assert events(app, "plan_copied") == []


@pytest.mark.parametrize("role", ["staff", "unit"])
def test_only_admins_copy_plans(app, client, login_as, role):
    login_as(role, "219")
    assert client.get("/admin/plans/copy").status_code == 403
    response = client.post("/admin/plans/copy", data={"source": "bacgiang-2024", "code": "bacgiang-2025",
                                                      "deadline": "2025-05-10T00:00"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Plan).where(Plan.code == "bacgiang-2025")) == 0


def test_deadline_is_read_as_vietnam_wall_clock():
    assert parse_local_deadline("2025-05-10T00:00") == datetime(2025, 5, 9, 17, 0, tzinfo=UTC)
    assert parse_local_deadline("2025-05-10T07:30:15") == datetime(2025, 5, 10, 0, 30, 15, tzinfo=UTC)
    for bad in ("2025-05-10", "2025-05-10T00:00+07:00", "x"):
        with pytest.raises(ValueError, match="giờ Việt Nam"):
            parse_local_deadline(bad)
    assert suggested_deadline(datetime(2024, 5, 9, 17, 0, tzinfo=UTC)) == "2025-05-10T00:00"
    assert suggested_deadline(datetime(2024, 2, 28, 17, 0, tzinfo=UTC)) == ""
