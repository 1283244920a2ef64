"""What the views share and that is no view itself: template filters and globals, file downloads."""
from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, has_request_context, request, send_file
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from .. import audit, audit_words, forms, returns, review_tools
from ..compliance import ReviewState, Status
from ..extensions import db
from ..guard import Refusal
from ..messages import MessageKind, MessageStatus
from ..models import Plan, PlanState, Role
from ..plan_access import reachable_plans
from ..timeutil import fmt_date, fmt_datetime, utc_now
from ..wording import deadline_wording, format_number


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(data: bytes, ascii_name: str, utf8_name: str, mimetype: str) -> Any:
    """Return ``data`` as an attachment named ``utf8_name`` (``ascii_name`` for clients without RFC 5987)."""
    response = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=ascii_name)
    response.headers["Content-Disposition"] = (f"attachment; filename=\"{ascii_name}\"; "
                                               f"filename*=UTF-8''{quote(utf8_name)}")
    return response


def export_response(plan: Plan, as_of: datetime, via: str) -> Any:
    """Build the consolidated workbook of ``plan`` at ``as_of``, record the export and return it as a download."""
    workbook = review_tools.consolidated_workbook(plan, as_of, forms.all_forms())
    audit.record("export", target=plan.code, plan=plan.code, as_of=as_of.isoformat(), via=via,
                 filename=workbook.filename)
    db.session.commit()
    return send_file(io.BytesIO(workbook.content), mimetype=XLSX, as_attachment=True,
                     download_name=workbook.filename)


def upload_settings() -> returns.UploadSettings:
    return returns.upload_settings_from(current_app.config)


def upload_from_request(assignment: Any) -> returns.UploadOutcome:
    """Run the upload use case on the request's ``file`` part and ``note``; raise Refusal for a bad upload."""
    return returns.receive_upload(assignment, request.files.get("file"), current_user,
                                  request.form.get("note", "").strip()[:2000], utc_now(), forms.all_forms(),
                                  upload_settings())


def refusal_response(response: Any, refusal: Refusal) -> Any:
    """Return ``response`` with Retry-After set when the refusal says when to try again."""
    retry_after = getattr(refusal, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def iso_date(value: str | None) -> str:
    """Return a stored ISO date ("2024-05-08") as dd/mm/yyyy; '' for none or a malformed one."""
    try:
        return fmt_date(date.fromisoformat(value)) if value else ""
    except ValueError:
        return ""


def iso_datetime(value: str | None) -> str:
    """Return a stored ISO instant as dd/mm/yyyy HH:MM in Vietnam time; '' for none or a malformed one."""
    try:
        return fmt_datetime(datetime.fromisoformat(value)) if value else ""
    except ValueError:
        return ""


class BoundedInt(IntegerConverter):
    """``<int:...>`` that matches only values a database integer holds: larger ids are 404, not a 500."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 - Werkzeug's signature
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def _private(response: Any) -> bool:
    if request.path.startswith("/api/") or response.headers.get("Content-Disposition", "").startswith("attachment"):
        return True
    if request.endpoint == "static":
        return False
    return bool(current_user and current_user.is_authenticated)


def init_app(app: Flask) -> None:
    app.add_template_filter(fmt_datetime, "dt")
    app.add_template_filter(fmt_date, "d")
    app.add_template_filter(format_number, "num")
    app.add_template_filter(deadline_wording, "deadline")
    app.add_template_filter(iso_date, "isodate")
    app.add_template_filter(iso_datetime, "isodatetime")

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"Status": Status, "ReviewState": ReviewState, "Role": Role, "audit_words": audit_words, "PlanState": PlanState,
                "MessageKind": MessageKind, "MessageStatus": MessageStatus,
                "switcher_plans": _switcher_plans,
                "current_plan_code": (request.view_args or {}).get("plan_code") if has_request_context() else None}

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if _private(response):
            # Pages of a signed-in user, downloads and the API: no shared or back-button cache keeps them.
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
        return response


def _switcher_plans() -> list[Any]:
    """Return the plans of the plan switcher; none for anonymous users (the login page)."""
    if not current_user or not current_user.is_authenticated:
        return []
    return reachable_plans(current_user)
