"""Lookups of plans, units, assignments and versions by URL part, for every page and API: the one 404 path
(with a Vietnamese message), and 403 for another unit's officer."""
from __future__ import annotations

from datetime import date

from flask import abort, request
from flask_login import current_user
from sqlalchemy import select

from ..access import ensure_unit_access
from ..extensions import db
from ..models import Assignment, Plan, ReturnVersion, Unit, assignment_for, unit_by_code
from ..plan_access import visible_plan


def plan_or_404(code: str) -> Plan:
    """Return the plan ``code`` the current user may see; 404 for an unknown plan, or a draft for a unit."""
    # A draft is the department's work in progress: units do not see it yet.
    plan = visible_plan(current_user, code)
    if plan is None:
        abort(404, f"Không tìm thấy kế hoạch mã «{code[:40]}».")
    return plan



def unit_or_404(code: str, on: date, or_before: bool = False) -> Unit:
    """Return the unit bearing ``code`` on ``on`` (see ``models.unit_by_code``); 404 when there is none."""
    unit = unit_by_code(code, on, or_before=or_before)
    if unit is None:
        abort(404, f"Không tìm thấy đơn vị mã «{code[:40]}».")
    return unit


def assignment_or_404(plan_code: str, unit_code: str) -> Assignment:
    """Return the unit's assignment after the access check (403 for another unit's officer); 404 if unknown."""
    plan = plan_or_404(plan_code)
    # A code is unique among a plan's own units, whatever the map date: look there first.
    unit = db.session.scalar(select(Unit).join(Assignment, Assignment.unit_id == Unit.id)
                             .where(Assignment.plan_id == plan.id, Unit.code == unit_code)) \
        or unit_or_404(unit_code, plan.units_on)
    ensure_unit_access(unit)
    assignment = assignment_for(plan, unit)
    if assignment is None:
        abort(404, f"{unit.name} không thuộc kế hoạch này.")
    return assignment


def plan_assignment_or_404(plan: Plan, assignment_id: int) -> Assignment:
    """Return the assignment ``assignment_id`` of ``plan`` (a row of its draft page); 404 for another plan's."""
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None or assignment.plan_id != plan.id:
        abort(404, "Không tìm thấy đơn vị này trong kế hoạch.")
    return assignment


def version_or_404(assignment: Assignment, number: int) -> ReturnVersion:
    """Return the assignment's version ``number``; 404 when it has none."""
    version = db.session.scalar(select(ReturnVersion).where(ReturnVersion.assignment_id == assignment.id,
                                                            ReturnVersion.version == number))
    if version is None:
        abort(404, f"Không có phiên bản {number} của báo cáo này.")
    return version


def previous_version(assignment: Assignment, number: int) -> ReturnVersion | None:
    """Return the unit's version just before ``number`` (by number), or None for the first."""
    return db.session.scalar(select(ReturnVersion).where(ReturnVersion.assignment_id == assignment.id,
                                                         ReturnVersion.version < number)
                             .order_by(ReturnVersion.version.desc()).limit(1))


def int_arg(name: str) -> int | None:
    """Return the query argument ``name`` as a positive integer, None when absent; 400 when malformed."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        abort(400, f"Tham số {name} phải là số phiên bản (số nguyên dương), không phải «{raw[:20]}».")
    return int(raw)
