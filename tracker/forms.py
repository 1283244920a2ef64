"""The loaded report forms of the running app, and the files drawn from them for an assignment: its workbook
context, the blank form a unit downloads (every unit's in one zip), and the annotated copy of a version."""
from __future__ import annotations

import hashlib
import hmac
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, abort, current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .catalog import Form
from .catalog_folder import Catalog, load_forms
from .extensions import db
from .form_levels import form_at_level, years_after
from .models import Assignment, Plan, ReturnValue, ReturnVersion, Unit
from .timeutil import local
from .wording import deadline_wording, plan_document


def init_app(app: Flask) -> None:
    """Load and check every form at start-up: a broken definition stops the app with file and line.

    The catalog stays as loaded for the life of the process, and the parse worker reads returns with this
    very catalog (``catalog_folder.run_with_catalog``): a definition edited on a live server takes effect
    for blanks and parsing together, at the next start.
    """
    app.extensions["tracker.forms"] = load_forms(Path(app.config["REPORT_FORMS_DIR"]))
    app.add_template_global(form_label)


def sheet_password() -> str:
    """Return the password protecting the sheets of every blank form: ``SHEET_PASSWORD`` when set, else
    one derived from ``SECRET_KEY`` (HMAC), so each installation has its own without configuring one.
    """
    configured = current_app.config.get("SHEET_PASSWORD") or ""
    if configured:
        return str(configured)
    key = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    return hmac.new(key, b"tracker sheet protection", hashlib.sha256).hexdigest()[:10]


def all_forms() -> Catalog:
    """Return the catalog the app loaded at start-up (every form by code, and its ``version``)."""
    return current_app.extensions["tracker.forms"]


def get(code: str) -> Form:
    """Return the form ``code``; 404 when the catalog has none (a plan naming a removed form)."""
    form = all_forms().get(code)
    if form is None:
        abort(404, f"Không có biểu mẫu {code} trong danh mục biểu mẫu.")
    return form


def form_label(code: str | None) -> str:
    """Return the short name officials use for a form ("Phụ lục 03"); the code when it is unknown."""
    if not code:
        return ""
    form = all_forms().get(code)
    return form.name if form is not None else code


def workbook_context(assignment: Assignment):  # -> workbook_base.WorkbookContext
    from .workbook_base import WorkbookContext

    plan, unit = assignment.plan, assignment.unit
    form = all_forms().get(assignment.form_code or "")
    return WorkbookContext(
        plan_code=plan.code, plan_title=plan.title, issuer=plan.issuer, unit_code=unit.code, unit_name=unit.name,
        parent_name=unit.parent.name if unit.parent else "", deadline_wording=deadline_wording(plan.deadline),
        deadline_text=plan.deadline_text, periods=tuple((p["key"], p["label"]) for p in plan.periods),
        period_basis=plan.period_basis, department_email=plan.department_email, recipient=plan.issuer,
        issued_at_text=local(plan.created_at).strftime("%d/%m/%Y"),
        plan_document=plan_document(plan.doc_number, plan.doc_date, plan.doc_date_text),
        text_years=years_after(form.periods, plan.periods) if form is not None else 0)


@dataclass(frozen=True)
class FormFile:
    """A file to download: its bytes, an ASCII name for plain clients and the UTF-8 name with diacritics."""

    data: bytes
    ascii_name: str
    utf8_name: str


def blank_form_file(assignment: Assignment) -> FormFile:
    """Return the blank form the assignment's unit downloads; 404 for an exempt unit."""
    from .workbook import blank_form_filename, build_blank

    if assignment.form_code is None:
        abort(404, f"{assignment.unit.name} được miễn báo cáo theo kế hoạch này: không có biểu mẫu để tải.")
    # A commune's workbook leaves out the rows marked for districts only.
    form = form_at_level(get(assignment.form_code), assignment.unit.level)
    data = build_blank(form, workbook_context(assignment), current_app.config["SECRET_KEY"], sheet_password())
    return FormFile(data, *blank_form_filename(form.code, assignment.unit.name, assignment.plan.code))


def blank_forms_zip(plan: Plan) -> FormFile:
    """Return one zip of the blank forms of every unit of ``plan`` that must report."""
    assignments = db.session.scalars(
        select(Assignment).where(Assignment.plan_id == plan.id, Assignment.form_code.is_not(None))
        .options(selectinload(Assignment.unit).selectinload(Unit.parent))).all()
    buffer = io.BytesIO()
    # ZIP_STORED: an .xlsx is already a deflated zip, compressing it again costs time and saves nothing.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for assignment in assignments:
            blank = blank_form_file(assignment)
            archive.writestr(blank.ascii_name, blank.data)
    return FormFile(buffer.getvalue(), f"bieu-mau-trong_{plan.code}.zip", f"biểu-mẫu-trống_{plan.code}.zip")


def annotated_copy(assignment: Assignment, version: ReturnVersion) -> FormFile:
    """Return the annotated copy (bản đánh dấu lỗi) of ``version``, drawn in the parse worker from the stored
    values and issues.

    Raises isolation.WorkerError when the worker fails or runs out of time or memory.
    """
    from .annotation import build_annotated
    from .catalog_folder import run_with_catalog
    from .parsing import NARRATIVE_SHEET_CODE

    form = get(version.form_code)
    values = [tuple(row) for row in db.session.execute(
        select(ReturnValue.sheet, ReturnValue.indicator, ReturnValue.period, ReturnValue.breakdown, ReturnValue.value,
               ReturnValue.text).where(ReturnValue.version_id == version.id))]
    issues = [(i.sheet, i.cell, i.severity, i.message) for i in version.issues]
    ctx = workbook_context(assignment)
    config = current_app.config
    # End the read transaction before waiting on the worker (SQLite holds its lock from BEGIN).
    db.session.commit()
    data = run_with_catalog(f"{build_annotated.__module__}:{build_annotated.__name__}", all_forms(), form.code, ctx,
                            config["SECRET_KEY"], sheet_password(), values, issues, NARRATIVE_SHEET_CODE,
                            timeout=config["PARSE_TIMEOUT"], memory_limit=config["PARSE_MEMORY_LIMIT"])
    stem = f"{assignment.unit.code}_v{version.version}_danh-dau-loi"
    return FormFile(data, f"{stem}.xlsx", f"{stem}.xlsx")
