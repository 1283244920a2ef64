"""Reminder and notification emails: decide what is due at ``as_of`` and draft it; the outbox does the rest.

Scheduled kinds (deadline approaching, overdue, visit approaching, digest) are decided by
``reminder_rules.due_messages`` and drafted here; receipts, "returned for correction" notices,
comments and manual reminders are drafted here when the upload, review and chase use cases ask, inside
their own transaction. Every draft is stored once under its key by ``outbox.store`` and sent by the
outbox after the commit, with no transaction open while the SMTP server is talked to. Who receives
each message is ``contacts``'s business.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update

from . import contacts, mailer, outbox
from .compliance import Status, require_aware, summarize
from .extensions import db
from .forms import form_label
from .messages import MessageKind, MessageStatus
from .models import Assignment, OutboundMessage, Plan, PlanState, ReturnVersion, Review, Visit
from .outbox import Draft
from .reminder_rules import Due, ReminderSettings, UnitFacts, due_messages
from .standings import UnitStanding, plan_standings
from .timeutil import as_utc, fmt_date, fmt_datetime
from .wording import deadline_wording

DEFAULT_SUBJECT_PREFIX = "[Sở LĐTBXH Bắc Giang]"


class ReminderError(ValueError):
    """A reminder command cannot run as asked; the message says why, in Vietnamese."""


@dataclass(frozen=True)
class RunReport:
    """What ``run`` decided and sent at ``as_of``."""

    as_of: datetime
    dry_run: bool
    plans: tuple[str, ...]
    queued: tuple[Draft, ...]
    already_decided: int
    pending_due: int
    flush: outbox.FlushReport | None
    problems: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Settings and wording

def settings_for(plan: Plan) -> ReminderSettings:
    """Return the plan's ReminderSettings (defaults for missing keys); raise ValueError if invalid."""
    known = {f.name for f in fields(ReminderSettings)}
    values: dict[str, Any] = {}
    for key, value in (plan.reminder_settings or {}).items():
        if key in known:
            values[key] = tuple(int(d) for d in value) if key == "approaching_days" else value
    return ReminderSettings(**values)


def _subject(text: str) -> str:
    prefix = current_app.config.get("MAIL_SUBJECT_PREFIX", DEFAULT_SUBJECT_PREFIX)
    # Names come from data files: a stray newline must not become a refused header.
    return " ".join(f"{prefix} {text}".split())


def _unit_path(plan_code: str, unit_code: str) -> str:
    return f"/plans/{plan_code}/units/{unit_code}"


def _version_path(plan_code: str, unit_code: str, version: int) -> str:
    # The result page of one version (views/unit.py); built by hand because CLI runs have no request.
    return f"{_unit_path(plan_code, unit_code)}/versions/{version}"


def _common(plan: Plan, as_of: datetime) -> dict[str, Any]:
    return {"plan": plan, "as_of": as_of, "as_of_text": fmt_datetime(as_of),
            "deadline_text": deadline_wording(plan.deadline),
            "department_email": outbox.department_cc(plan)}


# ---------------------------------------------------------------------------------------------
# Drafting each kind

def _draft(plan: Plan, unit_key: str, kind: MessageKind, step: str, recipients: Sequence[str],
           subject: str, template: str, context: dict[str, Any], cc: Sequence[str] = (),
           missing: str = contacts.NO_CONTACTS) -> Draft:
    text, html = mailer.render_pair(template, **context)
    return Draft(plan_id=plan.id, plan_code=plan.code, unit_key=unit_key, kind=kind, step=step,
                 recipients=tuple(recipients), cc=tuple(c for c in cc if c and c not in recipients),
                 subject=_subject(subject), body_text=text, body_html=html,
                 error="" if recipients else missing)


def _unit_context(plan: Plan, us: UnitStanding, as_of: datetime) -> dict[str, Any]:
    return {**_common(plan, as_of), "unit_code": us.unit_code, "unit_name": us.unit_name,
            "form_label": form_label(us.form_code),
            "standing": us.standing, "status_label": us.standing.status.label,
            "link": mailer.public_url(_unit_path(plan.code, us.unit_code))}


