"""Reminder and notification emails: decide what is due at ``as_of``, store it once, send it, log it.

Every message has a key (plan, unit, kind, step) that the database keeps unique, so deciding the
same thing twice, or in two processes at once, stores it once. Sending claims each stored message
with a conditional UPDATE before talking to the SMTP server, so two concurrent senders never send the
same row twice. A message that fails waits ``RETRY_BASE × 2^(attempts-1)`` and is tried again by a
later run; after MAIL_MAX_ATTEMPTS tries it is marked failed for staff to see on the mail log.

Scheduled kinds (deadline approaching, overdue, visit approaching, digest) are decided by
``reminder_rules.due_messages``; receipts and "returned for correction" messages are queued by the
upload and review use cases inside their own transaction, then sent by ``outbox.flush_pending``
(re-exported here) after their commit, with no transaction open while the SMTP server is talked to.
"""
from __future__ import annotations

import enum
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import audit, mailer
from .outbox import (CLAIM_LEASE, RETRY_BASE, FlushReport, MessageStatus, department_cc, due_filter,
                     flush_pending)
from .compliance import Status, require_aware, summarize
from .email_address import InvalidEmail, normalize_email
from .extensions import db
from .forms import form_label
from .models import (Assignment, Contact, OutboundMessage, Plan, PlanState, ReturnVersion, Review, Role,
                     Unit, User, Visit)
from .reminder_rules import Due, Kind, ReminderSettings, UnitFacts, due_messages
from .standings import UnitStanding, plan_standings
from .timeutil import as_utc, fmt_date, fmt_datetime, local
from .wording import deadline_wording

DEFAULT_SUBJECT_PREFIX = "[Sở LĐTBXH Bắc Giang]"
NO_CONTACTS = "Đơn vị chưa có địa chỉ email liên hệ"
NO_STAFF = "Chưa có cán bộ Sở nào đang hoạt động để nhận bản tổng hợp"


class MessageKind(enum.StrEnum):
    """Every kind of message the tracker sends; the stored ``OutboundMessage.kind`` is the value."""

    DEADLINE_APPROACHING = "deadline_approaching"
    OVERDUE = "overdue"
    RECEIPT = "receipt"
    RETURNED = "returned"
    VISIT_APPROACHING = "visit_approaching"
    DIGEST = "digest"
    INTAKE_REPLY = "intake_reply"
    MANUAL_REMINDER = "manual_reminder"
    COMMENT = "comment"


    @property
    def label(self) -> str:
        """Return the Vietnamese label shown on the mail log."""
        return _KIND_LABELS[self]


_KIND_LABELS = {
    MessageKind.DEADLINE_APPROACHING: "Nhắc hạn nộp",
    MessageKind.OVERDUE: "Nhắc quá hạn",
    MessageKind.RECEIPT: "Xác nhận đã nhận",
    MessageKind.RETURNED: "Trả lại để chỉnh sửa",
    MessageKind.VISIT_APPROACHING: "Sắp đến lịch kiểm tra",
    MessageKind.DIGEST: "Bản tổng hợp",
    MessageKind.INTAKE_REPLY: "Trả lời thư gửi báo cáo",
    MessageKind.MANUAL_REMINDER: "Nhắc nộp (cán bộ Sở gửi)",
    MessageKind.COMMENT: "Ý kiến trao đổi",
}

# Every kind that asks a unit to report: "last reminded" on the chase list and in the status API.
REMINDER_KINDS = (MessageKind.DEADLINE_APPROACHING.value, MessageKind.OVERDUE.value,
                  MessageKind.MANUAL_REMINDER.value)


OUTBOX_LABEL = "Đã ghi vào hộp thư đi"


def status_label(status: str, eml_path: str) -> str:
    """Return the mail log's word for a message: one written to the .eml outbox was not sent anywhere."""
    if status == MessageStatus.SENT.value and eml_path:
        return OUTBOX_LABEL
    return MessageStatus(status).label


class ReminderError(ValueError):
    """A reminder command cannot run as asked; the message says why, in Vietnamese."""


class ContactError(ValueError):
    """Contact addresses cannot be saved as given; the message says why, in Vietnamese."""


@dataclass(frozen=True)
class Draft:
    """A message decided and rendered, not yet stored; ``error`` set means it cannot be sent."""

    plan_id: int | None  # None: a reply to an intake message that named no plan
    plan_code: str
    unit_key: str
    kind: str
    step: str
    recipients: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body_text: str
    body_html: str
    error: str = ""

    @property
    def key(self) -> tuple[int, str, str, str]:
        """Return the unique key (plan_id, unit_key, kind, step)."""
        return (self.plan_id, self.unit_key, self.kind, self.step)


