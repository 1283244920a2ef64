"""Staff pages of the email intake: "Thư chờ xác nhận" (held returns) and every processed message."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import forms, intake, intake_staff, outbox
from ..access import department_required
from ..timeutil import utc_now

bp = Blueprint("intake", __name__)

STATES = (intake.State.HELD, intake.State.ACCEPTED, intake.State.REFUSED, intake.State.IGNORED)


@bp.route("/intake")
@department_required
def intake_list() -> Any:
    state = request.args.get("state", "")
    held = intake_staff.records([intake.State.HELD])
    shown = intake_staff.records([state] if state in STATES else [])
    return render_template("intake/list.html", held=held, records=shown, states=STATES, labels=intake.State.LABELS,
                           selected=state)


@bp.route("/intake/<int:record_id>/confirm", methods=["POST"])
@department_required
def confirm(record_id: int) -> Any:
    try:
        record = intake_staff.confirm(record_id, current_user, forms.all_forms(),
                                      intake.settings_from(current_app.config), utc_now())
    except intake_staff.DecisionError as exc:
        flash(str(exc), "error")
        return redirect(url_for("intake.intake_list"), 303)
    if record.state == intake.State.ACCEPTED and record.version is not None:
        flash(f"Đã xác nhận: báo cáo của {record.unit.name} được tính là phiên bản {record.version.version}, "
              "nhận lúc hộp thư nhận được thư.", "ok")
        outbox.send_after_request()
    elif record.state == intake.State.ACCEPTED:
        flash(f"Đã xác nhận: {record.reason}", "ok")
    else:
        flash(f"Hệ thống không nhận tệp này: {record.reason}", "error")
    return redirect(url_for("intake.intake_list"), 303)


@bp.route("/intake/<int:record_id>/reject", methods=["POST"])
@department_required
def reject(record_id: int) -> Any:
    try:
        intake_staff.reject(record_id, current_user, request.form.get("reason", ""), utc_now())
    except intake_staff.DecisionError as exc:
        flash(str(exc), "error")
        return redirect(url_for("intake.intake_list"), 303)
    flash("Đã ghi nhận: thư này không được tính.", "ok")
    return redirect(url_for("intake.intake_list"), 303)
