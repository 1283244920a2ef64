"""Issue 20: the standings the database computes equal the pure rules of tracker.compliance.

Every history of tests/test_compliance.py's table (and its review cases) is stored as a unit of one plan,
and so is a randomised plan of 300 units with random versions, receipts around the deadline and reviews
(accepted or returned, before or after the instant asked); at many instants, ``plan_standings`` (one SQL
statement, tracker.standing_query) must give exactly ``compliance.standing`` of the same facts. Runs on
SQLite and, with TRACKER_TEST_DATABASE_URL, on PostgreSQL.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from test_compliance import CASES, DAY, DEADLINE, SECOND, bad, ok
from tracker.compliance import ReviewState, Status, VersionFacts, standing
from tracker.extensions import db
from tracker.models import Assignment, Plan, ReturnVersion, Review, Unit
from tracker.standing_query import Scope
from tracker.standings import plan_standings

UTC = timezone.utc


@dataclass
class History:
    """One unit's story: its versions and the reviews staff made of them (state, reason, when)."""

    versions: list[VersionFacts]
    reviews: dict[int, list[tuple[ReviewState, str, datetime]]] = field(default_factory=dict)
    exempt: bool = False
    withdrawn: dict[int, datetime] = field(default_factory=dict)


def facts_at(history: History, as_of: datetime) -> list[VersionFacts]:
    """The facts compliance.standing is given: each version with its last review made by ``as_of``."""
    result = []
    for v in history.versions:
        made = [r for r in history.reviews.get(v.version, []) if r[2] <= as_of]
        state, reason, when = made[-1] if made else (None, None, None)
        result.append(VersionFacts(v.version, v.received_at, v.complete, v.errors, v.warnings, state, reason, when,
                                   withdrawn_at=history.withdrawn.get(v.version)))
    return result


def store(app, histories: list[History], code: str = "sqltest") -> None:
    """Create plan ``code`` (deadline 10/5/2024 00:00 +07) with one unit per history under two parents."""
    with app.app_context():
        parents = [Unit(code=f"{code}-p{i}", name=f"Tỉnh thử {i}", kind="Tỉnh", level=1,
                        valid_from=date(2020, 1, 1)) for i in range(2)]
        db.session.add_all(parents)
        db.session.flush()
        plan = Plan(code=code, title="Kế hoạch thử", issuer="Sở", deadline=DEADLINE.astimezone(UTC))
        db.session.add(plan)
        db.session.flush()
        for index, history in enumerate(histories):
            unit = Unit(code=f"{code}-{index:04d}", name=f"Xã Thử {index}", kind="Xã", level=3,
                        parent_id=parents[index % 2].id, valid_from=date(2020, 1, 1))
            db.session.add(unit)
            db.session.flush()
            assignment = Assignment(plan_id=plan.id, unit_id=unit.id, form_code=None if history.exempt else "PL03",
                                    exempt_reason="Miễn" if history.exempt else None)
            db.session.add(assignment)
            db.session.flush()
            for v in history.versions:
                version = ReturnVersion(
                    assignment_id=assignment.id, version=v.version, form_code="PL03", form_version=1,
                    file_kind="xlsx", filename=f"v{v.version}.xlsx", size=10,
                    sha256=hashlib.sha256(f"{code}-{index}-{v.version}".encode()).hexdigest(),
                    received_at=v.received_at, complete=v.complete, errors=v.errors, warnings=v.warnings,
                    withdrawn_at=history.withdrawn.get(v.version))
                db.session.add(version)
                db.session.flush()
                rows = [{"version_id": version.id, "state": state.value, "reason": reason, "reviewer_id": None,
                         "created_at": when} for state, reason, when in history.reviews.get(v.version, [])]
                if rows:
                    db.session.execute(insert(Review), rows)
        db.session.commit()


def compare(app, histories: list[History], instants: list[datetime], code: str = "sqltest") -> int:
    """Assert SQL == rules for every unit at every instant; return how many standings were compared."""
    compared = 0
    with app.app_context():
        plan = db.session.query(Plan).filter_by(code=code).one()
        for as_of in instants:
            got = plan_standings(plan, as_of)
            assert [s.unit_code for s in got] == [f"{code}-{i:04d}" for i in range(len(histories))]
            for item, history in zip(got, histories):
                expected = standing(facts_at(history, as_of), DEADLINE, as_of, exempt=history.exempt)
                assert item.standing == expected, (item.unit_code, as_of, history, item.standing, expected)
                compared += 1
    return compared


