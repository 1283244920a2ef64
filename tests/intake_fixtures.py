"""Messages as district officers send them, for the email intake tests: a filled return attached."""
from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from forms_fixtures import consistent_values
from returns_fixtures import fill_workbook
from tracker import forms
from tracker.extensions import db
from tracker.models import Assignment, Plan, Unit

PLAN = "bacgiang-2024"
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
LUC_NGAN_CONTACT = "ldtbxh219@demo.bacgiang.vn"
STAFF = "canbo@demo.bacgiang.vn"


def filled_return(app: Any, unit_code: str = "219", changes: dict | None = None) -> bytes:
    """Return the unit's own blank form (this app's secret), filled with consistent values plus ``changes``."""
    from tracker.workbook import build_blank

    with app.app_context():
        assignment = db.session.scalar(select(Assignment).join(Plan).join(Unit)
                                       .where(Plan.code == PLAN, Unit.code == unit_code))
        form = forms.get(assignment.form_code)
        blank = build_blank(form, forms.workbook_context(assignment), app.config["SECRET_KEY"])
    values: dict[Any, Any] = dict(consistent_values(form))
    values.update(changes or {})
    texts = {s.code: f"Nội dung mục {s.code}: đã thực hiện." for s in form.narrative.sections if s.answer}
    return fill_workbook(blank, form, values, texts)


def make_email(sender: str = LUC_NGAN_CONTACT, attachments: Sequence[tuple[str, bytes, tuple[str, str]]] = (),
               subject: str = "Báo cáo kiểm tra công tác trẻ em năm 2024", body: str = "Kính gửi Sở, gửi báo cáo.",
               message_id: str | None = None, date: datetime | None = None, extra: dict | None = None) -> bytes:
    """Return a message's bytes as a mail client writes it (policy default: RFC 2231 names for Vietnamese)."""
    message = EmailMessage()
    message["From"] = f"Phòng LĐTBXH <{sender}>"
    message["To"] = "tuyetot_sldtbxh@bacgiang.gov.vn"
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="demo.bacgiang.vn")
    if date is not None:
        message["Date"] = format_datetime(date)
    for name, value in (extra or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, data, (maintype, subtype) in attachments:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()
