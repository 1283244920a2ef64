"""Staff's reviewer pages: the plan's "Số liệu bất thường" list, verifying a flag, a form's min–max bounds."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import forms, review_tools
from ..access import department_required
from ..extensions import db
from ..models import OutlierBound
from ..outliers import REASON_LABELS
from ..timeutil import utc_now
from .lookup import assignment_or_404, plan_or_404

bp = Blueprint("reviewer", __name__)

PAGE_SIZE = 200


@bp.get("/plans/<plan_code>/outliers")
@department_required
def outliers(plan_code: str) -> Any:
    plan = plan_or_404(plan_code)
    items = review_tools.plan_flags(plan, utc_now(), forms.all_forms())
    reason = request.args.get("reason", "")
    if reason and reason not in REASON_LABELS:
        abort(400, "Lý do lọc không hợp lệ.")
    open_only = request.args.get("open") == "1"
    shown = [i for i in items if (not reason or i.flag.reason == reason) and not (open_only and i.verified)]
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= 10**6:
        abort(400, "Số trang không hợp lệ.")
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    number = min(int(page), pages)
    form_codes = sorted({i.flag.form_code for i in items} | {a.form_code for a in plan.assignments if a.form_code})
    return render_template("reviewer/outliers.html", plan=plan, items=shown[(number - 1) * PAGE_SIZE:number * PAGE_SIZE],
                           total=len(items), verified=sum(1 for i in items if i.verified), shown=len(shown),
                           reason=reason, open_only=open_only, reasons=REASON_LABELS, page=number, pages=pages,
                           form_codes=form_codes)


@bp.post("/plans/<plan_code>/units/<unit_code>/outliers/verify")
@department_required
def verify(plan_code: str, unit_code: str) -> Any:
    assignment = assignment_or_404(plan_code, unit_code)
    plan, unit = assignment.plan, assignment.unit
    back = (url_for("reviewer.outliers", plan_code=plan.code) if request.form.get("back") == "list"
            else url_for("unit.home", plan_code=plan.code, unit_code=unit.code) + "#outliers-h")
    try:
        review_tools.verify_flag(plan, unit, request.form, current_user, utc_now(), forms.all_forms())
    except review_tools.ToolRefused as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return render_template("reviewer/refused.html", plan=plan, back=back, message=refused.message), refused.status
    db.session.commit()
    flash("Đã ghi nhận: số liệu đã được xác minh.", "ok")
    return redirect(back, 303)


@bp.route("/forms/<form_code>", methods=["GET", "POST"])
@department_required
def form_page(form_code: str) -> Any:
    form = forms.get(form_code)
    if request.method == "POST":
        try:
            changed = review_tools.set_bounds(form, request.form, current_user, utc_now())
        except review_tools.ToolRefused as refused:
            db.session.rollback()
            flash(refused.message, "error")
            return render_template("reviewer/form.html", form=form, bounds=_bounds(form_code),
                                   posted=request.form), refused.status
        db.session.commit()
        flash(f"Đã lưu khoảng giá trị của {changed} chỉ tiêu." if changed else "Không có thay đổi nào.", "ok")
        return redirect(url_for("reviewer.form_page", form_code=form.code), 303)
    return render_template("reviewer/form.html", form=form, bounds=_bounds(form_code), posted=None)


def _bounds(form_code: str) -> dict[str, OutlierBound]:
    return {b.indicator: b for b in db.session.scalars(db.select(OutlierBound).where(OutlierBound.form_code == form_code))}


@bp.app_template_filter("vn_number")
def vn_number(value: Any) -> str:
    """Show a number as Vietnamese write it (12.345,6); text as it is; "—" for a blank."""
    from ..outliers import fmt_number

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt_number(float(value))
    return "—" if value in (None, "") else str(value)