def _scheduled_draft(plan: Plan, due: Due, standings: dict[str, UnitStanding],
                     addresses: dict[str, list[str]], visits: dict[tuple[str, str], Visit],
                     settings: ReminderSettings, as_of: datetime) -> Draft:
    kind = MessageKind(due.kind)
    if kind is MessageKind.DIGEST:
        return digest_draft(plan, as_of, due.step)
    assert due.unit_code is not None  # only the digest has no unit
    us = standings[due.unit_code]
    context = _unit_context(plan, us, as_of)
    to = addresses.get(us.unit_code, [])
    st = us.standing
    if kind is MessageKind.DEADLINE_APPROACHING:
        days = st.days_left or int(due.step.lstrip("d"))
        return _draft(plan, us.unit_code, kind, due.step, to,
                      f"Nhắc hạn nộp báo cáo: còn {days} ngày – {us.unit_name}",
                      "deadline_approaching", {**context, "days_left": days})
    if kind is MessageKind.OVERDUE:
        number = int(due.step.lstrip("o"))
        cc = [outbox.department_cc(plan)] if due.cc_department else []
        return _draft(plan, us.unit_code, kind, due.step, to,
                      f"Báo cáo đã quá hạn {st.days_late or 1} ngày (nhắc lần {number}) – {us.unit_name}",
                      "overdue", {**context, "days_late": st.days_late or 1, "number": number,
                                  "overdue_max": settings.overdue_max}, cc=cc)
    visit = visits[(us.unit_code, due.step)]
    visit_day = fmt_date(visit.visit_date)
    return _draft(plan, us.unit_code, kind, due.step, to,
                  f"Lịch kiểm tra ngày {visit_day} – {us.unit_name}", "visit_approaching",
                  {**context, "visit": visit, "visit_day": visit_day,
                   "communes": [c.name for c in visit.communes], "sessions": list(visit.session_starts),
                   "exempt": us.form_code is None})


def digest_draft(plan: Plan, as_of: datetime, step: str) -> Draft:
    """Return the digest of ``plan`` at ``as_of`` (status table of every unit) for active staff."""
    rows = plan_standings(plan, as_of)
    summary = summarize(r.standing for r in rows)
    local_day = fmt_date(as_of)
    context = {**_common(plan, as_of), "rows": rows, "summary": summary, "Status": Status,
               "statuses": list(Status),
               "link": mailer.public_url(f"/plans/{plan.code}/dashboard")}
    return _draft(plan, "", MessageKind.DIGEST, step, contacts.staff_addresses(),
                  f"Tổng hợp tình hình nộp báo cáo ngày {local_day}: {summary.complete}/{summary.required} "
                  "đơn vị đã nộp đầy đủ", "digest", context, missing=contacts.NO_STAFF)


def _plan_window(plan: Plan, settings: ReminderSettings) -> tuple[datetime | None, datetime]:
    """Return when the digest starts (the plan's date, if any) and ends (reminders and visits over)."""
    zone = settings.zone
    start = datetime.combine(plan.doc_date, time(0), tzinfo=zone) if plan.doc_date else None
    end = plan.deadline + timedelta(days=1 + settings.overdue_every_days * max(settings.overdue_max, 1))
    for visit in plan.visits:
        end = max(end, datetime.combine(visit.visit_date + timedelta(days=1), time(0), tzinfo=zone))
    return start, end


