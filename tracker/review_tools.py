"""The reviewer's tools as use cases: what changed between two versions, and the plan's outlier flags.

Flags are computed over each unit's counted version (``standings.counted_versions``: the latest complete
version not returned for correction nor withdrawn).

The queries live here; the judging lives in the pure modules ``changes`` and ``outliers``. Nothing here
changes a version, a review or a status: the only writes are staff's verifications of flags and their
min–max bounds, each recorded in the audit log (the caller commits).
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select

from . import audit, plan_changes
from .catalog import Form
from .changes import VersionChanges, compare
from .export import ExtraSheet
from .export_query import collect_export_input
from .export_writer import ConsolidatedWorkbook, build_workbook
from .extensions import db
from .models import (Assignment, OutlierBound, OutlierVerification, Plan, ReturnIssue, ReturnValue, ReturnVersion,
                     Unit, User, ValueLayout, ValuePack)
from .outliers import Flag, FormValues, cell_key, find_flags, fmt_number
from .standing_cache import cached, plan_events
from .standings import counted_versions
from .value_packs import pack, unpack

MAX_NOTE = 2000
OUTLIERS_SHEET = "Số liệu bất thường"


class ToolRefused(Exception):
    """A request the tools refuse; ``message`` (Vietnamese) and ``status`` are for the response."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


# ---------------------------------------------------------------------------------------------
# The counted version (issue 12's rule: standings.counted_versions)


def counted_version_ids(plan_id: int, as_of: datetime) -> dict[int, int]:
    """Return {assignment id: counted version id} of the plan at ``as_of`` (units without one are absent)."""
    return {aid: vid for aid, vid, _number in db.session.execute(counted_versions(plan_id, as_of))}


# ---------------------------------------------------------------------------------------------
# What changed


def _value_rows(version_id: int) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.session.execute(
        select(ReturnValue.sheet, ReturnValue.indicator, ReturnValue.period, ReturnValue.breakdown,
               ReturnValue.value, ReturnValue.text).where(ReturnValue.version_id == version_id))]


def _issue_rows(version_id: int) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.session.execute(
        select(ReturnIssue.severity, ReturnIssue.sheet, ReturnIssue.cell, ReturnIssue.indicator, ReturnIssue.message)
        .where(ReturnIssue.version_id == version_id).order_by(ReturnIssue.id))]


def version_changes(new: ReturnVersion, old: ReturnVersion, form: Form | None) -> VersionChanges:
    """Return what changed from ``old`` to ``new`` (two versions of the same return): four queries."""
    return compare(form, new.version, old.version, _value_rows(new.id), _value_rows(old.id),
                   _issue_rows(new.id), _issue_rows(old.id))


def changes_json(result: VersionChanges) -> dict[str, Any]:
    """Return the API's body: ``changes`` (sheet, cell, indicator, period, breakdown, old, new), issues."""
    def issue(i: Any) -> dict[str, str]:
        return {"severity": i.severity, "sheet": i.sheet, "cell": i.cell, "indicator": i.indicator,
                "message": i.message}

    return {"version": result.version, "since": result.since, "summary": result.summary,
            "changes": [{"sheet": c.sheet, "cell": c.cell, "indicator": c.indicator, "period": c.period,
                         "breakdown": c.breakdown, "old": c.old, "new": c.new, "indicator_code": c.indicator_code,
                         "period_key": c.period_key, "breakdown_key": c.breakdown_key} for c in result.changes],
            "issues_added": [issue(i) for i in result.issues_added],
            "issues_removed": [issue(i) for i in result.issues_removed]}


# ---------------------------------------------------------------------------------------------
# Counted values of a plan, one query for the packs


def _form_order(form: Form | None) -> dict[str, int]:
    if form is None:
        return {}
    order: dict[str, int] = {}
    for sheet in form.sheets:
        for row in sheet.data_rows:
            for column in sheet.columns:
                if column.breakdown in row.breakdowns:
                    order.setdefault(cell_key(row.indicator, column.period, column.breakdown), len(order))
    return order


