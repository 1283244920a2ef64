"""Home and plan pages."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..access import login_required
from ..extensions import db
from ..models import Assignment, Plan, Role, Visit
from ..plan_access import landing_plan
from ..timeutil import utc_now
from .lookup import plan_or_404

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def index() -> Any:
    if current_user.role == Role.UNIT:
        plan = landing_plan(current_user, utc_now())
        if plan is None:
            return render_template("main/no_plan.html")
        return redirect(url_for("unit.home", plan_code=plan.code, unit_code=current_user.unit.code))
    plans = db.session.scalars(select(Plan).order_by(Plan.deadline.desc())).all()
    return render_template("main/plans.html", plans=plans)


@bp.route("/plans/<plan_code>")
@login_required
def plan(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    assignments = db.session.scalars(
        select(Assignment).where(Assignment.plan_id == plan.id)
        .options(selectinload(Assignment.unit)).order_by(Assignment.id)).all()
    visits = db.session.scalars(
        select(Visit).where(Visit.plan_id == plan.id)
        .options(selectinload(Visit.unit), selectinload(Visit.communes)).order_by(Visit.visit_date)).all()
    if current_user.role == Role.UNIT:
        assignments = [a for a in assignments if a.unit_id == current_user.unit_id]
    return render_template("main/plan.html", plan=plan, assignments=assignments, visits=visits)
