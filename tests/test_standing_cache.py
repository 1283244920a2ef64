"""Issue 20: the per-plan cache of standings, roll-ups and counts (tracker.standing_cache) gives exactly the
answers computed without it, and every write path that can change them bumps the plan's change counter
(tracker.plan_changes) in its own transaction, so the next read computes afresh.

Agreement: the histories of the compliance table (tests/test_standing_sql.py) and a randomised plan, each
answer computed at one instant and then asked at another (same day, across the deadline, across an event),
must equal ``compliance.standing`` at the instant asked. Invalidation: for each write path (an upload, an
email intake, a review, a withdrawal, a signed report, a deadline edit, the "signed report required"
switch, an assignment made exempt, added or dropped, a plan copy, a unit renamed one by one or in bulk),
a warm entry is replaced by the uncached answer after the event. Runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

import pdf_fixtures as pdfs
from intake_fixtures import LUC_NGAN_CONTACT, XLSX, filled_return, make_email
from test_compliance import CASES, DAY, DEADLINE, SECOND, ok
from test_standing_sql import REVIEW_CASES, History, facts_at, random_histories, store
from tracker import standing_cache
from tracker.compliance import Status, standing
from tracker.extensions import db
from tracker.models import Assignment, Plan, Unit
from tracker.review_queue import review_queue
from tracker.rollup import count_filtered, rollup
from tracker.standing_query import Scope
from tracker.standings import plan_standings
from versions import add_version

PLAN = "bacgiang-2024"
# After every event these tests make, uploads stamped by the real clock included.
LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture(autouse=True)
def cold_cache():
    standing_cache.clear()
    yield
    standing_cache.enabled = True
    standing_cache.clear()


def uncached(fn):
    standing_cache.enabled = False
    try:
        return fn()
    finally:
        standing_cache.enabled = True


def hits() -> int:
    return standing_cache.stats["hits"]


# ---------------------------------------------------------------------------------------------------
# Cached answers equal the rules


def _pairs_agree(app, histories: list[History], instants: list[datetime], code: str) -> int:
    """For each (first, then): fill the cache at ``first``, ask at ``then``; assert the rules' answer at
    ``then``. Return how many of the second calls were served by the cache."""
    served = 0
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == code))
        for first in instants:
            for then in instants:
                standing_cache.clear()
                plan_standings(plan, first)
                before = hits()
                got = plan_standings(plan, then)
                served += hits() - before
                for item, history in zip(got, histories, strict=True):
                    expected = standing(facts_at(history, then), DEADLINE, then, exempt=history.exempt)
                    assert item.standing == expected, (item.unit_code, first, then, item.standing, expected)
    return served


def test_cached_standings_equal_the_rules_on_every_case_of_the_table(app) -> None:
    histories = [History(list(case[1])) for case in CASES] + [h for h, _ in REVIEW_CASES]
    store(app, histories)
    # The table's instants, the deadline's edges, and instants past every event, a second, an hour and
    # days apart (the days late while nothing complete arrived change every 24 hours).
    last = DEADLINE + 40 * DAY
    instants = sorted({case[2] for case in CASES} | {t for _, t in REVIEW_CASES}
                      | {DEADLINE, DEADLINE - SECOND, DEADLINE + SECOND, datetime(2024, 4, 1, tzinfo=UTC),
                         last, last + SECOND, last + timedelta(hours=1), last + DAY, last + 3 * DAY})
    served = _pairs_agree(app, histories, instants, "sqltest")
    # Every instant asked twice is served, and so are the later ones within a day past every event.
    assert served >= len(instants) + 3


def test_cached_standings_equal_the_rules_on_a_randomised_plan(app) -> None:
    rng = random.Random(2020)
    histories = random_histories(rng, 120)
    store(app, histories, code="random")
    instants = [DEADLINE + offset for offset in (-DAY, -SECOND, timedelta(0), SECOND, 2 * DAY, 30 * DAY,
                                                 30 * DAY + timedelta(hours=5), 31 * DAY)]
    instants += [DEADLINE + timedelta(seconds=rng.randint(-5 * 86400, 8 * 86400)) for _ in range(4)]
    assert _pairs_agree(app, histories, sorted(instants), "random") >= len(instants)


def test_cached_pages_rollups_and_counts_equal_the_uncached(app) -> None:
    histories = random_histories(random.Random(7), 80)
    store(app, histories, code="scoped")
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == "scoped"))
        parent = db.session.scalar(select(Unit.id).where(Unit.code == "scoped-p1"))
        scopes = [Scope(), Scope(parent_id=parent), Scope(search="xã thử 4"),
                  Scope(parent_id=parent, status=Status.OVERDUE)]
        sorts = [None, ("days", True), ("status", False)]
        far = DEADLINE + 60 * DAY
        instants = [DEADLINE - DAY, DEADLINE + 2 * DAY, far, far + timedelta(hours=2)]
        for first in instants:
            for then in instants:
                for scope in scopes:
                    for sort in sorts:
                        def page(at, scope=scope, sort=sort):
                            return plan_standings(plan, at, scope=scope, limit=9, offset=3, sort=sort)

                        page(first)
                        assert page(then) == uncached(lambda: page(then)), (first, then, scope, sort)
                    rollup(plan, first, scope)
                    count_filtered(plan, first, scope)
                    assert rollup(plan, then, scope) == uncached(lambda: rollup(plan, then, scope))
                    assert count_filtered(plan, then, scope) == uncached(lambda: count_filtered(plan, then, scope))
        assert hits() > 100


def test_days_late_order_is_not_reused_at_the_instant_of_the_last_event(app) -> None:
    # Sorted by days late, a unit missing is ordered by as_of itself, a unit late by its first complete
    # receipt: at the instant of that receipt the two compare differently than an instant later.
    late_at = DEADLINE + 3 * DAY
    store(app, [History([]), History([ok(1, late_at)])], code="ties")
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == "ties"))
        by_days = ("days", False)
        plan_standings(plan, late_at + SECOND, sort=by_days)
        served = hits()
        at_event = plan_standings(plan, late_at, sort=by_days)
        assert hits() == served  # computed afresh
        assert at_event == uncached(lambda: plan_standings(plan, late_at, sort=by_days))
        after = plan_standings(plan, late_at + 2 * SECOND, sort=by_days)
        # Served by the entry computed after the event (the same order holds past it), never by the one
        # computed at the event's instant.
        assert hits() == served + 1
        assert after == uncached(lambda: plan_standings(plan, late_at + 2 * SECOND, sort=by_days))
        assert after != at_event


# ---------------------------------------------------------------------------------------------------
# Every write path invalidates


def _now_view(app, code: str = PLAN) -> list:
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == code))
        return [(s.unit_code, s.unit_name, s.form_code, s.exempt_reason, s.standing)
                for s in plan_standings(plan, LATER)]


def _changes_answer(app, event, code: str = PLAN) -> None:
    """Warm the cache, check it serves, run ``event``; the next answer is the uncached one and differs."""
    before = _now_view(app, code)
    served = hits()
    assert _now_view(app, code) == before and hits() == served + 1
    event()
    after = _now_view(app, code)
    assert after == uncached(lambda: _now_view(app, code))
    assert after != before


def _unit_row(rows: list, code: str):
    return next(r for r in rows if r[0] == code)


def test_an_upload_invalidates(app, client, token_for) -> None:
    data = filled_return(app, "219")

    def upload():
        response = client.post(f"/api/v1/plans/{PLAN}/units/219/returns",
                               headers={"Authorization": f"Bearer {token_for('unit', '219')}"},
                               data={"file": (io.BytesIO(data), "bao-cao.xlsx")}, content_type="multipart/form-data")
        assert response.status_code == 201, response.get_data(as_text=True)[:300]

    _changes_answer(app, upload)
    assert _unit_row(_now_view(app), "219")[4].latest_version == 1


def test_an_email_intake_invalidates(app, runner, tmp_path: Path) -> None:
    raw = make_email(LUC_NGAN_CONTACT, [("Báo cáo.xlsx", filled_return(app, "219"), XLSX)],
                     date=datetime(2024, 5, 8, tzinfo=UTC),
                     extra={"Received": "from mx by mail; Thu, 9 May 2024 22:30:00 +0700"})
    path = tmp_path / "thư.eml"
    path.write_bytes(raw)

    def intake():
        result = runner.invoke(args=["ingest-mail", "--eml", str(path)])
        assert result.exit_code == 0 and "phiên bản 1" in result.output, result.output

    _changes_answer(app, intake)
    assert _unit_row(_now_view(app), "219")[4].status is Status.ON_TIME


def test_a_review_invalidates(app, client, login_as) -> None:
    add_version(app, "219", 1, DEADLINE - DAY, True)
    login_as("staff")

    def review():
        response = client.post(f"/plans/{PLAN}/units/219/versions/1/return", data={"reason": "Sai Biểu 03"})
        assert response.status_code == 302

    _changes_answer(app, review)
    assert _unit_row(_now_view(app), "219")[4].status is Status.INCOMPLETE


def test_the_live_view_and_a_historical_one_asked_in_turn_are_both_kept(app) -> None:
    # "Now" and "at the deadline" on either side of an upload: one entry each, not one pushing the other out.
    add_version(app, "219", 1, DEADLINE - DAY, True)
    before, after = DEADLINE - 2 * DAY, LATER
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        first = [plan_standings(plan, before), plan_standings(plan, after)]
        served = hits()
        again = [plan_standings(plan, before), plan_standings(plan, after)]
        assert hits() == served + 2
        assert again == first == uncached(lambda: [plan_standings(plan, before), plan_standings(plan, after)])
        status = [next(u.standing.status for u in rows if u.unit_code == "219") for rows in again]
        assert status == [Status.NOT_DUE, Status.ON_TIME]


def test_the_review_queue_is_kept_until_a_review_or_an_upload(app, client, login_as, token_for) -> None:
    add_version(app, "219", 1, DEADLINE - DAY, True)
    add_version(app, "213", 1, DEADLINE - DAY, True)

    def queue() -> list[tuple[str, int]]:
        with app.app_context():
            plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
            return [(w.unit_code, w.version) for w in review_queue(plan)]

    assert queue() == [("213", 1), ("219", 1)]
    served = hits()
    assert queue() == [("213", 1), ("219", 1)] and hits() == served + 1
    login_as("staff")
    response = client.post(f"/plans/{PLAN}/units/219/versions/1/accept")
    assert response.status_code == 302
    assert queue() == [("213", 1)]
    assert queue() == uncached(queue)
    add_version(app, "219", 2, DEADLINE, True)
    assert queue() == [("213", 1), ("219", 2)] == uncached(queue)


def test_a_withdrawal_invalidates_only_its_plan(app, client, token_for) -> None:
    add_version(app, "219", 1, DEADLINE - DAY, True)
    other = _copy(app)
    _now_view(app, other)

    def withdraw():
        response = client.post(f"/api/v1/plans/{PLAN}/units/219/versions/1/withdraw",
                               headers={"Authorization": f"Bearer {token_for('unit', '219')}"})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]

    _changes_answer(app, withdraw)
    assert _unit_row(_now_view(app), "219")[4].status is Status.INCOMPLETE  # received, nothing counts
    served = hits()
    _now_view(app, other)  # named by the withdrawal: the other plan's entry stays
    assert hits() == served + 1


def test_a_signed_report_and_the_switch_requiring_it_invalidate(app, client, token_for) -> None:
    add_version(app, "219", 1, DEADLINE - DAY, True)

    def require():
        with app.app_context():
            db.session.scalar(select(Plan).where(Plan.code == PLAN)).signed_report_required = True
            db.session.commit()

    _changes_answer(app, require)
    assert _unit_row(_now_view(app), "219")[4].status is Status.INCOMPLETE

    def signed_report():
        response = client.post(f"/api/v1/plans/{PLAN}/units/219/signed-report",
                               headers={"Authorization": f"Bearer {token_for('unit', '219')}"},
                               data={"file": (io.BytesIO(pdfs.make_pdf()), "bao-cao.pdf")},
                               content_type="multipart/form-data")
        assert response.status_code == 201, response.get_data(as_text=True)[:300]

    _changes_answer(app, signed_report)
    assert _unit_row(_now_view(app), "219")[4].status is Status.LATE


def test_a_deadline_edit_invalidates(app) -> None:
    # Received half an hour after the deadline, which then moves an hour later: late becomes on time, while
    # the as-of constants (days late of a unit still missing, counted up to as_of) stay the same.
    add_version(app, "219", 1, DEADLINE + timedelta(minutes=30), True)
    as_of = DEADLINE + 10 * DAY + timedelta(hours=12)

    def view():
        with app.app_context():
            plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
            return {s.unit_code: s.standing for s in plan_standings(plan, as_of)}

    before = view()
    assert before["219"].status is Status.LATE
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        plan.deadline = plan.deadline + timedelta(hours=1)
        db.session.commit()
    after = view()
    assert after == uncached(view) and after["219"].status is Status.ON_TIME
    assert after["213"].days_late == before["213"].days_late  # the constants alone would not have told


def _assignment(code: str, plan_code: str = PLAN) -> Assignment:
    return db.session.scalar(select(Assignment).join(Unit).join(Plan).where(Unit.code == code, Plan.code == plan_code))


def test_assignment_changes_invalidate(app) -> None:
    def exempt():
        with app.app_context():
            assignment = _assignment("219")
            assignment.form_code, assignment.exempt_reason = None, "Sáp nhập"
            db.session.commit()

    _changes_answer(app, exempt)
    assert _unit_row(_now_view(app), "219")[4].status is Status.EXEMPT

    def drop():
        with app.app_context():
            db.session.delete(_assignment("219"))
            db.session.commit()

    _changes_answer(app, drop)
    assert "219" not in {r[0] for r in _now_view(app)}

    def add():
        with app.app_context():
            plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
            unit = db.session.scalar(select(Unit).where(Unit.code == "219"))
            db.session.add(Assignment(plan_id=plan.id, unit_id=unit.id, form_code="PL03"))
            db.session.commit()

    _changes_answer(app, add)
    assert _unit_row(_now_view(app), "219")[4].status is Status.OVERDUE


def _copy(app) -> str:
    from tracker.plans import copy_plan

    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        copy = copy_plan(PLAN, "bacgiang-2025", plan.deadline + 365 * DAY)
        db.session.commit()
        return copy.code


def test_a_plan_copy_starts_its_own_entries_and_its_edits_invalidate(app) -> None:
    add_version(app, "219", 1, DEADLINE - DAY, True)
    source = _now_view(app)
    code = _copy(app)
    copied = _now_view(app, code)
    assert copied == uncached(lambda: _now_view(app, code)) and copied != source
    assert _unit_row(copied, "219")[4].status is Status.OVERDUE  # the copy starts with nothing received

    def drop():
        with app.app_context():
            db.session.delete(_assignment("219", code))
            db.session.commit()

    _changes_answer(app, drop, code)
    served = hits()
    assert _now_view(app) == source and hits() == served + 1  # the source plan was not touched


def test_unit_edits_invalidate_one_by_one_and_in_bulk(app) -> None:
    def rename():
        with app.app_context():
            db.session.scalar(select(Unit).where(Unit.code == "219")).name = "Huyện Lục Ngạn (mới)"
            db.session.commit()

    _changes_answer(app, rename)

    def bulk_rename():
        with app.app_context():
            unit_id = db.session.scalar(select(Unit.id).where(Unit.code == "219"))
            db.session.execute(update(Unit), [{"id": unit_id, "name": "Huyện Lục Ngạn"}])
            db.session.commit()

    _changes_answer(app, bulk_rename)
    assert _unit_row(_now_view(app), "219")[1] == "Huyện Lục Ngạn"


def test_a_rolled_back_write_never_leaves_an_entry_behind(app) -> None:
    before = _now_view(app)
    with app.app_context():
        add = _assignment("219")
        add.form_code, add.exempt_reason = None, "Thử"
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        # Read inside the writing transaction: computed afresh (it sees the pending edit), never kept.
        seen = {s.unit_code: s for s in plan_standings(plan, LATER)}
        assert seen["219"].standing.status is Status.EXEMPT
        db.session.rollback()
    assert _now_view(app) == before == uncached(lambda: _now_view(app))


def test_an_entry_is_never_given_for_an_instant_before_an_event_it_includes(app) -> None:
    add_version(app, "219", 1, DEADLINE + 5 * DAY, True)
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        plan_standings(plan, DEADLINE + 6 * DAY)
        served = hits()
        earlier = {s.unit_code: s.standing for s in plan_standings(plan, DEADLINE + 4 * DAY)}
        assert hits() == served  # an event lies between: computed afresh
        assert earlier["219"].status is Status.OVERDUE
