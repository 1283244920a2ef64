"""A unit's pages, for its officer and for staff: home, blank form (and the plan's zip of them), uploads
with the almost-empty confirmation, a version's result, original, annotated copy and values, withdrawal.

Staff accept or return a version in dashboard.py; comments on a version are in review.py.
"""
from __future__ import annotations

from typing import Any

from flask import (Blueprint, abort, flash, jsonify, make_response, redirect, render_template,
                   request, url_for)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import forms, returns, review_tools, upload_limits
from ..access import department_required, login_required
from ..blanks import blank_groups
from ..extensions import db
from ..guard import Refusal
from ..models import AuditEvent, ReturnValue, ReturnVersion, SignedReport, Visit
from ..review import newest_version_number, officer_next_step
from ..standings import plan_standings
from ..timeutil import utc_now
from ..withdrawal import WithdrawalRefused, withdraw_version
from .helpers import XLSX, download, refusal_response, upload_from_request, upload_settings
from .lookup import assignment_or_404, int_arg, plan_or_404, previous_version, version_or_404

bp = Blueprint("unit", __name__, url_prefix="/plans/<plan_code>")


@bp.route("/units/<unit_code>")
@login_required
def home(plan_code: str, unit_code: str) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    plan, unit = assignment.plan, assignment.unit
    standing = plan_standings(plan, utc_now(), unit_ids=[unit.id])[0].standing
    versions = db.session.scalars(select(ReturnVersion).where(ReturnVersion.assignment_id == assignment.id)
                                  .options(selectinload(ReturnVersion.issues), selectinload(ReturnVersion.reviews))
                                  .order_by(ReturnVersion.version.desc())).all()
    visits = db.session.scalars(select(Visit).where(Visit.plan_id == plan.id, Visit.unit_id == unit.id)
                                .options(selectinload(Visit.communes)).order_by(Visit.visit_date)).all()
    signed_reports = db.session.scalars(select(SignedReport).where(SignedReport.assignment_id == assignment.id)
                                        .order_by(SignedReport.version.desc())).all()
    events = []
    flags = []
    usage = None
    if current_user.is_department:
        usage = upload_limits.describe(returns.upload_usage(assignment, upload_settings(), utc_now()), utc_now())
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.target == f"{plan.code}/{unit.code}")
                                    .order_by(AuditEvent.id.desc()).limit(200)).all()
        flags = review_tools.plan_flags(plan, utc_now(), forms.all_forms(), unit.code)
    counted = next((v for v in versions if v.version == standing.counted_version), None)
    changes = page_changes(versions, counted)
    return render_template("unit/home.html", assignment=assignment, plan=plan, unit=unit, standing=standing,
                           versions=versions, latest=versions[0] if versions else None, visits=visits,
                           events=events, now=utc_now(), counted=counted, changes=changes, flags=flags,
                           signed_reports=signed_reports, unit_names={unit.code: unit.name}, usage=usage)


def page_changes(versions: list[ReturnVersion], counted: ReturnVersion | None) -> Any:
    """Return the unit page's comparison: ``?changes=<n>&since=<m>``, else the counted version against the
    one before it (the latest against its previous when there is no counted version or it is the first);
    None with fewer than two versions. 404 for an unknown number."""
    by_number = {v.version: v for v in versions}
    number, since = int_arg("changes"), int_arg("since")
    if number is None and versions:
        number = counted.version if counted is not None and counted.version > min(by_number) else versions[0].version
    if number is None:
        return None
    if number not in by_number or (since is not None and since not in by_number):
        abort(404, f"Không có phiên bản {number if number not in by_number else since} của báo cáo này.")
    if since is None:
        since = max((n for n in by_number if n < number), default=None)
    if since is None or since == number:
        return None
    version = by_number[number]
    return review_tools.version_changes(version, by_number[since], forms.all_forms().get(version.form_code))


@bp.route("/units/<unit_code>/blank-form.xlsx")
@login_required
def blank_form(plan_code: str, unit_code: str) -> Any:
    blank = forms.blank_form_file(assignment_or_404(plan_code, unit_code))
    return download(blank.data, blank.ascii_name, blank.utf8_name, XLSX)


@bp.route("/blank-forms.zip")
@department_required
def blank_forms_zip(plan_code: str) -> Any:
    archive = forms.blank_forms_zip(plan_or_404(plan_code))
    return download(archive.data, archive.ascii_name, archive.utf8_name, "application/zip")


@bp.route("/units/<unit_code>/returns", methods=["POST"])
@login_required
def upload(plan_code: str, unit_code: str) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    wants_json = request.accept_mimetypes.best == "application/json"
    # Only the web page asks about an almost empty file; the API stores what it is sent, as before.
    token = returns.hold_if_almost_empty(assignment, request.files.get("file"), current_user, utc_now(),
                                         forms.all_forms(), upload_settings())
    if token is not None:
        held = url_for("unit.held_upload", plan_code=plan_code, unit_code=unit_code, token=token)
        return (jsonify({"redirect": held, "confirm": True}), 202) if wants_json else redirect(held, 303)
    try:
        outcome = upload_from_request(assignment)
    except Refusal as refusal:
        if wants_json:
            answer = jsonify({"error": {"code": refusal.code, "message": refusal.message}})
        else:
            flash(refusal.message, "error")
            answer = make_response(render_template("unit/refused.html", plan=assignment.plan, unit=assignment.unit,
                                                   refusal=refusal))
        answer.status_code = refusal.status
        return refusal_response(answer, refusal)
    target = url_for("unit.version", plan_code=plan_code, unit_code=unit_code, number=outcome.version.version)
    if not outcome.created:
        flash(f"Tệp này giống hệt phiên bản {outcome.version.version} đã nộp; không tạo phiên bản mới.", "info")
    if wants_json:
        return jsonify({"redirect": target, "created": outcome.created}), 201 if outcome.created else 200
    return redirect(target, 303)


