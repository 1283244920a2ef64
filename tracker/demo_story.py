"""`seed --demo` tells the product's story on the 2024 plan: back-dated returns built from the real blank
forms, filled, and parsed through the normal upload path; reviews, a comment thread, scheduled and
manual reminders, so that the dashboard shows every status, the mail log is full and the chart has a
curve. Every return is marked as demo data (its note and file name); contacts are sample people.

Runs once per plan: a plan that already has a return is left alone (real data is never mixed with
the story). Mail is written to the .eml outbox whatever the settings, so no demo address is emailed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from openpyxl import load_workbook
from sqlalchemy import func, select

from . import audit, forms, outbox, reminders
from .chase import remind
from .comments import add_comment
from .compliance import ReviewState
from .demo_values import demo_values
from .extensions import db
from .models import Assignment, AuditEvent, OutboundMessage, Plan, ReturnVersion, Review, Role, Unit, User
from .returns import UploadSettings, receive_return
from .timeutil import LOCAL_TZ, as_utc
from .workbook import build_blank

PLAN = "bacgiang-2024"
DEMO_NOTE = "Dữ liệu mẫu (seed --demo): báo cáo minh hoạ, không phải số liệu thật của đơn vị."
DEMO_ACTION = "demo.story"

# (unit code, contact name, phone): sample people, said to be samples.
SAMPLE_CONTACTS = {
    "213": ("Nguyễn Thu Hà (mẫu)", "0204 3854 213"), "215": ("Trần Văn Bình (mẫu)", "0204 3876 215"),
    "216": ("Lê Thị Mai (mẫu)", "0204 3871 216"), "217": ("Phạm Quốc Hùng (mẫu)", "0204 3881 217"),
    "218": ("Hoàng Thị Lan (mẫu)", "0204 3884 218"), "219": ("Vũ Đức Thắng (mẫu)", "0204 3882 219"),
    "220": ("Đỗ Thị Hạnh (mẫu)", "0204 3886 220"), "221": ("Ngô Văn Toàn (mẫu)", "0204 3853 221"),
    "222": ("Bùi Thị Ngọc (mẫu)", "0204 3866 222"),
}


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return as_utc(datetime(2024, 5, day, hour, minute, tzinfo=LOCAL_TZ))


@dataclass
class StoryReport:
    told: bool = False
    reason: str = ""
    versions: int = 0
    reviews: int = 0
    messages: int = 0
    lines: list[str] = field(default_factory=list)


def _assignment(plan: Plan, code: str) -> Assignment:
    # Among the plan's own units (named on its map date): a code alone may name other units on other dates.
    return db.session.scalar(select(Assignment).join(Unit, Unit.id == Assignment.unit_id)
                             .where(Assignment.plan_id == plan.id, Unit.code == code))


def _workbook(assignment: Assignment, blanks: int = 0, scale: int = 1) -> bytes:
    """Return the unit's real blank form filled with demo numbers, the first ``blanks`` input cells left empty."""
    form = forms.get(assignment.form_code)
    data = build_blank(form, forms.workbook_context(assignment), current_app.config["SECRET_KEY"])
    book = load_workbook(io.BytesIO(data))
    values = demo_values(form, scale)
    for index, key in enumerate(form.input_keys()):
        sheet, address = form.address(key)
        book[sheet][address] = None if index < blanks else values[key]
    narrative = book[form.narrative.name]
    for section in form.narrative.sections:
        if section.answer:
            narrative[form.narrative.cell(section.code)] = f"(Dữ liệu mẫu) {section.heading}."
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _upload(plan: Plan, code: str, when: datetime, officer: User, report: StoryReport, blanks: int = 0,
            scale: int = 1) -> ReturnVersion:
    assignment = _assignment(plan, code)
    config = current_app.config
    settings = UploadSettings(max_bytes=config["MAX_UPLOAD_BYTES"], parse_timeout=config["PARSE_TIMEOUT"],
                              parse_memory_limit=config["PARSE_MEMORY_LIMIT"], secret=config["SECRET_KEY"])
    name = f"du-lieu-mau_{code}_{when.astimezone(LOCAL_TZ):%d%m%H%M}.xlsx"
    outcome = receive_return(assignment, _workbook(assignment, blanks, scale), name, officer, DEMO_NOTE, when,
                             forms.all_forms(), settings)
    outbox.flush_pending(as_of=when)
    report.versions += 1
    version = outcome.version
    report.lines.append(f"{assignment.unit.name}: phiên bản {version.version}, {version.errors} lỗi")
    return version


