"""The per-plan cache of the dashboard's day series (plan_series): a "now" view reuses the plan's facts, and
an upload, a review, a withdrawal, a reminder sent and a deadline edit each change the answer at once; a
historical ``as_of`` is read afresh. Every answer is compared with the pure ``timeliness.series``."""
from __future__ import annotations

from datetime import timezone

from test_compliance import DAY, DEADLINE, bad, ok
from test_standing_sql import History, store
from tracker import plan_series, standing_cache
from tracker.compliance import ReviewState
from tracker.extensions import db
from tracker.models import Assignment, Plan, ReturnVersion, Review
from tracker.timeliness import Receipt, ReviewEvent, UnitEvents, series
from versions import version_row

UTC = timezone.utc
NOW = DEADLINE + 20 * DAY


def pure(plan: Plan, as_of):
    """The series from the stored rows, through the pure function only (no cache, no fingerprint)."""
    units = []
    for a in db.session.query(Assignment).filter_by(plan_id=plan.id).order_by(Assignment.id):
        versions = db.session.query(ReturnVersion).filter_by(assignment_id=a.id).all()
        receipts = tuple(Receipt(v.received_at, v.version, v.complete, v.withdrawn_at) for v in versions)
        reviews = tuple(ReviewEvent(r.created_at, v.version, r.state) for v in versions
                        for r in db.session.query(Review).filter_by(version_id=v.id).order_by(Review.id))
        units.append(UnitEvents(a.form_code is None, receipts, reviews))
    return series(units, plan.deadline, as_of, [])


def test_now_views_reuse_the_facts_and_every_event_changes_the_answer(app) -> None:
    histories = [History([ok(1, DEADLINE - DAY)]), History([bad(1, DEADLINE - 2 * DAY)]), History([]),
                 History([ok(1, DEADLINE + DAY)]), History([], exempt=True)]
    store(app, histories, code="cache")
    with app.app_context():
        plan = db.session.query(Plan).filter_by(code="cache").one()
        standing_cache.clear()
        first = plan_series.plan_timeliness(plan, NOW)
        assert first == pure(plan, NOW)
        assert (first.last.received, first.last.complete, first.last.on_time) == (3, 2, 1)
        # A later "now" reuses the facts and still draws the days up to its own as_of.
        served = standing_cache.stats["hits"]
        later = plan_series.plan_timeliness(plan, NOW + DAY / 2)
        assert standing_cache.stats["hits"] == served + 1
        assert later == pure(plan, NOW + DAY / 2)
        # A historical as_of, with receipts between it and now, is read afresh; asked again, it is reused.
        before = plan_series.plan_timeliness(plan, DEADLINE - DAY)
        assert standing_cache.stats["hits"] == served + 1
        assert before == pure(plan, DEADLINE - DAY)
        assert (before.last.received, before.last.complete) == (2, 1)
        assert plan_series.plan_timeliness(plan, DEADLINE - DAY) == before
        assert standing_cache.stats["hits"] == served + 2

        units = [a.id for a in db.session.query(Assignment).filter_by(plan_id=plan.id).order_by(Assignment.id)]
        # An upload: the unit that had sent nothing sends a complete return.
        fixed = version_row(units[2], 1, (NOW - DAY).astimezone(UTC), True, label="cache")
        db.session.commit()
        got = plan_series.plan_timeliness(plan, NOW)
        assert got == pure(plan, NOW) and (got.last.received, got.last.complete) == (4, 3)
        # A review returning it for correction.
        db.session.add(Review(version_id=fixed.id, state=ReviewState.RETURNED.value, reason="Sai",
                              created_at=(NOW - DAY / 2).astimezone(UTC)))
        db.session.commit()
        got = plan_series.plan_timeliness(plan, NOW)
        assert got == pure(plan, NOW) and got.last.complete == 2
        # A withdrawal of the on-time return.
        on_time = db.session.query(ReturnVersion).filter_by(assignment_id=units[0]).one()
        on_time.withdrawn_at = (NOW - DAY / 4).astimezone(UTC)
        db.session.commit()
        got = plan_series.plan_timeliness(plan, NOW)
        assert got == pure(plan, NOW) and got.last.complete == 1
        # A deadline edit: moved two days later, the return of deadline + 1 day becomes on time.
        assert got.last.on_time == 1
        plan.deadline = (DEADLINE + 2 * DAY).astimezone(UTC)
        db.session.commit()
        got = plan_series.plan_timeliness(plan, NOW)
        assert got == pure(plan, NOW) and got.last.on_time == 2
