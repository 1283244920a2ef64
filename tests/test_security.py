"""Sessions, headers, downloads, login throttling, user enumeration and password reset."""
from __future__ import annotations

import email
import email.policy
import re
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from tracker import create_app
from tracker.accounts import reset_token
from tracker.extensions import db, limiter
from tracker.models import AuditEvent, User

PLAN = "bacgiang-2024"
PASSWORD = "demo-2024"
STAFF = "canbo@demo.bacgiang.vn"
OFFICER = "donvi219@demo.bacgiang.vn"


@pytest.fixture(autouse=True)
def _limiter_follows_the_app(app: Any) -> Any:
    # Flask-Limiter keeps one "enabled" flag per Limiter object, set by the last app built in this process.
    yield
    limiter.enabled = False


def set_cookie_header(response: Any, name: str = "session") -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert headers, response.headers
    return headers[-1]


def cookie_value(response: Any, name: str = "session") -> str:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(set_cookie_header(response, name))
    return cookie[name].value


def without_csrf(page: str) -> str:
    # The CSRF token is signed with the current second: two identical answers may differ only there.
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)


def login(client: Any, email_address: str = STAFF, password: str = PASSWORD, next_url: str | None = None) -> Any:
    query = "" if next_url is None else f"?next={next_url}"
    return client.post(f"/login{query}", data={"email": email_address, "password": password})


def audit_count(app: Any, action: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


# ------------------------------------------------------------------------------------------- sessions

def test_session_cookie_is_httponly_and_lax_and_not_secure_by_default(client):
    header = set_cookie_header(login(client))
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header


def test_session_cookie_is_secure_when_configured(app_config, app):
    secure = create_app(dict(app_config, SESSION_COOKIE_SECURE=True)).test_client()
    header = set_cookie_header(login(secure))
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


def test_session_is_renewed_at_login(app, client):
    with client.session_transaction() as session:
        session["planted"] = "by-an-attacker"
        session["_user_id"] = "999999"
    before = client.get_cookie("session").value
    response = login(client)
    assert response.status_code == 302
    after = cookie_value(response)
    assert after != before
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"] != "999999"
    assert client.get(f"/plans/{PLAN}/dashboard").status_code == 200


def test_logout_ends_the_session(client):
    login(client)
    assert client.get(f"/plans/{PLAN}/dashboard").status_code == 200
    client.post("/logout")
    response = client.get(f"/plans/{PLAN}/dashboard")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("target", [
    "https://evil.example/x", "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "http:/evil.example", "evil.example", "/\t/evil.example", "/\n/evil.example",
    "%2F%2Fevil.example",
    "https:evil.example",
])
def test_redirect_after_login_only_to_our_own_paths(client, target):
    from urllib.parse import quote

    response = login(client, next_url=quote(target, safe=""))
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_redirect_after_login_keeps_a_path_of_ours(client):
    response = login(client, next_url="/plans/bacgiang-2024/dashboard%3Fstatus%3Doverdue")
    assert response.headers["Location"] == "/plans/bacgiang-2024/dashboard?status=overdue"


def test_tab_in_next_cannot_become_a_scheme_relative_url(client):
    from tracker.redirects import safe_next

    # Browsers drop tabs and newlines from URLs: "/\t/evil" would become "//evil".
    for target in ("/\t/evil.example", "/\n/evil.example", "/\r/evil.example", " //evil.example"):
        assert safe_next(target) is None, repr(target)
    assert safe_next("/plans/x") == "/plans/x"


# ------------------------------------------------------------------------------------------- headers

def assert_headers(response: Any) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("X-Frame-Options") == "DENY"


def test_headers_on_pages_errors_and_api(app, client, login_as):
    for path in ("/login", "/password/forgot", "/plans/khong-co", "/api/v1/plans"):
        response = client.get(path)
        assert_headers(response)
    login_as("staff")
    for path in ("/", f"/plans/{PLAN}", f"/plans/{PLAN}/dashboard", f"/plans/{PLAN}/units/219",
                 "/admin/users", "/khong-co-trang-nay", "/api/v1/plans", f"/api/v1/plans/{PLAN}/status"):
        assert_headers(client.get(path))
    bad = client.get(f"/plans/{PLAN}/dashboard?as_of=hom-qua")
    assert bad.status_code == 400
    assert_headers(bad)


def test_pages_carry_no_inline_script_or_style(client, login_as):
    # CSP default-src 'self' would block them: the page would break in the browser, not in tests.
    login_as("admin")
    for path in (f"/plans/{PLAN}", "/admin/users", "/admin/audit", "/admin/plans/copy", "/login"):
        page = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), path
        assert " style=" not in page and "<style" not in page, path
        assert not re.search(r"\son[a-z]+=", page), path


