"""JSON API under /api/v1 for the department's scripts; tokens as ``Authorization: Bearer``."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import select

from ..access import login_required
from ..extensions import db
from ..models import Plan
from ..timeutil import local

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/plans")
@login_required
def plans() -> Any:
    rows = db.session.scalars(select(Plan).order_by(Plan.deadline.desc())).all()
    return jsonify([{"code": p.code, "title": p.title, "deadline": p.deadline.isoformat(),
                     "deadline_local": local(p.deadline).isoformat()}
                    for p in rows])
