"""The one set of queries that feeds the compliance rules for a whole plan.

Three queries whatever the number of units (assignments, versions, reviews), never one per unit: a
national plan has 10,595 reporting communes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, type_coerce

from .compliance import ReviewState, Standing, VersionFacts, standing
from .export import ExportInput, ExportIssue, ExportUnit, ExportValue
from .wording import plan_document
from .extensions import db
from .models import (
    UTCDateTime,
    Assignment,
    Plan,
    ReturnIssue,
    ReturnValue,
    ReturnVersion,
    Review,
    Unit,
)


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
    """Return each assigned unit's standing at ``as_of``, in unit-code order (optionally some units only).

    The status rules look at three versions of a unit at most: the first received, the first without
    errors, and the latest (with its review). The database reduces every unit's history to those, so
    a national plan with tens of thousands of versions hands the rules one or three facts per unit.
    """
    query = (select(Assignment.id, Unit.id, Unit.code, Unit.name, Assignment.form_code, Assignment.exempt_reason)
             .join(Unit, Unit.id == Assignment.unit_id).where(Assignment.plan_id == plan.id).order_by(Unit.code))
    scope = [Assignment.plan_id == plan.id, ReturnVersion.received_at <= as_of]
    if unit_ids is not None:
        query = query.where(Assignment.unit_id.in_(unit_ids))
        scope.append(Assignment.unit_id.in_(unit_ids))
    assignments = db.session.execute(query).all()

    received = type_coerce(ReturnVersion.received_at, UTCDateTime())
    firsts = (select(ReturnVersion.assignment_id, type_coerce(func.min(received), UTCDateTime()),
                     type_coerce(func.min(case((ReturnVersion.complete, received))), UTCDateTime()))
              .join(Assignment, Assignment.id == ReturnVersion.assignment_id).where(*scope)
              .group_by(ReturnVersion.assignment_id))
    ranked = (select(ReturnVersion.id, ReturnVersion.assignment_id, ReturnVersion.version, ReturnVersion.received_at,
                     ReturnVersion.complete, ReturnVersion.errors, ReturnVersion.warnings,
                     func.row_number().over(partition_by=ReturnVersion.assignment_id,
                                            order_by=(ReturnVersion.received_at.desc(),
                                                      ReturnVersion.version.desc())).label("rank"))
              .join(Assignment, Assignment.id == ReturnVersion.assignment_id).where(*scope).subquery())
    latest_rows = db.session.execute(select(ranked).where(ranked.c.rank == 1)).all()
    review_query = (select(Review.version_id, Review.state, Review.reason, Review.created_at)
                    .join(ranked, ranked.c.id == Review.version_id)
                    .where(ranked.c.rank == 1, Review.created_at <= as_of).order_by(Review.id))
    latest_review: dict[int, tuple[str, str, datetime]] = {}
    for version_id, state, reason, created_at in db.session.execute(review_query):
        latest_review[version_id] = (state, reason, created_at)  # ordered by id: the last one wins

    facts: dict[int, list[VersionFacts]] = defaultdict(list)
    # Stand-ins for the first and the first error-free receipt; negative numbers sort before real versions.
    for aid, first_at, first_complete_at in db.session.execute(firsts):
        facts[aid].append(VersionFacts(version=-2, received_at=first_at, complete=False, errors=0, warnings=0))
        if first_complete_at is not None:
            facts[aid].append(VersionFacts(version=-1, received_at=first_complete_at, complete=True, errors=0,
                                           warnings=0))
    for vid, aid, number, received_at, complete, errors, warnings, _rank in latest_rows:
        review = latest_review.get(vid)
        facts[aid].append(VersionFacts(
            version=number, received_at=received_at, complete=complete, errors=errors, warnings=warnings,
            review=ReviewState(review[0]) if review else None, review_reason=review[1] if review else None,
            reviewed_at=review[2] if review else None))
    return [UnitStanding(aid, uid, code, name, form_code, reason,
                         standing(facts.get(aid, ()), plan.deadline, as_of, exempt=form_code is None))
            for aid, uid, code, name, form_code, reason in assignments]


def export_version(rows: list[Any], review_state: dict[int, str]) -> Any | None:
    """Return the version of one unit whose figures the export uses, or None.

    ``rows`` are the unit's versions received by ``as_of``, oldest first, and ``review_state`` each
    version's last review state. The latest complete version that staff did not return for correction.
    The one place the export picks a version: the counted-version rule replaces this function.
    """
    usable = [r for r in rows if r.complete and review_state.get(r.id) != ReviewState.RETURNED.value]
    return usable[-1] if usable else None


def collect_export_input(plan: Plan, as_of: datetime) -> ExportInput:
    """Return the ExportInput of ``plan`` at ``as_of``: standings, the used versions' values, open issues.

    Five queries whatever the number of units. Raises ValueError when ``as_of`` is naive.
    """
    standings = plan_standings(plan, as_of)
    versions = db.session.execute(
        select(ReturnVersion.id, ReturnVersion.assignment_id, ReturnVersion.version,
               ReturnVersion.received_at, ReturnVersion.complete)
        .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
        .where(Assignment.plan_id == plan.id, ReturnVersion.received_at <= as_of)).all()
    review_state: dict[int, str] = {}
    for version_id, state in db.session.execute(
            select(Review.version_id, Review.state)
            .join(ReturnVersion, ReturnVersion.id == Review.version_id)
            .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
            .where(Assignment.plan_id == plan.id, Review.created_at <= as_of).order_by(Review.id)):
        review_state[version_id] = state  # ordered by id: the last decision wins

    by_assignment: dict[int, list[Any]] = defaultdict(list)
    for row in versions:
        by_assignment[row.assignment_id].append(row)
    latest_id: dict[int, int] = {}
    used: dict[int, Any] = {}
    for assignment_id, rows in by_assignment.items():
        rows.sort(key=lambda r: (r.received_at, r.version))
        latest_id[assignment_id] = rows[-1].id
        picked = export_version(rows, review_state)
        if picked is not None:
            used[assignment_id] = picked

    code_of = {s.assignment_id: s.unit_code for s in standings}
    unit_of_version = {row.id: code_of[row.assignment_id] for row in used.values()}
    values: list[ExportValue] = []
    if unit_of_version:
        for vid, sheet, indicator, period, breakdown, value, text in db.session.execute(
                select(ReturnValue.version_id, ReturnValue.sheet, ReturnValue.indicator, ReturnValue.period,
                       ReturnValue.breakdown, ReturnValue.value, ReturnValue.text)
                .where(ReturnValue.version_id.in_(list(unit_of_version))).order_by(ReturnValue.id)):
            values.append(ExportValue(unit_of_version[vid], sheet, indicator, period or "", breakdown or "",
                                      value, text))
    issues: list[ExportIssue] = []
    latest_number = {row.id: (code_of[row.assignment_id], row.version) for row in versions
                     if latest_id.get(row.assignment_id) == row.id}
    if latest_number:
        for vid, severity, sheet, cell, indicator, message in db.session.execute(
                select(ReturnIssue.version_id, ReturnIssue.severity, ReturnIssue.sheet, ReturnIssue.cell,
                       ReturnIssue.indicator, ReturnIssue.message)
                .where(ReturnIssue.version_id.in_(list(latest_number))).order_by(ReturnIssue.id)):
            unit_code, number = latest_number[vid]
            issues.append(ExportIssue(unit_code, number, severity, sheet, cell, indicator, message))
    issues.sort(key=lambda i: (i.unit_code, 0 if i.severity == "error" else 1))

    units = tuple(
        ExportUnit(
            code=s.unit_code, name=s.unit_name, form_code=s.form_code, status=s.standing.status,
            late=s.standing.late, days_late=s.standing.days_late, errors=s.standing.errors,
            warnings=s.standing.warnings, review=s.standing.review, review_reason=s.standing.review_reason,
            latest_version=s.standing.latest_version, latest_received_at=s.standing.latest_received_at,
            used_version=used[s.assignment_id].version if s.assignment_id in used else None,
            used_received_at=used[s.assignment_id].received_at if s.assignment_id in used else None)
        for s in standings)
    return ExportInput(plan.code, plan.title, plan.deadline, as_of, units, tuple(values), tuple(issues),
                       issuer=plan.issuer, plan_document=plan_document(plan.doc_number, plan.doc_date))
