"""Who may do what: session and token loaders, CSRF outside the token API, and the role checks."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from flask import Flask, abort, g, jsonify, redirect, request, url_for
from flask_login import current_user

from .extensions import csrf, db, login_manager
from .models import Role, Unit, User


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Vui lòng đăng nhập để tiếp tục."
    login_manager.login_message_category = "info"
    # Token requests carry no cookie, so a cross-site page cannot forge them: CSRF is for sessions.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False

    @login_manager.unauthorized_handler
    def _unauthorized() -> Any:
        if request.path.startswith("/api/"):
            return api_error(401, "unauthorized", "Cần đăng nhập hoặc mã truy cập API (Authorization: Bearer …).")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    app.before_request(_token_wins)

    @app.before_request
    def _csrf_for_sessions() -> None:
        # Only a VALID token stands in for CSRF: "Authorization: Bearer x" alone proves nothing, and on
        # the site (/login...) the form is checked as usual. On the API a request with a token header
        # is that token's user or anonymous, never the session's (_token_wins), so it borrows nothing
        # a forged cross-site request could use: its views answer 401 themselves.
        if not app.config.get("WTF_CSRF_ENABLED", True) or request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return
        if g.get("token_user_id") or ("token_user_id" in g and request.path.startswith("/api/")):
            return
        csrf.protect()


@login_manager.user_loader
def _load_user(session_key: str) -> User | None:
    user_id, _, _ = session_key.partition("-")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() and len(user_id) < 10 else None
    if user is None or not user.active or user.get_id() != session_key:
        return None  # deactivated, logged out, or the password changed since this session began
    return user


def _token_wins() -> None:
    """A request that carries a token is that token's user, whatever session cookie comes with it.

    The token is looked up on a read-only connection (no write lock on SQLite); the request body was
    read in full before this runs (tracker.bodies), so nothing here waits on the client.
    """
    from .accounts import user_id_for_token

    token = bearer_token()
    if token is not None:
        user_id = user_id_for_token(token)
        g.token_user_id = user_id
        # Flask-Login keeps the request's user in g._login_user; setting it first skips the session.
        user = db.session.get(User, user_id) if user_id is not None else None
        g._login_user = user or login_manager.anonymous_user()


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def roles_required(*roles: Role) -> Callable:
    """Refuse anonymous users (login page or 401) and users of other roles (403)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


department_required = roles_required(Role.ADMIN, Role.STAFF)
admin_required = roles_required(Role.ADMIN)
login_required = roles_required(Role.ADMIN, Role.STAFF, Role.UNIT)


def ensure_unit_access(unit: Unit) -> None:
    """Abort with 403 unless the current user may act for ``unit``."""
    if not current_user.is_authenticated or not current_user.may_act_for(unit):
        abort(403)


def api_error(status: int, code: str, message: str) -> Any:
    """Return the API's error body ``{"error": {"code", "message"}}`` with ``status``."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response
