"""Version rows made directly in the database, for tests of status, review and the dashboard."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from tracker.extensions import db
from tracker.models import Assignment, Plan, ReturnVersion, Unit


def version_row(assignment_id: int, number: int, received_at: datetime, complete: bool, errors: int = 0,
                warnings: int = 0, form_code: str = "PL03", label: str = "") -> ReturnVersion:
    """Add version ``number`` of an assignment's return (no file, no values) to the session, flushed; return it.

    Inside an app context; the caller commits. ``label`` names the file and seeds its sha256 (the unit code).
    """
    label = label or str(assignment_id)
    version = ReturnVersion(
        assignment_id=assignment_id, version=number, form_code=form_code, form_version=1, file_kind="xlsx",
        filename=f"{label}-{number}.xlsx", size=10, sha256=hashlib.sha256(f"{label}-{number}".encode()).hexdigest(),
        received_at=received_at, complete=complete, errors=errors, warnings=warnings)
    db.session.add(version)
    db.session.flush()
    return version


def add_version(app: Any, unit_code: str, number: int, received_at: datetime, complete: bool,
                errors: int = 0, warnings: int = 0, plan_code: str = "bacgiang-2024") -> int:
    """Store version ``number`` of the unit's return (no file, no values) and return its id."""
    with app.app_context():
        assignment = db.session.scalar(select(Assignment).join(Unit).join(Plan).where(
            Unit.code == unit_code, Plan.code == plan_code))
        version = version_row(assignment.id, number, received_at, complete, errors, warnings,
                              assignment.form_code or "PL03", unit_code)
        db.session.commit()
        return version.id


DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=timezone(timedelta(hours=7)))


def add_sample_returns(app: Any) -> None:
    """213 on time, 215 incomplete, 216 late (first complete after the deadline), 219 on time then fixed."""
    add_version(app, "213", 1, DEADLINE - timedelta(days=2), True, warnings=1)
    add_version(app, "215", 1, DEADLINE - timedelta(days=1), False, errors=3, warnings=2)
    add_version(app, "216", 1, DEADLINE - timedelta(days=3), False, errors=1)
    add_version(app, "216", 2, DEADLINE + timedelta(hours=5), True)
    add_version(app, "219", 1, DEADLINE - timedelta(days=4), True)
    add_version(app, "219", 2, DEADLINE - timedelta(seconds=1), True, warnings=4)