@pytest.mark.parametrize("suffix", ["/units/219/blank-form.xlsx", "/blank-forms.zip", "/export.xlsx"])
def test_downloads_are_attachments_with_nosniff(client, login_as, suffix):
    login_as("staff")
    response = client.get(f"/plans/{PLAN}{suffix}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data[:2] == b"PK"


def test_original_and_annotated_copy_are_attachments(app, client, login_as, token_for):
    from tests.test_access_matrix import blank_form_bytes, make_version

    blank = blank_form_bytes(app, "219", token_for("staff"))
    make_version(app, "219", 1, blank)
    login_as("unit", "219")
    for suffix in ("original", "annotated.xlsx"):
        response = client.get(f"/plans/{PLAN}/units/219/versions/1/{suffix}")
        assert response.status_code == 200
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment") and "filename*=UTF-8''" in disposition
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ------------------------------------------------------------------------------------------- CSRF

def test_csrf_is_required_for_session_posts_but_not_for_tokens(app_config, app, token_for):
    strict = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    client = strict.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/login", data={"email": "admin@demo.bacgiang.vn", "password": PASSWORD,
                                       "csrf_token": csrf}).status_code == 302
    forged = client.post("/admin/users", data={"email": "x@y.vn", "role": "staff", "password": "mat-khau-moi"})
    assert forged.status_code == 400 and "Phiên làm việc đã hết hạn" in forged.get_data(as_text=True)
    with strict.app_context():
        assert db.session.scalar(select(User).where(User.email == "x@y.vn")) is None
    # A token request carries no cookie a foreign page could ride on: no CSRF token needed.
    token = token_for("admin")
    api = strict.test_client().post("/admin/users", headers={"Authorization": f"Bearer {token}"},
                                    data={"email": "x@y.vn", "role": "staff", "password": "mat-khau-moi"})
    assert api.status_code == 303


# ------------------------------------------------------------------------------------------- throttling

def limited_app(app_config: dict[str, Any], limit: str = "3 per minute") -> Any:
    return create_app(dict(app_config, RATELIMIT_ENABLED=True, RATELIMIT_LOGIN=limit,
                           RATELIMIT_STORAGE_URI="memory://"))