def _review(version: ReturnVersion, staff: User, when: datetime, reason: str, report: StoryReport) -> None:
    plan, unit = version.assignment.plan, version.assignment.unit
    state = ReviewState.RETURNED if reason else ReviewState.ACCEPTED
    review = Review(version_id=version.id, state=state, reason=reason, reviewer_id=staff.id, created_at=when)
    db.session.add(review)
    db.session.flush()
    event = audit.record("review.return" if reason else "review.accept", target=f"{plan.code}/{unit.code}",
                         user=staff, plan=plan.code, unit=unit.code, version=version.version, reason=reason)
    event.at = when
    if reason:
        reminders.queue_returned(review)
    db.session.commit()
    outbox.flush_pending(as_of=when)
    report.reviews += 1


def _scheduled(when: datetime) -> None:
    reminders.run(when, plan_code=PLAN)


def tell_story() -> StoryReport:
    """Tell the 2024 plan's demo story once; return what was added (``told`` False and why, otherwise).

    Needs the demo accounts of ``seed.seed_demo``. Commits as it goes, like the upload use case.
    """
    report = StoryReport()
    plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
    if plan is None:
        report.reason = f"không có kế hoạch {PLAN}"
        return report
    has_versions = db.session.scalar(select(func.count()).select_from(ReturnVersion).join(Assignment)
                                     .where(Assignment.plan_id == plan.id))
    if has_versions:
        report.reason = "kế hoạch đã có báo cáo (câu chuyện mẫu đã được tạo, hoặc đã có số liệu thật)"
        return report
    staff = db.session.scalar(select(User).where(User.email == "canbo@demo.bacgiang.vn"))
    officers = {u.unit.code: u for u in db.session.scalars(select(User).where(User.role == Role.UNIT)) if u.unit}
    if staff is None or not officers:
        report.reason = "chưa có tài khoản dùng thử"
        return report

    for code, (name, phone) in SAMPLE_CONTACTS.items():
        for contact in _assignment(plan, code).unit.contacts:
            if not contact.name:
                contact.name, contact.phone = name, phone
    db.session.commit()

    saved_server = current_app.config.get("MAIL_SERVER")
    current_app.config["MAIL_SERVER"] = None  # demo addresses are never emailed: .eml outbox only
    try:
        _scheduled(_at(3, 7))
        v213 = _upload(plan, "213", _at(6, 9, 15), officers["213"], report)
        _review(v213, staff, _at(7, 10), "", report)
        _scheduled(_at(7, 7))
        v217 = _upload(plan, "217", _at(7, 14, 20), officers["217"], report, scale=2)
        _review(v217, staff, _at(8, 9), "Biểu 03: số vụ việc xâm hại trẻ em chưa khớp sổ theo dõi của huyện; "
                "đề nghị đối chiếu và gửi lại.", report)
        add_comment(v217, officers["217"], "Đơn vị đã nhận ý kiến, sẽ đối chiếu với Công an huyện và gửi lại "
                    "trong tuần.", _at(8, 10, 30))
        db.session.commit()
        outbox.flush_pending(as_of=_at(8, 10, 30))
        _upload(plan, "215", _at(8, 16, 40), officers["215"], report)
        _scheduled(_at(9, 7))
        v219 = _upload(plan, "219", _at(9, 10, 5), officers["219"], report, scale=3)
        _upload(plan, "216", _at(9, 11, 30), officers["216"], report, blanks=60)
        _review(v219, staff, _at(9, 15), "", report)
        _scheduled(_at(11, 7))
        _upload(plan, "218", _at(11, 9), officers["218"], report, blanks=130)
        _upload(plan, "216", _at(12, 8, 30), officers["216"], report, scale=2)
        for code in ("220", "221"):
            remind(plan, _assignment(plan, code).unit, _at(13, 9), staff)
        db.session.commit()
        outbox.flush_pending(as_of=_at(13, 9))
        _scheduled(_at(14, 7))
    finally:
        current_app.config["MAIL_SERVER"] = saved_server
    event = audit.record(DEMO_ACTION, target=plan.code, actor="seed --demo", plan=plan.code,
                         versions=report.versions)
    db.session.commit()
    report.messages = db.session.scalar(select(func.count()).select_from(OutboundMessage)
                                        .where(OutboundMessage.plan_id == plan.id)) or 0
    report.told = event is not None
    return report


def is_demo(plan: Plan) -> bool:
    """Return True when ``plan`` holds the demo story."""
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == DEMO_ACTION, AuditEvent.target == plan.code)) > 0


__all__ = ["DEMO_NOTE", "StoryReport", "is_demo", "tell_story"]
