"""The one set of queries that feeds the compliance rules for a whole plan.

Three queries whatever the number of units (assignments, versions, reviews), never one per unit: a
national plan has 10,595 reporting communes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, type_coerce

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
    SignedReport,
    Unit,
)
from .signed_report import with_signed_report


@dataclass(frozen=True)
class UnitStanding:
    assignment_id: int
    unit_id: int
    unit_code: str
    unit_name: str
    form_code: str | None
    exempt_reason: str | None
    standing: Standing
    counted_version_id: int | None = None  # the row ids of standing.counted_version and .latest_version
    latest_version_id: int | None = None


def counts_clause(as_of: datetime, review_state: Any) -> Any:
    """Return the SQL form of ``compliance.counts`` (the counted-version rule) for a ``ReturnVersion`` row.

    ``review_state`` is the column holding that version's latest review state at ``as_of`` (NULL when
    none). The receipt bound (``received_at <= as_of``) is left to the caller's scope. Keep the two
    forms together: ``tests/test_counted_version.py`` checks they agree.
    """
    return and_(ReturnVersion.complete,
                or_(ReturnVersion.withdrawn_at.is_(None), ReturnVersion.withdrawn_at > as_of),
                or_(review_state.is_(None), review_state != ReviewState.RETURNED.value))


def _latest_reviews(plan_id: int, as_of: datetime) -> Any:
    """Return a subquery of each reviewed version's latest review at ``as_of`` (rank 1 by id)."""
    return (select(Review.version_id, Review.state, Review.reason, Review.created_at,
                   func.row_number().over(partition_by=Review.version_id, order_by=Review.id.desc()).label("rn"))
            .join(ReturnVersion, ReturnVersion.id == Review.version_id)
            .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
            .where(Assignment.plan_id == plan_id, Review.created_at <= as_of).subquery())


def key_versions(plan_id: int, as_of: datetime, unit_ids: list[int] | None = None) -> Any:
    """Return a subquery of the versions the status rules need per assignment, received by ``as_of``.

    At most four rows per assignment, each flagged: the first received (``is_first``), the first
    complete (``is_first_complete``), the latest (``is_latest``) and the counted version
    (``is_counted``, by ``counts_clause``), with the latest review at ``as_of`` and the withdrawal
    time. Columns: id, assignment_id, version, received_at, complete, errors, warnings, withdrawn_at,
    review_state, review_reason, reviewed_at and the four flags.
    """
    reviews = _latest_reviews(plan_id, as_of)
    scope = [Assignment.plan_id == plan_id, ReturnVersion.received_at <= as_of]
    if unit_ids is not None:
        scope.append(Assignment.unit_id.in_(unit_ids))
    countable = counts_clause(as_of, reviews.c.state)
    newest_first = (ReturnVersion.received_at.desc(), ReturnVersion.version.desc())
    oldest_first = (ReturnVersion.received_at.asc(), ReturnVersion.version.asc())
    aid = ReturnVersion.assignment_id
    ranked = (select(ReturnVersion.id, aid.label("assignment_id"), ReturnVersion.version, ReturnVersion.received_at,
                     ReturnVersion.complete, ReturnVersion.errors, ReturnVersion.warnings,
                     ReturnVersion.withdrawn_at, reviews.c.state.label("review_state"),
                     reviews.c.reason.label("review_reason"), reviews.c.created_at.label("reviewed_at"),
                     case((countable, 1), else_=0).label("countable"),
                     func.row_number().over(partition_by=aid, order_by=newest_first).label("latest_rank"),
                     func.row_number().over(partition_by=aid, order_by=oldest_first).label("first_rank"),
                     func.row_number().over(partition_by=(aid, ReturnVersion.complete),
                                            order_by=oldest_first).label("complete_rank"),
                     func.row_number().over(partition_by=(aid, case((countable, 1), else_=0)),
                                            order_by=newest_first).label("counted_rank"))
              .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
              .outerjoin(reviews, and_(reviews.c.version_id == ReturnVersion.id, reviews.c.rn == 1))
              .where(*scope).subquery())
    is_latest = ranked.c.latest_rank == 1
    is_first = ranked.c.first_rank == 1
    is_first_complete = and_(ranked.c.complete, ranked.c.complete_rank == 1)
    is_counted = and_(ranked.c.countable == 1, ranked.c.counted_rank == 1)
    return (select(*(c for c in ranked.c if not c.name.endswith("_rank") and c.name != "countable"),
                   is_latest.label("is_latest"), is_first.label("is_first"),
                   is_first_complete.label("is_first_complete"), is_counted.label("is_counted"))
            .where(or_(is_latest, is_first, is_first_complete, is_counted)).subquery())


def counted_versions(plan_id: int, as_of: datetime, unit_ids: list[int] | None = None) -> Any:
    """Return a select of (assignment_id, version_id, version) of every assignment's counted version at
    ``as_of`` (phiên bản được tính; see ``compliance.counts``); assignments with none have no row.
    """
    key = key_versions(plan_id, as_of, unit_ids)
    return (select(key.c.assignment_id, key.c.id.label("version_id"), key.c.version)
            .where(key.c.is_counted))


