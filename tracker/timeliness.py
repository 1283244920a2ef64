"""Pure day-by-day series of a plan: units with a first receipt, units complete, units complete on time,
and reminders sent, from the first event to ``as_of`` (the "reporting rate" and "reporting rate on
time" that DHIS2 users read).

Plain values in (each unit's receipts and reviews, the deadline, the reminder instants, ``as_of``),
plain values out; no clock, no database. The counts on a day are those at the end of that day (or at
``as_of`` on its own day), under the same rules as ``compliance.standing``:

- ``received``: required units with at least one version received;
- ``complete``: required units with a counted version (``compliance.counts``: complete, not returned
  for correction by its latest review, not withdrawn), so the curve dips when staff return a
  version or the unit withdraws one, and rises again with the correction;
- ``on_time``: required units whose first complete version was received before the deadline;
- ``reminders_sent``: reminder emails sent that day (not cumulative).

So on the day of ``as_of`` the counts equal those of the status API at ``as_of``.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .compliance import ReviewState, require_aware
from .timeutil import local

MAX_DAYS = 366
# Days shown before the deadline even when nothing happened yet: the run-up is part of the picture.
LEAD_DAYS = 14
# Days shown after the last event, so a finished plan does not draw two flat years up to today.
TAIL_DAYS = 7


@dataclass(frozen=True)
class Receipt:
    received_at: datetime
    version: int
    complete: bool
    withdrawn_at: datetime | None = None


@dataclass(frozen=True)
class ReviewEvent:
    created_at: datetime
    version: int
    state: str  # ReviewState value


@dataclass(frozen=True)
class UnitEvents:
    """What happened to one unit's return: its versions and the reviews of them."""

    exempt: bool
    receipts: tuple[Receipt, ...] = ()
    reviews: tuple[ReviewEvent, ...] = ()


@dataclass(frozen=True)
class DayPoint:
    date: date
    received: int
    complete: int
    on_time: int
    reminders_sent: int


@dataclass(frozen=True)
class Timeliness:
    """The series and the figures read off its last day."""

    days: tuple[DayPoint, ...]
    required: int
    last_on_time_day: date  # the deadline's last on-time calendar day (Vietnam)
    as_of: datetime

    @property
    def last(self) -> DayPoint:
        return self.days[-1]

    @property
    def reporting_rate(self) -> float:
        """Share of required units complete at ``as_of`` (0.0 when nobody is required)."""
        return self.last.complete / self.required if self.required else 0.0

    @property
    def on_time_rate(self) -> float:
        """Share of required units whose first complete return came before the deadline."""
        return self.last.on_time / self.required if self.required else 0.0

    @property
    def reminder_days(self) -> tuple[DayPoint, ...]:
        return tuple(d for d in self.days if d.reminders_sent)


def _changes(unit: UnitEvents, as_of: datetime) -> tuple[datetime | None, datetime | None, list[tuple[datetime, bool]]]:
    """Return (first receipt, first complete receipt, [(instant, has a counted version after it)]) up to
    ``as_of``. A version counts from its receipt while complete, stops at a return (its latest review
    decides: a later acceptance counts it again) and for good at its withdrawal.
    """
    events: list[tuple[datetime, int, int, int, str]] = []  # (at, order, version, tie, what)
    for r in unit.receipts:
        if require_aware(r.received_at, "received_at") <= as_of:
            events.append((r.received_at, 0, r.version, 0, "complete" if r.complete else "draft"))
            if r.withdrawn_at is not None and require_aware(r.withdrawn_at, "withdrawn_at") <= as_of:
                events.append((r.withdrawn_at, 2, r.version, 0, "withdrawn"))
    for i, v in enumerate(unit.reviews):
        if require_aware(v.created_at, "created_at") <= as_of:
            events.append((v.created_at, 1, v.version, i, v.state))
    events.sort(key=lambda e: e[:4])
    first = first_complete = None
    complete: dict[int, bool] = {}
    returned: dict[int, bool] = {}
    withdrawn: set[int] = set()
    state = False
    changes: list[tuple[datetime, bool]] = []
    for at, order, version, _, what in events:
        if order == 0:
            complete[version] = what == "complete"
            first = first or at
            if what == "complete" and first_complete is None:
                first_complete = at
        elif order == 1:
            returned[version] = what == ReviewState.RETURNED.value
        else:
            withdrawn.add(version)
        now = any(ok and not returned.get(n, False) and n not in withdrawn for n, ok in complete.items())
        if now != state:
            changes.append((at, now))
            state = now
    return first, first_complete, changes