def decide(plan: Plan, as_of: datetime) -> tuple[list[Draft], int]:
    """Return the scheduled drafts due at ``as_of`` whose key is not stored yet, and how many were.

    Raises ValueError on a naive ``as_of`` or invalid reminder settings of the plan.
    """
    require_aware(as_of, "as_of")
    settings = settings_for(plan)
    standings = {us.unit_code: us for us in plan_standings(plan, as_of)}
    visits: dict[tuple[str, str], Visit] = {}
    visit_days: dict[str, list[date]] = defaultdict(list)
    for visit in plan.visits:
        if visit.unit.code in standings:
            visits[(visit.unit.code, visit.visit_date.isoformat())] = visit
            visit_days[visit.unit.code].append(visit.visit_date)
    facts = [UnitFacts(code, us.standing, tuple(visit_days.get(code, ()))) for code, us in standings.items()]
    due = due_messages(facts, plan.deadline, as_of, settings)
    start, end = _plan_window(plan, settings)
    if not ((start is None or as_of >= start) and as_of < end):
        due = [d for d in due if d.kind is not MessageKind.DIGEST]
    stored = set(db.session.execute(
        select(OutboundMessage.unit_key, OutboundMessage.kind, OutboundMessage.step)
        .where(OutboundMessage.plan_id == plan.id, OutboundMessage.kind.in_({d.kind for d in due}))).all())
    fresh = [d for d in due if (d.unit_code or "", d.kind, d.step) not in stored]
    addresses = contacts.unit_addresses((d.unit_code for d in fresh if d.unit_code), plan.id)
    drafts = [_scheduled_draft(plan, d, standings, addresses, visits, settings, as_of) for d in fresh]
    return drafts, len(due) - len(fresh)


def _receipt_draft(version: ReturnVersion, earlier: Sequence[ReturnVersion]) -> Draft | None:
    """Return the receipt naming ``earlier`` versions and ``version`` (the latest); None: nobody to tell."""
    assignment: Assignment = version.assignment
    plan, unit = assignment.plan, assignment.unit
    received = version.received_at
    context = {**_common(plan, received), "unit_code": unit.code, "unit_name": unit.name,
               "version": version, "earlier": list(earlier), "received_text": fmt_datetime(received),
               "form_label": form_label(version.form_code),
               "link": mailer.public_url(_version_path(plan.code, unit.code, version.version)),
               "unit_link": mailer.public_url(_unit_path(plan.code, unit.code))}
    state = "đầy đủ" if version.complete else "chưa đầy đủ"
    recipients = contacts.unit_addresses([unit.code], plan.id)[unit.code]
    if version.source == "email" and version.sender:
        # The sender gets the intake's own reply (receipt and problems in one message), not this one too.
        recipients = [r for r in recipients if r != version.sender.lower()]
        if not recipients:
            return None
    numbers = ", ".join(str(v.version) for v in [*earlier, version])
    first = earlier[0].version if earlier else version.version
    return _draft(plan, unit.code, MessageKind.RECEIPT, f"v{first}", recipients,
                  f"Đã nhận báo cáo phiên bản {numbers} ({state}) – {unit.name}", "receipt", context)


def queue_receipt(version: ReturnVersion, coalesce: timedelta | None = None) -> bool:
    """Queue the receipt of an accepted upload to the unit's contacts; return True when queued or extended.

    Call it in the upload's transaction, before its commit; ``outbox.flush_pending`` sends it after.
    Receipts are coalesced per unit and plan: while the unit's last receipt is still pending, it is
    rewritten to name this version too; when one went out less than ``coalesce`` (default
    RECEIPT_COALESCE_SECONDS) ago, the new one waits until that much time has passed, naming every
    version received meanwhile. The key's step is ``v<first version named>``; a repeated call for the
    same version changes nothing.
    """
    if version.id is None:
        db.session.flush()
    if coalesce is None:
        coalesce = timedelta(seconds=int(current_app.config.get("RECEIPT_COALESCE_SECONDS", 180)))
    assignment: Assignment = version.assignment
    received = version.received_at
    latest = db.session.scalar(
        select(OutboundMessage).where(OutboundMessage.plan_id == assignment.plan_id,
                                      OutboundMessage.unit_key == assignment.unit.code,
                                      OutboundMessage.kind == MessageKind.RECEIPT)
        .order_by(OutboundMessage.id.desc()).limit(1))
    due = received
    if latest is not None:
        first = _step_version(latest.step)
        if latest.status is MessageStatus.PENDING and first is not None and first <= version.version:
            draft = _receipt_draft(version, _versions_between(assignment.id, first, version.version))
            if draft is None:
                return False
            if draft.body_text == latest.body_text:
                return False  # this version is named already
            table = OutboundMessage.__table__
            # Conditional: a sender that claimed the row meanwhile sends the old text; we then queue anew.
            changed = db.session.execute(
                update(table).where(table.c.id == latest.id, table.c.status == MessageStatus.PENDING,
                                    table.c.attempts == latest.attempts)
                .values(subject=draft.subject[:500], body_text=draft.body_text, body_html=draft.body_html,
                        recipients=list(draft.recipients)))
            if changed.rowcount == 1:
                return True
        if first is not None and first >= version.version:
            return False  # an earlier call queued this very version
        last_out = latest.sent_at or latest.created_at or received
        due = max(received, as_utc(last_out) + coalesce)
    draft = _receipt_draft(version, [])
    return draft is not None and outbox.store(draft, received, due_at=due)


