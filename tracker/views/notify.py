"""Mail log for department staff (sent, pending, failed; the .eml outbox) and units' contact addresses."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request, send_file,
                   url_for)
from flask_login import current_user
from sqlalchemy import func, select

from .. import outbox, reminders
from ..access import admin_required, department_required
from ..contacts import ContactError, parse_addresses, set_contacts
from ..extensions import db
from ..models import Assignment, OutboundMessage, Plan, Unit
from ..redirects import safe_next
from ..messages import MessageKind, MessageStatus
from ..timeutil import local_date, utc_now
from .lookup import plan_or_404, unit_or_404

bp = Blueprint("notify", __name__)

# A click queues a handful; whatever is over this waits for the next send-reminders run.
FLUSH_LIMIT = 20
PAGE_SIZE = 200


def _message_or_404(message_id: int) -> OutboundMessage:
    message = db.session.get(OutboundMessage, message_id)
    if message is None:
        abort(404, "Không tìm thấy thư này.")
    return message


def _flush_and_flash(kind_text: str) -> None:
    report = outbox.send_after_request(FLUSH_LIMIT)
    if report is None:
        flash(f"{kind_text}: thư đang được gửi; tải lại nhật ký thư để xem kết quả.", "info")
        return
    if report.sent:
        flash(f"{kind_text}: đã gửi {report.sent} thư.", "ok")
    if report.retrying or report.failed:
        flash(f"{kind_text}: {report.retrying + report.failed} thư chưa gửi được; xem lý do trong bảng.", "error")


@bp.route("/mail-log")
@department_required
def mail_log() -> Any:
    status = request.args.get("status", "")
    kind = request.args.get("kind", "")
    plan_code = request.args.get("plan", "")
    # Outer join: replies to the intake mailbox's senders may belong to no plan.
    query = select(OutboundMessage, Plan.code).outerjoin(Plan, Plan.id == OutboundMessage.plan_id)
    if status in {s.value for s in MessageStatus}:
        query = query.where(OutboundMessage.status == status)
    if kind in {k.value for k in MessageKind}:
        query = query.where(OutboundMessage.kind == kind)
    if plan_code:
        query = query.where(Plan.code == plan_code)
    rows = db.session.execute(query.order_by(OutboundMessage.id.desc()).limit(PAGE_SIZE)).all()
    counts = dict(db.session.execute(select(OutboundMessage.status, func.count())
                                     .group_by(OutboundMessage.status)).all())
    plans = db.session.scalars(select(Plan).order_by(Plan.deadline.desc())).all()
    # Codes are reused across maps: the names are those of the units the messages' plans assign.
    unit_names = dict(db.session.execute(select(Unit.code, Unit.name).where(
        Unit.code.in_({m.unit_key for m, _ in rows if m.unit_key}),
        Unit.id.in_(select(Assignment.unit_id).where(Assignment.plan_id.in_({m.plan_id for m, _ in rows}))))).all())
    return render_template("notify/mail_log.html", rows=rows, counts=counts, plans=plans,
                           unit_names=unit_names, statuses=list(MessageStatus), kinds=list(MessageKind),
                           selected={"status": status, "kind": kind, "plan": plan_code},
                           smtp=current_app.config.get("MAIL_SERVER"), page_size=PAGE_SIZE)


@bp.route("/mail-log/<int:message_id>")
@department_required
def mail_detail(message_id: int) -> Any:
    message = _message_or_404(message_id)
    plan = db.session.get(Plan, message.plan_id) if message.plan_id is not None else None
    return render_template("notify/mail_detail.html", message=message, plan=plan)


@bp.route("/mail-log/<int:message_id>/eml")
@department_required
def mail_eml(message_id: int) -> Any:
    message = _message_or_404(message_id)
    if not message.eml_path:
        abort(404, "Thư này không được lưu thành tệp .eml.")
    outbox = Path(current_app.config["OUTBOX_DIR"]).resolve()
    path = Path(message.eml_path).resolve()
    # Only files of our outbox: a row must never become a way to read other files of the server.
    if outbox not in path.parents or not path.is_file():
        abort(404, "Không tìm thấy tệp .eml của thư này.")
    # Read into memory: an .eml is small, and no file handle outlives the request.
    return send_file(BytesIO(path.read_bytes()), mimetype="message/rfc822", as_attachment=True,
                     download_name=f"thu-{message.id}.eml")


@bp.route("/mail-log/<int:message_id>/retry", methods=["POST"])
@department_required
def mail_retry(message_id: int) -> Any:
    message = _message_or_404(message_id)
    if message.status is not MessageStatus.FAILED:
        flash("Chỉ gửi lại được thư ở trạng thái «Không gửi được».", "error")
        return redirect(url_for("notify.mail_log"))
    outbox.requeue(message, utc_now())
    db.session.commit()
    if message.status is MessageStatus.FAILED:
        flash(f"Chưa gửi lại được: {message.last_error}.", "error")
    else:
        _flush_and_flash("Gửi lại")
    return redirect(url_for("notify.mail_log"))


@bp.route("/mail-log/digest", methods=["POST"])
@department_required
def send_digest() -> Any:
    plan = plan_or_404(request.form.get("plan", ""))
    draft = reminders.queue_digest(plan, utc_now())
    db.session.commit()
    if draft is None:
        flash("Bản tổng hợp vừa được yêu cầu; vui lòng đợi một lát rồi thử lại.", "info")
    elif draft.error:
        flash(f"Không gửi được bản tổng hợp: {draft.error}.", "error")
    else:
        _flush_and_flash("Bản tổng hợp")
    return redirect(url_for("notify.mail_log"))


def _safe_next(default: str) -> str:
    # Only paths of this site: an open redirect would let a crafted link bounce admins elsewhere.
    return safe_next(request.form.get("next") or request.args.get("next")) or default


@bp.route("/admin/units/<unit_code>/contacts", methods=["GET", "POST"])
@admin_required
def contacts(unit_code: str) -> Any:
    unit = unit_or_404(unit_code, local_date(utc_now()), or_before=True)
    here = url_for("notify.contacts", unit_code=unit.code)
    if request.method == "POST":
        text = request.form.get("emails", "")
        try:
            change = set_contacts(unit, parse_addresses(text), user=current_user)
        except ContactError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("notify/contacts.html", unit=unit, emails_text=text,
                                   next_url=_safe_next(here)), 400
        db.session.commit()
        if not change.changed:
            flash("Địa chỉ liên hệ không thay đổi.", "info")
        elif change.after:
            flash(f"Đã lưu địa chỉ liên hệ của {unit.name}: {', '.join(change.after)}.", "ok")
        else:
            flash(f"Đã xóa hết địa chỉ liên hệ của {unit.name}: đơn vị sẽ không nhận được thư nhắc.", "warning")
        return redirect(_safe_next(here))
    return render_template("notify/contacts.html", unit=unit, next_url=_safe_next(here))