def counted_values(plan_id: int, as_of: datetime, forms: Mapping[str, Form]) -> dict[str, FormValues]:
    """Return the counted versions' numbers of the plan at ``as_of`` as one ``FormValues`` per form.

    Four queries whatever the number of units: the units, the packs of their counted versions, the
    layouts those packs use, and the stored rows of any counted version written before packs existed.
    """
    counted = counted_versions(plan_id, as_of).subquery()
    who = {aid: (code, form_code) for aid, code, form_code in db.session.execute(
        select(Assignment.id, Unit.code, Assignment.form_code).join(Unit, Unit.id == Assignment.unit_id)
        .where(Assignment.plan_id == plan_id, Assignment.form_code.is_not(None)))}
    packed = db.session.execute(
        select(counted.c.assignment_id, counted.c.version_id, ValuePack.layout_id, ValuePack.data)
        .outerjoin(ValuePack, ValuePack.version_id == counted.c.version_id)).all()
    layout_ids = {layout_id for _, _, layout_id, _ in packed if layout_id is not None}
    layouts: dict[int, tuple[str, ...]] = {}
    if layout_ids:
        layouts = {lid: tuple(keys) for lid, keys in db.session.execute(
            select(ValueLayout.id, ValueLayout.keys).where(ValueLayout.id.in_(sorted(layout_ids))))}
    # (assignment id, layout keys, float64 bytes) per counted version; older versions are packed here.
    entries: list[tuple[int, tuple[str, ...], bytes]] = []
    missing: dict[int, int] = {}
    for assignment_id, version_id, layout_id, data in packed:  # by position: 10,595 rows a plan
        if assignment_id not in who:
            continue
        if layout_id is None:
            missing[version_id] = assignment_id
        else:
            entries.append((assignment_id, layouts[layout_id], data))
    if missing:
        rows: dict[int, list[tuple[str, str, str, float | None]]] = defaultdict(list)
        ids = sorted(missing)
        for start in range(0, len(ids), 500):
            for vid, indicator, period, breakdown, value in db.session.execute(
                    select(ReturnValue.version_id, ReturnValue.indicator, ReturnValue.period, ReturnValue.breakdown,
                           ReturnValue.value).where(ReturnValue.version_id.in_(ids[start:start + 500]),
                                                    ReturnValue.value.is_not(None))):
                rows[vid].append((indicator, period, breakdown, value))
        for vid, aid in missing.items():
            keys, data = pack(rows.get(vid, ()))
            entries.append((aid, keys, data))

    by_form: dict[str, list[tuple[str, tuple[str, ...], bytes]]] = defaultdict(list)
    for aid, keys, data in entries:
        code, form_code = who[aid]
        by_form[form_code].append((code, keys, data))
    result: dict[str, FormValues] = {}
    for form_code, items in by_form.items():
        items.sort(key=lambda item: item[0])
        order = _form_order(forms.get(form_code))
        # Grouped by the layout tuple's identity: the packs of one layout share one tuple, and hashing or
        # walking its ~500 keys once per unit was a fifth of a national plan's time.
        layout_of: dict[int, tuple[str, ...]] = {}
        groups: dict[int, list[int]] = defaultdict(list)
        for i, (_, layout, _) in enumerate(items):
            layout_of[id(layout)] = layout
            groups[id(layout)].append(i)
        all_keys = set().union(*layout_of.values())
        keys = tuple(sorted(all_keys, key=lambda k: (order.get(k, len(order)), k)))
        col_of = {k: j for j, k in enumerate(keys)}
        matrix = np.full((len(items), len(keys)), np.nan)
        for layout_id, rows_of in groups.items():
            layout = layout_of[layout_id]
            if not layout:
                continue
            block = unpack(b"".join(items[i][2] for i in rows_of)).reshape(len(rows_of), len(layout))
            matrix[np.ix_(np.array(rows_of), np.array([col_of[k] for k in layout]))] = block
        result[form_code] = FormValues(form_code, tuple(code for code, _, _ in items), keys, matrix)
    return result


# ---------------------------------------------------------------------------------------------
# Flags


@dataclass(frozen=True)
class ReviewedFlag:
    """A flag with what a page shows beside it: names, labels, the cell, and staff's verification."""

    flag: Flag
    unit_name: str
    sheet: str
    cell: str
    indicator_label: str
    period_label: str
    breakdown_label: str
    verification: OutlierVerification | None

    @property
    def verified(self) -> bool:
        return self.flag.verified


def bounds_of(form_codes: list[str] | None = None) -> dict[str, dict[str, tuple[float | None, float | None]]]:
    """Return staff's bounds as {form code: {indicator: (min, max)}}."""
    query = select(OutlierBound.form_code, OutlierBound.indicator, OutlierBound.min_value, OutlierBound.max_value)
    if form_codes is not None:
        query = query.where(OutlierBound.form_code.in_(form_codes))
    result: dict[str, dict[str, tuple[float | None, float | None]]] = defaultdict(dict)
    for form_code, indicator, low, high in db.session.execute(query):
        result[form_code][indicator] = (low, high)
    return dict(result)


def _labels(form: Form | None, flag: Flag) -> tuple[str, str, str, str, str]:
    """Return (Excel sheet name, cell, indicator label, period label, breakdown label) of a flag's cell."""
    if form is None:
        return "", "", flag.indicator, flag.period, flag.breakdown
    try:
        row = form.indicator(flag.indicator)
        sheet = form.sheet(row.sheet)
        column = sheet.column(f"{flag.period}_{flag.breakdown}")
        return sheet.name, sheet.cell(row.code, column.key), row.label, column.period_label, column.breakdown_label
    except KeyError:
        return "", "", flag.indicator, flag.period, flag.breakdown


def plan_flags(plan: Plan, as_of: datetime, forms: Mapping[str, Form],
               unit_code: str | None = None) -> list[ReviewedFlag]:
    """Return the plan's outlier flags at ``as_of`` (optionally one unit's), each with its verification.

    The cross-unit score needs every unit of the form, so the whole plan is always computed.
    """
    verifications: dict[tuple[Any, ...], OutlierVerification] = {}
    for verification in db.session.scalars(
            select(OutlierVerification).where(OutlierVerification.plan_id == plan.id).order_by(OutlierVerification.id)):
        verifications[(verification.unit_id, verification.indicator, verification.period, verification.breakdown,
                       verification.reason, float(verification.value))] = verification  # the latest wins
    units = {code: (uid, name) for uid, code, name in db.session.execute(
        select(Unit.id, Unit.code, Unit.name).join(Assignment, Assignment.unit_id == Unit.id)
        .where(Assignment.plan_id == plan.id))}
    code_of = {uid: code for code, (uid, _) in units.items()}
    verified = frozenset((code_of[key[0]], *key[1:]) for key in verifications if key[0] in code_of)
    flags = _flags(plan, as_of, forms, verified)
    result = []
    labels: dict[tuple[str, str, str, str], tuple[str, str, str, str, str]] = {}
    for flag in flags:
        if unit_code is not None and flag.unit != unit_code:
            continue
        uid, name = units.get(flag.unit, (None, flag.unit))
        where = (flag.form_code, flag.indicator, flag.period, flag.breakdown)
        if where not in labels:  # a few hundred cells, thousands of flags
            labels[where] = _labels(forms.get(flag.form_code), flag)
        verification = verifications.get((uid, *flag.key[1:])) if flag.verified else None
        result.append(ReviewedFlag(flag, name, *labels[where], verification))
    return result


def _flags(plan: Plan, as_of: datetime, forms: Mapping[str, Form], verified: frozenset[Any]) -> list[Flag]:
    """Return ``find_flags`` over the plan's counted values, kept per plan while nothing it reads changed.

    Reading the counted values of a national plan and of the plan it was copied from is most of a second,
    and every staff view of a unit page asks for the plan's flags. Besides the plan's own counter and
    events (standing_cache), the entry holds while the source plan's counter, staff's bounds and the
    verified flags are unchanged, and no event of the source plan lies between the two instants.
    """
    source = plan.copied_from_id
    bounds = tuple(db.session.execute(select(func.count(OutlierBound.id), func.max(OutlierBound.id),
                                             func.max(OutlierBound.updated_at))).one())
    stamp = (plan_changes.current(db.session, source) if source else None, bounds, verified)

    def compute() -> list[Flag]:
        current = counted_values(plan.id, as_of, forms)
        previous = counted_values(source, as_of, forms) if source else {}
        return find_flags(forms, list(current.values()), previous, bounds_of(sorted(current)), verified)

    return cached(plan, as_of, ("outlier_flags",), compute, stamp=stamp,
                  more_events=plan_events(source) if source else None, by_constants=False)


def flag_json(item: ReviewedFlag) -> dict[str, Any]:
    """Return one flag as the API shows it (``unit``, ``indicator``, ``period``, ``breakdown``, ``value``,
    ``reason``, ``reference``, ``verified`` and the details beside them)."""
    f, v = item.flag, item.verification
    return {"unit": f.unit, "unit_name": item.unit_name, "form": f.form_code, "indicator": f.indicator,
            "indicator_label": item.indicator_label, "period": f.period, "breakdown": f.breakdown,
            "sheet": item.sheet, "cell": item.cell, "value": f.value, "reason": f.reason,
            "reference": None if math.isinf(f.reference) else f.reference, "score": f.score, "rate": f.rate,
            "per": f.per, "message": f.message, "verified": f.verified,
            "verification": None if v is None else {"note": v.note, "at": v.verified_at.isoformat(),
                                                    "by": v.verified_by.email if v.verified_by else None}}


def outlier_sheet(items: list[ReviewedFlag], forms: Mapping[str, Form]) -> ExtraSheet:
    """Return the export's «Số liệu bất thường» sheet: one row per flag, labels only (no internal codes)."""
    from .timeutil import fmt_datetime

    rows = []
    for number, i in enumerate(items, start=1):
        form = forms.get(i.flag.form_code)
        v = i.verification
        rows.append((str(number), i.unit_name, form.name if form else i.flag.form_code, i.sheet, i.cell,
                     i.indicator_label, i.period_label, i.breakdown_label, fmt_number(i.flag.value),
                     i.flag.reason_label, i.flag.message,
                     "" if v is None else f"Đã xác minh {fmt_datetime(v.verified_at)}: {v.note or 'không có ghi chú'}"))
    return ExtraSheet(OUTLIERS_SHEET, "SỐ LIỆU BẤT THƯỜNG TRONG BÁO CÁO ĐƯỢC TÍNH CỦA CÁC ĐƠN VỊ",
                      ("STT", "Đơn vị", "Biểu mẫu", "Biểu", "Ô", "Chỉ tiêu", "Kỳ", "Phân tổ", "Giá trị", "Lý do",
                       "Chi tiết", "Xác minh của Sở"),
                      (5, 20, 9, 8, 6, 30, 10, 8, 9, 14, 34, 24), tuple(rows), "Không có số liệu bất thường.")


def export_sheets(plan: Plan, as_of: datetime, forms: Mapping[str, Form]) -> tuple[ExtraSheet, ...]:
    """Return the consolidated export's extra sheets: «Số liệu bất thường», the plan's flags at ``as_of``."""
    return (outlier_sheet(plan_flags(plan, as_of, forms), forms),)


def consolidated_workbook(plan: Plan, as_of: datetime, forms: Mapping[str, Form]) -> ConsolidatedWorkbook:
    """Return the bảng tổng hợp of ``plan`` at ``as_of`` with the reviewer's sheets after the Biểu: the one
    workbook that the dashboard, the API and the ``export`` command all give."""
    return build_workbook(collect_export_input(plan, as_of), forms, extra=export_sheets(plan, as_of, forms))


