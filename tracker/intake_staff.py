"""What staff do with the email intake: list its records (page and API), count a held return or refuse it.

A held return ("Thư chờ xác nhận") came from an address the tracker does not know; once staff confirm it,
it runs through the same upload use case as any attachment (``intake.receive_spreadsheet`` or
``intake.receive_pdf``), counted at the mailbox's arrival time.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from . import audit
from .catalog import Form
from .extensions import db
from .intake import IntakeSettings, State, receive_pdf, receive_spreadsheet
from .intake_mime import PDF
from .models import IntakeMessage, IntakeRecord, User
from .timeutil import as_utc


class DecisionError(ValueError):
    """The record cannot be decided as asked (not held any more); the message says why, in Vietnamese."""


def confirm(record_id: int, user: User, forms: Mapping[str, Form], settings: IntakeSettings,
            now: datetime) -> IntakeRecord:
    """Count a held return: run it through the upload use case, received at the message's arrival time.

    Returns the record, now ``accepted`` with its version or ``refused`` with the upload path's
    reason. Raises DecisionError when the record is not held. Commits.
    """
    record = _held(record_id)
    assignment, data = record.assignment, record.content
    if assignment is None or data is None:
        raise DecisionError("Bản ghi này không còn tệp để xác nhận.")
    message = record.message
    is_pdf = record.kind == PDF
    db.session.commit()
    if is_pdf:
        decision = receive_pdf(assignment, data, record.filename, user, message.received_at, settings)
    else:
        decision = receive_spreadsheet(assignment, data, record.filename, user, message.sender, message.message_date,
                            message.message_id, message.received_at, forms, settings)
    record = _held(record_id)  # re-read: the upload path committed in between
    record.state, record.reason = decision.state, decision.reason
    record.version_id = decision.version_id
    record.decided_by_id, record.decided_at = user.id, as_utc(now)
    record.content = None
    audit.record("intake_confirmed", target=f"{assignment.plan.code}/{assignment.unit.code}", user=user,
                 intake_record=record.id, state=decision.state, version=decision.version)
    db.session.commit()
    return record


def reject(record_id: int, user: User, reason: str, now: datetime) -> IntakeRecord:
    """Refuse a held return for good (the sender is not the unit's); raise DecisionError if not held. Commits."""
    record = _held(record_id)
    note = " ".join(reason.split())[:500]
    record.state = State.REFUSED
    record.reason = "Sở không xác nhận thư này" + (f": {note}" if note else ".")
    record.decided_by_id, record.decided_at = user.id, as_utc(now)
    record.content = None
    audit.record("intake_rejected", target=record.unit.code if record.unit else "", user=user,
                 intake_record=record.id, reason=note)
    db.session.commit()
    return record


def _held(record_id: int) -> IntakeRecord:
    record = db.session.get(IntakeRecord, record_id, populate_existing=True)
    if record is None:
        raise DecisionError("Không tìm thấy thư này.")
    if record.state != State.HELD:
        raise DecisionError("Thư này không ở trạng thái chờ xác nhận.")
    return record


def records(states: Sequence[str] = (), limit: int = 500) -> list[IntakeRecord]:
    """Return intake records, newest message first, optionally only those in ``states``."""
    query = select(IntakeRecord).join(IntakeMessage).order_by(IntakeMessage.received_at.desc(), IntakeRecord.id)
    if states:
        query = query.where(IntakeRecord.state.in_(list(states)))
    return list(db.session.scalars(query.limit(limit)))


def as_json(record: IntakeRecord) -> dict[str, Any]:
    """Return the API's JSON of one record."""
    message = record.message
    assignment = record.assignment
    return {"id": record.id, "message_id": message.message_id, "received_at": message.received_at.isoformat(),
            "sender": message.sender, "subject": message.subject,
            "unit": record.unit.code if record.unit else None,
            "plan": assignment.plan.code if assignment is not None else None,
            "filename": record.filename, "attachment_sha256": record.attachment_sha256 or None,
            "state": record.state, "reason": record.reason,
            "version": record.version.version if record.version else None}
