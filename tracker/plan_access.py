"""Which plans a user reaches, in which order, and where an officer lands after logging in."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from .compliance import Status
from .extensions import db
from .models import Assignment, Plan, PlanState, User, plan_by_code
from .standings import plan_standings

# Statuses that ask the officer to do something, most urgent first.
_ACTION = (Status.OVERDUE, Status.INCOMPLETE, Status.NOT_DUE)


def visible_plan(user: User, code: str) -> Plan | None:
    """Return the plan ``code`` unless it does not exist or is a draft and ``user`` is not the department's."""
    plan = plan_by_code(code)
    if plan is None or (plan.state == PlanState.DRAFT and not user.is_department):
        return None
    return plan


def reachable_plans(user: User) -> list[Plan]:
    """Return the plans ``user`` may open: drafts (department only), then open plans, then closed ones,
    each group latest deadline first."""
    query = select(Plan)
    if not user.is_department:
        query = query.where(Plan.state != PlanState.DRAFT,
                            Plan.id.in_(select(Assignment.plan_id).where(Assignment.unit_id == user.unit_id)))
    plans = list(db.session.scalars(query))
    rank = {PlanState.DRAFT: 0, PlanState.OPEN: 1, PlanState.CLOSED: 2}
    open_plans = sorted((p for p in plans if p.state != PlanState.CLOSED),
                        key=lambda p: (rank[PlanState(p.state)], -p.deadline.timestamp()))
    closed = sorted((p for p in plans if p.state == PlanState.CLOSED), key=lambda p: p.deadline, reverse=True)
    return open_plans + closed


def landing_plan(user: User, as_of: datetime) -> Plan | None:
    """Return the plan an officer should see first: the open plan whose report needs them most (overdue,
    then waiting for correction, then due next), else the latest open plan, else the latest closed one."""
    plans = reachable_plans(user)
    best: tuple[int, datetime, Plan] | None = None
    for plan in plans:
        if plan.state != PlanState.OPEN:
            continue
        items = plan_standings(plan, as_of, unit_ids=[user.unit_id or 0])
        if not items or items[0].standing.status not in _ACTION:
            continue
        key = (_ACTION.index(items[0].standing.status), plan.deadline, plan)
        if best is None or key[:2] < best[:2]:
            best = key
    if best is not None:
        return best[2]
    opened = [p for p in plans if p.state == PlanState.OPEN]
    if opened:
        return max(opened, key=lambda p: p.deadline)
    return plans[0] if plans else None
