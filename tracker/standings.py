"""The one set of queries that feeds the compliance rules for a whole plan.

Three queries whatever the number of units (assignments, versions, reviews), never one per unit: a
national plan has 10,595 reporting communes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from .compliance import ReviewState, Standing, VersionFacts, standing
from .extensions import db
from .models import Assignment, Plan, ReturnVersion, Review, Unit


@dataclass(frozen=True)
class UnitStanding:
    assignment_id: int
    unit_id: int
    unit_code: str
    unit_name: str
    form_code: str | None
    exempt_reason: str | None
    standing: Standing


def plan_standings(plan: Plan, as_of: datetime, unit_ids: list[int] | None = None) -> list[UnitStanding]:
    """Return each assigned unit's standing at ``as_of``, in unit-code order (optionally some units only)."""
    query = (select(Assignment.id, Unit.id, Unit.code, Unit.name, Assignment.form_code, Assignment.exempt_reason)
             .join(Unit, Unit.id == Assignment.unit_id).where(Assignment.plan_id == plan.id).order_by(Unit.code))
    if unit_ids is not None:
        query = query.where(Assignment.unit_id.in_(unit_ids))
    assignments = db.session.execute(query).all()
    ids = [row[0] for row in assignments]
    version_query = (select(ReturnVersion.id, ReturnVersion.assignment_id, ReturnVersion.version,
                            ReturnVersion.received_at, ReturnVersion.complete, ReturnVersion.errors,
                            ReturnVersion.warnings)
                     .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
                     .where(Assignment.plan_id == plan.id, ReturnVersion.received_at <= as_of))
    review_query = (select(Review.version_id, Review.state, Review.reason, Review.created_at)
                    .join(ReturnVersion, ReturnVersion.id == Review.version_id)
                    .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
                    .where(Assignment.plan_id == plan.id, Review.created_at <= as_of).order_by(Review.id))
    if unit_ids is not None:
        version_query = version_query.where(ReturnVersion.assignment_id.in_(ids))
        review_query = review_query.where(ReturnVersion.assignment_id.in_(ids))
    latest_review: dict[int, tuple[str, str, datetime]] = {}
    for version_id, state, reason, created_at in db.session.execute(review_query):
        latest_review[version_id] = (state, reason, created_at)  # ordered by id: the last one wins
    facts: dict[int, list[VersionFacts]] = defaultdict(list)
    for vid, aid, number, received_at, complete, errors, warnings in db.session.execute(version_query):
        review = latest_review.get(vid)
        facts[aid].append(VersionFacts(
            version=number, received_at=received_at, complete=complete, errors=errors, warnings=warnings,
            review=ReviewState(review[0]) if review else None, review_reason=review[1] if review else None,
            reviewed_at=review[2] if review else None))
    return [UnitStanding(aid, uid, code, name, form_code, reason,
                         standing(facts.get(aid, ()), plan.deadline, as_of, exempt=form_code is None))
            for aid, uid, code, name, form_code, reason in assignments]
