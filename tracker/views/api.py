"""JSON API under /api/v1 for the department's scripts (tokens as ``Authorization: Bearer``): the OpenAPI
document, the plans, a plan's status feed and its consolidated export; the api_* modules hold the rest."""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user

from ..access import api_error, department_required, login_required
from ..chase import last_reminded
from ..documents import UnitDocuments, cover_json, documents_of, signed_report_json
from ..extensions import db
from .. import status_feed
from ..models import unit_by_code
from ..standing_query import Scope, count_in_scope
from ..plan_access import reachable_plans
from ..standings import status_rows
from ..timeutil import local, parse_instant, utc_now
from .helpers import export_response
from .lookup import plan_or_404

bp = Blueprint("api", __name__, url_prefix="/api/v1")

BAD_AS_OF = ("Tham số as_of không hợp lệ: cần thời điểm ISO 8601 có múi giờ, "
             "ví dụ 2024-05-10T00:00:00+07:00 (dấu + viết là %2B trong URL).")


@bp.get("/openapi.json")
def openapi() -> Any:
    from .. import api_spec

    return jsonify(api_spec.document())


@bp.get("/plans")
@login_required
def plans() -> Any:
    # The plans the caller reaches: a unit's token lists its own unit's plans, open ones first.
    rows = reachable_plans(current_user)
    return jsonify([{"code": p.code, "title": p.title, "deadline": p.deadline.isoformat(),
                     "deadline_local": local(p.deadline).isoformat(), "state": p.state}
                    for p in rows])


@functools.lru_cache(maxsize=32768)
def _instant(value: datetime | None) -> str | None:
    # Memoised: a national status list formats 20,000 instants, most of them again on the next call.
    return None if value is None else local(value).isoformat()


def _as_of() -> datetime | None:
    """Return ``?as_of`` (now when absent), or None when it is not ISO 8601 with an offset."""
    raw = (request.args.get("as_of") or "").strip()
    if not raw:
        return utc_now()
    try:
        return parse_instant(raw)
    except ValueError:
        return None


def status_json(row: Any, last_reminded_at: datetime | None = None,
                docs: UnitDocuments | None = None) -> dict[str, Any]:
    """Return one unit's standing (a ``standings.status_rows`` row) as the status API shows it, with its
    cover facts and signed report."""
    (_, code, name, form, status, late, complete, first_at, latest_at, errors, warnings, review, reason,
     counted_version, _) = row
    return {
        "code": code, "name": name, "form": form, "status": status, "late": bool(late), "complete": bool(complete),
        "first_received_at": _instant(first_at), "latest_received_at": _instant(latest_at), "errors": errors,
        "warnings": warnings, "review": None if review is None else {"state": review, "reason": reason},
        "counted_version": counted_version,
        "last_reminded_at": _instant(last_reminded_at),
        "cover": cover_json(docs.cover if docs else None),
        "signed_report": signed_report_json(docs.signed_report if docs else None),
    }


@bp.get("/plans/<plan_code>/status")
@login_required
def status(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    as_of = _as_of()
    if as_of is None:
        return api_error(400, "invalid_as_of", BAD_AS_OF)
    try:
        paging = status_feed.parse_paging(request.args.get("page"), request.args.get("per_page"))
        kind = status_feed.choose_format(request.args.get("format"), request.accept_mimetypes)
    except status_feed.FeedError as exc:
        return api_error(400, exc.code, exc.message)
    scope = Scope()
    parent_code = (request.args.get("parent") or "").strip()
    if parent_code:
        parent = unit_by_code(parent_code, plan.units_on)  # the parent on the plan's own map
        parent_id = parent.id if parent is not None else None
        if parent_id is None:
            return api_error(404, "unknown_parent", f"Không có đơn vị mã «{parent_code[:40]}» (tham số parent).")
        scope = Scope(parent_id=parent_id)
    # A unit's token sees its own unit only: the list is filtered, not refused.
    unit_ids = None if current_user.is_department else [current_user.unit_id or 0]
    if paging is not None and kind == "json":
        total = count_in_scope(plan.id, scope, unit_ids)
        rows = status_rows(plan, as_of, unit_ids=unit_ids, scope=scope, limit=paging.per_page,
                           offset=paging.offset)
    else:
        rows = status_rows(plan, as_of, unit_ids=unit_ids, scope=scope)
    everyone = unit_ids is None and paging is None and scope.parent_id is None
    reminded = last_reminded(plan, as_of, None if everyone else [row[1] for row in rows])
    docs = documents_of(plan, as_of, {row[0]: row[-1] for row in rows})
    records = (status_json(row, reminded.get(row[1]), docs.get(row[0])) for row in rows)
    head = {"plan": plan.code, "as_of": _instant(as_of), "deadline": _instant(plan.deadline),
            "signed_report_required": plan.signed_report_required}
    if kind == "json":
        if paging is not None:
            head.update(page=paging.page, per_page=paging.per_page, total=total, pages=-(-total // paging.per_page))
        return Response(status_feed.json_document(head, records), mimetype=status_feed.FORMATS["json"])
    # Streamed after the transaction ends: a slow client must not hold the database.
    records = iter(list(records))
    db.session.commit()
    chunks = status_feed.jsonl_chunks(records) if kind == "jsonl" else status_feed.csv_chunks(records)
    response = Response(chunks, mimetype=status_feed.FORMATS[kind])
    if kind == "csv":
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
        response.headers["Content-Disposition"] = f"attachment; filename={plan.code}-status.csv"
    response.headers["X-Tracker-As-Of"] = _instant(as_of) or ""
    return response


@bp.get("/plans/<plan_code>/export.xlsx")
@department_required
def export(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    as_of = _as_of()
    if as_of is None:
        return api_error(400, "invalid_as_of", BAD_AS_OF)
    return export_response(plan, as_of, "api")
