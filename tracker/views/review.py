"""Chasing and reviewing from the web: manual reminders from the dashboard, the «Chờ Sở xem xét» queue,
and the comment thread of a version."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import outbox
from ..access import department_required, login_required
from ..chase import remind
from ..chasing import RemindRefused
from ..comments import CommentRefused, add_comment
from ..extensions import db
from ..models import unit_by_code
from ..review_queue import review_queue
from ..timeutil import utc_now
from .lookup import assignment_or_404, plan_or_404, version_or_404

bp = Blueprint("review", __name__, url_prefix="/plans/<plan_code>")
# A click queues a few messages; more than this many wait for the next cron run.
FLUSH_LIMIT = 50


@bp.post("/remind")
@department_required
def remind_units(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    one = request.form.get("one", "").strip()
    codes = [one] if one else list(dict.fromkeys(c.strip() for c in request.form.getlist("unit") if c.strip()))
    back = url_for("dashboard.dashboard", plan_code=plan.code, _anchor="chase")
    if not codes:
        flash("Chưa chọn đơn vị nào để nhắc: hãy đánh dấu các đơn vị cần nhắc.", "error")
        return redirect(back)
    now = utc_now()
    done: list[str] = []
    for code in codes[:500]:
        unit = unit_by_code(code, plan.units_on)
        if unit is None:
            flash(f"Không tìm thấy đơn vị mã «{code}».", "error")
            continue
        try:
            done.append(remind(plan, unit, now, current_user).unit_name)
        except RemindRefused as refused:
            flash(refused.message, "error" if refused.status != 409 else "info")
    db.session.commit()
    if done:
        outbox.send_after_request(limit=FLUSH_LIMIT)
        # Queued, not yet sent: the mail log says whether it went out or was written to the outbox folder.
        flash(f"Đã xếp thư nhắc vào hàng gửi cho {len(done)} đơn vị: {', '.join(done)}. "
              "Nhật ký thư cho biết thư đã gửi đi hay đã ghi vào hộp thư đi.", "ok")
    return redirect(back)


@bp.get("/review-queue")
@department_required
def queue(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    return render_template("dashboard/review_queue.html", plan=plan, items=review_queue(plan))


@bp.post("/units/<unit_code>/versions/<int:number>/comments")
@login_required
def comment(plan_code: str, unit_code: str, number: int) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    plan, unit = assignment.plan, assignment.unit
    version = version_or_404(assignment, number)
    back = url_for("unit.version", plan_code=plan.code, unit_code=unit.code, number=number, _anchor="comments")
    try:
        add_comment(version, current_user, request.form.get("body", ""), utc_now())
    except CommentRefused as refused:
        db.session.rollback()
        flash(str(refused), "error")
        return render_template("dashboard/review_refused.html", plan=plan, unit=unit, back=back,
                               message=str(refused)), 422
    db.session.commit()
    outbox.send_after_request()
    flash("Đã gửi ý kiến.", "ok")
    return redirect(back)
