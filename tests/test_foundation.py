"""Issue 2: the app, the seeded 2024 plan, accounts, and the plan page."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import Assignment, AuditEvent, Contact, Plan, Unit, User, Visit, in_force_on
from tracker.timeutil import fmt_datetime, parse_instant

DEADLINE = datetime(2024, 5, 9, 17, 0, tzinfo=timezone.utc)


def plan_2024() -> Plan:
    return db.session.scalar(select(Plan).where(Plan.code == "bacgiang-2024"))


def test_seed_matches_the_plan(app):
    with app.app_context():
        plan = plan_2024()
        assert plan.issuer == "Sở Lao động - Thương binh và Xã hội tỉnh Bắc Giang"
        assert plan.deadline == DEADLINE
        districts = db.session.scalars(select(Unit).where(Unit.level == 2)).all()
        assert len(districts) == 10
        assert db.session.scalar(select(func.count()).select_from(Unit).where(
            Unit.level == 3, in_force_on(plan.units_on))) == 209
        forms = {a.unit.code: a.form_code for a in plan.assignments}
        assert len(forms) == 10
        assert forms["218"] == "PL02"
        assert forms["223"] is None
        assert sorted(c for c, f in forms.items() if f == "PL03") == ["213", "215", "216", "217", "219", "220", "221", "222"]
        hiep_hoa = next(a for a in plan.assignments if a.unit.code == "223")
        assert hiep_hoa.exempt and "1982/QĐ-UBND" in hiep_hoa.exempt_reason and "19/12/2023" in hiep_hoa.exempt_reason
        assert db.session.scalar(select(Unit.name).where(Unit.code == "222")) == "Thị xã Việt Yên"
        visits = plan.visits
        assert len(visits) == 10
        assert sum(len(v.communes) for v in visits) == 20
        by_unit = {v.unit.code: v for v in visits}
        assert by_unit["220"].visit_date == date(2024, 5, 20)
        assert by_unit["213"].visit_date == date(2024, 6, 13)
        assert by_unit["223"].visit_date == date(2024, 6, 6)
        assert [c.code for c in by_unit["218"].communes] == ["07444", "07501"]
        assert all(v.session_starts == ["07:00", "13:30"] for v in visits)
        assert all(c.parent.code == v.unit.code for v in visits for c in v.communes)


def counts() -> tuple[int, ...]:
    return tuple(db.session.scalar(select(func.count()).select_from(m))
                 for m in (Unit, Plan, Assignment, Visit, User, Contact))


def test_seed_twice_changes_nothing(app, runner):
    with app.app_context():
        before = counts()
    result = runner.invoke(args=["seed", "--demo"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0
    assert "kế hoạch thêm mới: không có" in result.output
    with app.app_context():
        assert counts() == before


def test_plain_seed_creates_no_accounts(app, runner):
    with app.app_context():
        from tests.conftest import wipe

        wipe(db)
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 0
        assert db.session.scalar(select(func.count()).select_from(Assignment).join(Plan)
                                 .where(Plan.code == "bacgiang-2024")) == 10
        assert db.session.scalar(select(func.count()).select_from(Assignment).join(Plan)
                                 .where(Plan.code == "bacninh-2026")) == 99


def test_plan_copy(app, runner):
    result = runner.invoke(args=["plan-copy", "bacgiang-2024", "bacgiang-2025",
                                 "--deadline", "2025-05-10T00:00:00+07:00", "--title", "Kế hoạch 2025"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        copy = db.session.scalar(select(Plan).where(Plan.code == "bacgiang-2025"))
        assert copy.title == "Kế hoạch 2025"
        assert copy.deadline == datetime(2025, 5, 9, 17, 0, tzinfo=timezone.utc)
        # The 2024 exemption (a 2024 inspection decision) stays behind: Hiệp Hòa gets the plan's usual form.
        assert {a.unit.code: a.form_code for a in copy.assignments} == \
               {a.unit.code: a.form_code or "PL03" for a in plan_2024().assignments}
        assert not any(a.exempt_reason for a in copy.assignments)
        assert len(copy.visits) == 10 and sum(len(v.communes) for v in copy.visits) == 20
    again = runner.invoke(args=["plan-copy", "bacgiang-2024", "bacgiang-2025", "--deadline", "2025-05-10T00:00:00+07:00"])
    assert again.exit_code != 0 and "đã tồn tại" in again.output
    naive = runner.invoke(args=["plan-copy", "bacgiang-2024", "x-2026", "--deadline", "2026-05-10"])
    assert naive.exit_code != 0 and "Hạn nộp không hợp lệ" in naive.output


def test_deadline_boundary_is_exact():
    deadline = parse_instant("2024-05-10T00:00:00+07:00")
    assert deadline == DEADLINE
    assert fmt_datetime(deadline) == "10/05/2024 00:00"
    assert fmt_datetime(deadline - timedelta(seconds=1)) == "09/05/2024 23:59"


def test_create_user_and_token(app, runner):
    result = runner.invoke(args=["create-user", "Moi@Example.vn", "--role", "unit", "--unit", "219"],
                           input="matkhau-123\nmatkhau-123\n")
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["create-user", "x@example.vn", "--role", "unit"], input="matkhau-123\nmatkhau-123\n")
    assert bad.exit_code != 0 and "mã đơn vị" in bad.output
    token = runner.invoke(args=["create-token", "moi@example.vn"])
    assert token.exit_code == 0
    value = token.stdout.strip()
    assert "\n" not in value and len(value) > 30
    client = app.test_client()
    response = client.get("/api/v1/plans", headers={"Authorization": f"Bearer {value}"})
    assert response.status_code == 200
    assert response.get_json()[0]["code"] == "bacgiang-2024"
    assert response.get_json()[0]["deadline"] == "2024-05-09T17:00:00+00:00"
    assert client.get("/api/v1/plans", headers={"Authorization": "Bearer wrong"}).status_code == 401
    with app.app_context():
        stored = db.session.scalars(select(User).where(User.email == "moi@example.vn")).one().tokens[0].token_hash
        assert stored != value and len(stored) == 64


def test_login_and_logout(app, client):
    response = client.post("/login", data={"email": "donvi219@demo.bacgiang.vn", "password": "demo-2024"})
    assert response.status_code == 302
    page = client.get("/plans/bacgiang-2024")
    assert page.status_code == 200
    assert "hết ngày 09/05/2024 (hạn: trước ngày 10/5/2024)" in page.get_data(as_text=True)
    assert client.post("/logout").status_code == 302
    assert client.get("/plans/bacgiang-2024").status_code == 302


def test_wrong_password_does_not_tell_which_part(app, client):
    wrong_pw = client.post("/login", data={"email": "donvi219@demo.bacgiang.vn", "password": "nope"})
    no_user = client.post("/login", data={"email": "khongco@demo.bacgiang.vn", "password": "nope"})
    assert wrong_pw.status_code == no_user.status_code == 401
    assert "Email hoặc mật khẩu không đúng" in wrong_pw.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "login_failed")) == 2


def test_login_redirect_stays_on_site(client):
    data = {"email": "canbo@demo.bacgiang.vn", "password": "demo-2024"}
    assert client.post("/login?next=https://evil.example/x", data=data).headers["Location"] == "/"
    client.post("/logout")
    assert client.post("/login?next=//evil.example", data=data).headers["Location"] == "/"
    client.post("/logout")
    assert client.post("/login?next=/plans/bacgiang-2024", data=data).headers["Location"] == "/plans/bacgiang-2024"


def test_unit_user_refused_other_units_page(client, login_as):
    login_as("unit", "219")
    assert client.get("/plans/bacgiang-2024/units/219").status_code == 200
    assert client.get("/plans/bacgiang-2024/units/218").status_code == 403


def test_csrf_enforced(app_config, app):
    from tracker import create_app

    app_config = dict(app_config, WTF_CSRF_ENABLED=True)
    strict = create_app(app_config)
    client = strict.test_client()
    response = client.post("/login", data={"email": "canbo@demo.bacgiang.vn", "password": "demo-2024"})
    assert response.status_code == 400
    assert "Phiên làm việc đã hết hạn" in response.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    ok = client.post("/login", data={"email": "canbo@demo.bacgiang.vn", "password": "demo-2024", "csrf_token": token})
    assert ok.status_code == 302


def test_plan_page(client, login_as):
    login_as("staff")
    page = client.get("/plans/bacgiang-2024").get_data(as_text=True)
    assert "Sở Lao động - Thương binh và Xã hội tỉnh Bắc Giang" in page
    assert "hết ngày 09/05/2024 (hạn: trước ngày 10/5/2024)" in page and "10/05/2024 00:00" not in page
    assert "Huyện Lục Nam" in page and "Phụ lục 02" in page and "Miễn báo cáo" in page
    assert "Phường Thọ Xương" in page and "20/05/2024" in page and "07:00 và 13:30" in page


def test_unknown_plan_is_404_in_vietnamese(client, login_as):
    login_as("staff")
    response = client.get("/plans/khong-co")
    assert response.status_code == 404 and "Không tìm thấy kế hoạch" in response.get_data(as_text=True)
    api = client.get("/api/v1/nope")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


def test_settings_layers(monkeypatch, tmp_path):
    from tracker import create_app

    monkeypatch.setenv("TRACKER_MAIL_SERVER", "smtp.example.vn")
    monkeypatch.setenv("TRACKER_SECRET_KEY", "a-production-key-of-enough-length")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    app = create_app()
    assert app.config["MAIL_SERVER"] == "smtp.example.vn"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
    app = create_app({"MAIL_SERVER": "override"})
    assert app.config["MAIL_SERVER"] == "override"


def test_migrations_match_models(app):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with app.app_context():
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []
