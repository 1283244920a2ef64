"""The report forms page for staff: each form's version, layout fingerprint and the sheet password."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from .. import forms as form_registry
from ..access import department_required

bp = Blueprint("forms_page", __name__)


@bp.get("/forms")
@department_required
def forms() -> Any:
    rows = sorted(form_registry.all_forms().values(), key=lambda form: form.code)
    return render_template("forms/forms.html", forms=rows, password=form_registry.sheet_password())
