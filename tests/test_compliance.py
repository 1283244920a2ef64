"""Status rules at their edges, with fixed instants around the plan's real deadline."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tracker.compliance import (
    ReviewState,
    Standing,
    Status,
    VersionFacts,
    standing,
    summarize,
)

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ok(version: int, received_at: datetime, warnings: int = 0) -> VersionFacts:
    return VersionFacts(version, received_at, complete=True, errors=0, warnings=warnings)


def bad(version: int, received_at: datetime, errors: int = 2) -> VersionFacts:
    return VersionFacts(version, received_at, complete=False, errors=errors, warnings=1)


# (name, versions, as_of, status, late, complete, days_left, days_late)
CASES = [
    ("nothing, well before", [], at("2024-05-01T09:00+07:00"), Status.NOT_DUE, False, False, 9, None),
    ("nothing, 1 s before", [], DEADLINE - SECOND, Status.NOT_DUE, False, False, 1, None),
    ("nothing, at deadline", [], DEADLINE, Status.OVERDUE, True, False, None, 1),
    ("nothing, 1 s after", [], DEADLINE + SECOND, Status.OVERDUE, True, False, None, 1),
    ("nothing, 3 days after", [], DEADLINE + 3 * DAY, Status.OVERDUE, True, False, None, 3),
    ("nothing, 3 days 1 s after", [], DEADLINE + 3 * DAY + SECOND, Status.OVERDUE, True, False, None, 4),
    ("complete 1 s before", [ok(1, DEADLINE - SECOND)], DEADLINE + DAY, Status.ON_TIME, False, True, None, None),
    ("complete at deadline", [ok(1, DEADLINE)], DEADLINE + DAY, Status.LATE, True, True, None, 1),
    ("complete 1 s after", [ok(1, DEADLINE + SECOND)], DEADLINE + DAY, Status.LATE, True, True, None, 1),
    ("complete 2 days after", [ok(1, DEADLINE + 2 * DAY)], DEADLINE + 9 * DAY, Status.LATE, True, True, None, 2),
    ("complete early, before deadline", [ok(1, DEADLINE - 3 * DAY)], DEADLINE - 2 * DAY, Status.ON_TIME, False, True, 2, None),
    ("errors, before deadline", [bad(1, DEADLINE - 3 * DAY)], DEADLINE - DAY, Status.INCOMPLETE, False, False, 1, None),
    ("errors, past deadline", [bad(1, DEADLINE - 3 * DAY)], DEADLINE + 2 * DAY, Status.INCOMPLETE, True, False, None, 2),
    (
        "incomplete then complete on time",
        [bad(1, DEADLINE - 3 * DAY), ok(2, DEADLINE - DAY)],
        DEADLINE + DAY, Status.ON_TIME, False, True, None, None,
    ),
    (
        "incomplete on time then complete late",
        [bad(1, DEADLINE - 3 * DAY), ok(2, DEADLINE + DAY + SECOND)],
        DEADLINE + 5 * DAY, Status.LATE, True, True, None, 2,
    ),
    (
        # A later upload with errors is a draft: the complete version still counts.
        "complete on time then a draft with errors",
        [ok(1, DEADLINE - 3 * DAY), bad(2, DEADLINE - DAY)],
        DEADLINE + DAY, Status.ON_TIME, False, True, None, None,
    ),
    (
        "complete on time, corrected after deadline",
        [ok(1, DEADLINE - 3 * DAY), bad(2, DEADLINE + DAY), ok(3, DEADLINE + 2 * DAY)],
        DEADLINE + 3 * DAY, Status.ON_TIME, False, True, None, None,
    ),
    (
        "complete late, then a draft, keeps first complete for days_late",
        [ok(1, DEADLINE + DAY), bad(2, DEADLINE + 4 * DAY)],
        DEADLINE + 6 * DAY, Status.LATE, True, True, None, 1,
    ),
]


@pytest.mark.parametrize(
    ("versions", "as_of", "status", "late", "complete", "days_left", "days_late"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_status_rules(
    versions: list[VersionFacts],
    as_of: datetime,
    status: Status,
    late: bool,
    complete: bool,
    days_left: int | None,
    days_late: int | None,
) -> None:
    st = standing(versions, DEADLINE, as_of)
    assert (st.status, st.late, st.complete, st.days_left, st.days_late) == (
        status, late, complete, days_left, days_late,
    )


def test_latest_facts_and_first_receipt() -> None:
    versions = [
        ok(1, DEADLINE - 3 * DAY, warnings=4),
        bad(2, DEADLINE - 2 * DAY, errors=7),
    ]
    st = standing(versions, DEADLINE, DEADLINE - DAY)
    assert st.first_received_at == DEADLINE - 3 * DAY
    assert st.latest_received_at == DEADLINE - 2 * DAY
    assert st.latest_version == 2
    assert (st.errors, st.warnings) == (7, 1)


def test_draft_after_complete_keeps_the_counted_version() -> None:
    versions = [ok(1, DEADLINE - 3 * DAY), bad(2, DEADLINE - 2 * DAY, errors=470)]
    st = standing(versions, DEADLINE, DEADLINE + DAY)
    assert (st.status, st.complete, st.counted_version, st.draft_version) == (Status.ON_TIME, True, 1, 2)
    assert st.counted_received_at == DEADLINE - 3 * DAY
    assert st.latest_version == 2


def withdrawn(version: int, received_at: datetime, withdrawn_at: datetime) -> VersionFacts:
    return VersionFacts(version, received_at, complete=True, errors=0, warnings=0, withdrawn_at=withdrawn_at)


def test_withdrawn_version_stops_counting_from_its_withdrawal() -> None:
    versions = [ok(1, DEADLINE - 3 * DAY), withdrawn(2, DEADLINE - 2 * DAY, withdrawn_at=DEADLINE - DAY)]
    assert standing(versions, DEADLINE, DEADLINE - DAY - SECOND).counted_version == 2
    st = standing(versions, DEADLINE, DEADLINE - DAY)
    assert (st.status, st.counted_version, st.draft_version) == (Status.ON_TIME, 1, None)
    only = standing([withdrawn(1, DEADLINE - 3 * DAY, DEADLINE - DAY)], DEADLINE, DEADLINE + DAY)
    assert (only.status, only.complete, only.counted_version) == (Status.INCOMPLETE, False, None)
    # late still looks at the first complete receipt, which was on time.
    assert only.late is False


def test_returned_version_stops_counting_and_an_earlier_one_counts() -> None:
    versions = [ok(1, DEADLINE - 3 * DAY), returned(2, DEADLINE - 2 * DAY, reviewed_at=DEADLINE - DAY)]
    st = standing(versions, DEADLINE, DEADLINE + DAY)
    assert (st.status, st.counted_version, st.latest_version) == (Status.ON_TIME, 1, 2)
    assert st.review is ReviewState.RETURNED


def test_unordered_input_is_ordered_by_receipt() -> None:
    versions = [ok(2, DEADLINE - DAY), bad(1, DEADLINE - 2 * DAY)]
    st = standing(versions, DEADLINE, DEADLINE + DAY)
    assert st.latest_version == 2
    assert st.status is Status.ON_TIME


def test_as_of_before_first_upload_sees_nothing() -> None:
    st = standing([ok(1, DEADLINE - DAY)], DEADLINE, DEADLINE - 2 * DAY)
    assert st.status is Status.NOT_DUE
    assert st.latest_version is None and st.first_received_at is None
    assert (st.errors, st.warnings) == (0, 0)


def test_versions_after_as_of_do_not_exist() -> None:
    versions = [bad(1, DEADLINE - 3 * DAY), ok(2, DEADLINE - DAY)]
    st = standing(versions, DEADLINE, DEADLINE - 2 * DAY)
    assert st.status is Status.INCOMPLETE
    assert st.latest_version == 1
    # Same facts seen later: the on-time correction now counts.
    assert standing(versions, DEADLINE, DEADLINE + DAY).status is Status.ON_TIME


def test_version_received_exactly_at_as_of_counts() -> None:
    st = standing([ok(1, DEADLINE - DAY)], DEADLINE, DEADLINE - DAY)
    assert st.status is Status.ON_TIME


@pytest.mark.parametrize(
    ("versions", "as_of"),
    [([], DEADLINE + 10 * DAY), ([ok(1, DEADLINE + DAY)], DEADLINE + 2 * DAY), ([bad(1, DEADLINE)], DEADLINE - DAY)],
)
def test_exempt_is_exempt_whatever_happens(versions: list[VersionFacts], as_of: datetime) -> None:
    st = standing(versions, DEADLINE, as_of, exempt=True)
    assert st.status is Status.EXEMPT
    assert st.late is False
    assert st.days_late is None and st.days_left is None


def returned(version: int, received_at: datetime, reviewed_at: datetime) -> VersionFacts:
    return VersionFacts(
        version, received_at, complete=True, errors=0, warnings=0,
        review=ReviewState.RETURNED, review_reason="Biểu 03 thiếu số liệu quý I", reviewed_at=reviewed_at,
    )


def test_returned_for_correction_is_incomplete_but_not_late() -> None:
    v1 = returned(1, DEADLINE - 3 * DAY, reviewed_at=DEADLINE + DAY)
    st = standing([v1], DEADLINE, DEADLINE + 2 * DAY)
    assert st.status is Status.INCOMPLETE
    assert st.complete is False and st.counted_version is None
    assert st.review is ReviewState.RETURNED
    assert st.review_reason == "Biểu 03 thiếu số liệu quý I"
    # The first error-free version was on time: the unit is not late.
    assert st.late is False and st.days_late is None


def test_review_after_as_of_is_ignored() -> None:
    v1 = returned(1, DEADLINE - 3 * DAY, reviewed_at=DEADLINE + DAY)
    st = standing([v1], DEADLINE, DEADLINE + DAY - SECOND)
    assert st.status is Status.ON_TIME
    assert st.review is None and st.review_reason is None


def test_new_upload_after_return_clears_it() -> None:
    v1 = returned(1, DEADLINE - 3 * DAY, reviewed_at=DEADLINE + DAY)
    v2 = ok(2, DEADLINE + 2 * DAY)
    st = standing([v1, v2], DEADLINE, DEADLINE + 3 * DAY)
    assert st.status is Status.ON_TIME
    assert st.complete is True
    assert st.review is None and st.latest_version == 2


def test_returned_late_return_stays_late_after_correction() -> None:
    v1 = returned(1, DEADLINE + DAY, reviewed_at=DEADLINE + 2 * DAY)
    assert standing([v1], DEADLINE, DEADLINE + 3 * DAY).status is Status.INCOMPLETE
    st = standing([v1, ok(2, DEADLINE + 4 * DAY)], DEADLINE, DEADLINE + 5 * DAY)
    assert st.status is Status.LATE
    assert st.days_late == 1


def test_accepted_review_is_reported() -> None:
    v1 = VersionFacts(1, DEADLINE - DAY, True, 0, 2, ReviewState.ACCEPTED, None, DEADLINE)
    st = standing([v1], DEADLINE, DEADLINE + DAY)
    assert st.status is Status.ON_TIME
    assert st.review is ReviewState.ACCEPTED


NAIVE = datetime(2024, 5, 10)


@pytest.mark.parametrize(
    ("versions", "deadline", "as_of"),
    [
        ([], NAIVE, DEADLINE),
        ([], DEADLINE, NAIVE),
        ([ok(1, NAIVE)], DEADLINE, DEADLINE),
        ([returned(1, DEADLINE - DAY, reviewed_at=NAIVE)], DEADLINE, DEADLINE),
    ],
    ids=["deadline", "as_of", "received_at", "reviewed_at"],
)
def test_naive_datetime_raises(versions: list[VersionFacts], deadline: datetime, as_of: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        standing(versions, deadline, as_of)


@pytest.mark.parametrize(
    "version",
    [
        VersionFacts(1, DEADLINE, complete=True, errors=1, warnings=0),
        VersionFacts(1, DEADLINE, complete=False, errors=-1, warnings=0),
        VersionFacts(1, DEADLINE, complete=True, errors=0, warnings=0, review=ReviewState.RETURNED),
    ],
    ids=["complete-with-errors", "negative", "review-without-time"],
)
def test_inconsistent_facts_raise(version: VersionFacts) -> None:
    with pytest.raises(ValueError):
        standing([version], DEADLINE, DEADLINE + DAY)


def test_other_time_zones_compare_as_instants() -> None:
    # 16:59:59 UTC on 9 May is 23:59:59 in Hanoi: still on time.
    received = datetime(2024, 5, 9, 16, 59, 59, tzinfo=timezone.utc)
    assert standing([ok(1, received)], DEADLINE, DEADLINE + DAY).status is Status.ON_TIME
    received = datetime(2024, 5, 9, 17, 0, 0, tzinfo=timezone.utc)
    assert standing([ok(1, received)], DEADLINE, DEADLINE + DAY).status is Status.LATE


def test_labels_tones_and_string_form() -> None:
    assert [s.label for s in Status] == [
        "Miễn báo cáo", "Chưa đến hạn", "Quá hạn chưa nộp", "Chưa đầy đủ", "Đúng hạn", "Nộp muộn",
    ]
    assert {s.tone for s in Status} <= {"ok", "warn", "bad", "muted"}
    assert Status.ON_TIME.tone == "ok" and Status.OVERDUE.tone == "bad"
    assert f"{Status.ON_TIME}" == str(Status.ON_TIME) == "on_time"
    assert Status("late") is Status.LATE
    assert ReviewState.RETURNED.label == "Trả lại để chỉnh sửa"


def _many(as_of: datetime) -> list[Standing]:
    facts: list[tuple[list[VersionFacts], bool]] = [
        ([], True),                                   # exempt
        ([], False),                                  # overdue
        ([bad(1, DEADLINE - DAY)], False),            # incomplete
        ([ok(1, DEADLINE - DAY)], False),             # on time
        ([ok(1, DEADLINE - 2 * DAY)], False),         # on time
        ([ok(1, DEADLINE + DAY)], False),             # late
    ]
    return [standing(v, DEADLINE, as_of, exempt=e) for v, e in facts]


def test_summarize_counts_and_progress() -> None:
    summary = summarize(_many(DEADLINE + 2 * DAY))
    assert summary.total == 6
    assert summary.required == 5
    assert summary.complete == 3
    assert summary.late == 3  # overdue, incomplete past deadline, late
    assert summary.progress == pytest.approx(3 / 5)
    assert {s: summary.count(s) for s in Status} == {
        Status.EXEMPT: 1, Status.NOT_DUE: 0, Status.OVERDUE: 1,
        Status.INCOMPLETE: 1, Status.ON_TIME: 2, Status.LATE: 1,
    }


def test_summarize_before_deadline_and_empty() -> None:
    summary = summarize(_many(DEADLINE - 3 * DAY))
    assert summary.count(Status.NOT_DUE) == 5  # nothing received yet by anyone required
    assert summary.progress == 0.0 and summary.late == 0
    empty = summarize([])
    assert (empty.total, empty.required, empty.progress) == (0, 0, 0.0)
    only_exempt = summarize([standing([], DEADLINE, DEADLINE, exempt=True)])
    assert (only_exempt.required, only_exempt.progress) == (0, 0.0)
