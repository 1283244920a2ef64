"""The department's view of a plan: dashboard, schedule, consolidated export, accepting or returning a version."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import charts
from ..chase import chase_list
from ..demo_story import is_demo
from ..plan_series import plan_timeliness
from ..review_queue import review_queue
from ..access import department_required
from ..compliance import Standing, Status, summarize
from ..extensions import db
from ..models import Plan, Visit
from ..review import ReviewRefused, review_version
from ..rollup import PER_PAGE, ROLLUP_THRESHOLD, ancestors, count_filtered, rollup
from ..standing_query import Scope, count_in_scope, page_unit_ids
from ..standings import UnitStanding, plan_standings
from ..timeutil import LOCAL_TZ, as_utc, fmt_input, local, parse_instant, parse_vn_datetime, utc_now
from .helpers import export_response
from .lookup import assignment_or_404, plan_or_404, unit_or_404, version_or_404

bp = Blueprint("dashboard", __name__)

UPCOMING_DAYS = 14
_LOCAL_INPUT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")

# Most urgent first when sorting by status ascending.
STATUS_RANK = {Status.OVERDUE: 0, Status.INCOMPLETE: 1, Status.LATE: 2, Status.NOT_DUE: 3,
               Status.ON_TIME: 4, Status.EXEMPT: 5}
SORT_COLUMNS: dict[str, str] = {
    "unit": "Đơn vị", "form": "Biểu mẫu", "status": "Tình trạng", "first": "Nhận lần đầu",
    "latest": "Nhận gần nhất", "days": "Quá hạn / còn lại", "errors": "Lỗi", "warnings": "Cảnh báo",
    "review": "Ý kiến của Sở",
}


def parse_as_of(text: str | None, now: datetime) -> datetime:
    """Return the instant named by ``text``: ``now`` when empty, "dd/mm/yyyy HH:MM" (the as-of field, typed
    the Vietnamese way, on Vietnam's clock), a ``YYYY-MM-DDTHH:MM`` Vietnam wall-clock time, or ISO 8601
    with an offset (the links the pages build).

    Raises ValueError (with a Vietnamese message) on anything else.
    """
    text = (text or "").strip()
    if not text:
        return now
    try:
        if "/" in text:
            return parse_vn_datetime(text)
        if _LOCAL_INPUT.match(text):
            return as_utc(datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ))
        return parse_instant(text)
    except ValueError:
        raise ValueError(f"Thời điểm «{text}» không hợp lệ. Hãy ghi ngày giờ theo dạng ngày/tháng/năm giờ:phút, "
                         "giờ Việt Nam, ví dụ 10/05/2024 08:00.") from None


def as_of_from_request(now: datetime) -> datetime:
    """Return ``?as_of=`` as an instant (``now`` when absent); abort with 400 and the reason when invalid."""
    try:
        return parse_as_of(request.args.get("as_of"), now)
    except ValueError as exc:
        abort(400, str(exc))


def as_of_param(as_of: datetime | None) -> str | None:
    """Return the query value that names ``as_of`` again in links (Vietnam time with its offset)."""
    return None if as_of is None else local(as_of).isoformat(timespec="minutes")


# ---------------------------------------------------------------------------------------------
# Dashboard


@dataclass(frozen=True)
class TableRow:
    unit_code: str
    unit_name: str
    form_code: str | None
    standing: Standing

    @property
    def days_key(self) -> int | None:
        if self.standing.days_late is not None:
            return self.standing.days_late
        if self.standing.days_left is not None:
            return -self.standing.days_left
        return None

    def sort_key(self, column: str) -> Any:
        s = self.standing
        return {
            "unit": self.unit_code, "form": self.form_code, "status": STATUS_RANK[s.status],
            "first": s.first_received_at, "latest": s.latest_received_at, "days": self.days_key,
            # No version, no counts: "—" on the page, and last in the order.
            "errors": s.errors if s.latest_version else None,
            "warnings": s.warnings if s.latest_version else None,
            "review": None if s.review is None else (s.review.value, s.review_reason or ""),
        }[column]


def sort_rows(rows: list[TableRow], column: str, descending: bool) -> list[TableRow]:
    """Return ``rows`` sorted on ``column``; rows without a value stay last in both directions."""
    present = [r for r in rows if r.sort_key(column) is not None]
    absent = [r for r in rows if r.sort_key(column) is None]
    # Unit code breaks ties so the order is stable whatever the database returned.
    present.sort(key=lambda r: r.unit_code)
    present.sort(key=lambda r: r.sort_key(column), reverse=descending)
    return present + sorted(absent, key=lambda r: r.unit_code)


@bp.route("/plans/<plan_code>/dashboard")
@department_required
def dashboard(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    now = utc_now()
    as_of = as_of_from_request(now)
    explicit = bool((request.args.get("as_of") or "").strip())
    status_filter = request.args.get("status", "").strip()
    if status_filter and status_filter not in {s.value for s in Status}:
        abort(400, f"Tình trạng «{status_filter}» không hợp lệ.")
    sort = request.args.get("sort", "unit")
    if sort not in SORT_COLUMNS:
        sort = "unit"
    direction = "desc" if request.args.get("dir") == "desc" else "asc"

    keep = {"as_of": as_of_param(as_of) if explicit else None, "status": status_filter or None, "parent": None,
            "q": None}
    large = large_plan_view(plan, as_of, status_filter, sort, direction == "desc")
    if large is not None:
        # A large plan's chase list covers the units of the table's page (filter by status to go through all).
        summary, rows, standings = large["summary"], large["rows"], large["items"]
        keep.update(parent=large["parent_code"], q=large["search"] or None)
    else:
        standings = plan_standings(plan, as_of)
        summary = summarize(s.standing for s in standings)
        rows = [TableRow(s.unit_code, s.unit_name, s.form_code, s.standing) for s in standings]
        if status_filter:
            rows = [r for r in rows if r.standing.status.value == status_filter]
        rows = sort_rows(rows, sort, direction == "desc")
    timeliness = plan_timeliness(plan, as_of)
    return render_template(
        "dashboard/dashboard.html", plan=plan, rows=rows, summary=summary, as_of=as_of, explicit=explicit,
        as_of_input=_picker_value(as_of, explicit), status_filter=status_filter, sort=sort,
        direction=direction, columns=SORT_COLUMNS, keep=keep, statuses=list(Status),
        deadline_param=as_of_param(plan.deadline), width=_width, presets=as_of_presets(plan),
        chase_rows=chase_list(plan, as_of, standings), timeliness=timeliness,
        line=charts.line_chart(timeliness), bars=charts.status_bars(summary.counts),
        colours=charts.SERIES_COLOURS, waiting=len(review_queue(plan)), demo=is_demo(plan), large=large)


def large_plan_view(plan: Plan, as_of: datetime, status_filter: str, sort: str, descending: bool
                    ) -> dict[str, Any] | None:
    """Return what the dashboard of a plan with more than ROLLUP_THRESHOLD units shows (None for a smaller
    plan): counts rolled up one level below ``?parent`` (the whole plan at first), ``?q`` (name or code)
    and one ``?page`` of the unit table, all from the database. Aborts 404 for an unknown parent and 400
    for a bad page number."""
    # A plan requiring the signed report adds a rule in Python (standings._require_signed_reports) that the
    # SQL counts do not know: it keeps the one full table.
    if plan.signed_report_required or count_in_scope(plan.id, Scope()) <= ROLLUP_THRESHOLD:
        return None
    parent_code = (request.args.get("parent") or "").strip()
    parent = None
    if parent_code:
        parent = unit_or_404(parent_code, plan.units_on)  # the parent on the plan's own map
    search = (request.args.get("q") or "").strip()[:100]
    try:
        page = int(request.args.get("page") or 1)
    except ValueError:
        abort(400, "Số trang phải là số nguyên từ 1 trở lên.")
    if not 1 <= page <= 10**6:
        abort(400, "Số trang phải là số nguyên từ 1 trở lên.")
    place = Scope(parent_id=parent.id if parent else None)
    counts = rollup(plan, as_of, place)
    scope = Scope(parent_id=place.parent_id, search=search or None,
                  status=Status(status_filter) if status_filter else None)
    # The roll-up already counted what is in place: only a search needs its own count.
    if search:
        total = count_filtered(plan, as_of, scope)
    else:
        total = counts.summary.count(scope.status) if scope.status else counts.summary.total
    pages = max(1, -(-total // PER_PAGE))
    page = min(page, pages)
    if sort == "unit" and scope.status is None:
        # The default order needs no standing: pick the page's units first, then compute theirs alone.
        ids = page_unit_ids(plan.id, scope, descending, PER_PAGE, (page - 1) * PER_PAGE)
        items = plan_standings(plan, as_of, unit_ids=ids, scope=scope, sort=(sort, descending)) if ids else []
    else:
        items = plan_standings(plan, as_of, scope=scope, limit=PER_PAGE, offset=(page - 1) * PER_PAGE,
                               sort=(sort, descending))
    rows = [TableRow(s.unit_code, s.unit_name, s.form_code, s.standing) for s in items]
    return {"summary": counts.summary, "groups": counts.groups, "rows": rows, "items": items, "page": page,
            "pages": pages,
            "total": total, "per_page": PER_PAGE, "parent_code": parent.code if parent else None,
            "trail": ancestors(parent.id) if parent else [], "search": search}


def _picker_value(as_of: datetime, explicit: bool) -> str:
    # Empty unless a time was chosen: a pre-filled "now" would freeze the view at that minute on "Xem".
    return fmt_input(as_of) if explicit else ""


def as_of_presets(plan: Plan) -> list[tuple[str, str | None]]:
    """Return the as-of field's presets (label, query value; None means now)."""
    day = timedelta(days=1)
    return [("Tại hạn nộp", as_of_param(plan.deadline)), ("Hôm nay", None),
            ("1 ngày trước hạn", as_of_param(plan.deadline - day)),
            ("7 ngày sau hạn", as_of_param(plan.deadline + 7 * day))]


def _width(part: int, whole: int) -> int:
    """Return a bar width in whole percent for the w-0 … w-100 classes (CSP forbids inline styles)."""
    return 0 if whole <= 0 else max(0, min(100, round(100 * part / whole)))


# ---------------------------------------------------------------------------------------------
# Schedule


def visit_needs_attention(visit_date: date, as_of: datetime, standing: UnitStanding | None) -> bool:
    """Return True when the visit falls within UPCOMING_DAYS (Vietnam calendar days) after ``as_of`` and the
    unit, which must report, has no complete return."""
    days = (visit_date - local(as_of).date()).days
    if not 0 <= days <= UPCOMING_DAYS or standing is None:
        return False
    return standing.form_code is not None and not standing.standing.complete


@bp.route("/plans/<plan_code>/schedule")
@department_required
def schedule(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    now = utc_now()
    as_of = as_of_from_request(now)
    explicit = bool((request.args.get("as_of") or "").strip())
    by_unit = {s.unit_id: s for s in plan_standings(plan, as_of)}
    visits = db.session.scalars(
        select(Visit).where(Visit.plan_id == plan.id)
        .options(selectinload(Visit.unit), selectinload(Visit.communes))
        .order_by(Visit.visit_date, Visit.id)).all()
    today = local(as_of).date()
    items = [{"visit": v, "standing": by_unit.get(v.unit_id), "days": (v.visit_date - today).days,
              "attention": visit_needs_attention(v.visit_date, as_of, by_unit.get(v.unit_id))}
             for v in visits]
    return render_template("dashboard/schedule.html", plan=plan, items=items, as_of=as_of, explicit=explicit,
                           as_of_input=_picker_value(as_of, explicit), upcoming_days=UPCOMING_DAYS,
                           presets=as_of_presets(plan))


# ---------------------------------------------------------------------------------------------
# Consolidated export


@bp.route("/plans/<plan_code>/export.xlsx")
@department_required
def export(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    return export_response(plan, as_of_from_request(utc_now()), "dashboard")


# ---------------------------------------------------------------------------------------------
# Reviews


def _review(plan_code: str, unit_code: str, number: int, returning: bool) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    plan, unit = assignment.plan, assignment.unit
    version = version_or_404(assignment, number)
    back = url_for("unit.home", plan_code=plan.code, unit_code=unit.code)
    # Named places only (no URL from the form): the queue and the version page send staff back there.
    if request.form.get("next") == "review-queue":
        back = url_for("review.queue", plan_code=plan.code)
    elif request.form.get("next") == "version":
        back = url_for("unit.version", plan_code=plan.code, unit_code=unit.code, number=version.version)
    try:
        decision = review_version(assignment, version, current_user, returning, request.form.get("reason", ""),
                                  utc_now())
    except ReviewRefused as refused:
        flash(refused.message, "error")
        return render_template("dashboard/review_refused.html", plan=plan, unit=unit, back=back,
                               message=refused.message), refused.status
    flash(decision.message, "ok")
    return redirect(back)


@bp.post("/plans/<plan_code>/units/<unit_code>/versions/<int:n>/accept")
@department_required
def accept_version(plan_code: str, unit_code: str, n: int) -> Any:
    return _review(plan_code, unit_code, n, returning=False)


@bp.post("/plans/<plan_code>/units/<unit_code>/versions/<int:n>/return")
@department_required
def return_version(plan_code: str, unit_code: str, n: int) -> Any:
    return _review(plan_code, unit_code, n, returning=True)

