"""API of the administrative map and of a plan's calendar: ``/api/v1/units``, ``/api/v1/plans/<plan>``."""
from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import aliased

from ..access import api_error, login_required
from ..extensions import db
from ..models import Unit, UnitMerge, in_force_on, unit_by_code
from ..plan_json import plan_json
from ..timeutil import local_date, utc_now
from .lookup import plan_or_404

bp = Blueprint("api_units", __name__, url_prefix="/api/v1")

_CHUNK = 500


def _date_arg(name: str) -> date | None:
    raw = (request.args.get(name) or "").strip()
    return date.fromisoformat(raw) if raw else local_date(utc_now())


@bp.get("/units")
@login_required
def units() -> Any:
    try:
        as_of = _date_arg("as_of")
    except ValueError:
        return api_error(400, "invalid_as_of", "Tham số as_of không hợp lệ: cần ngày dạng 2025-07-01.")
    query = select(Unit).where(in_force_on(as_of)).order_by(Unit.level, Unit.code)
    level = (request.args.get("level") or "").strip()
    if level:
        if level not in {"1", "2", "3"}:
            return api_error(400, "invalid_level", "Tham số level chỉ nhận 1 (tỉnh), 2 (huyện) hoặc 3 (xã).")
        query = query.where(Unit.level == int(level))
    parent_code = (request.args.get("parent") or "").strip()[:16]
    if parent_code:
        parent = unit_by_code(parent_code, as_of)
        if parent is None:
            return api_error(404, "unknown_parent",
                             f"Không có đơn vị mã «{parent_code}» vào ngày {as_of:%d/%m/%Y}.")
        query = query.where(Unit.parent_id == parent.id)
    rows = db.session.scalars(query).all()
    parent_ids = sorted({u.parent_id for u in rows if u.parent_id is not None})
    parents: dict[int, str] = {}
    for start in range(0, len(parent_ids), _CHUNK):
        parents.update(db.session.execute(select(Unit.id, Unit.code).where(
            Unit.id.in_(parent_ids[start:start + _CHUNK]))).all())
    merged = _merged_from([u.id for u in rows])
    return jsonify({"as_of": as_of.isoformat(), "units": [
        {"code": u.code, "name": u.name, "level": u.level, "parent": parents.get(u.parent_id),
         "valid_from": u.valid_from.isoformat(), "valid_to": u.valid_to.isoformat() if u.valid_to else None,
         "merged_from": merged.get(u.id, [])} for u in rows]})


def _merged_from(unit_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Return, per unit id, the unit versions it was made from (code, name, share, hint, valid_from)."""
    source = aliased(Unit)
    out: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(unit_ids), _CHUNK):
        rows = db.session.execute(
            select(UnitMerge.unit_id, source.code, source.name, source.valid_from, UnitMerge.share, UnitMerge.hint)
            .join(source, source.id == UnitMerge.source_id)
            .where(UnitMerge.unit_id.in_(unit_ids[start:start + _CHUNK])).order_by(UnitMerge.id))
        for unit_id, code, name, valid_from, share, hint in rows:
            out.setdefault(unit_id, []).append({"code": code, "name": name, "valid_from": valid_from.isoformat(),
                                                "share": share, "hint": hint})
    return out


@bp.get("/plans/<plan_code>")
@login_required
def plan(plan_code: str) -> Any:
    return jsonify(plan_json(plan_or_404(plan_code)))
