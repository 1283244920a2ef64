"""A unit's pages: the officer's home, blank form, uploads, results; staff's unit page and reviews."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import (Blueprint, abort, current_app, flash, jsonify, make_response, redirect, render_template,
                   request, send_file, url_for)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import forms, outbox, pending_uploads, returns, review_tools, upload_limits
from ..access import department_required, login_required
from ..extensions import db
from ..blanks import almost_empty, blank_groups
from ..compliance import ReviewState
from ..form_levels import form_at_level
from ..guard import Refusal
from ..review import officer_next_step
from ..models import (Assignment, AuditEvent, ReturnValue, ReturnVersion, Role, SignedReport, Unit, Visit)
from ..plans import refuse_unless_open
from ..standings import plan_standings
from ..timeutil import utc_now
from .lookup import assignment_or_404, int_arg, previous_version, version_or_404
from .lookup import plan_or_404

bp = Blueprint("unit", __name__, url_prefix="/plans/<plan_code>")


def load_assignment(plan_code: str, unit_code: str) -> Assignment:
    """Return the unit's assignment in the plan after the access check; 404 or 403 otherwise."""
    return assignment_or_404(plan_code, unit_code)


def load_version(assignment: Assignment, number: int) -> ReturnVersion:
    return version_or_404(assignment, number)


def download(data: bytes, ascii_name: str, utf8_name: str, mimetype: str) -> Any:
    response = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=ascii_name)
    response.headers["Content-Disposition"] = (f"attachment; filename=\"{ascii_name}\"; "
                                               f"filename*=UTF-8''{quote(utf8_name)}")
    return response


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.route("/units/<unit_code>")
@login_required
def home(plan_code: str, unit_code: str) -> Any:
    assignment = load_assignment(plan_code, unit_code)
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


def blank_form_file(assignment: Assignment) -> tuple[bytes, str, str]:
    """Return (bytes, ascii name, utf-8 name) of the unit's blank form; 404 for an exempt unit."""
    from ..workbook import build_blank, blank_form_filename

    if assignment.form_code is None:
        abort(404, f"{assignment.unit.name} được miễn báo cáo theo kế hoạch này: không có biểu mẫu để tải.")
    # A commune's workbook leaves out the rows marked for districts only.
    form = form_at_level(forms.get(assignment.form_code), assignment.unit.level)
    data = build_blank(form, forms.workbook_context(assignment), current_app.config["SECRET_KEY"],
                       forms.sheet_password())
    ascii_name, utf8_name = blank_form_filename(form.code, assignment.unit.name, assignment.plan.code)
    return data, ascii_name, utf8_name


@bp.route("/units/<unit_code>/blank-form.xlsx")
@login_required
def blank_form(plan_code: str, unit_code: str) -> Any:
    assignment = load_assignment(plan_code, unit_code)
    return download(*blank_form_file(assignment), XLSX)


