"""Version rows made directly in the database, for tests of status, review and the dashboard."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select

from tracker.extensions import db
from tracker.models import Assignment, Plan, ReturnVersion, Unit


def add_version(app: Any, unit_code: str, number: int, received_at: datetime, complete: bool,
                errors: int = 0, warnings: int = 0, plan_code: str = "bacgiang-2024") -> int:
    """Store version ``number`` of the unit's return (no file, no values) and return its id."""
    with app.app_context():
        assignment = db.session.scalar(select(Assignment).join(Unit).join(Plan).where(
            Unit.code == unit_code, Plan.code == plan_code))
        version = ReturnVersion(
            assignment=assignment, version=number, form_code=assignment.form_code or "PL03", form_version=1,
            file_kind="xlsx", filename=f"{unit_code}-{number}.xlsx", size=10,
            sha256=hashlib.sha256(f"{unit_code}-{number}".encode()).hexdigest(), received_at=received_at,
            complete=complete, errors=errors, warnings=warnings)
        db.session.add(version)
        db.session.commit()
        return version.id
