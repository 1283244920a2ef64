"""The signed report beside a unit's data return: upload (unit page and API) and download."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import documents
from ..access import api_error, login_required
from ..extensions import db
from ..guard import Refusal
from ..models import Assignment, SignedReport
from ..signed_report import load_trust_roots
from ..timeutil import utc_now
from .lookup import assignment_or_404

bp = Blueprint("documents", __name__)

UNIT_PATH = "/plans/<plan_code>/units/<unit_code>/signed-report"


def _settings() -> documents.SignedReportSettings:
    config = current_app.config
    return documents.SignedReportSettings(
        max_bytes=config["SIGNED_REPORT_MAX_BYTES"], max_pages=config["SIGNED_REPORT_MAX_PAGES"],
        trust_roots=tuple(load_trust_roots(config.get("SIGNATURE_TRUST_ROOTS") or [])))


def _take(assignment: Assignment) -> documents.SignedUpload:
    """Run the upload use case on the request's ``file`` part; raise Refusal for a bad request."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Refusal("no_file", "Chưa chọn tệp PDF của báo cáo đã ký để tải lên.", 400)
    limit = current_app.config["SIGNED_REPORT_MAX_BYTES"]
    data = upload.read(limit + 1)
    return documents.receive_signed_report(assignment, data, upload.filename, current_user, utc_now(), _settings())


@bp.post(UNIT_PATH)
@login_required
def upload(plan_code: str, unit_code: str) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    target = url_for("unit.home", plan_code=plan_code, unit_code=unit_code) + "#signed-report"
    try:
        outcome = _take(assignment)
    except Refusal as refusal:
        flash(refusal.message, "error")
        return redirect(target, 303)
    if outcome.created:
        flash(f"Đã nhận báo cáo đã ký (lần {outcome.report.version}, {outcome.report.pages} trang).", "success")
    else:
        flash(f"Tệp này giống hệt lần {outcome.report.version} đã nộp; không tạo lần mới.", "info")
    return redirect(target, 303)


@bp.post("/api/v1" + UNIT_PATH)
@login_required
def api_upload(plan_code: str, unit_code: str) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    try:
        outcome = _take(assignment)
    except Refusal as refusal:
        return api_error(refusal.status, refusal.code, refusal.message)
    body = documents.signed_report_json(outcome.report)
    assert body is not None
    body.update(version=outcome.report.version, created=outcome.created)
    return jsonify(body), 201 if outcome.created else 200


@bp.get(UNIT_PATH + "/<int:number>.pdf")
@login_required
def download(plan_code: str, unit_code: str, number: int) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    report = db.session.scalar(select(SignedReport).where(SignedReport.assignment_id == assignment.id,
                                                         SignedReport.version == number))
    if report is None:
        abort(404, f"Không có lần gửi {number} của báo cáo đã ký.")
    import io

    name = f"{assignment.unit.code}_bao-cao-da-ky_lan{report.version}.pdf"
    return send_file(io.BytesIO(report.content), mimetype="application/pdf", as_attachment=True, download_name=name)