@dataclass(frozen=True)
class SeriesFacts:
    """What the series is drawn from, the same for every ``as_of`` at or after the plan's latest event
    (so it can be kept per plan): per-day deltas, sorted, and the days on which something happened."""

    required: int
    received_days: tuple[date, ...]
    on_time_days: tuple[date, ...]
    complete_moves: tuple[tuple[date, int], ...]
    event_days: tuple[date, ...]
    sent_days: tuple[date, ...]


def series_facts(units: Sequence[UnitEvents], deadline: datetime, as_of: datetime,
                 reminders: Sequence[datetime] = ()) -> SeriesFacts:
    """Return the facts of ``units`` up to ``as_of``. Raises ValueError on a naive datetime."""
    require_aware(deadline, "deadline")
    require_aware(as_of, "as_of")
    deltas_received: list[date] = []
    deltas_on_time: list[date] = []
    complete_moves: list[tuple[date, int]] = []
    required = 0
    event_days: list[date] = []
    for unit in units:
        if unit.exempt:
            continue
        required += 1
        first, first_complete, changes = _changes(unit, as_of)
        if first is not None:
            deltas_received.append(local(first).date())
        if first_complete is not None and first_complete < deadline:
            deltas_on_time.append(local(first_complete).date())
        for at, now in changes:
            complete_moves.append((local(at).date(), 1 if now else -1))
        event_days.extend(local(r.received_at).date() for r in unit.receipts if r.received_at <= as_of)
        event_days.extend(local(at).date() for at, _ in changes)
    sent_days = sorted(local(require_aware(t, "reminder")).date() for t in reminders if t <= as_of)
    event_days.extend(sent_days)
    return SeriesFacts(required, tuple(sorted(deltas_received)), tuple(sorted(deltas_on_time)),
                       tuple(sorted(complete_moves)), tuple(event_days), tuple(sent_days))


def series(units: Sequence[UnitEvents], deadline: datetime, as_of: datetime,
           reminders: Sequence[datetime] = ()) -> Timeliness:
    """Return the day-by-day Timeliness of ``units`` up to ``as_of``.

    The range runs from the earliest of (first event, deadline minus LEAD_DAYS, ``as_of``) to the day
    of ``as_of``, cut TAIL_DAYS after the last event when ``as_of`` is much later, and to at most
    MAX_DAYS days. Raises ValueError on a naive datetime.
    """
    return series_from_facts(series_facts(units, deadline, as_of, reminders), deadline, as_of)


def series_from_facts(facts: SeriesFacts, deadline: datetime, as_of: datetime) -> Timeliness:
    """Return the Timeliness drawn from ``facts`` (``series_facts`` at ``as_of`` or at any earlier instant
    not before the latest event)."""
    require_aware(deadline, "deadline")
    require_aware(as_of, "as_of")
    last_on_time_day = local(deadline - timedelta(microseconds=1)).date()
    as_of_day = local(as_of).date()
    event_days = facts.event_days
    start = min([*event_days, last_on_time_day - timedelta(days=LEAD_DAYS), as_of_day])
    end = as_of_day
    horizon = max([*event_days, last_on_time_day]) + timedelta(days=TAIL_DAYS)
    end = max(min(end, horizon), start)
    if (end - start).days >= MAX_DAYS:
        start = end - timedelta(days=MAX_DAYS - 1)

    deltas_received = facts.received_days
    deltas_on_time = facts.on_time_days
    sent_days = facts.sent_days
    move_days = [d for d, _ in facts.complete_moves]
    running: list[int] = []
    total = 0
    for _, step in facts.complete_moves:
        total += step
        running.append(total)
    days: list[DayPoint] = []
    day = start
    while day <= end:
        k = bisect_right(move_days, day)
        days.append(DayPoint(
            date=day, received=bisect_right(deltas_received, day),
            complete=running[k - 1] if k else 0, on_time=bisect_right(deltas_on_time, day),
            reminders_sent=bisect_right(sent_days, day) - bisect_right(sent_days, day - timedelta(days=1))))
        day += timedelta(days=1)
    return Timeliness(tuple(days), facts.required, last_on_time_day, as_of)
