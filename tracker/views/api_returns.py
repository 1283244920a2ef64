"""API for returns: upload a return, withdraw a version and download a unit's blank form."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask_login import current_user

from .. import forms, returns
from ..access import api_error, login_required
from ..guard import Refusal
from ..standings import plan_standings
from ..timeutil import utc_now
from ..withdrawal import WithdrawalRefused, withdraw_version
from .helpers import XLSX, download, refusal_response, upload_from_request
from .lookup import assignment_or_404, version_or_404

bp = Blueprint("api_returns", __name__, url_prefix="/api/v1/plans/<plan_code>/units/<unit_code>")


@bp.post("/returns")
@login_required
def upload(plan_code: str, unit_code: str) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    try:
        outcome = upload_from_request(assignment)
    except Refusal as refusal:
        return refusal_response(api_error(refusal.status, refusal.code, refusal.message), refusal)
    standing = plan_standings(assignment.plan, utc_now(), unit_ids=[assignment.unit_id])[0].standing
    body = returns.as_json(outcome.version, standing.late, standing.status.value)
    if not outcome.created:
        body["message"] = f"Tệp giống hệt phiên bản {outcome.version.version} đã nộp; không tạo phiên bản mới."
    return jsonify(body), 201 if outcome.created else 200


@bp.post("/versions/<int:number>/withdraw")
@login_required
def withdraw(plan_code: str, unit_code: str, number: int) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    try:
        version = withdraw_version(version_or_404(assignment, number), current_user, utc_now())
    except WithdrawalRefused as refused:
        return api_error(refused.status, refused.code, refused.message)
    standing = plan_standings(assignment.plan, utc_now(), unit_ids=[assignment.unit_id])[0].standing
    return jsonify({"version": version.version, "withdrawn_at": version.withdrawn_at.isoformat(),
                    "status": standing.status.value, "counted_version": standing.counted_version})


@bp.get("/blank-form.xlsx")
@bp.get("/template")  # the older name, kept so existing scripts go on working
@login_required
def blank_form(plan_code: str, unit_code: str) -> Any:
    blank = forms.blank_form_file(assignment_or_404(plan_code, unit_code))
    return download(blank.data, blank.ascii_name, blank.utf8_name, XLSX)
