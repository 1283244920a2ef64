"""Build national-scale plans in a scratch database: every unit of Vietnam, plans over its communes or
districts, and many return versions inserted in bulk (the benches measure reading them, not writing)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.common import read_national_units

DEADLINE = datetime(2024, 5, 9, 17, 0, tzinfo=timezone.utc)  # 10/5/2024 00:00 in Vietnam
PERIODS = [{"key": "base", "label": "Năm 2023", "start": "2023-01-01", "end": "2023-12-31"},
           {"key": "current", "label": "Quý I/2024", "start": "2024-01-01", "end": "2024-03-31"}]
# Versions per unit, cycled: 20 versions per 7 units, so 10,595 communes hold 30,271 versions.
VERSION_CYCLE = (0, 1, 2, 3, 4, 5, 5)


def load_nation() -> dict[int, list[dict[str, Any]]]:
    """Load every unit of Vietnam; return the GSO rows by level (1 provinces, 2 districts, 3 communes)."""
    from tracker.extensions import db
    from tracker.seed import load_units

    rows = read_national_units()
    load_units(rows)
    db.session.commit()
    by_level: dict[int, list[dict[str, Any]]] = {1: [], 2: [], 3: []}
    for row in rows:
        by_level[row["level"]].append(row)
    return by_level


def make_plan(code: str, assignments: list[dict[str, Any]]) -> Any:
    """Create and commit a plan over ``assignments`` ({"unit": code, "form": "PL03"}); return it."""
    from tracker.extensions import db
    from tracker.seed import load_plan

    plan = load_plan({"code": code, "title": f"Kế hoạch thử tải {code}", "issuer": "Sở LĐTBXH (thử tải)",
                      "deadline": DEADLINE, "deadline_text": "trước ngày 10/5/2024", "periods": PERIODS,
                      "department_email": "so@example.vn", "assignments": assignments})
    db.session.commit()
    return plan


def add_staff() -> tuple[str, str]:
    """Add a staff user with an API token; return (its Flask-Login session key, token)."""
    from tracker.accounts import issue_token
    from tracker.extensions import db
    from tracker.models import Role, User

    user = User(email="canbo@bench.example.vn", name="Cán bộ thử tải", role=Role.STAFF,
                password_hash="pbkdf2:sha256:1000$x$y")
    db.session.add(user)
    db.session.flush()
    token = issue_token(user)
    db.session.commit()
    return user.get_id(), token


def add_versions(plan: Any, cycle: tuple[int, ...] = VERSION_CYCLE, reviews_every: int = 5,
                 seed: int = 2024, deadline: datetime = DEADLINE) -> tuple[int, int]:
    """Insert versions for the plan's assignments in bulk (counts cycling through ``cycle``) and a review
    on every ``reviews_every``-th latest version; return (versions, reviews)."""
    from sqlalchemy import insert, select

    from tracker.extensions import db
    from tracker.models import Assignment, ReturnVersion, Review

    rng = random.Random(seed)
    ids = list(db.session.scalars(select(Assignment.id).where(Assignment.plan_id == plan.id)
                                  .order_by(Assignment.id)))
    rows: list[dict[str, Any]] = []
    for index, assignment_id in enumerate(ids):
        count = cycle[index % len(cycle)]
        start = deadline - timedelta(days=rng.randint(1, 20), minutes=rng.randint(0, 1440))
        for number in range(1, count + 1):
            received = start + timedelta(days=number * rng.randint(0, 3), minutes=rng.randint(1, 600))
            errors = 0 if number == count and rng.random() < 0.8 else rng.randint(1, 9)
            rows.append({"assignment_id": assignment_id, "version": number, "form_code": "PL03", "form_version": 1,
                         "file_kind": "xlsx", "filename": f"bao-cao-v{number}.xlsx", "size": 36000,
                         "sha256": f"{assignment_id:032x}{number:032x}", "received_at": received,
                         "uploaded_by_id": None, "note": "", "complete": errors == 0, "errors": errors,
                         "warnings": rng.randint(0, 2)})
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(ReturnVersion), rows[start:start + 5000])
    db.session.commit()
    latest = db.session.execute(select(ReturnVersion.id, ReturnVersion.assignment_id, ReturnVersion.version,
                                       ReturnVersion.received_at)
                                .join(Assignment, Assignment.id == ReturnVersion.assignment_id)
                                .where(Assignment.plan_id == plan.id)
                                .order_by(ReturnVersion.assignment_id, ReturnVersion.version)).all()
    newest: dict[int, Any] = {}
    for row in latest:
        newest[row.assignment_id] = row
    reviews = [{"version_id": row.id, "state": "accepted" if i % 2 else "returned",
                "reason": "" if i % 2 else "Biểu 03 chưa khớp số vụ; đề nghị rà soát.", "reviewer_id": None,
                "created_at": row.received_at + timedelta(hours=6)}
               for i, row in enumerate(list(newest.values())[::reviews_every])]
    if reviews:
        db.session.execute(insert(Review), reviews)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # A production database has planner statistics (autovacuum gathers them); a bulk fill seconds old has
        # none, and PostgreSQL then plans the status query for empty tables (tens of seconds instead of < 1).
        from sqlalchemy import text

        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return len(rows), len(reviews)