@bp.route("/units/<unit_code>/returns/held/<token>", methods=["GET", "POST"])
@login_required
def held_upload(plan_code: str, unit_code: str, token: str) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    held = returns.held_upload(assignment, token, current_user, utc_now(), upload_settings())
    home_url = url_for("unit.home", plan_code=plan_code, unit_code=unit_code)
    if held is None:
        abort(404, "Tệp chờ xác nhận không còn (đã quá 30 phút hoặc đã được xử lý). Hãy tải tệp lên lại.")
    if request.method == "GET":
        return render_template("unit/confirm_upload.html", plan=assignment.plan, unit=assignment.unit, held=held,
                               form=forms.get(assignment.form_code), home_url=home_url)
    if request.form.get("decision") != "store":
        returns.drop_held(token, upload_settings())
        flash(f"Đã huỷ tải lên tệp «{held.filename}»; phiên bản {held.previous_version} vẫn được giữ nguyên.", "info")
        return redirect(home_url, 303)
    try:
        outcome = returns.store_held(assignment, token, held, current_user, utc_now(), forms.all_forms(),
                                     upload_settings())
    except Refusal as refusal:
        flash(refusal.message, "error")
        return render_template("unit/refused.html", plan=assignment.plan, unit=assignment.unit,
                               refusal=refusal), refusal.status
    return redirect(url_for("unit.version", plan_code=plan_code, unit_code=unit_code,
                            number=outcome.version.version), 303)


@bp.route("/units/<unit_code>/versions/<int:number>")
@login_required
def version(plan_code: str, unit_code: str, number: int) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    version = version_or_404(assignment, number)
    form = forms.get(version.form_code)
    previous = previous_version(assignment, number)
    changes = review_tools.version_changes(version, previous, form) if previous is not None else None
    newest = newest_version_number(assignment)
    last_review = version.reviews[-1] if version.reviews else None
    step = officer_next_step(version.complete, version.errors, last_review.state if last_review else None, newest,
                             version.version)
    return render_template("unit/version.html", plan=assignment.plan, unit=assignment.unit, version=version,
                           groups=returns.issues_by_sheet(version), form=form, last_review=last_review,
                           step=step, newest=newest, blanks=blank_groups(version.issues), changes=changes)


@bp.post("/units/<unit_code>/versions/<int:number>/withdraw")
@login_required
def withdraw_form(plan_code: str, unit_code: str, number: int) -> Any:
    version = version_or_404(assignment_or_404(plan_code, unit_code), number)
    back = url_for("unit.home", plan_code=plan_code, unit_code=unit_code)
    try:
        version = withdraw_version(version, current_user, utc_now(), confirmed=request.form.get("confirm") == "yes")
    except WithdrawalRefused as refused:
        if refused.status == 403:
            abort(403, refused.message)
        flash(refused.message, "error")
        return redirect(back, 303)
    flash(f"Đã rút phiên bản {version.version}. Phiên bản này vẫn được lưu trong lịch sử nhưng không còn được "
          "tính.", "ok")
    return redirect(back, 303)


@bp.route("/units/<unit_code>/versions/<int:number>/original")
@login_required
def original(plan_code: str, unit_code: str, number: int) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    version = version_or_404(assignment, number)
    mimetypes = {"xlsx": XLSX, "xls": "application/vnd.ms-excel",
                 "ods": "application/vnd.oasis.opendocument.spreadsheet"}
    stem = f"{assignment.unit.code}_v{version.version}"
    return download(version.file.content, f"{stem}.{version.file_kind}", f"{stem}_{version.filename}",
                    mimetypes.get(version.file_kind, "application/octet-stream"))


@bp.route("/units/<unit_code>/versions/<int:number>/annotated.xlsx")
@login_required
def annotated(plan_code: str, unit_code: str, number: int) -> Any:
    from .. import isolation

    assignment = assignment_or_404(plan_code, unit_code)
    try:
        copy = forms.annotated_copy(assignment, version_or_404(assignment, number))
    except isolation.WorkerError:
        abort(503, "Chưa lập được bản đánh dấu lỗi lúc này. Danh sách lỗi vẫn có trên trang kết quả; vui lòng thử "
              "lại sau ít phút.")
    return download(copy.data, copy.ascii_name, copy.utf8_name, XLSX)


@bp.route("/units/<unit_code>/versions/<int:number>/values")
@department_required
def values(plan_code: str, unit_code: str, number: int) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    version = version_or_404(assignment, number)
    form = forms.get(version.form_code)
    rows = db.session.execute(select(ReturnValue.indicator, ReturnValue.period, ReturnValue.breakdown,
                                     ReturnValue.value, ReturnValue.text)
                              .where(ReturnValue.version_id == version.id)).all()
    numbers = {(ind, per, brk): val for ind, per, brk, val, _ in rows}
    texts = {ind: text for ind, _, _, _, text in rows if text is not None}
    return render_template("unit/values.html", plan=assignment.plan, unit=assignment.unit, version=version,
                           form=form, numbers=numbers, texts=texts)