@bp.route("/blank-forms.zip")
@department_required
def blank_forms_zip(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    buffer = io.BytesIO()
    assignments = db.session.scalars(
        select(Assignment).where(Assignment.plan_id == plan.id, Assignment.form_code.is_not(None))
        .options(selectinload(Assignment.unit).selectinload(Unit.parent))).all()
    # ZIP_STORED: an .xlsx is already a deflated zip, compressing it again costs time and saves nothing.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for assignment in assignments:
            data, ascii_name, _ = blank_form_file(assignment)
            archive.writestr(ascii_name, data)
    return download(buffer.getvalue(), f"bieu-mau-trong_{plan.code}.zip", f"biểu-mẫu-trống_{plan.code}.zip",
                    "application/zip")


def upload_settings() -> returns.UploadSettings:
    return returns.upload_settings_from(current_app.config)


def refusal_response(response: Any, refusal: Refusal) -> Any:
    """Return ``response`` with Retry-After set when the refusal says when to try again."""
    retry_after = getattr(refusal, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def take_upload(assignment: Assignment) -> returns.UploadOutcome:
    """Run the upload use case on the request's ``file`` part; raise Refusal for a bad request."""
    refuse_unless_open(assignment.plan)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise Refusal("no_file")
    note = request.form.get("note", "").strip()[:2000]
    if current_user.role == Role.UNIT:
        note = ""  # only department staff upload on a unit's behalf with a note
    data = upload.read(current_app.config["MAX_UPLOAD_BYTES"] + 1)
    if len(data) > current_app.config["MAX_UPLOAD_BYTES"]:
        raise Refusal("too_large", limit=current_app.config["MAX_UPLOAD_BYTES"] // (1024 * 1024))
    outcome = returns.receive_return(assignment, data, upload.filename, current_user, note, utc_now(),
                                     forms.all_forms(), upload_settings())
    if outcome.created:
        # The receipt was queued with the version and committed: send it now in the background, and
        # once more when the coalescing window of a delayed receipt is over (cron catches the rest).
        outbox.send_after_request()
        outbox.send_after_request(delay=float(current_app.config["RECEIPT_COALESCE_SECONDS"]) + 1)
    return outcome


@bp.route("/units/<unit_code>/returns", methods=["POST"])
@login_required
def upload(plan_code: str, unit_code: str) -> Any:
    assignment = load_assignment(plan_code, unit_code)
    wants_json = request.accept_mimetypes.best == "application/json"
    held = hold_if_almost_empty(assignment)
    if held is not None:
        # Only the web page asks; the API stores what it is sent, as before.
        return (jsonify({"redirect": held, "confirm": True}), 202) if wants_json else redirect(held, 303)
    try:
        outcome = take_upload(assignment)
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


def held_folder() -> Path:
    return Path(current_app.config["OUTBOX_DIR"]).parent / "pending-uploads"


def hold_if_almost_empty(assignment: Assignment) -> str | None:
    """Hold the request's upload and return the confirmation page's URL when it is almost empty and the
    unit's newest version is complete; None (the file stream rewound) for every other upload."""
    upload = request.files.get("file")
    if upload is None or not upload.filename or assignment.form_code is None:
        return None
    newest = db.session.scalar(select(ReturnVersion).where(ReturnVersion.assignment_id == assignment.id)
                               .order_by(ReturnVersion.received_at.desc(), ReturnVersion.version.desc()).limit(1))
    if newest is None or not newest.complete:
        return None
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    data = upload.read(limit + 1)
    upload.stream.seek(0)
    if len(data) > limit or hashlib.sha256(data).hexdigest() == newest.sha256:
        return None
    parsed = returns.preview(assignment, data, upload.filename, forms.all_forms(), upload_settings())
    if parsed is None:
        return None
    blank = almost_empty(parsed.issues, len(forms.get(assignment.form_code).input_keys()))
    if blank is None:
        return None
    token = pending_uploads.hold(held_folder(), data, upload.filename, assignment.id, current_user.id, blank,
                                 newest.version, utc_now())
    return url_for("unit.held_upload", plan_code=assignment.plan.code, unit_code=assignment.unit.code, token=token)


@bp.route("/units/<unit_code>/returns/held/<token>", methods=["GET", "POST"])
@login_required
def held_upload(plan_code: str, unit_code: str, token: str) -> Any:
    assignment = load_assignment(plan_code, unit_code)
    held = pending_uploads.fetch(held_folder(), token, assignment.id, current_user.id, utc_now())
    home_url = url_for("unit.home", plan_code=plan_code, unit_code=unit_code)
    if held is None:
        abort(404, "Tệp chờ xác nhận không còn (đã quá 30 phút hoặc đã được xử lý). Hãy tải tệp lên lại.")
    if request.method == "GET":
        return render_template("unit/confirm_upload.html", plan=assignment.plan, unit=assignment.unit, held=held,
                               form=forms.get(assignment.form_code), home_url=home_url)
    if request.form.get("decision") != "store":
        pending_uploads.drop(held_folder(), token)
        flash(f"Đã huỷ tải lên tệp «{held.filename}»; phiên bản {held.previous_version} vẫn được giữ nguyên.", "info")
        return redirect(home_url, 303)
    try:
        outcome = returns.receive_return(assignment, held.data, held.filename, current_user, "", utc_now(),
                                         forms.all_forms(), upload_settings())
    except Refusal as refusal:
        flash(refusal.message, "error")
        return render_template("unit/refused.html", plan=assignment.plan, unit=assignment.unit,
                               refusal=refusal), refusal.status
    pending_uploads.drop(held_folder(), token)
    if outcome.created:
        outbox.send_after_request()
        outbox.send_after_request(delay=float(current_app.config["RECEIPT_COALESCE_SECONDS"]) + 1)
    return redirect(url_for("unit.version", plan_code=plan_code, unit_code=unit_code,
                            number=outcome.version.version), 303)


@bp.route("/units/<unit_code>/versions/<int:number>")
@login_required
def version(plan_code: str, unit_code: str, number: int) -> Any:
    assignment = load_assignment(plan_code, unit_code)
    version = load_version(assignment, number)
    form = forms.get(version.form_code)
    previous = previous_version(assignment, number)
    changes = review_tools.version_changes(version, previous, form) if previous is not None else None
    newest = db.session.scalar(select(ReturnVersion.version).where(ReturnVersion.assignment_id == assignment.id)
                               .order_by(ReturnVersion.received_at.desc(), ReturnVersion.version.desc()).limit(1))
    last_review = version.reviews[-1] if version.reviews else None
    step = officer_next_step(version.complete, version.errors,
                             ReviewState(last_review.state) if last_review else None, newest, version.version)
    return render_template("unit/version.html", plan=assignment.plan, unit=assignment.unit, version=version,
                           groups=returns.issues_by_sheet(version), form=form, last_review=last_review,
                           step=step, newest=newest, blanks=blank_groups(version.issues), changes=changes)


def withdraw(assignment: Assignment, number: int, confirmed: bool = True):  # -> ReturnVersion
    """Withdraw version ``number`` for the current user; raise WithdrawalRefused when refused
    (403 not the unit's own officer, 409 already withdrawn, 400 not ``confirmed``).
    """
    from ..withdrawal import WithdrawalRefused, check_withdrawal, withdraw_version

    version = load_version(assignment, number)
    check_withdrawal(version, current_user)
    if not confirmed:
        raise WithdrawalRefused("not_confirmed", "Hãy đánh dấu ô xác nhận trước khi rút phiên bản.", 400)
    return withdraw_version(version, current_user, utc_now())


@bp.post("/units/<unit_code>/versions/<int:number>/withdraw")
@login_required
def withdraw_form(plan_code: str, unit_code: str, number: int) -> Any:
    from ..withdrawal import WithdrawalRefused

    assignment = load_assignment(plan_code, unit_code)
    back = url_for("unit.home", plan_code=plan_code, unit_code=unit_code)
    try:
        version = withdraw(assignment, number, confirmed=request.form.get("confirm") == "yes")
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
    assignment = load_assignment(plan_code, unit_code)
    version = load_version(assignment, number)
    mimetypes = {"xlsx": XLSX, "xls": "application/vnd.ms-excel",
                 "ods": "application/vnd.oasis.opendocument.spreadsheet"}
    stem = f"{assignment.unit.code}_v{version.version}"
    return download(version.file.content, f"{stem}.{version.file_kind}", f"{stem}_{version.filename}",
                    mimetypes.get(version.file_kind, "application/octet-stream"))


@bp.route("/units/<unit_code>/versions/<int:number>/annotated.xlsx")
@login_required
def annotated(plan_code: str, unit_code: str, number: int) -> Any:
    from .. import isolation
    from ..annotation import build_annotated
    from ..parsing import NARRATIVE_SHEET_CODE

    assignment = load_assignment(plan_code, unit_code)
    version = load_version(assignment, number)
    form = forms.get(version.form_code)
    values = [tuple(row) for row in db.session.execute(
        select(ReturnValue.sheet, ReturnValue.indicator, ReturnValue.period, ReturnValue.breakdown, ReturnValue.value,
               ReturnValue.text).where(ReturnValue.version_id == version.id))]
    issues = [(i.sheet, i.cell, i.severity, i.message) for i in version.issues]
    ctx = forms.workbook_context(assignment)
    config = current_app.config
    # End the read transaction before waiting on the worker (SQLite holds its lock from BEGIN).
    db.session.commit()
    try:
        data = isolation.run(f"{build_annotated.__module__}:{build_annotated.__name__}", str(form.source.parent),
                             form.code, ctx, config["SECRET_KEY"], forms.sheet_password(), values, issues,
                             NARRATIVE_SHEET_CODE, timeout=config["PARSE_TIMEOUT"],
                             memory_limit=config["PARSE_MEMORY_LIMIT"])
    except isolation.WorkerError:
        abort(503, "Chưa lập được bản đánh dấu lỗi lúc này. Danh sách lỗi vẫn có trên trang kết quả; vui lòng thử "
              "lại sau ít phút.")
    stem = f"{assignment.unit.code}_v{version.version}_danh-dau-loi"
    return download(data, f"{stem}.xlsx", f"{stem}.xlsx", XLSX)


@bp.route("/units/<unit_code>/versions/<int:number>/values")
@department_required
def values(plan_code: str, unit_code: str, number: int) -> Any:
    assignment = load_assignment(plan_code, unit_code)
    version = load_version(assignment, number)
    form = forms.get(version.form_code)
    rows = db.session.execute(select(ReturnValue.indicator, ReturnValue.period, ReturnValue.breakdown,
                                     ReturnValue.value, ReturnValue.text)
                              .where(ReturnValue.version_id == version.id)).all()
    numbers = {(ind, per, brk): val for ind, per, brk, val, _ in rows}
    texts = {ind: text for ind, _, _, _, text in rows if text is not None}
    return render_template("unit/values.html", plan=assignment.plan, unit=assignment.unit, version=version,
                           form=form, numbers=numbers, texts=texts)
