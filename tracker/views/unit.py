"""A unit's pages: the officer's home, blank form, uploads, results; staff's unit page and reviews."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from ..access import ensure_unit_access, login_required
from ..extensions import db
from ..models import Assignment, Plan, Unit, assignment_for
from .main import get_plan

bp = Blueprint("unit", __name__, url_prefix="/plans/<plan_code>/units/<unit_code>")


def load_assignment(plan_code: str, unit_code: str) -> Assignment:
    """Return the unit's assignment in the plan after the access check; 404 or 403 otherwise."""
    plan = get_plan(plan_code)
    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        abort(404, f"Không tìm thấy đơn vị mã «{unit_code}».")
    ensure_unit_access(unit)
    assignment = assignment_for(plan, unit)
    if assignment is None:
        abort(404, f"{unit.name} không thuộc kế hoạch này.")
    return assignment


@bp.route("")
@login_required
def home(plan_code: str, unit_code: str) -> Any:
    assignment = load_assignment(plan_code, unit_code)
    return render_template("unit/home.html", assignment=assignment, plan=assignment.plan, unit=assignment.unit)
