"""«Chờ Sở xem xét»: complete versions that staff have not reviewed yet, oldest first.

Only a unit's newest version can be reviewed (``review``), so the queue holds at most one version per
unit: the newest, when it is complete, not withdrawn, and carries no review. The dashboard shows its
length on every load, so the queue is kept per plan (tracker.standing_cache) while the plan's change
counter is unchanged: every upload, review and withdrawal bumps it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from .extensions import db
from .models import Assignment, Plan, ReturnVersion, Review, Unit
from .standing_cache import cached

# The queue is today's, not an instant's: one fixed instant keys it, so only the counter decides.
_TODAY = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class Waiting:
    unit_code: str
    unit_name: str
    form_code: str
    version: int
    received_at: datetime
    warnings: int
    late: bool


def review_queue(plan: Plan) -> list[Waiting]:
    """Return the newest complete, unreviewed version of each unit of ``plan``, oldest receipt first."""
    return cached(plan, _TODAY, ("review_queue",), lambda: _read_queue(plan), by_constants=False)


def _read_queue(plan: Plan) -> list[Waiting]:
    ranked = (select(ReturnVersion.id, ReturnVersion.assignment_id, ReturnVersion.version,
                     ReturnVersion.received_at, ReturnVersion.complete, ReturnVersion.warnings,
                     ReturnVersion.form_code, ReturnVersion.withdrawn_at,
                     func.row_number().over(partition_by=ReturnVersion.assignment_id,
                                            order_by=(ReturnVersion.received_at.desc(),
                                                      ReturnVersion.version.desc())).label("rank"))
              .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
              .where(Assignment.plan_id == plan.id).subquery())
    reviewed = select(Review.id).where(Review.version_id == ranked.c.id).exists()
    rows = db.session.execute(
        select(Unit.code, Unit.name, ranked.c.form_code, ranked.c.version, ReturnVersion.received_at,
               ranked.c.warnings)
        .select_from(ranked)
        .join(ReturnVersion, ReturnVersion.id == ranked.c.id)
        .join(Assignment, Assignment.id == ranked.c.assignment_id)
        .join(Unit, Unit.id == Assignment.unit_id)
        .where(ranked.c.rank == 1, ranked.c.complete.is_(True), ranked.c.withdrawn_at.is_(None), ~reviewed)
        .order_by(ReturnVersion.received_at, Unit.code)).all()
    return [Waiting(code, name, form, number, received_at, warnings, received_at >= plan.deadline)
            for code, name, form, number, received_at, warnings in rows]