@dataclass(frozen=True)
class RunReport:
    """What ``run`` decided and sent at ``as_of``."""

    as_of: datetime
    dry_run: bool
    plans: tuple[str, ...]
    queued: tuple[Draft, ...]
    already_decided: int
    pending_due: int
    flush: FlushReport | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContactChange:
    """A unit's contact addresses before and after a change."""

    unit_code: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """Return True when the list of addresses differs."""
        return self.before != self.after


# ---------------------------------------------------------------------------------------------
# Settings, addresses and wording

def settings_for(plan: Plan) -> ReminderSettings:
    """Return the plan's ReminderSettings (defaults for missing keys); raise ValueError if invalid."""
    known = {f.name for f in fields(ReminderSettings)}
    values: dict[str, Any] = {}
    for key, value in (plan.reminder_settings or {}).items():
        if key in known:
            values[key] = tuple(int(d) for d in value) if key == "approaching_days" else value
    return ReminderSettings(**values)


def parse_addresses(text: str) -> list[str]:
    """Split ``text`` on commas, semicolons and white space; return the non-empty pieces in order."""
    return [piece for piece in re.split(r"[\s,;]+", text) if piece]


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
            "department_email": department_cc(plan)}


# ---------------------------------------------------------------------------------------------
# Who receives what

def _contacts(unit_codes: Iterable[str], plan_id: int) -> dict[str, list[str]]:
    codes = list(unit_codes)
    found: dict[str, list[str]] = defaultdict(list)
    if not codes:
        return found
    # Codes are reused across maps: only the units the plan assigns are meant.
    rows = db.session.execute(select(Unit.code, Contact.email).join(Contact, Contact.unit_id == Unit.id)
                              .where(Unit.code.in_(codes),
                                     Unit.id.in_(select(Assignment.unit_id).where(Assignment.plan_id == plan_id)))
                              .order_by(Unit.code, Contact.email))
    for code, email in rows:
        found[code].append(email)
    return found


def staff_addresses() -> list[str]:
    """Return the email addresses of active admin and staff users, sorted."""
    return list(db.session.scalars(select(User.email).where(User.role.in_((Role.ADMIN, Role.STAFF)),
                                                            User.active.is_(True)).order_by(User.email)))


# ---------------------------------------------------------------------------------------------
# Drafting each kind

def _draft(plan: Plan, unit_key: str, kind: MessageKind, step: str, recipients: Sequence[str],
           subject: str, template: str, context: dict[str, Any], cc: Sequence[str] = (),
           missing: str = NO_CONTACTS) -> Draft:
    text, html = mailer.render_pair(template, **context)
    return Draft(plan_id=plan.id, plan_code=plan.code, unit_key=unit_key, kind=kind.value, step=step,
                 recipients=tuple(recipients), cc=tuple(c for c in cc if c and c not in recipients),
                 subject=_subject(subject), body_text=text, body_html=html,
                 error="" if recipients else missing)


def _unit_context(plan: Plan, us: UnitStanding, as_of: datetime) -> dict[str, Any]:
    return {**_common(plan, as_of), "unit_code": us.unit_code, "unit_name": us.unit_name,
            "form_label": form_label(us.form_code),
            "standing": us.standing, "status_label": us.standing.status.label,
            "link": mailer.public_url(_unit_path(plan.code, us.unit_code))}