def plan_standings(plan: Plan, as_of: datetime, unit_ids: list[int] | None = None) -> list[UnitStanding]:
    """Return each assigned unit's standing at ``as_of``, in unit-code order (optionally some units only).

    The status rules look at four versions of a unit at most: the first received, the first complete,
    the counted one and the latest (each with its review and withdrawal). The database reduces every
    unit's history to those (``key_versions``), so a national plan with tens of thousands of versions
    hands the rules at most four facts per unit. Two queries whatever the number of units.
    """
    query = (select(Assignment.id, Unit.id, Unit.code, Unit.name, Assignment.form_code, Assignment.exempt_reason)
             .join(Unit, Unit.id == Assignment.unit_id).where(Assignment.plan_id == plan.id).order_by(Unit.code))
    if unit_ids is not None:
        query = query.where(Assignment.unit_id.in_(unit_ids))
    assignments = db.session.execute(query).all()

    key = key_versions(plan.id, as_of, unit_ids)
    facts: dict[int, list[VersionFacts]] = defaultdict(list)
    ids: dict[tuple[int, int], int] = {}
    for row in db.session.execute(select(key.c.id, key.c.assignment_id, key.c.version,
                                         type_coerce(key.c.received_at, UTCDateTime()), key.c.complete,
                                         key.c.errors, key.c.warnings,
                                         type_coerce(key.c.withdrawn_at, UTCDateTime()), key.c.review_state,
                                         key.c.review_reason, type_coerce(key.c.reviewed_at, UTCDateTime()))):
        vid, aid, number, received_at, complete, errors, warnings, withdrawn_at, state, reason, reviewed_at = row
        ids[(aid, number)] = vid
        facts[aid].append(VersionFacts(
            version=number, received_at=received_at, complete=bool(complete), errors=errors, warnings=warnings,
            review=ReviewState(state) if state else None, review_reason=reason if state else None,
            reviewed_at=reviewed_at if state else None, withdrawn_at=withdrawn_at))
    result = []
    for aid, uid, code, name, form_code, reason in assignments:
        st = standing(facts.get(aid, ()), plan.deadline, as_of, exempt=form_code is None)
        result.append(UnitStanding(aid, uid, code, name, form_code, reason, st,
                                   ids.get((aid, st.counted_version or 0)), ids.get((aid, st.latest_version or 0))))
    return _require_signed_reports(plan, as_of, result) if plan.signed_report_required else result


def _require_signed_reports(plan: Plan, as_of: datetime, items: list[UnitStanding]) -> list[UnitStanding]:
    """Apply the plan's "signed report required" setting: one query for every unit's first signed report."""
    first_signed = dict(db.session.execute(
        select(SignedReport.assignment_id, type_coerce(func.min(SignedReport.received_at), UTCDateTime()))
        .join(Assignment, Assignment.id == SignedReport.assignment_id)
        .where(Assignment.plan_id == plan.id, SignedReport.received_at <= as_of)
        .group_by(SignedReport.assignment_id)).all())
    return [replace(item, standing=with_signed_report(item.standing, first_signed.get(item.assignment_id),
                                                      plan.deadline, as_of)) for item in items]


def _cover_facts(cover: dict[str, Any] | None) -> dict[str, str]:
    cover = cover or {}
    signer = " ".join(str(cover.get(key) or "") for key in ("signer_title", "signer_name")).strip()
    return {"report_number": str(cover.get("report_number") or ""), "report_date": str(cover.get("report_date") or ""),
            "signer": signer}


def collect_export_input(plan: Plan, as_of: datetime) -> ExportInput:
    """Return the ExportInput of ``plan`` at ``as_of``: standings, the used versions' values, open issues.

    Five queries whatever the number of units. Raises ValueError when ``as_of`` is naive.
    """
    standings = plan_standings(plan, as_of)
    # The export's numbers are the counted versions' (phiên bản được tính), the same the status shows.
    unit_of_version = {s.counted_version_id: s.unit_code for s in standings if s.counted_version_id is not None}
    covers: dict[int, Any] = {}
    if unit_of_version:
        covers = dict(db.session.execute(select(ReturnVersion.id, ReturnVersion.cover)
                                         .where(ReturnVersion.id.in_(list(unit_of_version)))).all())
    values: list[ExportValue] = []
    if unit_of_version:
        for vid, sheet, indicator, period, breakdown, value, text in db.session.execute(
                select(ReturnValue.version_id, ReturnValue.sheet, ReturnValue.indicator, ReturnValue.period,
                       ReturnValue.breakdown, ReturnValue.value, ReturnValue.text)
                .where(ReturnValue.version_id.in_(list(unit_of_version))).order_by(ReturnValue.id)):
            values.append(ExportValue(unit_of_version[vid], sheet, indicator, period or "", breakdown or "",
                                      value, text))
    issues: list[ExportIssue] = []
    latest_number = {s.latest_version_id: (s.unit_code, s.standing.latest_version) for s in standings
                     if s.latest_version_id is not None}
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
            used_version=s.standing.counted_version, used_received_at=s.standing.counted_received_at,
            **_cover_facts(covers.get(s.counted_version_id or 0)))
        for s in standings)
    return ExportInput(plan.code, plan.title, plan.deadline, as_of, units, tuple(values), tuple(issues),
                       issuer=plan.issuer, plan_document=plan_document(plan.doc_number, plan.doc_date,
                                                                               plan.doc_date_text))
