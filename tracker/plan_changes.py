"""The per-plan change counter (``Plan.changes``), bumped in the transaction of every write that can change a
plan's standings, so that a cache of them (tracker.standing_cache) is checked with one primary-key read.

What changes standings: a version (an upload or intake, a withdrawal), a review, a signed report, the plan
itself (its deadline, its "signed report required"), its assignments (added, dropped, made exempt, copied
from another plan) and the units (names, codes and parents: the roll-up groups by the units above the
plan's). The counter is bumped where those rows are written, not by each use case, so a new write path
cannot forget it:

- the ORM's unit of work (``db.session.add``, attribute edits, ``delete``): an ``after_flush`` listener
  attributes each row exactly (a version or signed report to its assignment's plan, a review to its
  version's, an assignment to its plan);
- bulk statements through the session (``db.session.execute(insert/update/delete(...))``): rows named
  by key in the parameters are attributed; a statement can name its plans with the execution option
  ``plan_ids`` (the withdrawal does); any other write to those tables bumps every plan (always correct,
  only less precise). A change to a unit bumps every plan.

A session that bumped a counter in its open transaction reads around the cache (``pending``): a rollback
would take the bump back while an entry filled from the uncommitted rows survived.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, false, or_, select, true, update
from sqlalchemy.orm import Session

from .models import Assignment, Plan, ReturnVersion, Review, SignedReport, Unit

_PENDING = "plan_changes_pending"
_SEEN = "plan_changes_seen"  # {plan id: counter} read in the open transaction
_WATCHED = {t.name for t in (Plan.__table__, Assignment.__table__, ReturnVersion.__table__, Review.__table__,
                             SignedReport.__table__, Unit.__table__)}


class _Touched:
    """The rows of one write, gathered before the one UPDATE of the counters."""

    def __init__(self) -> None:
        self.plan_ids: set[int] = set()
        self.assignment_ids: set[int] = set()
        self.version_ids: set[int] = set()
        self.everything = False

    def condition(self) -> Any:
        if self.everything:
            return true()
        plans = Plan.__table__.c
        terms = []
        if self.plan_ids:
            terms.append(plans.id.in_(sorted(self.plan_ids)))
        assignments = select(Assignment.plan_id)
        if self.assignment_ids:
            terms.append(plans.id.in_(assignments.where(Assignment.id.in_(sorted(self.assignment_ids)))))
        if self.version_ids:
            terms.append(plans.id.in_(assignments.where(Assignment.id.in_(
                select(ReturnVersion.assignment_id).where(ReturnVersion.id.in_(sorted(self.version_ids)))))))
        return or_(*terms) if terms else false()

    def __bool__(self) -> bool:
        return self.everything or bool(self.plan_ids or self.assignment_ids or self.version_ids)


def _bump(session: Session, touched: _Touched) -> None:
    if not touched:
        return
    plans = Plan.__table__
    # On the session's connection, so in its transaction, and past do_orm_execute (no recursion).
    session.connection().execute(update(plans).where(touched.condition()).values(changes=plans.c.changes + 1))
    session.info[_PENDING] = True
    session.info.pop(_SEEN, None)


def _gather_object(touched: _Touched, obj: Any) -> None:
    if isinstance(obj, Plan):
        ids, key = touched.plan_ids, obj.id
    elif isinstance(obj, Assignment):
        ids, key = touched.plan_ids, obj.plan_id
    elif isinstance(obj, (ReturnVersion, SignedReport)):
        ids, key = touched.assignment_ids, obj.assignment_id
    elif isinstance(obj, Review):
        ids, key = touched.version_ids, obj.version_id
    elif isinstance(obj, Unit):
        touched.everything = True
        return
    else:
        return
    if key is not None:
        ids.add(key)


def _after_flush(session: Session, _context: Any) -> None:
    touched = _Touched()
    for obj in session.new:
        if not isinstance(obj, Unit):  # a new unit is nobody's yet: its assignment says which plan
            _gather_object(touched, obj)
    for obj in session.dirty:
        if isinstance(obj, (Plan, Assignment, ReturnVersion, SignedReport, Review, Unit)) and session.is_modified(obj):
            _gather_object(touched, obj)
    for obj in session.deleted:
        _gather_object(touched, obj)
    _bump(session, touched)


# Which parameter names a bulk statement's rows carry, per table, and what they lead to.
_KEYS: dict[str, dict[str, str]] = {
    "plans": {"id": "plan_ids"},
    "assignments": {"plan_id": "plan_ids", "id": "assignment_ids"},
    "return_versions": {"assignment_id": "assignment_ids", "id": "version_ids"},
    "signed_reports": {"assignment_id": "assignment_ids"},
    "reviews": {"version_id": "version_ids"},
}


def _gather_rows(touched: _Touched, table: str, rows: Iterable[dict[str, Any]]) -> None:
    keys = _KEYS.get(table, {})
    for row in rows:
        found = [(keys[k], v) for k, v in row.items() if k in keys and v is not None]
        if not found:
            touched.everything = True
            return
        for target, value in found:
            getattr(touched, target).add(int(value))


def _do_orm_execute(state: Any) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table not in _WATCHED or (state.is_insert and table in ("plans", "units")):
        return  # a new plan or unit has nothing cached yet
    touched = _Touched()
    named = state.execution_options.get("plan_ids")
    if named is not None:
        touched.plan_ids.update(int(i) for i in named)
    elif table == "units":
        touched.everything = True
    else:
        params = state.parameters
        rows = [params] if isinstance(params, dict) else list(params or [])
        if rows:
            _gather_rows(touched, table, rows)
        else:
            touched.everything = True  # rows chosen by a WHERE clause: cannot tell which plans
    _bump(state.session, touched)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_SEEN, None)


def pending(session: Session) -> bool:
    """Return True when ``session`` bumped a plan's counter in its open transaction (not committed yet)."""
    return bool(session.info.get(_PENDING))


def current(session: Session, plan_id: int) -> int | None:
    """Return the plan's change counter as stored (None when the plan is gone), read once per transaction
    (a page asking for its roll-up, table and series reads it once); flushes pending writes first, so a
    write of this session shows as ``pending``."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    seen = session.info.setdefault(_SEEN, {})
    if plan_id not in seen:
        seen[plan_id] = session.scalar(select(Plan.changes).where(Plan.id == plan_id))
    return seen[plan_id]


def watch(sessions: Any) -> None:
    """Attach the listeners to ``sessions`` (``db.session``), once."""
    for name, listener in (("after_flush", _after_flush), ("do_orm_execute", _do_orm_execute),
                           ("after_transaction_end", _after_transaction_end)):
        if not event.contains(sessions, name, listener):
            event.listen(sessions, name, listener)
