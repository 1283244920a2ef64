"""A plan's standings, roll-ups, counts and outlier flags kept in this process while nothing they come from
has changed.

The value is always computed by the same code as without the cache (``standings.plan_standings``,
``rollup.rollup``, ``rollup.count_filtered``); the cache only decides when a value computed at one
instant may be given for another. An entry computed at ``computed_at`` is given for ``as_of`` when:

- the plan's change counter (tracker.plan_changes: every upload, review, withdrawal, signed report, edit
  of the plan, of its assignments or of the units bumps it in its own transaction) is the one read
  before the value was computed;
- no event of the plan lies between the two instants: every receipt, review, withdrawal and signed
  report is on the same side of both, so the rules of compliance.py see the same facts (the entry
  reads, the first time it is asked for another instant, the last event at or before ``computed_at``
  and the first after it; past the plan's latest event, as the live dashboard is, that is any later
  instant);
- ``as_of`` gives the same as-of constants (``standing_query.constants``: whether the deadline has
  passed, the days left, the days late while nothing complete arrived), which change at the deadline
  and every 24 hours from it.

A value ordered by ``as_of`` itself (the dashboard's sort by days late) is not reused at the instant of
the last event: a unit late from that instant would tie with the units still missing.

One cache per worker process, bounded by rows held; nothing to run beside the app.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import case, func, select, type_coerce, union_all

from . import plan_changes
from .extensions import db
from .models import UTCDateTime, Assignment, Plan, ReturnVersion, Review, SignedReport
from .standing_query import Constants, constants

T = TypeVar("T")

# About six national plans' full lists (10,595 rows each) per worker, or every provincial plan many times.
CACHED_ROWS = 60_000
CACHED_ENTRIES = 512
# Entries kept for one value at different instants: the live view and a few historical ones asked in
# turn (the dashboard "now" and "at the deadline"), which would otherwise push each other out.
INSTANTS_PER_VALUE = 4
enabled = True  # tests and benches turn it off to compare with, or time, the uncached path


@dataclass(frozen=True)
class _Entry:
    changes: tuple[int, Hashable]
    computed_at: datetime
    fixed: Constants | None
    as_of_ordered: bool
    value: Any
    weight: int
    unit_ids: tuple[int, ...] | None
    more_events: Any
    # (last event at or before computed_at, first after), read when the entry is first asked for another
    # instant: a value only ever asked at its own instant (a historical view) costs no extra query.
    window: tuple[datetime | None, datetime | None] | None = None
    serial: int = 0  # the order entries were stored in: the oldest of a value's instants goes first


_entries: OrderedDict[tuple[int, Hashable, int], _Entry] = OrderedDict()
_serial = 0
_held = 0
_lock = threading.Lock()
stats = {"hits": 0, "misses": 0}  # read by tests and the bench, never by the app


def clear() -> None:
    """Forget every entry (a cold cache)."""
    global _held
    with _lock:
        _entries.clear()
        _held = 0


def _within(entry: _Entry, as_of: datetime) -> bool:
    assert entry.window is not None
    last_event, next_event = entry.window
    if next_event is not None and as_of >= next_event:
        return False
    if last_event is None:
        return True
    return as_of > last_event if entry.as_of_ordered else as_of >= last_event


def cached(plan: Plan, as_of: datetime, key: Hashable, compute: Callable[[], T], *,
           unit_ids: Sequence[int] | None = None, as_of_ordered: bool = False,
           stamp: Hashable = None, more_events: Any = None, by_constants: bool = True) -> T:
    """Return ``compute()`` for ``plan`` at ``as_of``, or the value an earlier call computed when it still holds
    (see the module docstring). ``key`` names what is computed (the call's arguments but ``as_of``);
    ``unit_ids``, when the value covers those units only, narrows the events that end its validity.
    A value that also depends on rows the counter does not follow gives a ``stamp`` of them (compared
    as the counter is) and ``more_events``, a select of their instants labelled ``at``. A value that
    does not read the as-of constants (the day series) passes ``by_constants=False``.
    Lists come back as new lists, so a caller sorting its copy leaves the entry alone.
    """
    session = db.session
    changes = plan_changes.current(session, plan.id)  # flushes first, so a pending write shows below
    if not enabled or changes is None or plan_changes.pending(session):
        return compute()
    changes_and_stamp = (changes, stamp)
    fixed = constants(plan.deadline, as_of) if by_constants else None
    slots = [(plan.id, key, n) for n in range(INSTANTS_PER_VALUE)]
    with _lock:
        found = [(slot, _entries.get(slot)) for slot in slots]
        for slot, entry in found:
            if entry is not None:
                _entries.move_to_end(slot)
    for slot, entry in found:
        if entry is None or entry.changes != changes_and_stamp or entry.fixed != fixed:
            continue
        if as_of != entry.computed_at and entry.window is None:
            # The counter is unchanged, so the events are those the value was computed from.
            entry = replace(entry, window=_events_around(plan.id, entry.computed_at, entry.unit_ids,
                                                         entry.more_events))
            _store(slot, entry)
        if as_of == entry.computed_at or _within(entry, as_of):
            stats["hits"] += 1
            return _copy(entry.value)
    stats["misses"] += 1
    value = compute()
    stored = tuple(value) if isinstance(value, list) else value
    weight = len(stored) if isinstance(stored, tuple) else 1
    slot, serial = _place(found, changes_and_stamp)
    _store(slot, _Entry(changes_and_stamp, as_of, fixed, as_of_ordered, stored, max(1, weight),
                        None if unit_ids is None else tuple(unit_ids), more_events, serial=serial))
    return value


def _place(found: list[tuple[tuple[int, Hashable, int], _Entry | None]], changes: tuple[int, Hashable]
           ) -> tuple[tuple[int, Hashable, int], int]:
    """Return where a value's new entry goes (a free place, else one computed before the last change, else
    the oldest stored) and its serial."""
    global _serial

    def rank(pair: tuple[Any, _Entry | None]) -> tuple[bool, bool, int]:
        entry = pair[1]
        return (entry is not None, entry is not None and entry.changes == changes, entry.serial if entry else 0)

    with _lock:
        _serial += 1
        return min(found, key=rank)[0], _serial


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _store(slot: tuple[int, Hashable, int], entry: _Entry) -> None:
    global _held
    with _lock:
        old = _entries.pop(slot, None)
        if old is not None:
            _held -= old.weight
        if entry.weight > CACHED_ROWS:
            return
        _entries[slot] = entry
        _held += entry.weight
        while _held > CACHED_ROWS or len(_entries) > CACHED_ENTRIES:
            _, dropped = _entries.popitem(last=False)
            _held -= dropped.weight


def _events_around(plan_id: int, as_of: datetime, unit_ids: Sequence[int] | None, more: Any = None
                   ) -> tuple[datetime | None, datetime | None]:
    """Return (the plan's last event at or before ``as_of``, its first event after), one statement.

    Events: each version's receipt and withdrawal, each review, each signed report's receipt: every
    instant compliance.py compares with ``as_of``.
    """
    parts = _event_selects(plan_id, unit_ids)
    times = union_all(*parts, *([more] if more is not None else [])).subquery("events")
    at = times.c.at
    last, following = db.session.execute(select(
        type_coerce(func.max(case((at <= type_coerce(as_of, UTCDateTime()), at))), UTCDateTime()),
        type_coerce(func.min(case((at > type_coerce(as_of, UTCDateTime()), at))), UTCDateTime()))).one()
    return last, following


def _event_selects(plan_id: int, unit_ids: Sequence[int] | None = None) -> list[Any]:
    scope = [Assignment.plan_id == plan_id]
    if unit_ids is not None:
        scope.append(Assignment.unit_id.in_(list(unit_ids)))
    versions = ReturnVersion.assignment_id == Assignment.id
    return [
        select(ReturnVersion.received_at.label("at")).join(Assignment, versions).where(*scope),
        select(ReturnVersion.withdrawn_at).join(Assignment, versions)
        .where(*scope, ReturnVersion.withdrawn_at.is_not(None)),
        select(Review.created_at).join(ReturnVersion, ReturnVersion.id == Review.version_id)
        .join(Assignment, versions).where(*scope),
        select(SignedReport.received_at).join(Assignment, Assignment.id == SignedReport.assignment_id).where(*scope),
    ]


def plan_events(plan_id: int) -> Any:
    """Return a select of every event instant of another plan (labelled ``at``), for a value that also reads
    that plan (``more_events``): the outlier flags read the plan a plan was copied from."""
    events = union_all(*_event_selects(plan_id)).subquery("other_events")
    return select(events.c.at)


def scope_key(scope: Any) -> tuple[Any, ...]:
    """Return a hashable key for a ``standing_query.Scope`` (its unit ids may be a list)."""
    ids = None if scope.unit_ids is None else tuple(scope.unit_ids)
    return (ids, scope.parent_id, scope.search, scope.status)
