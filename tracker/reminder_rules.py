"""Decide which reminder messages are due at an explicit instant; pure, no clock, no database.

The caller (``reminders``) drafts the messages and the outbox stores, sends and logs them; the log's key
``(plan, unit, kind, step)`` is unique, so every step here is deterministic and a message
listed again by a later run is simply not sent twice.

Only the latest step is due. Each reminder series (7, 3, 1 days before the deadline; overdue
1..M) is a ladder of steps, and each step is due from its start until the next step starts;
the last approaching step stays due until the deadline, the last overdue step for one more
``overdue_every_days`` interval, and then the series is over. When the cron job misses runs, the next run sends just the most recent step
instead of a burst of stale ones ("còn 7 ngày", "còn 3 ngày" and "còn 1 ngày" at once would
contradict each other); steps already past are skipped for good.

Receipts and "returned for correction" messages are sent on the event, elsewhere.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from tracker.compliance import Standing, Status, require_aware
from tracker.messages import MessageKind
from tracker.timeutil import LOCAL_TZ_NAME, zone_named

_DAY = timedelta(days=1)

# Units that have not yet sent a complete return are the only ones chased about the deadline.
_CHASED = frozenset({Status.NOT_DUE, Status.OVERDUE, Status.INCOMPLETE})


@dataclass(frozen=True)
class ReminderSettings:
    """When reminders go out; ``digest_hour`` is on the wall clock of ``tz``."""

    approaching_days: tuple[int, ...] = (7, 3, 1)
    overdue_every_days: int = 3
    overdue_max: int = 5
    visit_days_before: int = 5
    digest_hour: int = 7
    tz: str = LOCAL_TZ_NAME

    def __post_init__(self) -> None:
        if any(d < 1 for d in self.approaching_days):
            raise ValueError("approaching_days must be whole days of at least 1")
        if len(set(self.approaching_days)) != len(self.approaching_days):
            raise ValueError("approaching_days must not repeat a day")
        if self.overdue_every_days < 1:
            raise ValueError("overdue_every_days must be at least 1")
        if self.overdue_max < 0:
            raise ValueError("overdue_max must not be negative")
        if self.visit_days_before < 0:
            raise ValueError("visit_days_before must not be negative")
        if not 0 <= self.digest_hour <= 23:
            raise ValueError("digest_hour must be between 0 and 23")
        zone_named(self.tz)

    @property
    def zone(self) -> ZoneInfo:
        """Return the ZoneInfo for ``tz``."""
        return zone_named(self.tz)


@dataclass(frozen=True)
class UnitFacts:
    """One unit as the reminder rules see it: its standing at ``as_of`` and its visit dates."""

    unit_code: str
    standing: Standing
    visits: tuple[date, ...] = ()


@dataclass(frozen=True)
class Due:
    """One message due now; ``unit_code`` is None for the department digest."""

    kind: MessageKind  # one of the four scheduled kinds
    unit_code: str | None
    step: str
    cc_department: bool


def _approaching_step(deadline: datetime, as_of: datetime, days: Sequence[int]) -> str | None:
    if as_of >= deadline:
        return None
    started = [d for d in days if as_of >= deadline - d * _DAY]
    # The latest step to start is the one closest to the deadline: the smallest offset.
    return f"d{min(started)}" if started else None


def _overdue_step(deadline: datetime, as_of: datetime, every: int, limit: int) -> int | None:
    first = deadline + _DAY
    if limit < 1 or as_of < first:
        return None
    index = (as_of - first) // (every * _DAY)  # 0-based step that started last
    return index + 1 if index < limit else None


def _visit_window(visit: date, before: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(visit - timedelta(days=before), time(0), tzinfo=zone)
    end = datetime.combine(visit + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


def due_messages(
    units: Sequence[UnitFacts],
    deadline: datetime,
    as_of: datetime,
    settings: ReminderSettings | None = None,
) -> list[Due]:
    """Return the messages due at ``as_of``, per unit in input order, then the digest.

    - ``deadline_approaching``: to units with status not_due or incomplete, before the
      deadline, from ``deadline - d days`` for each d in ``approaching_days``; step ``"d<d>"``
      of the latest step only.
    - ``overdue``: to units with status overdue or incomplete, from ``deadline + 1 day``,
      then every ``overdue_every_days``, at most ``overdue_max`` steps (``"o1"``..); only
      the latest step, and the last one stays due for one interval; the department is
      copied from ``"o2"`` on.
    - ``visit_approaching``: to every unit with a visit (exempt ones too, they are
      inspected), from 00:00 local ``visit_days_before`` days before the visit until the
      visit day ends; step is the visit date in ISO form.
    - ``digest``: one per local day at or after ``digest_hour``; step is that local date.

    Exempt, on_time and late units get no deadline or overdue reminder. The standings must
    have been computed at the same ``as_of``. Day offsets are 24-hour steps of elapsed time.

    Raises ValueError on a naive ``deadline`` or ``as_of`` and on a repeated unit code.
    """
    settings = settings or ReminderSettings()
    require_aware(deadline, "deadline")
    require_aware(as_of, "as_of")
    codes = [u.unit_code for u in units]
    if len(set(codes)) != len(codes):
        raise ValueError("unit codes must be unique")
    zone = settings.zone
    # Elapsed-time arithmetic: do it in UTC so a zone with daylight saving cannot shift it.
    deadline_utc = deadline.astimezone(timezone.utc)

    approaching = _approaching_step(deadline_utc, as_of, settings.approaching_days)
    overdue = _overdue_step(
        deadline_utc, as_of, settings.overdue_every_days, settings.overdue_max
    )

    due: list[Due] = []
    for unit in units:
        status = unit.standing.status
        if status in _CHASED:
            if approaching is not None and status is not Status.OVERDUE:
                due.append(Due(MessageKind.DEADLINE_APPROACHING, unit.unit_code, approaching, False))
            if overdue is not None and status is not Status.NOT_DUE:
                due.append(Due(MessageKind.OVERDUE, unit.unit_code, f"o{overdue}", overdue >= 2))
        for visit in sorted(set(unit.visits)):
            start, end = _visit_window(visit, settings.visit_days_before, zone)
            if start <= as_of < end:
                due.append(Due(MessageKind.VISIT_APPROACHING, unit.unit_code, visit.isoformat(), False))

    local = as_of.astimezone(zone)
    if local.hour >= settings.digest_hour:
        due.append(Due(MessageKind.DIGEST, None, local.date().isoformat(), False))
    return due
