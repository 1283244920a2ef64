"""The standings of a plan's units and the counted-version rule in SQL (the export's queries: export_query).

A fixed number of statements whatever the number of units, never one per unit: a national plan has
10,595 reporting communes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, type_coerce

from .compliance import ReviewState, Standing, Status, require_aware
from .extensions import db
from .models import (
    UTCDateTime,
    Assignment,
    Plan,
    ReturnVersion,
    Review,
    SignedReport,
)
from .signed_report import with_signed_report
from .standing_cache import cached, scope_key
from .standing_query import Scope, constants, counts_clause, days_late, order_terms, standings_select


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


def plan_standings(plan: Plan, as_of: datetime, unit_ids: list[int] | None = None,
                   scope: Any = None, limit: int | None = None, offset: int = 0,
                   sort: tuple[str, bool] | None = None) -> list[UnitStanding]:
    """Return each assigned unit's standing at ``as_of``, in unit-code order (optionally some units only,
    or those of a ``standing_query.Scope``: under a parent, matching a name or code, in a status; and
    optionally one page of ``limit`` rows from ``offset``, sorted by ``sort`` = (dashboard column, descending)).

    One statement whatever the number of units: the database decides each unit's status by the rules of
    ``compliance.standing`` (tracker.standing_query; tests/test_standing_sql.py checks that both agree),
    so no Python call per unit; Python only wraps the rows. The answer is kept per plan in this process
    until an event changes it (tracker.standing_cache). Raises ValueError when ``as_of`` is naive.
    """
    require_aware(as_of, "as_of")
    scope = _scope_of(unit_ids, scope)
    key = ("standings", scope_key(scope), limit, offset, sort)
    return cached(plan, as_of, key, lambda: _read_standings(plan, as_of, scope, limit, offset, sort),
                  unit_ids=scope.unit_ids, as_of_ordered=sort is not None and sort[0] == "days")


def _scope_of(unit_ids: list[int] | None, scope: Any) -> Any:

    scope = scope or Scope()
    if unit_ids is not None:
        scope = Scope(unit_ids=unit_ids, parent_id=scope.parent_id, search=scope.search, status=scope.status)
    return scope


# What the status API lists for one unit, by position in each row of ``status_rows``.
STATUS_COLUMNS = ("assignment_id", "unit_code", "unit_name", "form_code", "status", "late", "complete", "first_at",
                  "latest_at", "errors", "warnings", "review", "review_reason", "counted_version",
                  "counted_version_id")


def status_rows(plan: Plan, as_of: datetime, unit_ids: list[int] | None = None, scope: Any = None,
                limit: int | None = None, offset: int = 0) -> list[Any]:
    """Return one row per unit in scope (the values of STATUS_COLUMNS by position; ``late`` and ``complete``
    as the database gives truth values, so 0/1 on SQLite), in unit-code order, optionally one page.

    The rows of ``standings_select`` as fetched, narrowed to those columns: the status API serialises them
    without building a standing object per unit. Kept per plan like ``plan_standings``. A plan requiring
    the signed report takes its rows from ``plan_standings``, whose Python rule adds that requirement.
    Raises ValueError when ``as_of`` is naive.
    """
    require_aware(as_of, "as_of")
    scope = _scope_of(unit_ids, scope)
    key = ("status", scope_key(scope), limit, offset)
    return cached(plan, as_of, key, lambda: _read_status_rows(plan, as_of, scope, limit, offset),
                  unit_ids=scope.unit_ids)


def _read_status_rows(plan: Plan, as_of: datetime, scope: Any, limit: int | None, offset: int) -> list[Any]:

    if plan.signed_report_required:
        return [(i.assignment_id, i.unit_code, i.unit_name, i.form_code, i.standing.status.value, i.standing.late,
                 i.standing.complete, i.standing.first_received_at, i.standing.latest_received_at, i.standing.errors,
                 i.standing.warnings, None if i.standing.review is None else i.standing.review.value,
                 i.standing.review_reason, i.standing.counted_version, i.counted_version_id)
                for i in _read_standings(plan, as_of, scope, limit, offset, None)]
    query = standings_select(plan.id, plan.deadline, as_of, scope)
    by_name = {c.name: c for c in query.selected_columns}
    query = query.with_only_columns(*(by_name[name] for name in STATUS_COLUMNS), maintain_column_froms=True)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    # On the session's connection (its transaction): Core rows, without the ORM's loading step. Kept as plain
    # tuples of plain values, which the garbage collector stops tracking: a cached national list of Row
    # objects was 10,595 more objects for every full collection to walk, in every later request.
    return [tuple(row) for row in db.session.connection().execute(query)]


def _read_standings(plan: Plan, as_of: datetime, scope: Any, limit: int | None, offset: int,
                    sort: tuple[str, bool] | None) -> list[UnitStanding]:

    deadline = plan.deadline
    query = standings_select(plan.id, deadline, as_of, scope)
    if sort is not None:
        query = query.order_by(None).order_by(*order_terms(query, sort[0], sort[1], deadline, as_of))
    if limit is not None:
        query = query.limit(limit).offset(offset)
    fixed = constants(deadline, as_of)
    statuses = {s.value: s for s in Status}
    reviews = {r.value: r for r in ReviewState}
    result = []
    append = result.append
    # Unpacked by position (the order of standings_select's columns): attribute access on 10,595 rows
    # of twenty columns was a third of the time. Core rows on the session's connection (its transaction):
    # the ORM's loading step cost another tenth.
    for (assignment_id, unit_id, unit_code, unit_name, _parent_id, form_code, exempt_reason, status, late,
         complete, first_at, latest_at, latest_version, latest_version_id, errors, warnings, review,
         review_reason, late_from, counted_version, counted_version_id, counted_at,
         draft_version) in db.session.connection().execute(query):
        late = bool(late)
        append(UnitStanding(
            assignment_id, unit_id, unit_code, unit_name, form_code, exempt_reason,
            Standing(statuses[status], late, bool(complete), first_at, latest_at, latest_version, errors,
                     warnings, reviews[review] if review else None, review_reason,
                     days_late(late, late_from, deadline, fixed) if late else None,
                     None if form_code is None else fixed.days_left, counted_version=counted_version,
                     counted_received_at=counted_at, draft_version=draft_version),
            counted_version_id, latest_version_id))
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