REVIEW_CASES = [
    # returned for correction: incomplete, not late
    (History([ok(1, DEADLINE - DAY)], {1: [(ReviewState.RETURNED, "Sai Biểu 03", DEADLINE + DAY)]}),
     DEADLINE + 2 * DAY),
    # a review after as_of is ignored
    (History([ok(1, DEADLINE - DAY)], {1: [(ReviewState.RETURNED, "Sai", DEADLINE + 3 * DAY)]}), DEADLINE + DAY),
    # a new upload after the return clears it
    (History([ok(1, DEADLINE - DAY), ok(2, DEADLINE + DAY)], {1: [(ReviewState.RETURNED, "Sai", DEADLINE)]}),
     DEADLINE + 2 * DAY),
    # returned late return stays late after correction
    (History([ok(1, DEADLINE + DAY), ok(2, DEADLINE + 3 * DAY)], {1: [(ReviewState.RETURNED, "Sai", DEADLINE + 2 * DAY)]}),
     DEADLINE + 4 * DAY),
    # accepted, then returned, then accepted again: the last decision by as_of counts
    (History([ok(1, DEADLINE - DAY)], {1: [(ReviewState.ACCEPTED, "", DEADLINE), (ReviewState.RETURNED, "Sai", DEADLINE + DAY),
                                           (ReviewState.ACCEPTED, "", DEADLINE + 2 * DAY)]}), DEADLINE + DAY + SECOND),
    # a return of an incomplete latest version keeps the reason
    (History([bad(1, DEADLINE - DAY)], {1: [(ReviewState.RETURNED, "Thiếu số liệu", DEADLINE - DAY + SECOND)]}),
     DEADLINE - SECOND),
    # exempt whatever happens
    (History([bad(1, DEADLINE + DAY)], {1: [(ReviewState.RETURNED, "x", DEADLINE + DAY)]}, exempt=True),
     DEADLINE + 2 * DAY),
    (History([], exempt=True), DEADLINE - DAY),
    (History([ok(1, DEADLINE - DAY)], exempt=True), DEADLINE + DAY),
    # a later upload with errors is a draft: the complete version still counts
    (History([ok(1, DEADLINE - DAY), bad(2, DEADLINE + DAY)]), DEADLINE + 2 * DAY),
    # withdrawn before as_of: it stops counting; withdrawn after as_of: it still counts at as_of
    (History([ok(1, DEADLINE - DAY), ok(2, DEADLINE + DAY)], withdrawn={2: DEADLINE + 2 * DAY}), DEADLINE + 3 * DAY),
    (History([ok(1, DEADLINE - DAY)], withdrawn={1: DEADLINE + 2 * DAY}), DEADLINE + DAY),
    (History([ok(1, DEADLINE - DAY)], withdrawn={1: DEADLINE + 2 * DAY}), DEADLINE + 3 * DAY),
    # returned complete version, earlier complete one counts again
    (History([ok(1, DEADLINE - 2 * DAY), ok(2, DEADLINE - DAY)], {2: [(ReviewState.RETURNED, "Sai", DEADLINE)]}),
     DEADLINE + DAY),
    # two versions received at the same instant: the higher number is the latest
    (History([bad(2, DEADLINE - DAY), ok(1, DEADLINE - DAY)]), DEADLINE + DAY),
    (History([ok(2, DEADLINE - DAY), bad(1, DEADLINE - DAY)]), DEADLINE + DAY),
]


def test_every_case_of_the_compliance_table(app) -> None:
    histories = [History(list(case[1])) for case in CASES] + [h for h, _ in REVIEW_CASES]
    store(app, histories)
    instants = sorted({case[2] for case in CASES} | {t for _, t in REVIEW_CASES}
                      | {DEADLINE, DEADLINE - SECOND, DEADLINE + SECOND, datetime(2024, 4, 1, tzinfo=UTC)})
    assert compare(app, histories, instants) == len(histories) * len(instants)
    # And each at its own instant, where the table states the expected values (checked in test_compliance).
    with app.app_context():
        plan = db.session.query(Plan).filter_by(code="sqltest").one()
        for index, case in enumerate(CASES):
            name, _versions, as_of, status, late, complete, days_left, days_late = case
            got = plan_standings(plan, as_of, unit_ids=None)[index].standing
            assert (got.status, got.late, got.complete, got.days_left, got.days_late) == \
                (status, late, complete, days_left, days_late), name


