"""Pure pieces of chasing and reviewing: the timeliness series against ``compliance.standing`` day by day,
blank-cell ranges, the officer's next step, the as-of text, the chase rules and the chart geometry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from tracker.blanks import blank_groups, cell_ranges
from tracker.charts import STATUS_COLOURS, line_chart, status_bars
from tracker.chasing import RemindRefused, check_remind, manual_step
from tracker.compliance import ReviewState, Status, VersionFacts, standing
from tracker.review import officer_next_step
from tracker.timeliness import Receipt, ReviewEvent, UnitEvents, series
from tracker.timeutil import parse_vn_datetime

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, tzinfo=VN)


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=VN)


# A unit on time then returned then fixed late; one incomplete; one withdrawn; one never; one exempt.
UNITS = [
    UnitEvents(False, (Receipt(at(8), 1, True), Receipt(at(12), 2, True)),
               (ReviewEvent(at(11), 1, "returned"),)),
    UnitEvents(False, (Receipt(at(9), 1, False),)),
    UnitEvents(False, (Receipt(at(7), 1, True, withdrawn_at=at(13)),)),
    UnitEvents(False, (Receipt(at(6), 1, True),), (ReviewEvent(at(10), 1, "returned"), ReviewEvent(at(14), 1, "accepted"))),
    UnitEvents(False),
    UnitEvents(True, (Receipt(at(5), 1, True),)),
]


def standing_at(unit: UnitEvents, as_of: datetime):
    versions = []
    for r in unit.receipts:
        reviews = [v for v in unit.reviews if v.version == r.version and v.created_at <= as_of]
        last = reviews[-1] if reviews else None
        versions.append(VersionFacts(version=r.version, received_at=r.received_at, complete=r.complete,
                                     errors=0 if r.complete else 1, warnings=0,
                                     review=ReviewState(last.state) if last else None,
                                     review_reason="x" if last else None,
                                     reviewed_at=last.created_at if last else None,
                                     withdrawn_at=r.withdrawn_at))
    return standing(versions, DEADLINE, as_of, exempt=unit.exempt)


@pytest.mark.parametrize("day", range(4, 17))
def test_each_day_matches_the_status_rules_at_its_end(day):
    as_of = datetime(2024, 5, day, 23, 59, tzinfo=VN)
    t = series(UNITS, DEADLINE, as_of)
    point = {d.date.day: d for d in t.days}[day]
    required = [u for u in UNITS if not u.exempt]
    standings = [standing_at(u, as_of) for u in required]
    assert t.required == 5
    assert point.received == sum(1 for s in standings if s.first_received_at is not None)
    assert point.complete == sum(1 for s in standings if s.complete)
    if as_of >= DEADLINE:
        assert point.on_time == sum(1 for s in standings if not s.late)


def test_series_runs_from_before_the_deadline_and_stops_after_the_last_event():
    t = series(UNITS, DEADLINE, datetime(2026, 1, 1, tzinfo=VN), [at(7, 8), at(7, 9), at(13)])
    assert t.days[0].date.isoformat() == "2024-04-25"  # 14 days before the last on-time day
    assert t.days[-1].date.isoformat() == "2024-05-21"  # 7 days after the last event
    assert {d.date.day: d.reminders_sent for d in t.reminder_days} == {7: 2, 13: 1}
    assert t.last_on_time_day.isoformat() == "2024-05-09"
    assert round(t.reporting_rate, 2) == 0.4 and round(t.on_time_rate, 2) == 0.6


def test_series_refuses_naive_instants():
    with pytest.raises(ValueError):
        series(UNITS, DEADLINE, datetime(2024, 5, 10))


def test_line_chart_marks_deadline_and_reminders():
    t = series(UNITS, DEADLINE, at(16), [at(7)])
    chart = line_chart(t)
    assert chart.deadline_x is not None and len(chart.markers) == 1
    assert len(chart.received.split()) == len(t.days)


def test_status_bars_have_six_distinct_colours_and_every_status():
    bars = status_bars({Status.ON_TIME: 3, Status.OVERDUE: 1})
    assert [b.status for b in bars.bars][0] is Status.ON_TIME and len(bars.bars) == 6
    assert len(set(STATUS_COLOURS.values())) == 6
    assert [b.count for b in bars.bars if b.status is Status.EXEMPT] == [0]


def test_blank_cells_become_ranges_per_sheet():
    cells = [f"{c}{r}" for r in range(6, 34) for c in "DEFGHI"]
    assert cell_ranges(cells) == ("D6:I33",)
    assert cell_ranges(["D6", "E6", "D7", "F9", "F10", "B1"]) == ("B1", "D6:E6", "D7", "F9:F10")
    issues = [SimpleNamespace(id=i, sheet="Biểu 03", cell=c, severity="error",
                              message=f"Ô {c} còn trống. Nếu không có số liệu, hãy ghi 0.")
              for i, c in enumerate(cells)]
    issues.append(SimpleNamespace(id=999, sheet="Biểu 03", cell="D6", severity="error", message="Tổng không khớp"))
    blanks = blank_groups(issues)
    assert [g.summary for g in blanks.groups] == ["Biểu 03: 168 ô trống, D6:I33"]
    assert 999 not in blanks.issue_ids and len(blanks.issue_ids) == 168


def test_officer_next_step():
    assert officer_next_step(True, 0, ReviewState.RETURNED, 2, 2).upload_again
    assert officer_next_step(True, 0, ReviewState.ACCEPTED, 2, 2).title == "Sở đã chấp nhận"
    assert officer_next_step(True, 0, None, 2, 2).title == "Chờ Sở xem xét"
    assert officer_next_step(False, 3, None, 2, 2).title == "Cần sửa lỗi"
    assert officer_next_step(True, 0, None, 3, 2).title == "Đã có phiên bản mới hơn"


def test_as_of_text_is_day_first_on_vietnam_time():
    assert parse_vn_datetime("10/05/2024 08:00") == datetime(2024, 5, 10, 1, 0, tzinfo=timezone.utc)
    assert parse_vn_datetime("1/5/2024") == datetime(2024, 4, 30, 17, 0, tzinfo=timezone.utc)
    for bad in ("31/02/2024 08:00", "2024-05-10", "10/05/2024 24:00", "10/05/24"):
        with pytest.raises(ValueError):
            parse_vn_datetime(bad)


def test_manual_reminder_rules():
    overdue = standing([], DEADLINE, at(12))
    assert manual_step(datetime(2024, 5, 11, 20, 0, tzinfo=timezone.utc)) == "2024-05-12"  # 03:00 in Vietnam
    assert check_remind("Huyện A", overdue, None, True, at(12)) == "2024-05-12"
    with pytest.raises(RemindRefused) as again:
        check_remind("Huyện A", overdue, at(12, 8), True, at(12))
    assert again.value.status == 409 and "12/05/2024 08:00" in again.value.message
    with pytest.raises(RemindRefused) as nobody:
        check_remind("Huyện A", overdue, None, False, at(12))
    assert nobody.value.code == "no_contacts"
    not_due = standing([], DEADLINE, at(5))
    with pytest.raises(RemindRefused) as early:
        check_remind("Huyện A", not_due, None, True, at(5))
    assert early.value.code == "nothing_to_chase" and early.value.status == 422
