"""Counts of a large plan rolled up by the level above its units, and a page of its unit table, in SQL.

A national plan has 10,595 communes: nobody reads 10,595 rows. The dashboard shows, for the part of the
tree chosen (the whole plan, a province, a district), the counts per status of the units under each
unit one level down (provinces, then their districts), and one page of the units themselves, sorted
and filtered by the database. Plain values in, plain results out; ``as_of`` is a parameter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased

from .compliance import Status, Summary
from .extensions import db
from .models import Plan, Unit
from .standing_cache import cached, scope_key
from .standing_query import Scope, standings_select

# Above this many assigned units the dashboard rolls counts up and pages its table (the 2024 plan's ten
# districts keep their one table).
ROLLUP_THRESHOLD = 200
PER_PAGE = 50


@dataclass(frozen=True)
class Group:
    """One unit of the level shown, with the counts of the plan's units under it (or itself)."""

    code: str
    name: str
    summary: Summary
    drillable: bool  # it has the plan's units below it, so a link shows them


@dataclass(frozen=True)
class Rollup:
    summary: Summary
    groups: tuple[Group, ...] = field(default_factory=tuple)


def summary_of(counts: dict[Status, int], late: int) -> Summary:
    """Return the Summary that ``compliance.summarize`` gives for units with these counts and ``late``."""
    full = {s: counts.get(s, 0) for s in Status}
    total = sum(full.values())
    required = total - full[Status.EXEMPT]
    complete = full[Status.ON_TIME] + full[Status.LATE]
    return Summary(counts=MappingProxyType(full), total=total, required=required, complete=complete, late=late,
                   progress=complete / required if required else 0.0)


def rollup(plan: Plan, as_of: datetime, scope: Scope) -> Rollup:
    """Return the counts in ``scope`` and, per unit one level below ``scope.parent_id`` (or below the top when
    None), the counts of the assigned units under it. Two statements, kept per plan in this process until
    an event changes them (tracker.standing_cache)."""
    return cached(plan, as_of, ("rollup", scope_key(scope)), lambda: _read_rollup(plan, as_of, scope),
                  unit_ids=scope.unit_ids)


def _read_rollup(plan: Plan, as_of: datetime, scope: Scope) -> Rollup:
    base = standings_select(plan.id, plan.deadline, as_of, scope).order_by(None).subquery("standing")
    above = aliased(Unit, name="above_unit")
    if scope.parent_id is None:
        key = func.coalesce(above.parent_id, base.c.parent_id, base.c.unit_id)
    else:
        key = case((base.c.parent_id == scope.parent_id, base.c.unit_id), else_=base.c.parent_id)
    rows = db.session.execute(
        select(key.label("group_id"), base.c.status, func.count().label("units"),
               func.sum(case((base.c.late, 1), else_=0)).label("late"),
               func.max(case((key == base.c.unit_id, 0), else_=1)).label("below"))
        .select_from(base).outerjoin(above, above.id == base.c.parent_id)
        .group_by(key, base.c.status)).all()
    per_group: dict[int, dict[Status, int]] = {}
    late_of: dict[int, int] = {}
    below: dict[int, bool] = {}
    for group_id, status, units, late, under in rows:
        per_group.setdefault(group_id, {})[Status(status)] = int(units)
        late_of[group_id] = late_of.get(group_id, 0) + int(late or 0)
        below[group_id] = below.get(group_id, False) or bool(under)
    totals: dict[Status, int] = {}
    for counts in per_group.values():
        for status, n in counts.items():
            totals[status] = totals.get(status, 0) + n
    summary = summary_of(totals, sum(late_of.values()))
    names = {uid: (code, name) for uid, code, name in db.session.execute(
        select(Unit.id, Unit.code, Unit.name).where(Unit.id.in_(list(per_group))))} if per_group else {}
    groups = tuple(sorted((Group(names[g][0], names[g][1], summary_of(per_group[g], late_of[g]), below[g])
                           for g in per_group if g in names), key=lambda g: g.code))
    return Rollup(summary, groups)


def count_filtered(plan: Plan, as_of: datetime, scope: Scope) -> int:
    """Return how many units of ``scope`` (search and status included) there are at ``as_of`` (kept as
    ``rollup`` is)."""
    def read() -> int:
        base = standings_select(plan.id, plan.deadline, as_of, scope).order_by(None).subquery("standing")
        return int(db.session.scalar(select(func.count()).select_from(base)) or 0)

    return cached(plan, as_of, ("count", scope_key(scope)), read, unit_ids=scope.unit_ids)


def ancestors(unit_id: int | None) -> list[Unit]:
    """Return the unit ``unit_id`` and the units above it, top first (empty for None)."""
    chain: list[Unit] = []
    while unit_id is not None and len(chain) < 6:
        unit = db.session.get(Unit, unit_id)
        if unit is None:
            break
        chain.append(unit)
        unit_id = unit.parent_id
    return list(reversed(chain))