def _step_version(step: str) -> int | None:
    digits = step[1:] if step.startswith("v") else ""
    return int(digits) if digits.isdigit() else None


def _versions_between(assignment_id: int, first: int, last: int) -> list[ReturnVersion]:
    """Return the assignment's versions numbered first..last-1 (the ones received before ``last``)."""
    return list(db.session.scalars(select(ReturnVersion).where(
        ReturnVersion.assignment_id == assignment_id, ReturnVersion.version >= first,
        ReturnVersion.version < last).order_by(ReturnVersion.version)))


def queue_returned(review: Review) -> bool:
    """Queue the "returned for correction" notice of ``review`` to the unit; return True when queued.

    Call it in the review's transaction, before its commit. The step is ``v<version>-r<review id>``.
    """
    if review.id is None or review.created_at is None:
        db.session.flush()
    version = review.version
    assignment = version.assignment
    plan, unit = assignment.plan, assignment.unit
    as_of = review.created_at
    context = {**_common(plan, as_of), "unit_code": unit.code, "unit_name": unit.name,
               "version": version, "reason": review.reason.strip(), "reviewed_text": fmt_datetime(as_of),
               "received_text": fmt_datetime(version.received_at),
               "link": mailer.public_url(_version_path(plan.code, unit.code, version.version)),
               "unit_link": mailer.public_url(_unit_path(plan.code, unit.code)),
               "past_deadline": as_of >= plan.deadline}
    draft = _draft(plan, unit.code, MessageKind.RETURNED, f"v{version.version}-r{review.id}",
                   contacts.unit_addresses([unit.code], plan.id)[unit.code],
                   f"Báo cáo phiên bản {version.version} được trả lại để chỉnh sửa – {unit.name}",
                   "returned", context)
    return outbox.store(draft, as_of)


def manual_reminder_draft(plan: Plan, us: UnitStanding, step: str, as_of: datetime,
                          sender_name: str) -> Draft:
    """Return the reminder a staff member sends by hand to ``us``'s unit at ``as_of`` under ``step``."""
    context = {**_unit_context(plan, us, as_of), "sender_name": sender_name}
    return _draft(plan, us.unit_code, MessageKind.MANUAL_REMINDER, step,
                  contacts.unit_addresses([us.unit_code], plan.id)[us.unit_code],
                  f"Đề nghị hoàn thiện và gửi báo cáo – {us.unit_name}", "manual_reminder", context)