def _scheduled_draft(plan: Plan, due: Due, standings: dict[str, UnitStanding],
                     contacts: dict[str, list[str]], visits: dict[tuple[str, str], Visit],
                     settings: ReminderSettings, as_of: datetime) -> Draft:
    kind = MessageKind(due.kind)
    if kind is MessageKind.DIGEST:
        return digest_draft(plan, as_of, due.step)
    assert due.unit_code is not None  # only the digest has no unit
    us = standings[due.unit_code]
    context = _unit_context(plan, us, as_of)
    to = contacts.get(us.unit_code, [])
    st = us.standing
    if kind is MessageKind.DEADLINE_APPROACHING:
        days = st.days_left or int(due.step.lstrip("d"))
        return _draft(plan, us.unit_code, kind, due.step, to,
                      f"Nhắc hạn nộp báo cáo: còn {days} ngày – {us.unit_name}",
                      "deadline_approaching", {**context, "days_left": days})
    if kind is MessageKind.OVERDUE:
        number = int(due.step.lstrip("o"))
        cc = [department_cc(plan)] if due.cc_department else []
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
    return _draft(plan, "", MessageKind.DIGEST, step, staff_addresses(),
                  f"Tổng hợp tình hình nộp báo cáo ngày {local_day}: {summary.complete}/{summary.required} "
                  "đơn vị đã nộp đầy đủ", "digest", context, missing=NO_STAFF)


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
        due = [d for d in due if d.kind != Kind.DIGEST.value]
    stored = set(db.session.execute(
        select(OutboundMessage.unit_key, OutboundMessage.kind, OutboundMessage.step)
        .where(OutboundMessage.plan_id == plan.id, OutboundMessage.kind.in_({d.kind for d in due}))).all())
    fresh = [d for d in due if (d.unit_code or "", d.kind, d.step) not in stored]
    contacts = _contacts((d.unit_code for d in fresh if d.unit_code), plan.id)
    drafts = [_scheduled_draft(plan, d, standings, contacts, visits, settings, as_of) for d in fresh]
    return drafts, len(due) - len(fresh)


# ---------------------------------------------------------------------------------------------
# Storing once

def store(draft: Draft, as_of: datetime, due_at: datetime | None = None) -> bool:
    """Add ``draft`` as an OutboundMessage unless its key exists, due at ``due_at`` (default ``as_of``);
    return True when it was inserted.

    Does not commit: the caller's transaction stores it with whatever caused it. A draft with an
    ``error`` is stored as failed at once, so staff see why it could not go.
    """
    as_of = as_utc(as_of)
    values: dict[str, Any] = {
        "plan_id": draft.plan_id, "unit_key": draft.unit_key, "kind": draft.kind, "step": draft.step,
        "recipients": list(draft.recipients), "cc": list(draft.cc), "subject": draft.subject[:500],
        "body_text": draft.body_text, "body_html": draft.body_html, "attempts": 0,
        "status": MessageStatus.FAILED.value if draft.error else MessageStatus.PENDING.value,
        "last_error": draft.error, "next_attempt_at": None if draft.error else as_utc(due_at or as_of),
        "created_at": as_of, "sent_at": None, "eml_path": ""}
    table = OutboundMessage.__table__
    dialect = db.session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        # ON CONFLICT DO NOTHING: a concurrent run that inserted the key first wins, silently.
        # RETURNING, not rowcount: psycopg 3 reports -1 rows for this statement through SQLAlchemy 2.1.
        inserted = db.session.execute(dialect_insert(table).values(**values).on_conflict_do_nothing()
                                      .returning(table.c.id)).first()
        return inserted is not None
    try:
        with db.session.begin_nested():
            db.session.execute(insert(table).values(**values))
    except IntegrityError:
        return False  # already decided by an earlier or concurrent run
    return True


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
    recipients = _contacts([unit.code], plan.id)[unit.code]
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
                                      OutboundMessage.kind == MessageKind.RECEIPT.value)
        .order_by(OutboundMessage.id.desc()).limit(1))
    due = received
    if latest is not None:
        first = _step_version(latest.step)
        if latest.status == MessageStatus.PENDING.value and first is not None and first <= version.version:
            draft = _receipt_draft(version, _versions_between(assignment.id, first, version.version))
            if draft is None:
                return False
            if draft.body_text == latest.body_text:
                return False  # this version is named already
            table = OutboundMessage.__table__
            # Conditional: a sender that claimed the row meanwhile sends the old text; we then queue anew.
            changed = db.session.execute(
                update(table).where(table.c.id == latest.id, table.c.status == MessageStatus.PENDING.value,
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
    return draft is not None and store(draft, received, due_at=due)


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
                   _contacts([unit.code], plan.id)[unit.code],
                   f"Báo cáo phiên bản {version.version} được trả lại để chỉnh sửa – {unit.name}",
                   "returned", context)
    return store(draft, as_of)


def manual_reminder_draft(plan: Plan, us: UnitStanding, step: str, as_of: datetime,
                          sender_name: str) -> Draft:
    """Return the reminder a staff member sends by hand to ``us``'s unit at ``as_of`` under ``step``."""
    context = {**_unit_context(plan, us, as_of), "sender_name": sender_name}
    return _draft(plan, us.unit_code, MessageKind.MANUAL_REMINDER, step, _contacts([us.unit_code], plan.id)[us.unit_code],
                  f"Đề nghị hoàn thiện và gửi báo cáo – {us.unit_name}", "manual_reminder", context)


def unit_officer_addresses(unit_id: int) -> list[str]:
    """Return the login addresses of the unit's active officers, sorted."""
    return list(db.session.scalars(select(User.email).where(User.unit_id == unit_id, User.role == Role.UNIT,
                                                            User.active.is_(True)).order_by(User.email)))


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
                   missing=NO_CONTACTS if to_unit else NO_STAFF)
    return store(draft, comment.created_at)


