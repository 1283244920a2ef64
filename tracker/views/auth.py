"""Login, logout and password reset."""
from __future__ import annotations

from typing import Any
from flask import (Blueprint, current_app, flash, g, redirect, render_template, request, session,
                   url_for)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from .. import accounts, audit, mailer, outbox
from ..extensions import db, limiter
from ..models import User
from ..redirects import safe_next

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _account_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_ACCOUNT"]


def _account_key() -> str:
    # The account named in the form, whatever address the guesses come from.
    return "account:" + request.form.get("email", "").strip().lower()[:254]


def _failed(response: Any) -> bool:
    return response.status_code == 401


# Flask-Limiter's own description is English ("10 per 1 minute"); the error page shows this instead.
TOO_MANY_ATTEMPTS = "Bạn đã thử quá nhiều lần. Vui lòng đợi một phút rồi thử lại."
TOO_MANY_FOR_ACCOUNT = ("Tài khoản này vừa bị nhập sai mật khẩu nhiều lần nên tạm thời không đăng nhập được. "
                        "Vui lòng đợi 15 phút rồi thử lại, hoặc dùng chức năng «Quên mật khẩu».")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed, error_message=TOO_MANY_ATTEMPTS)
@limiter.limit(_account_limit, methods=["POST"], key_func=_account_key, deduct_when=_failed,
               error_message=TOO_MANY_FOR_ACCOUNT)
def login() -> Any:
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        missing = [label for label, value in (("email", email), ("mật khẩu", request.form.get("password", "")))
                   if not value]
        if missing:
            # Nothing to check: say what is missing instead of "wrong password".
            flash(f"Vui lòng nhập {' và '.join(missing)} để đăng nhập.", "error")
            return render_template("auth/login.html", email=email), 400
        user = accounts.authenticate(email, request.form.get("password", ""))
        if user is None:
            audit.record("login_failed", target=email[:254], actor=email[:254])
            db.session.commit()
            flash("Email hoặc mật khẩu không đúng.", "error")
            return render_template("auth/login.html", email=email), 401
        session.clear()  # a fresh session at login: nothing planted before survives
        login_user(user)
        audit.record("login", target=user.email, user=user)
        db.session.commit()
        return redirect(safe_next(request.args.get("next")) or url_for("main.index"))
    return render_template("auth/login.html", email="")


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    if current_user.is_authenticated:
        audit.record("logout", target=current_user.email)
        if not g.get("token_user_id"):
            current_user.end_sessions()  # a copy of this cookie dies with it
        db.session.commit()
    logout_user()
    session.clear()
    flash("Bạn đã đăng xuất.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message=TOO_MANY_ATTEMPTS)
def forgot_password() -> Any:
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        if not email:
            flash("Vui lòng nhập email của tài khoản.", "error")
            return render_template("auth/forgot.html"), 400
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None and user.active:
            token = accounts.reset_token(user, current_app.config["SECRET_KEY"])
            message = mailer.password_reset_message(user, token)
            audit.record("password_reset_requested", target=user.email, user=user)
            db.session.commit()
            # After the commit and, in production, in the background: the answer takes as long whether
            # or not the address has an account, and no transaction waits on the SMTP server.
            outbox.send_message_after_request(message)
        # The same answer whether or not the address exists: no user enumeration.
        flash("Nếu email này có tài khoản, hướng dẫn đặt lại mật khẩu đã được gửi tới hộp thư.", "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html")


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    user = accounts.user_for_reset_token(token, current_app.config["SECRET_KEY"],
                                         current_app.config["PASSWORD_RESET_MAX_AGE"])
    if user is None:
        flash("Liên kết đặt lại mật khẩu không hợp lệ, đã hết hạn hoặc đã được sử dụng.", "error")
        return redirect(url_for("auth.forgot_password"))
    if request.method == "POST":
        password = request.form.get("password", "")
        if len(password) < 8 or password != request.form.get("confirm", ""):
            flash("Mật khẩu phải có ít nhất 8 ký tự và hai lần nhập phải trùng nhau.", "error")
            return render_template("auth/reset.html", token=token), 422
        user.password_hash = accounts.hash_password(password)  # also ends the user's other sessions
        user.end_sessions()
        accounts.revoke_tokens(user)
        audit.record("password_reset", target=user.email, user=user)
        db.session.commit()
        flash("Đã đặt lại mật khẩu. Vui lòng đăng nhập.", "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", token=token)
