"""API for chasing and reviewing: manual reminders, the timeliness series and the review queue."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask_login import current_user

from .. import outbox
from ..access import api_error, department_required
from ..chase import remind as queue_reminder
from ..chasing import RemindRefused
from ..extensions import db
from ..plan_series import plan_timeliness
from ..review_queue import review_queue
from ..timeutil import local, parse_instant, utc_now
from .lookup import plan_or_404, unit_or_404

bp = Blueprint("api_chase", __name__, url_prefix="/api/v1/plans/<plan_code>")

BAD_AS_OF = ("Tham số as_of không hợp lệ: cần thời điểm ISO 8601 có múi giờ, "
             "ví dụ 2024-05-10T00:00:00+07:00 (dấu + viết là %2B trong URL).")


def _instant(value: Any) -> str | None:
    return None if value is None else local(value).isoformat()


@bp.post("/units/<unit_code>/remind")
@department_required
def remind(plan_code: str, unit_code: str) -> Any:
    plan = plan_or_404(plan_code)
    unit = unit_or_404(unit_code, plan.units_on)
    try:
        done = queue_reminder(plan, unit, utc_now(), current_user)
    except RemindRefused as refused:
        db.session.rollback()
        body: dict[str, Any] = {"code": refused.code, "message": refused.message}
        if refused.last_at is not None:
            body["last_reminded_at"] = _instant(refused.last_at)
        return jsonify({"error": body}), refused.status
    db.session.commit()
    outbox.send_after_request()
    return jsonify({"plan": plan.code, "unit": done.unit_code, "name": done.unit_name,
                    "message_id": done.message_id, "queued_at": _instant(done.queued_at),
                    "recipients": list(done.recipients)}), 201


@bp.get("/timeliness")
@department_required
def timeliness(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    raw = (request.args.get("as_of") or "").strip()
    try:
        as_of = parse_instant(raw) if raw else utc_now()
    except ValueError:
        return api_error(400, "invalid_as_of", BAD_AS_OF)
    t = plan_timeliness(plan, as_of)
    return jsonify({"plan": plan.code, "as_of": _instant(as_of), "deadline": _instant(plan.deadline),
                    "required": t.required, "reporting_rate": round(t.reporting_rate, 4),
                    "on_time_rate": round(t.on_time_rate, 4),
                    "days": [{"date": d.date.isoformat(), "received": d.received, "complete": d.complete,
                              "on_time": d.on_time, "reminders_sent": d.reminders_sent} for d in t.days]})


@bp.get("/review-queue")
@department_required
def queue(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    return jsonify({"plan": plan.code, "versions": [
        {"unit": w.unit_code, "name": w.unit_name, "form": w.form_code, "version": w.version,
         "received_at": _instant(w.received_at), "warnings": w.warnings, "late": w.late}
        for w in review_queue(plan)]})
