"""Admin pages: users, audit log, contacts, plan copies."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import select

from ..access import admin_required
from ..extensions import db
from ..models import AuditEvent, User

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users")
@admin_required
def users() -> Any:
    rows = db.session.scalars(select(User).order_by(User.email)).all()
    return render_template("admin/users.html", users=rows)


@bp.route("/audit")
@admin_required
def audit_log() -> Any:
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(500)).all()
    return render_template("admin/audit.html", events=events)
