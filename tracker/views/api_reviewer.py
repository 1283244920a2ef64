"""API for the reviewer's tools: what changed between two versions, and the plan's outlier flags."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from .. import forms, review_tools
from ..access import api_error, department_required, login_required
from ..timeutil import utc_now
from .lookup import assignment_or_404, int_arg, plan_or_404, previous_version, version_or_404

bp = Blueprint("api_reviewer", __name__, url_prefix="/api/v1/plans/<plan_code>")


@bp.get("/units/<unit_code>/versions/<int:n>/changes")
@login_required
def changes(plan_code: str, unit_code: str, n: int) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    version = version_or_404(assignment, n)
    since = int_arg("since")
    if since == n:
        return api_error(400, "same_version", f"Tham số since phải khác phiên bản đang xem ({n}).")
    old = version_or_404(assignment, since) if since is not None else previous_version(assignment, n)
    if old is None:
        return api_error(404, "no_previous_version",
                         f"Phiên bản {n} là phiên bản đầu tiên: không có phiên bản trước để so sánh.")
    form = forms.all_forms().get(version.form_code)
    return jsonify(review_tools.changes_json(review_tools.version_changes(version, old, form)))


@bp.get("/outliers")
@department_required
def outliers(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    items = review_tools.plan_flags(plan, utc_now(), forms.all_forms())
    return jsonify({"plan": plan.code, "items": [review_tools.flag_json(i) for i in items]})