def random_histories(rng: random.Random, count: int) -> list[History]:
    histories = []
    # Receipts on whole seconds and at microseconds around the deadline, so the day counts are exercised
    # at their edges (exactly n days, n days and a microsecond).
    offsets = [timedelta(0), SECOND, -SECOND, timedelta(microseconds=1), -timedelta(microseconds=1), DAY, -DAY,
               2 * DAY, 2 * DAY + timedelta(microseconds=1), -3 * DAY]
    for _ in range(count):
        versions = []
        reviews: dict[int, list[tuple[ReviewState, str, datetime]]] = {}
        when = DEADLINE + rng.choice(offsets) - rng.choice([timedelta(0), 2 * DAY, 5 * DAY])
        for number in range(1, rng.choice([0, 1, 1, 2, 3, 5]) + 1):
            when = when + rng.choice([timedelta(0), timedelta(hours=rng.randint(1, 60)), rng.choice(offsets) % DAY])
            complete = rng.random() < 0.6
            errors = 0 if complete else rng.randint(1, 9)
            versions.append(VersionFacts(number, when, complete, errors, rng.randint(0, 3)))
            if rng.random() < 0.4:
                made = when
                reviews[number] = []
                for _ in range(rng.randint(1, 3)):
                    made = made + rng.choice([timedelta(0), timedelta(hours=5), DAY, rng.choice(offsets) % DAY])
                    state = rng.choice([ReviewState.ACCEPTED, ReviewState.RETURNED])
                    reviews[number].append((state, "Đề nghị sửa Biểu 0" + str(rng.randint(1, 7))
                                            if state is ReviewState.RETURNED else "", made))
        withdrawn = {v.version: v.received_at + rng.choice([timedelta(0), timedelta(hours=3), 2 * DAY])
                     for v in versions if rng.random() < 0.15}
        if rng.random() < 0.3:
            rng.shuffle(versions)  # stored in any order: the receipt decides
        histories.append(History(versions, reviews, exempt=rng.random() < 0.05, withdrawn=withdrawn))
    return histories


def test_a_randomised_plan_of_300_units(app) -> None:
    rng = random.Random(20)
    histories = random_histories(rng, 300)
    store(app, histories, code="random")
    instants = [DEADLINE + offset for offset in (-10 * DAY, -DAY - SECOND, -SECOND, timedelta(0),
                                                 timedelta(microseconds=1), SECOND, DAY, DAY + SECOND,
                                                 2 * DAY + timedelta(microseconds=1), 4 * DAY, 30 * DAY)]
    instants += [DEADLINE + timedelta(seconds=rng.randint(-5 * 86400, 8 * 86400)) for _ in range(8)]
    assert compare(app, histories, instants, code="random") == 300 * len(instants)
    statuses = {s.standing.status for s in _at(app, "random", DEADLINE + 4 * DAY)}
    assert statuses >= {Status.OVERDUE, Status.INCOMPLETE, Status.ON_TIME, Status.LATE, Status.EXEMPT}


def _at(app, code: str, as_of: datetime, scope: Scope | None = None) -> list:
    with app.app_context():
        plan = db.session.query(Plan).filter_by(code=code).one()
        return plan_standings(plan, as_of, scope=scope)


def test_scopes_and_pages_are_slices_of_the_whole(app) -> None:
    histories = random_histories(random.Random(7), 60)
    store(app, histories, code="scoped")
    as_of = DEADLINE + 2 * DAY
    whole = _at(app, "scoped", as_of)
    with app.app_context():
        parent = db.session.query(Unit).filter_by(code="scoped-p1").one().id
        plan = db.session.query(Plan).filter_by(code="scoped").one()
        assert plan_standings(plan, as_of, limit=7, offset=14) == whole[14:21]
    under = _at(app, "scoped", as_of, Scope(parent_id=parent))
    assert under == [s for i, s in enumerate(whole) if i % 2 == 1]
    for status in Status:
        assert _at(app, "scoped", as_of, Scope(status=status)) == [s for s in whole if s.standing.status is status]
    assert _at(app, "scoped", as_of, Scope(search="scoped-0042")) == [whole[42]]
    assert _at(app, "scoped", as_of, Scope(search="xã thử 4")) == [s for s in whole if s.unit_name.startswith("Xã Thử 4")]


def test_naive_as_of_is_refused(app) -> None:
    with app.app_context():
        plan = db.session.query(Plan).first()
        with pytest.raises(ValueError):
            plan_standings(plan, datetime(2024, 5, 10))
