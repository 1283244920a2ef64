"""Issue 13: sessions that can be ended: a per-user session generation checked on every request."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from test_security import OFFICER, STAFF, cookie_value, login
from tracker.extensions import db
from tracker.models import User

PLAN = "bacgiang-2024"
HOME = f"/plans/{PLAN}/units/219"


def _with_cookie(app: Any, value: str) -> Any:
    """A second browser holding a copy of ``value`` (the session cookie)."""
    thief = app.test_client()
    thief.set_cookie("session", value)
    return thief


def test_a_cookie_copied_before_logout_is_refused_after_it(app, client):
    copied = cookie_value(login(client, OFFICER))
    thief = _with_cookie(app, copied)
    assert thief.get(HOME).status_code == 200
    assert client.post("/logout").status_code == 302
    answer = thief.get(HOME)
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    # The user logs in again: the old copy stays dead, the new session works.
    login(client, OFFICER)
    assert client.get(HOME).status_code == 200
    assert thief.get(HOME).status_code == 302


def test_reactivation_does_not_revive_an_old_cookie(app, client):
    admin = app.test_client()
    login(admin, "admin@demo.bacgiang.vn")
    copied = cookie_value(login(client, OFFICER))
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == OFFICER))
    assert admin.post(f"/admin/users/{user_id}/deactivate").status_code == 303
    assert admin.post(f"/admin/users/{user_id}/reactivate").status_code == 303
    thief = _with_cookie(app, copied)
    assert thief.get(HOME).status_code == 302
    fresh = app.test_client()
    login(fresh, OFFICER)
    assert fresh.get(HOME).status_code == 200


def test_password_reset_ends_every_session(app, client):
    from tracker.accounts import reset_token

    copied = cookie_value(login(client, STAFF))
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == STAFF))
        token = reset_token(user, app.config["SECRET_KEY"])
        before = user.session_generation
    anonymous = app.test_client()
    answer = anonymous.post(f"/password/reset/{token}", data={"password": "mới-đủ-dài-1", "confirm": "mới-đủ-dài-1"})
    assert answer.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(User.session_generation).where(User.email == STAFF)) == before + 1
    assert _with_cookie(app, copied).get(f"/plans/{PLAN}/dashboard").status_code == 302


def test_the_generation_is_part_of_the_session_key(app):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == STAFF))
        key = user.get_id()
        user.end_sessions()
        assert user.get_id() != key
        assert user.get_id().split("-")[1] == str(user.session_generation)
        db.session.rollback()
