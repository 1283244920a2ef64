"""The queries gathering a plan's consolidated export: standings, the counted versions' values and covers,
the latest versions' open issues, each unit's level (``export_writer.build_workbook`` turns them into the workbook).

Five queries whatever the number of units, never one per unit.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from .export import ExportInput, ExportIssue, ExportUnit, ExportValue
from .extensions import db
from .models import Assignment, Plan, ReturnIssue, ReturnValue, ReturnVersion, Unit
from .standings import plan_standings
from .wording import plan_document


def _cover_facts(cover: dict[str, Any] | None) -> dict[str, str]:
    cover = cover or {}
    signer = " ".join(str(cover.get(key) or "") for key in ("signer_title", "signer_name")).strip()
    return {"report_number": str(cover.get("report_number") or ""), "report_date": str(cover.get("report_date") or ""),
            "signer": signer}


def collect_export_input(plan: Plan, as_of: datetime) -> ExportInput:
    """Return the ExportInput of ``plan`` at ``as_of``: standings, the used versions' values, open issues.

    Five queries whatever the number of units. Raises ValueError when ``as_of`` is naive.
    """
    standings = plan_standings(plan, as_of)
    # The export's numbers are the counted versions' (phiên bản được tính), the same the status shows.
    unit_of_version = {s.counted_version_id: s.unit_code for s in standings if s.counted_version_id is not None}
    covers: dict[int, Any] = {}
    if unit_of_version:
        covers = dict(db.session.execute(select(ReturnVersion.id, ReturnVersion.cover)
                                         .where(ReturnVersion.id.in_(list(unit_of_version)))).all())
    values: list[ExportValue] = []
    if unit_of_version:
        for vid, sheet, indicator, period, breakdown, value, text in db.session.execute(
                select(ReturnValue.version_id, ReturnValue.sheet, ReturnValue.indicator, ReturnValue.period,
                       ReturnValue.breakdown, ReturnValue.value, ReturnValue.text)
                .where(ReturnValue.version_id.in_(list(unit_of_version))).order_by(ReturnValue.id)):
            values.append(ExportValue(unit_of_version[vid], sheet, indicator, period or "", breakdown or "",
                                      value, text))
    issues: list[ExportIssue] = []
    latest_number = {s.latest_version_id: (s.unit_code, s.standing.latest_version) for s in standings
                     if s.latest_version_id is not None}
    if latest_number:
        for vid, severity, sheet, cell, indicator, message in db.session.execute(
                select(ReturnIssue.version_id, ReturnIssue.severity, ReturnIssue.sheet, ReturnIssue.cell,
                       ReturnIssue.indicator, ReturnIssue.message)
                .where(ReturnIssue.version_id.in_(list(latest_number))).order_by(ReturnIssue.id)):
            unit_code, number = latest_number[vid]
            issues.append(ExportIssue(unit_code, number, severity, sheet, cell, indicator, message))
    issues.sort(key=lambda i: (i.unit_code, 0 if i.severity == "error" else 1))
    # A commune's figures leave out the rows marked for districts only: the export needs each level.
    levels = dict(db.session.execute(select(Unit.id, Unit.level).where(
        Unit.id.in_(select(Assignment.unit_id).where(Assignment.plan_id == plan.id)))).all())

    units = tuple(
        ExportUnit(
            code=s.unit_code, name=s.unit_name, form_code=s.form_code, status=s.standing.status,
            late=s.standing.late, days_late=s.standing.days_late, errors=s.standing.errors,
            warnings=s.standing.warnings, review=s.standing.review, review_reason=s.standing.review_reason,
            latest_version=s.standing.latest_version, latest_received_at=s.standing.latest_received_at,
            used_version=s.standing.counted_version, used_received_at=s.standing.counted_received_at,
            **_cover_facts(covers.get(s.counted_version_id or 0)),
            level=levels.get(s.unit_id))
        for s in standings)
    return ExportInput(plan.code, plan.title, plan.deadline, as_of, units, tuple(values), tuple(issues),
                       issuer=plan.issuer, plan_document=plan_document(plan.doc_number, plan.doc_date,
                                                                               plan.doc_date_text))
