"""Admin pages: users (create, deactivate, reactivate, revoke tokens), the audit log, plan copies."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select

from .. import audit, audit_words
from ..access import admin_required
from ..accounts import revoke_tokens
from ..extensions import db
from ..models import ApiToken, Assignment, AuditEvent, Plan, Role, Unit, User, plan_by_code
from ..plan_calendar import rewrite_years
from ..plans import PlanCopyError, create_copy, preview_copy
from ..timeutil import LOCAL_TZ, as_utc, local
from ..users import UserError
from ..users import create_user as add_user

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_PAGE_SIZE = 500
# What <input type="datetime-local"> sends: a wall-clock time, read as Vietnam time.
_LOCAL_INPUT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
TITLE_MAX = 500


# ---------------------------------------------------------------------------------------------
# Users


def reporting_units() -> list[Unit]:
    """Return the units assigned in at least one plan: the only ones a unit account can belong to."""
    return list(db.session.scalars(select(Unit).where(Unit.id.in_(select(Assignment.unit_id)))
                                   .order_by(Unit.code)).all())


def _users_page(form: dict[str, str] | None = None, error: str = "", status: int = 200) -> Any:
    rows = db.session.scalars(select(User).order_by(User.email)).all()
    live: dict[int, int] = dict(db.session.execute(select(ApiToken.user_id, func.count()).where(ApiToken.revoked_at.is_(None))
                                   .group_by(ApiToken.user_id)).all())
    # The contacts page belongs to the notify blueprint; link to it only where that blueprint is installed.
    contacts = "notify.contacts" if "notify.contacts" in current_app.view_functions else None
    return render_template("admin/users.html", users=rows, live_tokens=live, units=reporting_units(),
                           roles=list(Role), form=form or {"role": Role.UNIT.value}, error=error,
                           contacts_endpoint=contacts), status


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, "Không tìm thấy người dùng này.")
    return user


@bp.route("/users")
@admin_required
def users() -> Any:
    return _users_page()


@bp.post("/users")
@admin_required
def create_user() -> Any:
    form = {key: request.form.get(key, "").strip() for key in ("email", "name", "role", "unit")}
    password = request.form.get("password", "")
    try:
        role = Role(form["role"])
    except ValueError:
        return _users_page(form, "Vai trò không hợp lệ: chọn Quản trị, Cán bộ Sở hoặc Cán bộ đơn vị.", 422)
    if role == Role.UNIT and form["unit"] and form["unit"] not in {u.code for u in reporting_units()}:
        return _users_page(form, f"Đơn vị mã «{form['unit']}» không được giao báo cáo trong kế hoạch nào.", 422)
    if len(form["name"]) > 200:
        return _users_page(form, "Họ tên dài quá 200 ký tự.", 422)
    try:
        user = add_user(form["email"], role, password, form["unit"] if role == Role.UNIT else None, form["name"])
    except UserError as exc:
        db.session.rollback()
        return _users_page(form, str(exc), 422)
    audit.record("user_created", target=user.email, role=role.value, unit=user.unit.code if user.unit else None)
    db.session.commit()
    flash(f"Đã tạo tài khoản {user.email}.", "ok")
    return redirect(url_for("admin.users"), 303)


@bp.post("/users/<int:user_id>/deactivate")
@admin_required
def deactivate_user(user_id: int) -> Any:
    user = _user_or_404(user_id)
    if user.id == current_user.id:
        return _users_page(error="Không thể tự khóa tài khoản của chính mình.", status=409)
    # Tokens die with the account, so reactivating it later does not bring old tokens back to life.
    revoked = revoke_tokens(user)
    if user.active:
        user.active = False
        user.end_sessions()
        audit.record("user_deactivated", target=user.email, tokens_revoked=revoked)
        db.session.commit()
    flash(f"Đã khóa tài khoản {user.email}; phiên đăng nhập và mã API của tài khoản này không còn dùng được.", "ok")
    return redirect(url_for("admin.users"), 303)


@bp.post("/users/<int:user_id>/reactivate")
@admin_required
def reactivate_user(user_id: int) -> Any:
    user = _user_or_404(user_id)
    if not user.active:
        user.active = True
        user.end_sessions()  # a cookie copied before the deactivation stays dead
        audit.record("user_reactivated", target=user.email)
        db.session.commit()
    flash(f"Đã mở khóa tài khoản {user.email}.", "ok")
    return redirect(url_for("admin.users"), 303)


@bp.post("/users/<int:user_id>/revoke-tokens")
@admin_required
def revoke_user_tokens(user_id: int) -> Any:
    user = _user_or_404(user_id)
    revoked = revoke_tokens(user)
    audit.record("tokens_revoked", target=user.email, count=revoked)
    db.session.commit()
    flash(f"Đã thu hồi {revoked} mã API của {user.email}.", "ok")
    return redirect(url_for("admin.users"), 303)


# ---------------------------------------------------------------------------------------------
# Audit log


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@bp.route("/audit")
@admin_required
def audit_log() -> Any:
    action = request.args.get("action", "").strip()[:64]
    target = request.args.get("target", "").strip()[:300]
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action == action)
    if target:
        query = query.where(AuditEvent.target.ilike(f"%{_like_escape(target)}%", escape="\\"))
    events = db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(AUDIT_PAGE_SIZE)).all()
    actions = db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).all()
    codes = {audit_words.unit_of(e.target, e.detail or {}) for e in events} - {""}
    unit_names = dict(db.session.execute(select(Unit.code, Unit.name).where(Unit.code.in_(codes))).all()) if codes else {}
    return render_template("admin/audit.html", events=events, actions=actions, action=action, target=target,
                           page_size=AUDIT_PAGE_SIZE, unit_names=unit_names)


# ---------------------------------------------------------------------------------------------
# Plan copy


def parse_local_deadline(text: str) -> datetime:
    """Return the UTC instant of a ``YYYY-MM-DDTHH:MM`` Vietnam wall-clock time.

    Raises ValueError (with a Vietnamese message) when the text is empty or malformed.
    """
    text = text.strip()
    try:
        if not _LOCAL_INPUT.match(text):
            raise ValueError(text)
        return as_utc(datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ))
    except ValueError:
        raise ValueError(f"Hạn nộp «{text}» không hợp lệ. Hãy chọn ngày giờ theo giờ Việt Nam, "
                         "dạng 2025-05-10T00:00.") from None


def suggested_deadline(deadline: datetime) -> str:
    """Return the form value for the same Vietnam wall-clock time a year after ``deadline`` ('' on 29/2)."""
    wall = local(deadline)
    try:
        return wall.replace(year=wall.year + 1).strftime("%Y-%m-%dT%H:%M")
    except ValueError:
        return ""


def _copy_page(form: dict[str, str], error: str = "", status: int = 200) -> Any:
    plans = db.session.scalars(select(Plan).order_by(Plan.deadline.desc())).all()
    return render_template("admin/plan_copy.html", plans=plans, form=form, error=error), status


_COPY_FIELDS = ("source", "code", "title", "deadline", "units_as_of")


@bp.route("/plans/copy", methods=["GET", "POST"])
@admin_required
def copy_plan_form() -> Any:
    if request.method == "GET":
        source = request.args.get("source", "")
        plan = plan_by_code(source) if source else None
        if plan is None:
            plan = db.session.scalar(select(Plan).order_by(Plan.deadline.desc()).limit(1))
        form = {"source": plan.code if plan else "", "code": "",
                "title": rewrite_years(plan.title, 1) if plan else "",
                "deadline": suggested_deadline(plan.deadline) if plan else "", "units_as_of": "",
                "keep_exemptions": ""}
        return _copy_page(form)
    form = {key: request.form.get(key, "").strip() for key in _COPY_FIELDS}
    form["keep_exemptions"] = "1" if request.form.get("keep_exemptions") else ""
    if request.form.get("action") == "edit":
        return _copy_page(form)
    try:
        deadline = parse_local_deadline(form["deadline"])
    except ValueError as exc:
        return _copy_page(form, str(exc), 422)
    if len(form["title"]) > TITLE_MAX:
        return _copy_page(form, f"Tên kế hoạch dài quá {TITLE_MAX} ký tự.", 422)
    try:
        units_as_of = date.fromisoformat(form["units_as_of"]) if form["units_as_of"] else None
    except ValueError:
        return _copy_page(form, f"Ngày danh mục đơn vị «{form['units_as_of']}» không hợp lệ: chọn một ngày, "
                          "dạng 2025-07-01.", 422)
    try:
        preview = preview_copy(form["source"], form["code"], deadline, form["title"] or None,
                               keep_exemptions=bool(form["keep_exemptions"]), units_as_of=units_as_of)
    except PlanCopyError as exc:
        db.session.rollback()
        return _copy_page(form, str(exc), 422)
    if request.form.get("action") == "preview":
        return render_template("admin/plan_copy_preview.html", preview=preview, form=form)
    plan = create_copy(preview)
    audit.record("plan_copied", target=plan.code, source=form["source"], deadline=plan.deadline.isoformat(),
                 title=plan.title, units_as_of=form["units_as_of"] or None,
                 keep_exemptions=bool(form["keep_exemptions"]))
    db.session.commit()
    if preview.draft:
        flash(f"Đã tạo bản nháp {plan.code} từ kế hoạch {form['source']}: hãy xác nhận từng đơn vị rồi mở kế hoạch.",
              "ok")
        return redirect(url_for("plans.draft", plan_code=plan.code), 303)
    flash(f"Đã tạo kế hoạch {plan.code} từ kế hoạch {form['source']}.", "ok")
    return redirect(url_for("main.plan", plan_code=plan.code), 303)