def queue_comment(comment: Any, recipients: Sequence[str], to_unit: bool) -> bool:
    """Queue ``comment`` (a VersionComment) to ``recipients`` once; return True when queued.

    The step is ``c<comment id>``; call it in the comment's transaction, before its commit.
    """
    if comment.id is None:
        db.session.flush()
    version = comment.version
    plan, unit = version.assignment.plan, version.assignment.unit
    author = comment.author
    author_name = (author.name or author.email) if author is not None else "Hệ thống"
    context = {**_common(plan, comment.created_at), "unit_code": unit.code, "unit_name": unit.name,
               "version": version, "body": comment.body, "received_text": fmt_datetime(version.received_at),
               "recipient_label": f"Bộ phận phụ trách báo cáo của {unit.name}" if to_unit else "Cán bộ Sở",
               "author_label": f"Cán bộ Sở {author_name}" if to_unit else f"{author_name} ({unit.name})",
               "link": mailer.public_url(_version_path(plan.code, unit.code, version.version) + "#comments")}
    draft = _draft(plan, unit.code, MessageKind.COMMENT, f"c{comment.id}", recipients,
                   f"Ý kiến về báo cáo phiên bản {version.version} – {unit.name}", "comment", context,
                   missing=contacts.NO_CONTACTS if to_unit else contacts.NO_STAFF)
    return outbox.store(draft, comment.created_at)


def queue_digest(plan: Plan, as_of: datetime) -> Draft | None:
    """Queue a digest of ``plan`` asked for by staff at ``as_of``; return it, or None if already queued.

    The step is ``manual-<UTC second>``, apart from the daily ``YYYY-MM-DD`` steps of ``run``.
    """
    require_aware(as_of, "as_of")
    draft = digest_draft(plan, as_of, "manual-" + as_utc(as_of).strftime("%Y%m%dT%H%M%SZ"))
    return draft if outbox.store(draft, as_of) else None


# ---------------------------------------------------------------------------------------------
# Sending

def run(as_of: datetime, plan_code: str | None = None, dry_run: bool = False,
        limit: int | None = None, should_stop: Any = None) -> RunReport:
    """Decide what is due at ``as_of`` for every plan (or ``plan_code``), store it once and send it.

    With ``dry_run`` nothing is stored or sent: the report lists what would be queued. A plan with
    invalid reminder settings is skipped and named in ``problems``. Raises ReminderError for an
    unknown ``plan_code`` and ValueError for a naive ``as_of``. ``should_stop`` is handed to the
    sending pass (``outbox.flush_pending``): a run asked to stop releases what it has not sent.
    """
    require_aware(as_of, "as_of")
    # Closed plans are read-only and drafts not yet open: neither sends reminders.
    query = select(Plan).where(Plan.state == PlanState.OPEN).order_by(Plan.code)
    if plan_code:
        query = query.where(Plan.code == plan_code)
    plans = db.session.scalars(query).all()
    if plan_code and not plans:
        state = db.session.scalar(select(Plan.state).where(Plan.code == plan_code))
        if state is not None:
            raise ReminderError(f"Kế hoạch «{plan_code}» {PlanState(state).label.lower()}: không gửi thư nhắc.")
        raise ReminderError(f"Không tìm thấy kế hoạch mã «{plan_code}».")
    queued: list[Draft] = []
    problems: list[str] = []
    already = 0
    for plan in plans:
        try:
            drafts, known = decide(plan, as_of)
        except ValueError as exc:
            problems.append(f"Kế hoạch {plan.code}: cài đặt nhắc việc không hợp lệ ({exc}).")
            continue
        already += known
        if dry_run:
            queued.extend(drafts)
            continue
        for draft in drafts:
            if outbox.store(draft, as_of):
                queued.append(draft)
            else:
                already += 1
        db.session.commit()
    pending_due = db.session.scalar(select(func.count()).select_from(OutboundMessage)
                                    .where(outbox.due_filter(as_of))) or 0
    if dry_run:
        db.session.rollback()
        return RunReport(as_of, True, tuple(p.code for p in plans), tuple(queued), already,
                         pending_due, None, tuple(problems))
    flush = outbox.flush_pending(limit, as_of=as_of, should_stop=should_stop)
    return RunReport(as_of, False, tuple(p.code for p in plans), tuple(queued), already,
                     pending_due, flush, tuple(problems))
