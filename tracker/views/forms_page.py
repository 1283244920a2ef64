"""The report forms page for staff: each form's version, layout fingerprint and the sheet password."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from ..access import department_required
from ..forms import all_forms, sheet_password

bp = Blueprint("forms_page", __name__)


@bp.get("/forms")
@department_required
def forms() -> Any:
    rows = sorted(all_forms().values(), key=lambda form: form.code)
    return render_template("forms/forms.html", forms=rows, password=sheet_password())
