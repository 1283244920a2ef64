"""The queries feeding ``timeliness.series`` for one plan: three, whatever the number of units.

The facts read by those queries (``timeliness.SeriesFacts``) are kept per plan in this process, keyed by a
fingerprint of everything they come from (versions, withdrawals, reviews, assignments' exemptions, sent
reminders, the deadline) read in one statement on every call, and used only for an ``as_of`` at or after
the plan's latest event: an upload, a review, a withdrawal, a reminder or a deadline edit changes the
fingerprint, so the next call reads the plan again; a historical ``as_of`` always reads it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from datetime import datetime

from sqlalchemy import func, select, true

from .extensions import db
from .models import Assignment, OutboundMessage, Plan, ReturnVersion, Review
from .reminders import REMINDER_KINDS, MessageStatus
from .compliance import require_aware
from .timeliness import (Receipt, ReviewEvent, SeriesFacts, Timeliness, UnitEvents, series_facts,
                          series_from_facts)

CACHED_PLANS = 32
_cache: OrderedDict[int, tuple[tuple, SeriesFacts]] = OrderedDict()
_lock = threading.Lock()


def plan_fingerprint(plan: Plan) -> tuple[tuple, datetime | None]:
    """Return (fingerprint of the plan's series facts, instant of its latest event or None), one statement."""
    in_plan = ReturnVersion.assignment_id.in_(select(Assignment.id).where(Assignment.plan_id == plan.id))
    of_plan_versions = Review.version_id.in_(select(ReturnVersion.id).where(in_plan))
    sent = (OutboundMessage.plan_id == plan.id, OutboundMessage.kind.in_(REMINDER_KINDS),
            OutboundMessage.status == MessageStatus.SENT.value)
    # Four single-row aggregates, each scanning its table once, cross-joined into one row.
    parts = [
        select(func.count(ReturnVersion.id), func.max(ReturnVersion.id), func.count(ReturnVersion.withdrawn_at),
               func.max(ReturnVersion.withdrawn_at), func.max(ReturnVersion.received_at)).where(in_plan),
        select(func.count(Review.id), func.max(Review.id), func.max(Review.created_at)).where(of_plan_versions),
        select(func.count(Assignment.id), func.max(Assignment.id), func.count(Assignment.form_code)).where(
            Assignment.plan_id == plan.id),
        select(func.count(OutboundMessage.id), func.max(OutboundMessage.id),
               func.max(OutboundMessage.sent_at)).where(*sent),
    ]
    subqueries = [p.subquery() for p in parts]
    joined = subqueries[0]
    for other in subqueries[1:]:
        joined = joined.join(other, true())
    row = tuple(db.session.execute(select(*(c for q in subqueries for c in q.c)).select_from(joined)).one())
    instants = [row[3], row[4], row[7], row[13]]
    latest = max((require_aware(t, "event") for t in instants if t is not None), default=None)
    return (plan.deadline, *row), latest


def plan_timeliness(plan: Plan, as_of: datetime) -> Timeliness:
    """Return the day-by-day series of ``plan`` up to ``as_of``; ValueError on a naive ``as_of``."""
    require_aware(as_of, "as_of")
    key, latest = plan_fingerprint(plan)
    current = latest is None or as_of >= latest
    with _lock:
        hit = _cache.get(plan.id)
    if current and hit is not None and hit[0] == key:
        return series_from_facts(hit[1], plan.deadline, as_of)
    facts = _read_facts(plan, as_of)
    if current:
        with _lock:
            _cache[plan.id] = (key, facts)
            _cache.move_to_end(plan.id)
            while len(_cache) > CACHED_PLANS:
                _cache.popitem(last=False)
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
