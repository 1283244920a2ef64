"""The documents beside a unit's data return: its signed report (PDF) uploads, and what the cover of
its return says (number, date, signer).

- ``receive_signed_report`` is the upload use case: check the PDF and its signature outside any
  transaction, then store a new version (an identical re-upload makes none) and commit;
- ``documents_of`` gathers, for a plan at ``as_of``, each unit's cover facts (from the version the
  export uses) and its latest signed report, for the status API.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Mapping
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.exc import IntegrityError

from . import audit
from .extensions import db
from .guard import Refusal
from .models import Assignment, Plan, ReturnVersion, SignedReport, User
from .plans import refuse_unless_open
from .signed_report import PdfLimits, check_signature, inspect_pdf
from .timeutil import local

COVER_KEYS = ("report_number", "report_date", "signer_title", "signer_name")


@dataclass(frozen=True)
class SignedReportSettings:
    max_bytes: int
    max_pages: int
    trust_roots: tuple[Any, ...] = ()


@dataclass(frozen=True)
class SignedUpload:
    report: SignedReport
    created: bool


def receive_signed_report(assignment: Assignment, data: bytes, filename: str, uploader: User | None,
                          received_at: datetime, settings: SignedReportSettings) -> SignedUpload:
    """Store ``data`` as the assignment's next signed report and commit; return it.

    Raises Refusal (``plan_closed``, ``not_pdf``, ``encrypted``, ``active_content``, ``too_many_pages``, ``too_large``,
    ``empty``, ``exempt``); a refusal is committed to the audit log and nothing else is stored.
    """
    target = f"{assignment.plan.code}/{assignment.unit.code}"
    sha256 = hashlib.sha256(data).hexdigest()
    # Nothing below waits inside a transaction: the PDF and its signature are checked first.
    db.session.commit()
    try:
        refuse_unless_open(assignment.plan)  # a closed plan is read-only on every path, the signed report too
        if assignment.form_code is None:
            raise Refusal("exempt", f"{assignment.unit.name} được miễn báo cáo theo kế hoạch này; không cần "
                          "tải lên báo cáo đã ký.", 409)
        facts = inspect_pdf(data, PdfLimits(settings.max_bytes, settings.max_pages))
        signature = check_signature(data, list(settings.trust_roots))
    except Refusal as refusal:
        db.session.rollback()
        audit.record("signed_report_refused", target=target, user=uploader, code=refusal.code, sha256=sha256,
                     size=len(data), filename=filename[:200], reason=refusal.message)
        db.session.commit()
        raise
    for _attempt in range(3):
        existing = db.session.scalar(select(SignedReport).where(SignedReport.assignment_id == assignment.id,
                                                                SignedReport.sha256 == sha256))
        if existing is not None:
            db.session.commit()
            return SignedUpload(existing, False)
        number = (db.session.scalar(select(func.max(SignedReport.version))
                                    .where(SignedReport.assignment_id == assignment.id)) or 0) + 1
        report = SignedReport(assignment_id=assignment.id, version=number, filename=filename[:255] or "bao-cao.pdf",
                              size=len(data), sha256=sha256, pages=facts.pages, received_at=received_at,
                              uploaded_by_id=getattr(uploader, "id", None),
                              signature=None if signature is None else signature.as_dict(), content=data)
        db.session.add(report)
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()  # another upload took the number (or the same bytes): look again
            continue
        audit.record("signed_report", target=target, user=uploader, version=number, sha256=sha256,
                     pages=facts.pages, signed=signature is not None,
                     trusted=bool(signature and signature.trusted))
        db.session.commit()
        return SignedUpload(report, True)
    raise Refusal("storage_failed", "Hệ thống đang bận nên báo cáo đã ký chưa được lưu. Vui lòng tải lên lại.", 503)


def signed_report_json(report: SignedReport | None) -> dict[str, Any] | None:
    """Return a signed report as the status API gives it: null, or received_at, sha256, pages, signature."""
    if report is None:
        return None
    signature = report.signature
    return {
        "received_at": local(report.received_at).isoformat(),
        "sha256": report.sha256,
        "pages": report.pages,
        "signature": None if signature is None else {
            "valid": bool(signature.get("valid")), "signer": signature.get("signer") or None,
            "signed_at": signature.get("signed_at"), "trusted": bool(signature.get("trusted")),
        },
    }


@dataclass(frozen=True)
class UnitDocuments:
    """One unit's documents at ``as_of``: the cover facts of the version the export uses, its latest
    signed report, and when its first signed report arrived."""

    cover: dict[str, str] | None
    signed_report: SignedReport | None
    first_signed_at: datetime | None


# Above this many units, the plan's rows are read and picked in Python: a list of 10,595 ids in an IN
# clause cost more to compile and send than the rows it spares.
_FEW = 500


def documents_of(plan: Plan, as_of: datetime, counted: Mapping[int, int | None]) -> dict[int, UnitDocuments]:
    """Return {assignment id: UnitDocuments} for {assignment id: its counted version id or None} at ``as_of``:
    the cover of each unit's counted version and its signed reports received by then, leaving out the units
    with neither (two queries whatever the number of units)."""
    of_version = {vid: aid for aid, vid in counted.items() if vid is not None}
    many = len(counted) > _FEW
    covers: dict[int, dict[str, str]] = {}
    if of_version:
        query = select(ReturnVersion.id, ReturnVersion.cover)
        if many:
            # Only complete versions can be counted; an empty cover gives nothing to decode.
            query = query.join(Assignment, Assignment.id == ReturnVersion.assignment_id).where(
                Assignment.plan_id == plan.id, ReturnVersion.complete, ReturnVersion.received_at <= as_of,
                cast(ReturnVersion.cover, String) != "{}")
        else:
            query = query.where(ReturnVersion.id.in_(list(of_version)))
        for version_id, cover in db.session.execute(query):
            if version_id in of_version:
                covers[of_version[version_id]] = {k: str(v) for k, v in (cover or {}).items() if k in COVER_KEYS}
    reports: dict[int, list[SignedReport]] = {}
    if counted:
        query = select(SignedReport).where(SignedReport.received_at <= as_of)
        if many:
            query = query.join(Assignment, Assignment.id == SignedReport.assignment_id).where(
                Assignment.plan_id == plan.id)
        else:
            query = query.where(SignedReport.assignment_id.in_(list(counted)))
        for report in db.session.scalars(query.order_by(SignedReport.received_at, SignedReport.version)):
            if report.assignment_id in counted:
                reports.setdefault(report.assignment_id, []).append(report)
    result: dict[int, UnitDocuments] = {}
    for assignment_id in covers.keys() | reports.keys():
        own = reports.get(assignment_id, [])
        result[assignment_id] = UnitDocuments(covers.get(assignment_id), own[-1] if own else None,
                                              own[0].received_at if own else None)
    return result


def cover_json(cover: dict[str, str] | None) -> dict[str, str | None] | None:
    """Return the cover facts as the status API gives them (every key present, null when blank)."""
    if cover is None:
        return None
    return {key: cover.get(key) or None for key in COVER_KEYS}
