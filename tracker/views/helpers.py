"""Template filters and globals shared by every page."""
from __future__ import annotations

from typing import Any

from flask import Flask

from ..compliance import Status
from ..models import Role
from ..timeutil import fmt_date, fmt_datetime
from ..wording import deadline_wording, format_number


def init_app(app: Flask) -> None:
    app.add_template_filter(fmt_datetime, "dt")
    app.add_template_filter(fmt_date, "d")
    app.add_template_filter(format_number, "num")
    app.add_template_filter(deadline_wording, "deadline")

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"Status": Status, "Role": Role}

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