def verify_flag(plan: Plan, unit: Unit, fields: Mapping[str, str], user: User, as_of: datetime,
                forms: Mapping[str, Form]) -> OutlierVerification:
    """Record that staff checked the unit's flagged figure and found it right; return the verification.

    ``fields``: indicator, period, breakdown, reason, value (as the page posts them) and note. Raises
    ToolRefused: 422 when the note is too long or the fields are malformed, 409 when no such flag
    stands now (the figure changed, or it no longer looks wrong).
    """
    note = (fields.get("note") or "").strip()
    if len(note) > MAX_NOTE:
        raise ToolRefused("note_too_long", f"Ghi chú xác minh quá dài (tối đa {MAX_NOTE} ký tự).", 422)
    try:
        value = float(fields.get("value", ""))
    except ValueError:
        raise ToolRefused("invalid_flag", "Thiếu hoặc sai thông tin của số liệu cần xác minh.", 422) from None
    key = (unit.code, fields.get("indicator", ""), fields.get("period", ""), fields.get("breakdown", ""),
           fields.get("reason", ""), value)
    match = next((item for item in plan_flags(plan, as_of, forms, unit.code) if item.flag.key == key), None)
    if match is None:
        raise ToolRefused("no_such_flag", "Số liệu này hiện không còn bị đánh dấu bất thường (đơn vị đã nộp "
                          "số liệu khác hoặc số liệu không còn khác thường); không cần xác minh.", 409)
    assignment = db.session.scalar(select(Assignment.id).where(Assignment.plan_id == plan.id,
                                                               Assignment.unit_id == unit.id))
    version_id = counted_version_ids(plan.id, as_of).get(assignment)
    verification = OutlierVerification(plan_id=plan.id, unit_id=unit.id, version_id=version_id,
                                       indicator=key[1], period=key[2], breakdown=key[3], reason=key[4],
                                       value=value, note=note, verified_by_id=user.id, verified_at=as_of)
    db.session.add(verification)
    audit.record("outlier.verify", target=f"{plan.code}/{unit.code}", user=user, plan=plan.code, unit=unit.code,
                 indicator=key[1], period=key[2], breakdown=key[3], reason=key[4], value=value, note=note)
    db.session.flush()
    return verification


def _bound_number(text: str, label: str) -> float | None:
    text = (text or "").strip().replace(" ", "")
    if not text:
        return None
    # Vietnamese write 1.234,5; a lone comma is the decimal mark.
    if "," in text:
        normalised = text.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"-?\d{1,3}(\.\d{3})+", text):
        normalised = text.replace(".", "")  # 1.500 is fifteen hundred, as the page shows it
    else:
        normalised = text
    try:
        number = float(normalised)
    except ValueError:
        raise ToolRefused("invalid_bound", f"{label}: «{text}» không phải là số.", 422) from None
    if not math.isfinite(number):
        raise ToolRefused("invalid_bound", f"{label}: «{text}» không phải là số hữu hạn.", 422)
    return number


def set_bounds(form: Form, posted: Mapping[str, str], user: User, now: datetime) -> int:
    """Store the bounds posted from the form's page (``min:<indicator>``, ``max:<indicator>``); return how
    many indicators changed. Empty both sides removes an indicator's bound.

    Raises ToolRefused (422) naming the indicator when a value is not a number or min exceeds max;
    nothing is stored then.
    """
    existing = {b.indicator: b for b in db.session.scalars(
        select(OutlierBound).where(OutlierBound.form_code == form.code))}
    wanted: dict[str, tuple[float | None, float | None]] = {}
    for sheet in form.sheets:
        for row in sheet.data_rows:
            if f"min:{row.indicator}" not in posted and f"max:{row.indicator}" not in posted:
                continue
            label = f"{sheet.name}, {row.label}"
            low = _bound_number(posted.get(f"min:{row.indicator}", ""), label)
            high = _bound_number(posted.get(f"max:{row.indicator}", ""), label)
            if low is not None and high is not None and low > high:
                raise ToolRefused("invalid_bound", f"{label}: mức tối thiểu lớn hơn mức tối đa.", 422)
            wanted[row.indicator] = (low, high)
    changed = 0
    for indicator, (low, high) in wanted.items():
        bound = existing.get(indicator)
        if bound is not None and (bound.min_value, bound.max_value) == (low, high):
            continue
        if low is None and high is None:
            if bound is not None:
                db.session.delete(bound)
                changed += 1
                audit.record("outlier.bounds", target=form.code, user=user, form=form.code, indicator=indicator,
                             min=None, max=None)
            continue
        if bound is None:
            bound = OutlierBound(form_code=form.code, indicator=indicator)
            db.session.add(bound)
        bound.min_value, bound.max_value, bound.set_by_id, bound.updated_at = low, high, user.id, now
        changed += 1
        audit.record("outlier.bounds", target=form.code, user=user, form=form.code, indicator=indicator,
                     min=low, max=high)
    db.session.flush()
    return changed