def test_login_is_rate_limited_with_a_vietnamese_message(app_config, app):
    strict = limited_app(app_config)
    client = strict.test_client()
    for _ in range(3):
        assert login(client, password="sai-mat-khau").status_code == 401
    blocked = login(client)  # even the right password waits out the window
    assert blocked.status_code == 429
    page = blocked.get_data(as_text=True)
    assert "Bạn đã thử quá nhiều lần" in page and "per" not in page
    assert_headers(blocked)
    with client.session_transaction() as session:
        assert "_user_id" not in session
    # Reading the login page is not throttled, and another address has its own budget.
    assert client.get("/login").status_code == 200
    assert login(strict.test_client()).status_code == 429  # a new cookie jar is the same address
    elsewhere = strict.test_client().post("/login", data={"email": STAFF, "password": PASSWORD},
                                          environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert elsewhere.status_code == 302


def test_forgot_password_is_rate_limited_too(app_config, app):
    client = limited_app(app_config, "2 per minute").test_client()
    for _ in range(2):
        assert client.post("/password/forgot", data={"email": "khongco@example.vn"}).status_code == 302
    assert client.post("/password/forgot", data={"email": "khongco@example.vn"}).status_code == 429


def test_rate_limit_storage_is_a_setting(app_config, app):
    strict = limited_app(app_config)
    assert strict.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert create_app(dict(app_config))  # the default app builds with its memory storage
    from tracker import config

    assert config.RATELIMIT_STORAGE_URI == "memory://" and config.RATELIMIT_ENABLED is True


# ------------------------------------------------------------------------------------------- enumeration

def test_login_failure_is_the_same_for_unknown_email_wrong_password_and_locked_account(app, client):
    with app.app_context():
        db.session.scalar(select(User).where(User.email == "donvi218@demo.bacgiang.vn")).active = False
        db.session.commit()
    answers = []
    for address, password in ((OFFICER, "sai-mat-khau"), ("khongco@demo.bacgiang.vn", "sai-mat-khau"),
                              ("donvi218@demo.bacgiang.vn", PASSWORD)):
        response = client.post("/login", data={"email": address, "password": password})
        page = without_csrf(response.get_data(as_text=True)).replace(address, "EMAIL")
        answers.append((response.status_code, page))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401 and "Email hoặc mật khẩu không đúng." in answers[0][1]
    assert audit_count(app, "login_failed") == 3


def outbox_messages(app: Any) -> list[email.message.EmailMessage]:
    folder = Path(app.config["OUTBOX_DIR"])
    files = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def test_forgot_password_answers_the_same_for_unknown_emails(app, client):
    known = client.post("/password/forgot", data={"email": OFFICER}, follow_redirects=True)
    unknown = client.post("/password/forgot", data={"email": "khongco@demo.bacgiang.vn"}, follow_redirects=True)
    assert known.status_code == unknown.status_code == 200
    assert without_csrf(known.get_data(as_text=True)) == without_csrf(unknown.get_data(as_text=True))
    assert "Nếu email này có tài khoản" in known.get_data(as_text=True)
    messages = outbox_messages(app)
    assert [m["To"] for m in messages] == [OFFICER]


# ------------------------------------------------------------------------------------------- reset

def reset_link(app: Any, client: Any, address: str = OFFICER) -> str:
    assert client.post("/password/forgot", data={"email": address}).status_code == 302
    [message] = [m for m in outbox_messages(app) if m["To"] == address][-1:]
    assert "Đặt lại mật khẩu" in message["Subject"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"https://tracker\.example\.vn(/password/reset/\S+)", body)
    assert match, body
    return match.group(1)


def test_password_reset_by_email_works_once_and_retires_the_old_password(app, client):
    path = reset_link(app, client)
    assert client.get(path).status_code == 200
    mismatch = client.post(path, data={"password": "mat-khau-moi-1", "confirm": "khac-han"})
    assert mismatch.status_code == 422 and "hai lần nhập phải trùng nhau" in mismatch.get_data(as_text=True)
    done = client.post(path, data={"password": "mat-khau-moi-1", "confirm": "mat-khau-moi-1"})
    assert done.status_code == 302 and done.headers["Location"] == "/login"

    assert login(app.test_client(), OFFICER, PASSWORD).status_code == 401
    assert login(app.test_client(), OFFICER, "mat-khau-moi-1").status_code == 302

    again = client.get(path, follow_redirects=True)
    assert "đã được sử dụng" in again.get_data(as_text=True)
    replay = client.post(path, data={"password": "mat-khau-moi-2", "confirm": "mat-khau-moi-2"})
    assert replay.status_code == 302 and replay.headers["Location"] == "/password/forgot"
    assert login(app.test_client(), OFFICER, "mat-khau-moi-2").status_code == 401
    assert audit_count(app, "password_reset") == 1 and audit_count(app, "password_reset_requested") == 1


def test_password_reset_ends_other_sessions_and_tokens(app, client, token_for):
    elsewhere = app.test_client()
    assert login(elsewhere, OFFICER, PASSWORD).status_code == 302
    assert elsewhere.get("/plans/bacgiang-2024/units/219").status_code == 200
    token = token_for("unit", "219")
    assert client.get("/api/v1/plans", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    path = reset_link(app, client)
    assert client.post(path, data={"password": "mat-khau-moi-1", "confirm": "mat-khau-moi-1"}).status_code == 302
    assert elsewhere.get("/plans/bacgiang-2024/units/219").status_code == 302  # back to the login page
    assert client.get("/api/v1/plans", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_reset_link_expires(app, client, monkeypatch):
    real = TimestampSigner.get_timestamp
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == OFFICER))
        # Signed two hours ago: past the default one-hour PASSWORD_RESET_MAX_AGE.
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 7200)
        old = reset_token(user, app.config["SECRET_KEY"])
        monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
        fresh = reset_token(user, app.config["SECRET_KEY"])
    assert app.config["PASSWORD_RESET_MAX_AGE"] == 3600
    expired = client.post(f"/password/reset/{old}", data={"password": "mat-khau-moi", "confirm": "mat-khau-moi"})
    assert expired.status_code == 302 and expired.headers["Location"] == "/password/forgot"
    assert "đã hết hạn" in client.get("/password/forgot").get_data(as_text=True)
    assert login(app.test_client(), OFFICER, "mat-khau-moi").status_code == 401
    assert client.get(f"/password/reset/{fresh}").status_code == 200


def test_reset_link_with_zero_max_age_is_dead_on_arrival(app_config, app):
    strict = create_app(dict(app_config, PASSWORD_RESET_MAX_AGE=0))
    client = strict.test_client()
    with strict.app_context():
        user = db.session.scalar(select(User).where(User.email == OFFICER))
        token = reset_token(user, strict.config["SECRET_KEY"])
    time.sleep(1.05)  # itsdangerous counts whole seconds
    assert client.get(f"/password/reset/{token}").status_code == 302


def test_forged_or_foreign_reset_tokens_are_refused(app, client):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == OFFICER))
        other_key = reset_token(user, "another-secret")
    for token in (other_key, "abc", other_key[:-2] + "xx"):
        response = client.get(f"/password/reset/{token}")
        assert response.status_code == 302 and response.headers["Location"] == "/password/forgot"


def test_no_reset_for_a_locked_account(app, client):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == OFFICER))
        token = reset_token(user, app.config["SECRET_KEY"])
        user.active = False
        db.session.commit()
    assert client.get(f"/password/reset/{token}").status_code == 302
    assert client.post("/password/forgot", data={"email": OFFICER}).status_code == 302
    assert outbox_messages(app) == []


def test_proxy_fix_trusts_the_configured_hops(app_config, app):
    from tracker import create_app

    behind = create_app(dict(app_config, PROXY_FIX=1))
    client = behind.test_client()
    client.post("/login", data={"email": OFFICER, "password": "wrong"},
                headers={"X-Forwarded-For": "203.0.113.7"})
    with behind.app_context():
        from tracker.models import AuditEvent

        event = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "login_failed")).one()
        assert event.ip == "203.0.113.7"
