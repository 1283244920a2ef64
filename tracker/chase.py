"""The chase list and manual reminders: who to chase on a plan, how to reach them, when they were last
reminded; queue a reminder once per unit per day in the caller's transaction.

The caller commits, then sends with ``outbox.send_after_request``: nothing waits on SMTP while the
transaction is open.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, type_coerce

from . import audit, contacts, outbox, reminders
from .chasing import ContactCard, RemindRefused, check_remind, manual_step, needs_chase
from .compliance import Standing
from .extensions import db
from .messages import REMINDER_KINDS, MessageKind, MessageStatus
from .models import OutboundMessage, Plan, Unit, UTCDateTime
from .standings import UnitStanding, plan_standings


@dataclass(frozen=True)
class ChaseRow:
    """One unit of the chase list."""

    unit_code: str
    unit_name: str
    standing: Standing
    contacts: tuple[ContactCard, ...]
    last_reminded_at: datetime | None


@dataclass(frozen=True)
class Reminded:
    """A manual reminder queued: the stored message and whether it can go (``error`` when not)."""

    unit_code: str
    unit_name: str
    message_id: int
    queued_at: datetime
    recipients: tuple[str, ...]


def last_reminded(plan: Plan, as_of: datetime, unit_codes: Iterable[str] | None = None) -> dict[str, datetime]:
    """Return, per unit code, when the latest reminder of any kind was queued at or before ``as_of``.

    Failed messages do not count: nobody was reminded by them.
    """
    latest = type_coerce(func.max(OutboundMessage.created_at), UTCDateTime())
    query = (select(OutboundMessage.unit_key, latest)
             .where(OutboundMessage.plan_id == plan.id, OutboundMessage.kind.in_(REMINDER_KINDS),
                    OutboundMessage.status != MessageStatus.FAILED, OutboundMessage.created_at <= as_of)
             .group_by(OutboundMessage.unit_key))
    if unit_codes is not None:
        query = query.where(OutboundMessage.unit_key.in_(list(unit_codes)))
    return {code: at for code, at in db.session.execute(query)}


def chase_list(plan: Plan, as_of: datetime, standings: list[UnitStanding] | None = None) -> list[ChaseRow]:
    """Return the units to chase at ``as_of`` (overdue or incomplete), most overdue first."""
    rows = standings if standings is not None else plan_standings(plan, as_of)
    chased = [s for s in rows if needs_chase(s.standing)]
    cards = contacts.cards(s.unit_id for s in chased)
    last = last_reminded(plan, as_of, [s.unit_code for s in chased])
    result = [ChaseRow(s.unit_code, s.unit_name, s.standing, cards.get(s.unit_id, ()), last.get(s.unit_code))
              for s in chased]
    result.sort(key=lambda r: (-(r.standing.days_late or 0), r.unit_code))
    return result


def _sent_today(plan: Plan, unit_code: str, step: str) -> datetime | None:
    return db.session.scalar(select(OutboundMessage.created_at).where(
        OutboundMessage.plan_id == plan.id, OutboundMessage.unit_key == unit_code,
        OutboundMessage.kind == MessageKind.MANUAL_REMINDER, OutboundMessage.step == step))


def remind(plan: Plan, unit: Unit, as_of: datetime, user: Any) -> Reminded:
    """Queue a manual reminder to ``unit`` at ``as_of`` and record it in the audit log; return it.

    Raises RemindRefused (see ``chasing.check_remind``); 404-like cases (unit not in the plan) raise
    RemindRefused ``not_assigned`` with status 404. Does not commit.
    """
    found = plan_standings(plan, as_of, unit_ids=[unit.id])
    if not found:
        raise RemindRefused("not_assigned", f"{unit.name} không thuộc kế hoạch này.", 404)
    us = found[0]
    step = manual_step(as_of)
    has_contacts = bool(contacts.cards([unit.id]))
    check_remind(unit.name, us.standing, _sent_today(plan, unit.code, step), has_contacts, as_of)
    sender = getattr(user, "name", "") or getattr(user, "email", "") or ""
    draft = reminders.manual_reminder_draft(plan, us, step, as_of, sender)
    if not outbox.store(draft, as_of):
        # Another press won the race between the check and the insert.
        raise RemindRefused("already_reminded", f"{unit.name} vừa được nhắc hôm nay.", 409,
                            _sent_today(plan, unit.code, step))
    message_id = db.session.scalar(select(OutboundMessage.id).where(
        OutboundMessage.plan_id == plan.id, OutboundMessage.unit_key == unit.code,
        OutboundMessage.kind == MessageKind.MANUAL_REMINDER, OutboundMessage.step == step))
    audit.record("reminder.manual", target=f"{plan.code}/{unit.code}", user=user, plan=plan.code,
                 unit=unit.code, unit_name=unit.name, recipients=list(draft.recipients), message_id=message_id)
    return Reminded(unit.code, unit.name, int(message_id or 0), as_of, draft.recipients)