def queue_digest(plan: Plan, as_of: datetime) -> Draft | None:
    """Queue a digest of ``plan`` asked for by staff at ``as_of``; return it, or None if already queued.

    The step is ``manual-<UTC second>``, apart from the daily ``YYYY-MM-DD`` steps of ``run``.
    """
    require_aware(as_of, "as_of")
    draft = digest_draft(plan, as_of, "manual-" + as_utc(as_of).strftime("%Y%m%dT%H%M%SZ"))
    return draft if store(draft, as_of) else None


def requeue(message: OutboundMessage, as_of: datetime) -> None:
    """Make a failed ``message`` pending again at ``as_of`` with fresh recipients and zero attempts.

    Unit messages take the unit's current contacts, the digest the current staff; when there is
    still nobody to send to the message stays failed with the reason. The caller commits.
    """
    require_aware(as_of, "as_of")
    if message.kind == MessageKind.DIGEST.value:
        recipients, missing = staff_addresses(), NO_STAFF
    elif message.kind == MessageKind.INTAKE_REPLY.value:
        recipients, missing = list(message.recipients), "Thư gửi đến không có địa chỉ người gửi"
    else:
        recipients, missing = _contacts([message.unit_key], message.plan_id)[message.unit_key], NO_CONTACTS
    message.recipients = list(recipients)
    message.attempts = 0
    if recipients:
        message.status, message.last_error, message.next_attempt_at = MessageStatus.PENDING.value, "", as_of
    else:
        message.status, message.last_error, message.next_attempt_at = MessageStatus.FAILED.value, missing, None


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
            if store(draft, as_of):
                queued.append(draft)
            else:
                already += 1
        db.session.commit()
    pending_due = db.session.scalar(select(func.count()).select_from(OutboundMessage)
                                    .where(due_filter(as_of))) or 0
    if dry_run:
        db.session.rollback()
        return RunReport(as_of, True, tuple(p.code for p in plans), tuple(queued), already,
                         pending_due, None, tuple(problems))
    flush = flush_pending(limit, as_of=as_of, should_stop=should_stop)
    return RunReport(as_of, False, tuple(p.code for p in plans), tuple(queued), already,
                     pending_due, flush, tuple(problems))


# ---------------------------------------------------------------------------------------------
# Contacts

def set_contacts(unit: Unit, addresses: Sequence[str], add: bool = False, actor: str = "",
                 user: Any = None) -> ContactChange:
    """Replace (or with ``add`` extend) ``unit``'s contact addresses and record an audit event.

    Returns the change. Raises ContactError naming the first invalid address; nothing is changed
    then. Duplicates are dropped; the caller commits.
    """
    wanted: list[str] = []
    for address in addresses:
        try:
            value = normalize_email(address)
        except InvalidEmail as exc:
            raise ContactError(str(exc)) from exc
        if value not in wanted:
            wanted.append(value)
    before = tuple(sorted(c.email for c in unit.contacts))
    if add:
        wanted = list(before) + [a for a in wanted if a not in before]
    keep = set(wanted)
    for contact in list(unit.contacts):
        if contact.email not in keep:
            unit.contacts.remove(contact)
    present = {c.email for c in unit.contacts}
    for address in wanted:
        if address not in present:
            unit.contacts.append(Contact(email=address))
    db.session.flush()
    change = ContactChange(unit.code, before, tuple(sorted(keep)))
    if change.changed:
        audit.record("contacts_changed", target=unit.code, user=user, actor=actor,
                     before=list(change.before), after=list(change.after))
    return change


__all__ = [
    "CLAIM_LEASE", "OUTBOX_LABEL", "REMINDER_KINDS", "ContactChange", "ContactError", "Draft", "FlushReport", "MessageKind", "MessageStatus",
    "NO_CONTACTS", "RETRY_BASE", "ReminderError", "RunReport", "decide", "digest_draft", "flush_pending",
    "manual_reminder_draft", "parse_addresses", "queue_comment", "queue_digest", "queue_receipt", "queue_returned", "requeue", "run",
    "set_contacts", "settings_for", "staff_addresses", "status_label", "store", "unit_officer_addresses",
]
