"""API of the email intake: the processed messages, one row per attachment (staff and admin)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from .. import intake, intake_staff
from ..access import api_error, department_required

bp = Blueprint("api_intake", __name__, url_prefix="/api/v1")


@bp.get("/intake")
@department_required
def intake_records() -> Any:
    state = request.args.get("state", "")
    states = (intake.State.ACCEPTED, intake.State.HELD, intake.State.REFUSED, intake.State.IGNORED)
    if state and state not in states:
        return api_error(400, "bad_state", f"Tham số state phải là một trong: {', '.join(states)}.")
    return jsonify({"records": [intake_staff.as_json(r) for r in intake_staff.records([state] if state else [])]})
