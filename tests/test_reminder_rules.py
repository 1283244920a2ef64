"""Which reminders are due when, for the 2024 plan's ten districts and its real deadline."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

import pytest

from tracker.compliance import Status, VersionFacts, standing
from tracker.reminder_rules import Due, ReminderSettings, UnitFacts, due_messages

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
EXEMPT = "223"  # Huyện Hiệp Hòa
VISITS = {
    "220": date(2024, 5, 20), "219": date(2024, 5, 22), "218": date(2024, 5, 23),
    "217": date(2024, 5, 28), "215": date(2024, 5, 29), "223": date(2024, 6, 6),
    "222": date(2024, 6, 7), "216": date(2024, 6, 11), "221": date(2024, 6, 12),
    "213": date(2024, 6, 13),
}
CODES = sorted(VISITS)
SETTINGS = ReminderSettings()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def units(
    as_of: datetime,
    versions: dict[str, list[VersionFacts]] | None = None,
    visits: bool = False,
) -> list[UnitFacts]:
    versions = versions or {}
    return [
        UnitFacts(
            code,
            standing(versions.get(code, []), DEADLINE, as_of, exempt=code == EXEMPT),
            (VISITS[code],) if visits else (),
        )
        for code in CODES
    ]


def of_kind(due: Sequence[Due], kind: str) -> list[Due]:
    return [d for d in due if d.kind == kind]


def complete(received_at: datetime) -> list[VersionFacts]:
    return [VersionFacts(1, received_at, complete=True, errors=0, warnings=0)]


def broken(received_at: datetime) -> list[VersionFacts]:
    return [VersionFacts(1, received_at, complete=False, errors=3, warnings=0)]


def test_d3_to_nine_required_units_none_to_exempt() -> None:
    as_of = at("2024-05-07T08:00+07:00")
    facts = units(as_of)
    assert sum(u.standing.status is Status.NOT_DUE for u in facts) == 9
    due = of_kind(due_messages(facts, DEADLINE, as_of, SETTINGS), "deadline_approaching")
    assert len(due) == 9
    assert {d.step for d in due} == {"d3"}
    assert EXEMPT not in {d.unit_code for d in due}
    assert not any(d.cc_department for d in due)


@pytest.mark.parametrize(
    ("as_of", "step"),
    [
        (at("2024-05-02T23:59:59+07:00"), None),
        (at("2024-05-03T00:00:00+07:00"), "d7"),
        (at("2024-05-06T23:59:59+07:00"), "d7"),
        (at("2024-05-07T00:00:00+07:00"), "d3"),
        (at("2024-05-09T00:00:00+07:00"), "d1"),
        (at("2024-05-09T23:59:59+07:00"), "d1"),
        (DEADLINE, None),
        # A run missed from 3 to 9 May sends only the most recent step, not d7, d3 and d1.
        (at("2024-05-09T12:00+07:00"), "d1"),
    ],
)
def test_approaching_steps_latest_only(as_of: datetime, step: str | None) -> None:
    due = of_kind(due_messages(units(as_of), DEADLINE, as_of, SETTINGS), "deadline_approaching")
    assert {d.step for d in due} == ({step} if step else set())
    assert len(due) == (9 if step else 0)


def test_complete_unit_gets_no_approaching_reminder_but_incomplete_does() -> None:
    as_of = at("2024-05-07T08:00+07:00")
    versions = {"213": complete(as_of - DAY), "215": broken(as_of - DAY)}
    due = of_kind(due_messages(units(as_of, versions), DEADLINE, as_of, SETTINGS), "deadline_approaching")
    codes = {d.unit_code for d in due}
    assert "213" not in codes
    assert "215" in codes
    assert len(due) == 8


def test_overdue_o1_the_day_after_only_to_units_without_complete_return() -> None:
    as_of = at("2024-05-11T00:00+07:00")
    versions = {
        "213": complete(DEADLINE - DAY),          # on time
        "215": complete(DEADLINE + 12 * 3600 * SECOND),  # late but complete
        "216": broken(DEADLINE - DAY),            # incomplete
    }
    due = due_messages(units(as_of, versions), DEADLINE, as_of, SETTINGS)
    overdue = of_kind(due, "overdue")
    assert {d.unit_code for d in overdue} == set(CODES) - {"213", "215", EXEMPT}
    assert {d.step for d in overdue} == {"o1"}
    assert not any(d.cc_department for d in overdue)
    assert of_kind(due, "deadline_approaching") == []


@pytest.mark.parametrize(
    ("as_of", "step", "cc"),
    [
        (DEADLINE, None, False),
        (at("2024-05-10T23:59:59+07:00"), None, False),
        (at("2024-05-11T00:00+07:00"), "o1", False),
        (at("2024-05-13T23:59:59+07:00"), "o1", False),
        (at("2024-05-14T00:00+07:00"), "o2", True),
        (at("2024-05-17T09:00+07:00"), "o3", True),
        (at("2024-05-23T00:00+07:00"), "o5", True),
        (at("2024-05-25T23:59:59+07:00"), "o5", True),
        # After M steps (and the last step's interval) nothing more.
        (at("2024-05-26T00:00+07:00"), None, False),
        (at("2024-06-30T00:00+07:00"), None, False),
    ],
)
def test_overdue_ladder(as_of: datetime, step: str | None, cc: bool) -> None:
    due = of_kind(due_messages(units(as_of), DEADLINE, as_of, SETTINGS), "overdue")
    assert {(d.step, d.cc_department) for d in due} == ({(step, cc)} if step else set())
    assert len(due) == (9 if step else 0)
    assert EXEMPT not in {d.unit_code for d in due}


def test_overdue_stops_once_complete() -> None:
    as_of = at("2024-05-14T08:00+07:00")
    versions = {"213": complete(as_of - SECOND)}
    due = of_kind(due_messages(units(as_of, versions), DEADLINE, as_of, SETTINGS), "overdue")
    assert "213" not in {d.unit_code for d in due}
    assert len(due) == 8


def test_overdue_settings_are_honoured() -> None:
    settings = ReminderSettings(overdue_every_days=1, overdue_max=2)
    as_of = at("2024-05-12T08:00+07:00")
    due = of_kind(due_messages(units(as_of), DEADLINE, as_of, settings), "overdue")
    assert {d.step for d in due} == {"o2"}
    later = at("2024-05-13T08:00+07:00")
    assert of_kind(due_messages(units(later), DEADLINE, later, settings), "overdue") == []


@pytest.mark.parametrize(
    ("as_of", "codes"),
    [
        (at("2024-05-14T23:59:59+07:00"), set()),
        (at("2024-05-15T00:00+07:00"), {"220"}),          # Sơn Động, 20/5
        (at("2024-05-20T23:59:59+07:00"), {"220", "219", "218"}),
        (at("2024-05-21T00:00+07:00"), {"219", "218"}),
        (at("2024-06-01T00:00+07:00"), {"223"}),          # Hiệp Hòa is exempt but inspected
    ],
)
def test_visit_reminders_five_days_before(as_of: datetime, codes: set[str]) -> None:
    due = of_kind(due_messages(units(as_of, visits=True), DEADLINE, as_of, SETTINGS), "visit_approaching")
    assert {d.unit_code for d in due} == codes
    for d in due:
        assert d.step == VISITS[d.unit_code or ""].isoformat()


def test_visit_step_is_stable_and_multiple_visits_are_separate() -> None:
    as_of = at("2024-05-18T10:00+07:00")
    unit = UnitFacts("220", standing([], DEADLINE, as_of), (date(2024, 5, 20), date(2024, 5, 21), date(2024, 5, 30)))
    due = of_kind(due_messages([unit], DEADLINE, as_of, SETTINGS), "visit_approaching")
    assert [d.step for d in due] == ["2024-05-20", "2024-05-21"]


@pytest.mark.parametrize(
    ("as_of", "step"),
    [
        (at("2024-05-07T06:59:59+07:00"), None),
        (at("2024-05-07T07:00+07:00"), "2024-05-07"),
        (at("2024-05-07T23:59:59+07:00"), "2024-05-07"),
        # 00:30 UTC is 07:30 in Hanoi: the local day decides the step.
        (at("2024-05-08T00:30+00:00"), "2024-05-08"),
        (at("2024-05-07T23:30+00:00"), None),  # 06:30 on 8 May in Hanoi
    ],
)
def test_digest_once_per_local_day_after_hour(as_of: datetime, step: str | None) -> None:
    due = of_kind(due_messages(units(as_of), DEADLINE, as_of, SETTINGS), "digest")
    assert due == ([Due("digest", None, step, False)] if step else [])


def test_same_inputs_same_keys() -> None:
    as_of = at("2024-05-14T08:00+07:00")
    first = due_messages(units(as_of, visits=True), DEADLINE, as_of, SETTINGS)
    again = due_messages(units(as_of, visits=True), DEADLINE, as_of, SETTINGS)
    assert first == again
    keys = [(d.unit_code, d.kind, d.step) for d in first]
    assert len(keys) == len(set(keys))


def test_default_settings_used_when_omitted() -> None:
    as_of = at("2024-05-07T08:00+07:00")
    assert due_messages(units(as_of), DEADLINE, as_of) == due_messages(units(as_of), DEADLINE, as_of, SETTINGS)


def test_naive_instants_and_duplicate_units_raise() -> None:
    as_of = at("2024-05-07T08:00+07:00")
    with pytest.raises(ValueError):
        due_messages(units(as_of), DEADLINE, datetime(2024, 5, 7, 8), SETTINGS)
    with pytest.raises(ValueError):
        due_messages(units(as_of), datetime(2024, 5, 10), as_of, SETTINGS)
    twice = units(as_of)[:1] * 2
    with pytest.raises(ValueError, match="unique"):
        due_messages(twice, DEADLINE, as_of, SETTINGS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"approaching_days": (7, 0)},
        {"approaching_days": (3, 3)},
        {"overdue_every_days": 0},
        {"overdue_max": -1},
        {"visit_days_before": -1},
        {"digest_hour": 24},
        {"tz": "Asia/Nowhere"},
    ],
)
def test_bad_settings_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ReminderSettings(**kwargs)  # type: ignore[arg-type]
