"""API for returns: upload a return and download a unit's blank form."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from .. import returns
from ..access import api_error, login_required
from ..guard import Refusal
from ..standings import plan_standings
from ..timeutil import utc_now
from . import unit as unit_views

bp = Blueprint("api_returns", __name__, url_prefix="/api/v1/plans/<plan_code>/units/<unit_code>")


@bp.post("/returns")
@login_required
def upload(plan_code: str, unit_code: str) -> Any:
    assignment = unit_views.load_assignment(plan_code, unit_code)
    try:
        outcome = unit_views.take_upload(assignment)
    except Refusal as refusal:
        return unit_views.refusal_response(api_error(refusal.status, refusal.code, refusal.message), refusal)
    standing = plan_standings(assignment.plan, utc_now(), unit_ids=[assignment.unit_id])[0].standing
    body = returns.as_json(outcome.version, standing.late, standing.status.value)
    if not outcome.created:
        body["message"] = f"Tệp giống hệt phiên bản {outcome.version.version} đã nộp; không tạo phiên bản mới."
    return jsonify(body), 201 if outcome.created else 200


@bp.post("/versions/<int:number>/withdraw")
@login_required
def withdraw(plan_code: str, unit_code: str, number: int) -> Any:
    from ..withdrawal import WithdrawalRefused

    assignment = unit_views.load_assignment(plan_code, unit_code)
    try:
        version = unit_views.withdraw(assignment, number)
    except WithdrawalRefused as refused:
        return api_error(refused.status, refused.code, refused.message)
    standing = plan_standings(assignment.plan, utc_now(), unit_ids=[assignment.unit_id])[0].standing
    return jsonify({"version": version.version, "withdrawn_at": version.withdrawn_at.isoformat(),
                    "status": standing.status.value, "counted_version": standing.counted_version})


@bp.get("/blank-form.xlsx")
@bp.get("/template")  # the older name, kept so existing scripts go on working
@login_required
def blank_form(plan_code: str, unit_code: str) -> Any:
    assignment = unit_views.load_assignment(plan_code, unit_code)
    return unit_views.download(*unit_views.blank_form_file(assignment), unit_views.XLSX)
