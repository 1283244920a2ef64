"""Pure status rules: where a unit stands on one plan's deadline at an explicit instant.

Nothing here reads the clock, the database or the request: callers pass the facts of a unit's
return versions, the plan's deadline and ``as_of``. Every datetime must be timezone-aware.

How a status is decided (written for staff, so the dashboard can be explained):

- ``exempt`` (Miễn báo cáo): the plan does not require this unit to report.
- ``not_due`` (Chưa đến hạn): nothing received yet and the deadline has not passed.
- ``overdue`` (Quá hạn chưa nộp): nothing received and the deadline has passed.
- ``incomplete`` (Chưa đầy đủ): something was received but no version counts (see below).
- ``on_time`` (Đúng hạn): a version counts and the first complete version was received before
  the deadline.
- ``late`` (Nộp muộn): a version counts and the first complete version was received at or after
  the deadline.

The counted version (phiên bản được tính) is the one rule for which version's numbers stand for
the unit: the latest complete version (no errors) that staff have not returned for correction
and the unit has not withdrawn, both judged at ``as_of`` (``counts`` / ``counted_version``). A
later upload with errors is a draft (bản nháp): it is kept and shown with its issues, but it does
not demote a complete version, so a blank form uploaded by mistake does not turn an on-time unit
into ``incomplete``. The status, the dashboard, the export, the reminders and the unit page all
read this one rule; ``standings.counted_versions`` is the same rule in SQL for whole plans.

The deadline passes AT its instant: a version received at exactly the deadline is late.

Timeliness is judged on the FIRST error-free version, even when staff later returned it:
a unit that sent a complete return on time, was asked to correct it and corrected it after
the deadline is ``on_time``. Staff returning a return must not turn a punctual unit into a
late one; the correction itself shows as ``incomplete`` while it is pending.

Day counts are elapsed time rounded up to whole days of 24 hours (``days_left``,
``days_late``). With the plan's deadline at local midnight (00:00 Asia/Ho_Chi_Minh, which has
no daylight saving) this equals counting Vietnamese calendar days. The deadline instant
itself starts late day 1, so a late or overdue unit is always at least 1 day late.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from .labels import LabelledEnum

_DAY = timedelta(days=1)


class Status(enum.StrEnum):
    """A unit's standing on a plan; compare members, not strings, in templates."""

    EXEMPT = "exempt"
    NOT_DUE = "not_due"
    OVERDUE = "overdue"
    INCOMPLETE = "incomplete"
    ON_TIME = "on_time"
    LATE = "late"


    @property
    def label(self) -> str:
        """Return the Vietnamese label shown to users."""
        return _LABELS[self]

    @property
    def tone(self) -> str:
        """Return the badge colour class: "ok", "warn", "bad" or "muted"."""
        return _TONES[self]


_LABELS: dict[Status, str] = {
    Status.EXEMPT: "Miễn báo cáo",
    Status.NOT_DUE: "Chưa đến hạn",
    Status.OVERDUE: "Quá hạn chưa nộp",
    Status.INCOMPLETE: "Chưa đầy đủ",
    Status.ON_TIME: "Đúng hạn",
    Status.LATE: "Nộp muộn",
}

_TONES: dict[Status, str] = {
    Status.EXEMPT: "muted",
    Status.NOT_DUE: "muted",
    Status.OVERDUE: "bad",
    Status.INCOMPLETE: "warn",
    Status.ON_TIME: "ok",
    # Complete, so the data is usable; the badge still flags the missed deadline.
    Status.LATE: "warn",
}


class ReviewState(LabelledEnum):
    """Staff's decision on one return version (``models.Review.state``)."""

    ACCEPTED = "accepted", "Đã chấp nhận"
    RETURNED = "returned", "Trả lại để chỉnh sửa"


@dataclass(frozen=True)
class VersionFacts:
    """What the status rules need to know about one uploaded version of a unit's return."""

    version: int
    received_at: datetime
    complete: bool
    errors: int
    warnings: int
    review: ReviewState | None = None
    review_reason: str | None = None
    reviewed_at: datetime | None = None
    withdrawn_at: datetime | None = None


def counts(v: VersionFacts, as_of: datetime) -> bool:
    """Return True when ``v`` may be the counted version at ``as_of``: received by then, complete,
    not returned for correction (its latest review by then) and not withdrawn by then.
    """
    if v.received_at > as_of or not v.complete:
        return False
    if v.review is ReviewState.RETURNED and v.reviewed_at is not None and v.reviewed_at <= as_of:
        return False
    return v.withdrawn_at is None or v.withdrawn_at > as_of


def counted_version(versions: Iterable[VersionFacts], as_of: datetime) -> VersionFacts | None:
    """Return the counted version at ``as_of`` (phiên bản được tính): the latest received (ties broken by
    version number) of those that ``counts``; None when no version counts.
    """
    candidates = [v for v in versions if counts(v, as_of)]
    return max(candidates, key=lambda v: (v.received_at, v.version), default=None)


@dataclass(frozen=True)
class Standing:
    """Where one unit stands at ``as_of``; see the module docstring for the rules."""

    status: Status
    late: bool
    complete: bool
    first_received_at: datetime | None
    latest_received_at: datetime | None
    latest_version: int | None
    errors: int
    warnings: int
    review: ReviewState | None
    review_reason: str | None
    days_late: int | None
    days_left: int | None
    counted_version: int | None = None
    counted_received_at: datetime | None = None
    # The latest version when it has errors (bản nháp): shown with its issues, never counted.
    draft_version: int | None = None


