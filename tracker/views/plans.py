"""Plans over time: the list of reachable plans and the plan switcher, confirming a draft copied onto a
new map unit by unit, opening and closing plans."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import audit
from ..access import department_required, login_required
from ..extensions import db
from ..models import Assignment, PlanState
from ..plan_access import reachable_plans
from .lookup import plan_assignment_or_404, plan_or_404
from ..plans import PlanStateError, confirm_unit, set_state

bp = Blueprint("plans", __name__)

# Pages that exist for every plan: switching plans keeps the reader on the same kind of page.
_PER_PLAN = {"main.plan", "dashboard.dashboard", "dashboard.schedule", "plans.draft"}


@bp.get("/plans")
@login_required
def plan_list() -> Any:
    """The plans the user reaches; with ``?switch=CODE`` (the plan switcher) go to that plan."""
    target = (request.args.get("switch") or "").strip()[:64]
    if target:
        plan = plan_or_404(target)
        if plan not in reachable_plans(current_user):
            abort(403)
        page = request.args.get("from", "")
        if not current_user.is_department:
            return redirect(url_for("unit.home", plan_code=plan.code, unit_code=current_user.unit.code))
        if page in _PER_PLAN and (page != "plans.draft" or plan.state == PlanState.DRAFT):
            return redirect(url_for(page, plan_code=plan.code))
        return redirect(url_for("main.plan", plan_code=plan.code))
    return render_template("plans/list.html", plans=reachable_plans(current_user))


@bp.get("/plans/<plan_code>/draft")
@department_required
def draft(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    assignments = db.session.scalars(select(Assignment).where(Assignment.plan_id == plan.id)
                                     .options(selectinload(Assignment.unit)).order_by(Assignment.id)).all()
    # Old communes that went to more than one new unit: shown with every side of the split.
    targets: dict[str, list[str]] = {}
    for a in assignments:
        for source in a.carried_from:
            targets.setdefault(source["code"], []).append(a.unit.name)
    waiting = sum(1 for a in assignments if not a.confirmed)
    return render_template("plans/draft.html", plan=plan, assignments=assignments, targets=targets,
                           waiting=waiting)


@bp.post("/plans/<plan_code>/draft/<int:assignment_id>")
@department_required
def confirm(plan_code: str, assignment_id: int) -> Any:
    plan = plan_or_404(plan_code)
    assignment = plan_assignment_or_404(plan, assignment_id)
    keep = request.form.get("decision") != "drop"
    name = assignment.unit.name
    try:
        confirm_unit(plan, assignment, keep)
    except PlanStateError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("plans.draft", plan_code=plan.code), 303)
    audit.record("plan_unit_confirmed" if keep else "plan_unit_dropped", target=f"{plan.code}/{name}")
    db.session.commit()
    flash(f"Đã xác nhận {name}." if keep else f"Đã bỏ {name} khỏi kế hoạch.", "ok")
    return redirect(url_for("plans.draft", plan_code=plan.code) + f"#a{assignment_id}", 303)


@bp.post("/plans/<plan_code>/state")
@department_required
def change_state(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    try:
        state = PlanState(request.form.get("state", ""))
    except ValueError:
        abort(400, "Trạng thái kế hoạch không hợp lệ: chọn mở hoặc đóng.")
    before = plan.state
    try:
        set_state(plan, state)
    except PlanStateError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        back = "plans.draft" if before == PlanState.DRAFT else "main.plan"
        return redirect(url_for(back, plan_code=plan.code), 303)
    audit.record("plan_state_changed", target=plan.code, before=before, after=state.value)
    db.session.commit()
    flash({PlanState.OPEN: f"Kế hoạch {plan.code} đã mở: các đơn vị có thể nộp báo cáo.",
           PlanState.CLOSED: f"Kế hoạch {plan.code} đã đóng: chỉ xem, không nhận báo cáo và không gửi thư nhắc."
           }.get(state, ""), "ok")
    return redirect(url_for("main.plan", plan_code=plan.code), 303)
