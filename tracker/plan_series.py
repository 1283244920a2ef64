"""The queries feeding ``timeliness.series`` for one plan: three, whatever the number of units."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select

from .extensions import db
from .models import Assignment, OutboundMessage, Plan, ReturnVersion, Review
from .reminders import REMINDER_KINDS, MessageStatus
from .timeliness import Receipt, ReviewEvent, Timeliness, UnitEvents, series


def plan_timeliness(plan: Plan, as_of: datetime) -> Timeliness:
    """Return the day-by-day series of ``plan`` up to ``as_of``; ValueError on a naive ``as_of``."""
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
    return series(units, plan.deadline, as_of, sent)
