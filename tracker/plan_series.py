"""The queries feeding ``timeliness.series`` for one plan: three, whatever the number of units.

The facts read by those queries (``timeliness.SeriesFacts``) are kept per plan in this process
(tracker.standing_cache), as the standings are: while the plan's change counter (uploads, reviews,
withdrawals, assignments, the deadline) and the plan's sent reminders are unchanged, for any ``as_of``
with no such event between it and the instant they were read at; a live "now" view past the latest event
reuses them, and so does a historical view asked again.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select

from .extensions import db
from .models import Assignment, OutboundMessage, Plan, ReturnVersion, Review
from .messages import REMINDER_KINDS, MessageStatus
from .compliance import require_aware
from .standing_cache import cached
from .timeliness import (Receipt, ReviewEvent, SeriesFacts, Timeliness, UnitEvents, series_facts,
                          series_from_facts)


def _sent(plan: Plan) -> tuple:
    return (OutboundMessage.plan_id == plan.id, OutboundMessage.kind.in_(REMINDER_KINDS),
            OutboundMessage.status == MessageStatus.SENT.value)


def plan_timeliness(plan: Plan, as_of: datetime) -> Timeliness:
    """Return the day-by-day series of ``plan`` up to ``as_of``; ValueError on a naive ``as_of``."""
    require_aware(as_of, "as_of")
    # Sent reminders are not followed by the change counter: their count, last id and last sending
    # instant stamp the entry, and their instants bound it as the plan's events do.
    stamp = tuple(db.session.execute(select(func.count(OutboundMessage.id), func.max(OutboundMessage.id),
                                            func.max(OutboundMessage.sent_at)).where(*_sent(plan))).one())
    facts = cached(plan, as_of, ("series",), lambda: _read_facts(plan, as_of), stamp=stamp,
                   more_events=select(OutboundMessage.sent_at).where(*_sent(plan)), by_constants=False)
    return series_from_facts(facts, plan.deadline, as_of)


def _read_facts(plan: Plan, as_of: datetime) -> SeriesFacts:
    exempt = {aid: form is None for aid, form in db.session.execute(
        select(Assignment.id, Assignment.form_code).where(Assignment.plan_id == plan.id))}
    receipts: dict[int, list[Receipt]] = defaultdict(list)
    for aid, received_at, number, complete, withdrawn_at in db.session.execute(
            select(ReturnVersion.assignment_id, ReturnVersion.received_at, ReturnVersion.version,
                   ReturnVersion.complete, ReturnVersion.withdrawn_at)
            .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
            .where(Assignment.plan_id == plan.id, ReturnVersion.received_at <= as_of)):
        receipts[aid].append(Receipt(received_at, number, complete, withdrawn_at))
    reviews: dict[int, list[ReviewEvent]] = defaultdict(list)
    for aid, created_at, number, state in db.session.execute(
            select(ReturnVersion.assignment_id, Review.created_at, ReturnVersion.version, Review.state)
            .join(ReturnVersion, ReturnVersion.id == Review.version_id)
            .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
            .where(Assignment.plan_id == plan.id, Review.created_at <= as_of).order_by(Review.id)):
        reviews[aid].append(ReviewEvent(created_at, number, state))
    sent = list(db.session.scalars(
        select(OutboundMessage.sent_at).where(
            OutboundMessage.plan_id == plan.id, OutboundMessage.kind.in_(REMINDER_KINDS),
            OutboundMessage.status == MessageStatus.SENT.value, OutboundMessage.sent_at <= as_of)))
    units = [UnitEvents(exempt[aid], tuple(receipts.get(aid, ())), tuple(reviews.get(aid, ()))) for aid in exempt]
    return series_facts(units, plan.deadline, as_of, sent)
