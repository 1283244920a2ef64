"""The loaded report forms of the running app, and the workbook context of an assignment."""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from flask import Flask, abort, current_app

from .catalog import Form
from .catalog_folder import load_forms
from .models import Assignment
from .timeutil import local
from .wording import deadline_wording, plan_document


def init_app(app: Flask) -> None:
    """Load and check every form at start-up: a broken definition stops the app with file and line."""
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


def all_forms() -> dict[str, Form]:
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


def workbook_context(assignment: Assignment):  # -> workbook.WorkbookContext
    from .workbook import WorkbookContext

    plan, unit = assignment.plan, assignment.unit
    return WorkbookContext(
        plan_code=plan.code, plan_title=plan.title, issuer=plan.issuer, unit_code=unit.code, unit_name=unit.name,
        parent_name=unit.parent.name if unit.parent else "", deadline_wording=deadline_wording(plan.deadline),
        deadline_text=plan.deadline_text, periods=tuple((p["key"], p["label"]) for p in plan.periods),
        period_basis=plan.period_basis, department_email=plan.department_email, recipient=plan.issuer,
        issued_at_text=local(plan.created_at).strftime("%d/%m/%Y"),
        plan_document=plan_document(plan.doc_number, plan.doc_date, plan.doc_date_text))
