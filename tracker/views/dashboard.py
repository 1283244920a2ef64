"""The department's view of a plan: dashboard, schedule, export, mail log."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from ..access import department_required
from .main import get_plan

bp = Blueprint("dashboard", __name__)


@bp.route("/plans/<plan_code>/dashboard")
@department_required
def dashboard(plan_code: str) -> Any:
    plan = get_plan(plan_code)
    return render_template("dashboard/dashboard.html", plan=plan)


@bp.route("/plans/<plan_code>/schedule")
@department_required
def schedule(plan_code: str) -> Any:
    plan = get_plan(plan_code)
    return render_template("dashboard/schedule.html", plan=plan)


@bp.route("/mail")
@department_required
def mail_log() -> Any:
    return render_template("dashboard/mail_log.html", messages=[])
