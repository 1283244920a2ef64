"""Plan use cases: copying a plan for next year."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from .extensions import db
from .models import Assignment, Plan, Visit


class PlanCopyError(ValueError):
    """The copy cannot be made; the message says why, in Vietnamese."""


CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def copy_plan(source_code: str, new_code: str, deadline: datetime, title: str | None = None) -> Plan:
    """Add a copy of plan ``source_code`` (assignments and visits) and return it.

    Raises PlanCopyError when the source is unknown, the new code is taken or malformed.
    """
    source = db.session.scalar(select(Plan).where(Plan.code == source_code))
    if source is None:
        raise PlanCopyError(f"Không tìm thấy kế hoạch mã «{source_code}».")
    if not new_code or not set(new_code) <= CODE_CHARS or len(new_code) > 64:
        raise PlanCopyError("Mã kế hoạch chỉ gồm chữ thường không dấu, số, dấu gạch ngang và gạch dưới.")
    if db.session.scalar(select(Plan).where(Plan.code == new_code)) is not None:
        raise PlanCopyError(f"Mã kế hoạch «{new_code}» đã tồn tại.")
    copy = Plan(code=new_code, title=title or source.title, issuer=source.issuer, doc_number="",
                doc_date=None, deadline=deadline, deadline_text="", periods=list(source.periods),
                period_basis=source.period_basis, department_email=source.department_email,
                reminder_settings=dict(source.reminder_settings), copied_from_id=source.id)
    for a in source.assignments:
        copy.assignments.append(Assignment(unit_id=a.unit_id, form_code=a.form_code, exempt_reason=a.exempt_reason))
    for v in source.visits:
        copy.visits.append(Visit(unit_id=v.unit_id, visit_date=v.visit_date, session_starts=list(v.session_starts),
                                 note=v.note, communes=list(v.communes)))
    db.session.add(copy)
    db.session.flush()
    return copy
