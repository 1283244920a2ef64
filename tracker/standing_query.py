"""The standing of every unit of a plan, computed by the database in one statement.

``compliance.standing`` is the definition; this module says the same rules in SQL so that a national
plan (10,595 communes, 30,000 versions) is reduced to one row per unit, with its status already decided,
without a Python call per unit. tests/test_standing_sql.py checks that both agree on every case of the
compliance table and on a randomised plan, on SQLite and PostgreSQL.

What depends on ``as_of`` and the deadline alone (whether the deadline has passed, the days left, the
days late while nothing complete has arrived) is worked out once in Python and bound as constants;
what depends on a unit's history is worked out per row in SQL:

- the versions received by ``as_of``; among them the first receipt, the first complete receipt, and
  the latest (received last, ties broken by version number);
- each version's last review made by ``as_of``, and whether it counts (``counts_clause``,
  the SQL form of ``compliance.counts``); the counted version is the latest of those that count;
- ``complete``: a version counts;
- ``status`` and ``late`` as in compliance.py; ``late_from``: the first complete receipt when it came at
  or after the deadline (``days_late`` counts up to it).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    case,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.orm import aliased

from .compliance import ReviewState, Status
from .compliance import _ceil_days as ceil_days
from .extensions import db
from .models import UTCDateTime, Assignment, ReturnVersion, Review, Unit


@dataclass(frozen=True)
class Scope:
    """Which assignments of a plan to read: all, some units, the units under ``parent_id`` (its children and
    grandchildren: a province's districts and communes), a name or code, a status."""

    unit_ids: Sequence[int] | None = None
    parent_id: int | None = None
    search: str | None = None
    status: Status | None = None


def counts_clause(as_of: datetime, review_state: Any) -> Any:
    """Return the SQL form of ``compliance.counts`` (the counted-version rule) for a ``ReturnVersion`` row.

    ``review_state`` is the column holding that version's latest review state at ``as_of`` (NULL when
    none). The receipt bound (``received_at <= as_of``) is left to the caller's scope. Keep the two
    forms together: ``tests/test_counted_version.py`` checks they agree.
    """
    return and_(ReturnVersion.complete,
                or_(ReturnVersion.withdrawn_at.is_(None), ReturnVersion.withdrawn_at > as_of),
                or_(review_state.is_(None), review_state != ReviewState.RETURNED.value))


# Larger than any row id: rank * _ID_SPAN + id orders by rank and keeps the id recoverable.
_ID_SPAN = 2 ** 40


def _seen(plan_id: int, as_of: datetime, scope: Scope) -> Any:
    """Return a subquery with one row per assignment that has versions received by ``as_of``: the first
    receipt, the first complete receipt, the latest version (with its review) and the counted version."""
    # Each version's last review by as_of: the highest id made by then (a GROUP BY, which both planners
    # size right; a row_number() filter was guessed at a few rows and joined by a nested loop on PostgreSQL).
    last = (select(Review.version_id, func.max(Review.id).label("last_id")).where(Review.created_at <= as_of)
            .group_by(Review.version_id).subquery("last_review"))
    reviews = aliased(Review, name="reviewed")
    countable = case((counts_clause(as_of, reviews.state), 1), else_=0)
    by_unit = ReturnVersion.assignment_id
    newest_first = (ReturnVersion.received_at.desc(), ReturnVersion.version.desc())
    query = (select(ReturnVersion.id, by_unit.label("assignment_id"), ReturnVersion.version,
                    ReturnVersion.received_at, ReturnVersion.complete, ReturnVersion.errors,
                    ReturnVersion.warnings, reviews.state.label("review"), reviews.reason.label("reason"),
                    countable.label("countable"),
                    func.row_number().over(partition_by=by_unit, order_by=newest_first).label("rank"))
             .join(Assignment, Assignment.id == by_unit)
             .outerjoin(last, last.c.version_id == ReturnVersion.id)
             .outerjoin(reviews, reviews.id == last.c.last_id)
             .where(Assignment.plan_id == plan_id, ReturnVersion.received_at <= as_of))
    seen = _scoped(query, scope, join_unit=True).subquery("seen")
    # One row per assignment, picked out of the ranked rows with one window and one GROUP BY (each further
    # window, or joining the ranked rows twice, made SQLite sort or scan 30,000 rows again). The counted
    # version is the countable row of lowest rank: min(rank * 2**40 + id) finds it and carries its id.
    is_latest = seen.c.rank == 1

    def pick(column: Any, kind: Any = None) -> Any:
        picked = func.max(case((is_latest, column)))
        return type_coerce(picked, kind) if kind is not None else picked

    counted_key = func.min(case((seen.c.countable == 1, seen.c.rank * _ID_SPAN + seen.c.id)))
    received = type_coerce(seen.c.received_at, UTCDateTime())
    return (select(seen.c.assignment_id,
                   type_coerce(func.min(received), UTCDateTime()).label("first_at"),
                   type_coerce(func.min(case((seen.c.complete, received))), UTCDateTime()).label("first_complete_at"),
                   pick(seen.c.id).label("id"), pick(seen.c.version).label("version"),
                   pick(seen.c.received_at, UTCDateTime()).label("received_at"),
                   pick(case((seen.c.complete, 1), else_=0)).label("complete"),
                   pick(seen.c.errors).label("errors"), pick(seen.c.warnings).label("warnings"),
                   pick(seen.c.review).label("review"), pick(seen.c.reason).label("reason"),
                   (counted_key % _ID_SPAN).label("counted_id"))
            .group_by(seen.c.assignment_id).subquery("facts"))


def _scoped(query: Select[Any], scope: Scope, join_unit: bool) -> Select[Any]:
    if scope.unit_ids is not None:
        query = query.where(Assignment.unit_id.in_(list(scope.unit_ids)))
    if scope.parent_id is not None or scope.search:
        if join_unit:
            query = query.join(Unit, Unit.id == Assignment.unit_id)
        if scope.parent_id is not None:
            above = aliased(Unit, name="above")
            query = query.outerjoin(above, above.id == Unit.parent_id).where(
                or_(Unit.parent_id == scope.parent_id, above.parent_id == scope.parent_id))
        if scope.search:
            query = query.where(or_(Unit.code == scope.search.strip(), _name_matches(scope.search)))
    return query


def page_unit_ids(plan_id: int, scope: Scope, descending: bool, limit: int, offset: int) -> list[int]:
    """Return the unit ids of one page of the plan's units in ``scope`` in unit-code order (search and parent
    only: a status needs the standings). A cheap query over assignments and units: the page's standings are
    then computed for those units alone."""
    order = Unit.code.desc() if descending else Unit.code.asc()
    query = (select(Assignment.unit_id).join(Unit, Unit.id == Assignment.unit_id)
             .where(Assignment.plan_id == plan_id).order_by(order).limit(limit).offset(offset))
    return list(db.session.scalars(_scoped(query, Scope(None, scope.parent_id, scope.search), join_unit=False)))


def count_in_scope(plan_id: int, scope: Scope, unit_ids: Sequence[int] | None = None) -> int:
    """Return how many assignments of the plan are in ``scope`` (and among ``unit_ids`` when given)."""
    if unit_ids is not None:
        scope = Scope(unit_ids, scope.parent_id, scope.search, scope.status)
    query = select(func.count()).select_from(Assignment).where(Assignment.plan_id == plan_id)
    return int(db.session.scalar(_scoped(query, scope, join_unit=True)) or 0)


def _name_matches(text: str) -> Any:
    # Case-insensitive on both databases for Vietnamese letters too: SQLite's lower() folds ASCII only,
    # so names are matched on the NFC text as typed and as lower-cased by Python.
    import unicodedata

    needle = unicodedata.normalize("NFC", text.strip())
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    variants = {escaped, escaped.lower(), escaped[:1].upper() + escaped[1:].lower(), escaped.title()}
    return or_(*(Unit.name.like(f"%{v}%", escape="\\") for v in sorted(variants)))


def _text(status: Status) -> Any:
    # Inlined, not bound: the values are the enum's own lower-case words.
    return literal_column(f"'{status.value}'")


def standings_select(plan_id: int, deadline: datetime, as_of: datetime, scope: Scope = Scope()) -> Select[Any]:
    """Return the statement giving one row per assignment in scope, in unit-code order.

    Columns: assignment_id, unit_id, unit_code, unit_name, parent_id, form_code, exempt_reason, status,
    late, complete, first_at, latest_at, latest_version, latest_version_id, errors, warnings, review,
    review_reason, late_from, counted_version, counted_version_id, counted_at, draft_version.
    ``deadline`` and ``as_of`` must be aware.
    """
    passed = as_of >= deadline
    seen = _seen(plan_id, as_of, scope)
    latest = seen
    counted = aliased(ReturnVersion, name="counted")
    exempt = Assignment.form_code.is_(None)
    has_latest = latest.c.id.is_not(None)
    returned = latest.c.review == ReviewState.RETURNED.value
    complete = latest.c.counted_id.is_not(None)
    on_time = latest.c.first_complete_at < deadline
    status = case(
        (exempt, _text(Status.EXEMPT)),
        (~has_latest, _text(Status.OVERDUE if passed else Status.NOT_DUE)),
        (~complete, _text(Status.INCOMPLETE)),
        (on_time, _text(Status.ON_TIME)),
        else_=_text(Status.LATE))
    if passed:
        late_expr: Any = and_(~exempt, or_(latest.c.first_complete_at.is_(None),
                                           latest.c.first_complete_at >= deadline))
        late_from: Any = case((and_(~exempt, latest.c.first_complete_at >= deadline), latest.c.first_complete_at),
                              else_=null())
    else:
        late_expr, late_from = false(), null()
    query = (select(Assignment.id.label("assignment_id"), Unit.id.label("unit_id"), Unit.code.label("unit_code"),
                    Unit.name.label("unit_name"), Unit.parent_id.label("parent_id"), Assignment.form_code,
                    Assignment.exempt_reason, status.label("status"),
                    case((late_expr, true()), else_=false()).label("late"),
                    case((complete, true()), else_=false()).label("complete"),
                    latest.c.first_at, latest.c.received_at.label("latest_at"),
                    latest.c.version.label("latest_version"), latest.c.id.label("latest_version_id"),
                    func.coalesce(latest.c.errors, 0).label("errors"),
                    func.coalesce(latest.c.warnings, 0).label("warnings"), latest.c.review.label("review"),
                    case((returned, latest.c.reason), else_=null()).label("review_reason"),
                    type_coerce(late_from, UTCDateTime()).label("late_from"),
                    counted.version.label("counted_version"), latest.c.counted_id.label("counted_version_id"),
                    counted.received_at.label("counted_at"),
                    case((latest.c.complete == 0, latest.c.version), else_=null()).label("draft_version"))
             .join(Unit, Unit.id == Assignment.unit_id)
             .outerjoin(latest, latest.c.assignment_id == Assignment.id)
             .outerjoin(counted, counted.id == latest.c.counted_id)
             .where(Assignment.plan_id == plan_id))
    query = _scoped(query, scope, join_unit=False)
    if scope.status is not None:
        query = query.where(status == scope.status.value)
    return query.order_by(Unit.code)


@dataclass(frozen=True)
class Constants:
    """What depends on the deadline and ``as_of`` alone, the same for every unit."""

    passed: bool
    days_left: int | None  # for a required unit while the deadline has not passed
    days_late_now: int | None  # for a late unit with nothing complete yet (counted up to as_of)


def constants(deadline: datetime, as_of: datetime) -> Constants:
    """Return the as-of constants of compliance.standing for ``deadline`` and ``as_of``."""
    passed = as_of >= deadline
    return Constants(passed, None if passed else ceil_days(deadline - as_of),
                     max(1, ceil_days(as_of - deadline)) if passed else None)


def days_late(late: bool, late_from: datetime | None, deadline: datetime, fixed: Constants) -> int | None:
    """Return days_late of a row: up to its first complete receipt when that was late, else up to as_of."""
    if not late:
        return None
    if late_from is not None:
        return max(1, ceil_days(late_from - deadline))
    return fixed.days_late_now


# Most urgent first when sorting by status ascending (the dashboard's STATUS_RANK, in SQL).
_STATUS_ORDER = (Status.OVERDUE, Status.INCOMPLETE, Status.LATE, Status.NOT_DUE, Status.ON_TIME, Status.EXEMPT)
SORT_KEYS = ("unit", "form", "status", "first", "latest", "days", "errors", "warnings", "review")


def order_terms(query: Select[Any], column: str, descending: bool, deadline: datetime, as_of: datetime) -> list[Any]:
    """Return ORDER BY terms for the dashboard's sort ``column`` over ``standings_select``'s columns: rows
    without a value last in both directions, the unit code breaking ties (as dashboard.sort_rows does)."""
    c = {col.name: col for col in query.selected_columns}
    status_rank = case(*((c["status"] == _text(s), i) for i, s in enumerate(_STATUS_ORDER)))
    # How late (up to the first complete receipt, else up to as_of), after the units with days left.
    if as_of >= deadline:
        days = [case((c["late"] == true(), 1)), func.coalesce(c["late_from"], as_of)]
    else:
        days = [case((c["form_code"].is_not(None), 0))]
    keys: dict[str, list[Any]] = {
        "unit": [c["unit_code"]], "form": [c["form_code"]], "status": [status_rank],
        "first": [c["first_at"]], "latest": [c["latest_at"]], "days": days,
        "errors": [case((c["latest_version"].is_not(None), c["errors"]))],
        "warnings": [case((c["latest_version"].is_not(None), c["warnings"]))],
        "review": [c["review"], c["review_reason"]],
    }
    terms = [(key.desc() if descending else key.asc()).nulls_last() for key in keys[column]]
    return terms + [c["unit_code"].asc()]