@dataclass(frozen=True)
class Summary:
    """Counts over many units' standings, for the dashboard header."""

    counts: Mapping[Status, int] = field(default_factory=lambda: MappingProxyType({}))
    total: int = 0
    required: int = 0
    complete: int = 0
    late: int = 0
    progress: float = 0.0

    def count(self, status: Status) -> int:
        """Return how many units have ``status`` (0 when none)."""
        return self.counts.get(status, 0)


def require_aware(value: datetime, name: str) -> datetime:
    """Return ``value`` unchanged; raise ValueError when it is naive (a caller bug)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
    return value


def _ceil_days(delta: timedelta) -> int:
    # Integer floor division on timedelta is exact; negate twice for the ceiling.
    return -((-delta) // _DAY)


def _check_version(v: VersionFacts) -> None:
    require_aware(v.received_at, f"received_at of version {v.version}")
    if v.reviewed_at is not None:
        require_aware(v.reviewed_at, f"reviewed_at of version {v.version}")
    if v.withdrawn_at is not None:
        require_aware(v.withdrawn_at, f"withdrawn_at of version {v.version}")
    if v.review is not None and v.reviewed_at is None:
        # Without a time the review cannot be placed before or after as_of.
        raise ValueError(f"version {v.version} has a review but no reviewed_at")
    if v.errors < 0 or v.warnings < 0:
        raise ValueError(f"version {v.version} has a negative error or warning count")
    if v.complete and v.errors > 0:
        raise ValueError(f"version {v.version} is marked complete but has {v.errors} errors")


def standing(
    versions: Sequence[VersionFacts],
    deadline: datetime,
    as_of: datetime,
    exempt: bool = False,
) -> Standing:
    """Return the unit's Standing at ``as_of`` under the rules in the module docstring.

    Versions received after ``as_of`` are ignored, and so are reviews and withdrawals made after
    ``as_of``. The status follows the counted version (``counted_version``). The latest version is
    the one received last (ties broken by version number); ``latest_version``, the error and
    warning counts and the review state are those of that version. ``days_left`` is set while
    the deadline has not passed (for required units); ``days_late`` whenever ``late`` is true:
    up to the first complete receipt, or up to ``as_of`` while none exists.

    Raises ValueError on a naive datetime, a review without ``reviewed_at``, negative counts,
    or a version marked complete that has errors.
    """
    require_aware(deadline, "deadline")
    require_aware(as_of, "as_of")
    for v in versions:
        _check_version(v)

    seen = sorted(
        (v for v in versions if v.received_at <= as_of),
        key=lambda v: (v.received_at, v.version),
    )
    passed = as_of >= deadline
    latest = seen[-1] if seen else None
    first_complete = next((v for v in seen if v.complete), None)

    review: ReviewState | None = None
    review_reason: str | None = None
    if latest is not None and latest.review is not None:
        assert latest.reviewed_at is not None  # checked in _check_version
        if latest.reviewed_at <= as_of:
            review = latest.review
            review_reason = latest.review_reason if review is ReviewState.RETURNED else None

    counted = counted_version(seen, as_of)
    complete = counted is not None

    if exempt:
        status = Status.EXEMPT
        late = False
    else:
        late = passed and (first_complete is None or first_complete.received_at >= deadline)
        if latest is None:
            status = Status.OVERDUE if passed else Status.NOT_DUE
        elif not complete:
            status = Status.INCOMPLETE
        else:
            # complete implies first_complete exists (the counted version itself at the latest).
            assert first_complete is not None
            status = Status.ON_TIME if first_complete.received_at < deadline else Status.LATE

    days_left: int | None = None
    days_late: int | None = None
    if not exempt:
        if not passed:
            days_left = _ceil_days(deadline - as_of)
        if late:
            until = (
                first_complete.received_at
                if first_complete is not None and first_complete.received_at >= deadline
                else as_of
            )
            days_late = max(1, _ceil_days(until - deadline))

    return Standing(
        status=status,
        late=late,
        complete=complete,
        first_received_at=seen[0].received_at if seen else None,
        latest_received_at=latest.received_at if latest else None,
        latest_version=latest.version if latest else None,
        errors=latest.errors if latest else 0,
        warnings=latest.warnings if latest else 0,
        review=review,
        review_reason=review_reason,
        days_late=days_late,
        days_left=days_left,
        counted_version=counted.version if counted else None,
        counted_received_at=counted.received_at if counted else None,
        draft_version=latest.version if latest is not None and not latest.complete else None,
    )


def summarize(standings: Iterable[Standing]) -> Summary:
    """Return counts per status, units required (not exempt), complete (on_time or late),
    late (the ``late`` flag) and progress = complete / required (0.0 when nobody is required).
    """
    counts = {s: 0 for s in Status}
    total = late = 0
    for st in standings:
        counts[st.status] += 1
        total += 1
        late += st.late
    required = total - counts[Status.EXEMPT]
    complete = counts[Status.ON_TIME] + counts[Status.LATE]
    return Summary(
        counts=MappingProxyType(counts),
        total=total,
        required=required,
        complete=complete,
        late=late,
        progress=complete / required if required else 0.0,
    )
