"""Returns that arrive by email: each message once, each spreadsheet through the upload use case.

Per message: read its MIME structure (``intake_mime``, no database), commit the small facts (the
message row), then for each attachment not seen before: guard and read its identity outside any
transaction, decide the sender's trust in a short one, and either run ``returns.receive_return``
(guard, isolated parse, identity, rules, version; it commits on its own) or hold the bytes for staff.
Each attachment's outcome is one ``IntakeRecord``, unique on (message, attachment sha256), so reading
the mailbox again, or running the command twice, stores nothing more. One reply per message goes to
the sender through the outbox, queued in the transaction that marks the message replied.

The sender decides nothing by itself: a return is counted only when the From address is one of the
claimed unit's contacts or an active staff address; otherwise it is held ("Thư chờ xác nhận") and
counted, at the mailbox's arrival time (IMAP INTERNALDATE), once staff confirm it (``intake_staff``).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from . import audit, documents, isolation, mailer, outbox, reminders, returns
from .catalog import Form
from .email_address import InvalidEmail, normalize_email
from .extensions import db
from .forms import form_label
from .guard import Refusal, inspect
from .intake_imap import ImapSettings, Mailbox, MailboxError
from .intake_mime import PDF, SPREADSHEET, MailMessage, MimeLimits, read_message
from .messages import MessageKind
from .models import (Assignment, Contact, IntakeMessage, IntakeRecord, Plan, ReturnVersion, Role, Unit, User,
                     assignment_for, plan_by_code, unit_by_code)
from .plans import refuse_unless_open
from .timeutil import as_utc, fmt_datetime

log = logging.getLogger(__name__)


class State:
    """The states of an intake record, as the API spells them."""

    ACCEPTED = "accepted"
    HELD = "held"
    REFUSED = "refused"
    IGNORED = "ignored"

    LABELS = {"accepted": "Đã nhận", "held": "Chờ xác nhận", "refused": "Không nhận", "ignored": "Bỏ qua"}


HELD_REASON = ("Địa chỉ {sender} chưa được đăng ký là địa chỉ liên hệ của {unit}: báo cáo sẽ được tính là đã nộp "
               "(theo thời điểm hộp thư nhận được thư) sau khi Sở xác nhận.")
PDF_NO_UNIT = ("Không xác định được báo cáo đã ký {name} thuộc đơn vị nào vì tệp Excel gửi kèm không được nhận. "
               "Hãy gửi lại cả tệp Excel của biểu mẫu và bản PDF đã ký trong cùng một thư, hoặc tải bản PDF lên ở "
               "trang của đơn vị.")
PDF_MANY_UNITS = ("Thư có báo cáo của nhiều đơn vị nên không xác định được báo cáo đã ký {name} thuộc đơn vị nào. Hãy "
                  "gửi mỗi đơn vị một thư, hoặc tải bản PDF lên ở trang của đơn vị.")
PDF_ACCEPTED = "Đã nhận báo cáo đã ký (lần {n}, {pages} trang)."
PDF_DUPLICATE = "Tệp này giống hệt báo cáo đã ký lần {n} đã nộp; không tạo lần mới."
UNKNOWN_TARGET = ("Tệp này ghi là {found}, nhưng hệ thống không có kế hoạch hoặc đơn vị đó. Hãy tải biểu mẫu "
                  "trống của đơn vị mình từ hệ thống, chép số liệu sang rồi gửi lại.")
IDENTITY_EDITED = ("Thông tin nhận dạng ẩn trong tệp đã bị sửa nên không xác định được tệp thuộc đơn vị nào. Hãy tải "
                   "biểu mẫu trống mới từ hệ thống, chép số liệu sang rồi gửi lại.")
UNREADABLE = ("Không đọc được nội dung tệp. Hãy mở tệp bằng Excel, lưu lại dưới dạng .xlsx rồi gửi lại.")
DUPLICATE = "Tệp giống hệt phiên bản {n} đã nộp; không tạo phiên bản mới."


@dataclass(frozen=True)
class IntakeSettings:
    """What the intake needs from the app's settings."""

    upload: returns.UploadSettings
    limits: MimeLimits
    signed: documents.SignedReportSettings


def settings_from(config: Mapping[str, Any]) -> IntakeSettings:
    """Return the intake settings of an app's ``config``."""
    upload = returns.upload_settings_from(config)  # the upload limits apply to mail as to the web
    limits = MimeLimits(max_message_bytes=int(config.get("INTAKE_MAX_MESSAGE_BYTES") or 40 * 1024 * 1024),
                        max_attachment_bytes=int(config["MAX_UPLOAD_BYTES"]))
    from .signed_report import load_trust_roots

    signed = documents.SignedReportSettings(
        max_bytes=config["SIGNED_REPORT_MAX_BYTES"], max_pages=config["SIGNED_REPORT_MAX_PAGES"],
        trust_roots=tuple(load_trust_roots(config.get("SIGNATURE_TRUST_ROOTS") or [])))
    return IntakeSettings(upload=upload, limits=limits, signed=signed)


@dataclass(frozen=True)
class RawMessage:
    """A message as read from the mailbox or a file.

    ``received_at`` is the server's INTERNALDATE (None for a saved file: its top Received header is
    used, then its Date). ``size`` is the server's RFC822.SIZE when ``raw`` holds only the header
    because the message was too large to fetch.
    """

    raw: bytes
    received_at: datetime | None
    origin: str  # imap, eml
    label: str  # UID or file name, for the command's report
    size: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one attachment (or of a message with none usable)."""

    filename: str
    state: str
    reason: str
    unit_code: str = ""
    version: int | None = None
    new: bool = True


@dataclass(frozen=True)
class MessageReport:
    """What ``process`` did with one message."""

    label: str
    message_id: str
    sender: str
    received_at: datetime
    outcomes: tuple[Outcome, ...]
    replied: bool = False

    @property
    def already(self) -> bool:
        """Return True when nothing in the message was new (it had been processed before)."""
        return not any(o.new for o in self.outcomes)


@dataclass(frozen=True)
class _Item:
    """One thing of a message to record: an attachment, or the message itself (sha256 "")."""

    sha256: str
    filename: str
    kind: str
    data: bytes
    state: str = ""  # decided without reading (ignored/refused), or "" for a spreadsheet to read
    reason: str = ""


def _items(mail: MailMessage) -> list[_Item]:
    items: list[_Item] = []
    spreadsheets = mail.spreadsheets
    for att in mail.attachments:
        if att.kind == SPREADSHEET and att.usable:
            items.append(_Item(att.sha256, att.filename, att.kind, att.data))
        elif att.kind == PDF and att.usable and spreadsheets:
            # The signed report beside the return: it goes to the unit the return names (decided after it).
            items.append(_Item(att.sha256, att.filename, att.kind, att.data))
        elif att.kind == PDF and att.usable:
            items.append(_Item(att.sha256, att.filename, att.kind, b"", State.IGNORED, mail.nothing_usable_reason()))
        else:
            too_large = att.kind in (SPREADSHEET, PDF)
            items.append(_Item(att.sha256, att.filename, att.kind, b"",
                               State.REFUSED if too_large else State.IGNORED, att.reason))
    if mail.problems:
        items.append(_Item("", "", "none", b"", State.REFUSED, " ".join(mail.problems)))
    elif not items:
        items.append(_Item("", "", "none", b"", State.IGNORED, mail.nothing_usable_reason()))
    # Returns first: a signed report is placed with the unit its message's return names.
    return sorted(items, key=lambda item: item.kind == PDF)


def arrival(raw: RawMessage, mail: MailMessage, now: datetime) -> datetime:
    """Return when the mailbox received the message: INTERNALDATE, else the top Received, Date, ``now``."""
    return as_utc(raw.received_at or mail.received or mail.date or now)


def _trusted(sender: str, unit: Unit) -> bool:
    if not sender:
        return False
    contact = db.session.scalar(select(Contact.id).where(Contact.unit_id == unit.id,
                                                          func.lower(Contact.email) == sender))
    if contact is not None:
        return True
    staff = db.session.scalar(select(User.id).where(func.lower(User.email) == sender, User.active.is_(True),
                                                    User.role.in_((Role.ADMIN, Role.STAFF))))
    return staff is not None


def _found_text(identity: Any) -> str:
    return (f"{form_label(identity.form_code) or 'biểu mẫu'} của {identity.unit_name or 'đơn vị'} "
            f"(mã {identity.unit_code or '?'}), kế hoạch {identity.plan_code or '?'}")


@dataclass(frozen=True)
class Decision:
    """What became of one attachment: its state and reason, the unit it was placed with, its version."""

    state: str
    reason: str = ""
    assignment_id: int | None = None
    unit_id: int | None = None
    unit_code: str = ""
    version_id: int | None = None
    version: int | None = None
    keep: bytes | None = None


def _claim(item: _Item, forms: Mapping[str, Form], settings: IntakeSettings) -> Any:
    """Return the attachment's identity, guarded and read in the worker; raise Refusal otherwise."""
    inspect(item.data, item.filename, returns.guard_limits(forms, settings.upload.max_bytes))
    try:
        return isolation.run("tracker.intake_claim:read_claim", item.data, settings.upload.secret,
                             timeout=settings.upload.parse_timeout, memory_limit=settings.upload.parse_memory_limit)
    except Refusal:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader failure on these bytes is the file's
        log.warning("reading the identity of an emailed attachment failed: %r", exc)
        raise Refusal("parse_failed", UNREADABLE, 422, detail=repr(exc)[:300]) from exc


def _decide(item: _Item, mail: MailMessage, received_at: datetime, forms: Mapping[str, Form],
            settings: IntakeSettings, dry_run: bool) -> Decision:
    try:
        identity = _claim(item, forms, settings)
    except Refusal as refusal:
        return Decision(State.REFUSED, refusal.message)
    plan = plan_by_code(identity.plan_code) if identity.plan_code else None
    unit = unit_by_code(identity.unit_code, plan.units_on) if identity.unit_code and plan is not None else None
    assignment = assignment_for(plan, unit) if plan is not None and unit is not None else None
    if assignment is None or unit is None:
        db.session.commit()
        return Decision(State.REFUSED, UNKNOWN_TARGET.format(found=_found_text(identity)))
    if not identity.checksum_ok:
        db.session.commit()
        return Decision(State.REFUSED, IDENTITY_EDITED, assignment.id, unit.id, unit.code)
    ids = (assignment.id, unit.id, unit.code)
    try:
        refuse_unless_open(assignment.plan)  # not even held: staff could not count it
    except Refusal as refusal:
        db.session.commit()
        return Decision(State.REFUSED, refusal.message, *ids)
    trusted = _trusted(mail.sender, unit)
    db.session.commit()  # nothing is held open while the upload path parses
    if not trusted:
        return Decision(State.HELD, HELD_REASON.format(sender=mail.sender or "(không rõ)", unit=unit.name),
                         *ids, keep=item.data)
    if dry_run:
        return Decision(State.ACCEPTED, "", *ids)
    return receive_spreadsheet(assignment, item.data, item.filename, None, mail.sender, mail.date, mail.message_id,
                    received_at, forms, settings)


@dataclass(frozen=True)
class _Target:
    """The unit a message's return was placed with, and whether it was counted or held."""

    assignment_id: int
    unit_id: int
    unit_code: str
    state: str


def _targets(decisions: Sequence[tuple[str, str, int | None, int | None, str]]) -> list[_Target]:
    """Return the distinct units the message's spreadsheets were accepted or held for."""
    found: dict[int, _Target] = {}
    for kind, state, assignment_id, unit_id, unit_code in decisions:
        if kind == SPREADSHEET and state in (State.ACCEPTED, State.HELD) and assignment_id and unit_id:
            found.setdefault(assignment_id, _Target(assignment_id, unit_id, unit_code, state))
    return list(found.values())


def _decide_pdf(item: _Item, targets: Sequence[_Target], mail: MailMessage, received_at: datetime,
                settings: IntakeSettings, dry_run: bool) -> Decision:
    if not targets:
        return Decision(State.IGNORED, PDF_NO_UNIT.format(name=item.filename))
    if len(targets) > 1:
        return Decision(State.IGNORED, PDF_MANY_UNITS.format(name=item.filename))
    target = targets[0]
    ids = (target.assignment_id, target.unit_id, target.unit_code)
    if target.state == State.HELD:
        unit = db.session.get(Unit, target.unit_id)
        reason = HELD_REASON.format(sender=mail.sender or "(không rõ)", unit=unit.name if unit else target.unit_code)
        db.session.commit()
        return Decision(State.HELD, reason, *ids, keep=item.data)
    if dry_run:
        return Decision(State.ACCEPTED, "", *ids)
    assignment = db.session.get(Assignment, target.assignment_id)
    assert assignment is not None
    return receive_pdf(assignment, item.data, item.filename, None, received_at, settings)


def receive_pdf(assignment: Assignment, data: bytes, filename: str, user: User | None, received_at: datetime,
                settings: IntakeSettings) -> Decision:
    """Run a signed report (PDF) through its upload path; return accepted, or refused with the path's reason."""
    ids = (assignment.id, assignment.unit_id, assignment.unit.code)
    try:
        refuse_unless_open(assignment.plan)
        outcome = documents.receive_signed_report(assignment, data, filename, user, received_at, settings.signed)
    except Refusal as refusal:
        return Decision(State.REFUSED, refusal.message, *ids)
    report = outcome.report
    reason = (PDF_ACCEPTED.format(n=report.version, pages=report.pages) if outcome.created
              else PDF_DUPLICATE.format(n=report.version))
    return Decision(State.ACCEPTED, reason, *ids)


def receive_spreadsheet(assignment: Assignment, data: bytes, filename: str, user: User | None, sender: str,
                        message_date: datetime | None, message_id: str, received_at: datetime,
                        forms: Mapping[str, Form], settings: IntakeSettings) -> Decision:
    """Run a return through the upload use case, received at ``received_at``; return accepted with its
    version, or refused with the upload path's reason (a closed plan included). Commits as that use case does."""
    ids = (assignment.id, assignment.unit_id, assignment.unit.code)
    note = f"Nhận qua thư điện tử từ {sender}" + (f"; Sở xác nhận ({user.email})" if user is not None else "")
    origin = returns.Origin("email", sender, message_date, message_id)
    try:
        refuse_unless_open(assignment.plan)  # a held return confirmed after the plan closed
        outcome = returns.receive_return(assignment, data, filename, user, note, received_at, forms,
                                         settings.upload, origin=origin)
    except Refusal as refusal:
        return Decision(State.REFUSED, refusal.message, *ids)
    version = outcome.version
    reason = "" if outcome.created else DUPLICATE.format(n=version.version)
    return Decision(State.ACCEPTED, reason, *ids, version_id=version.id, version=version.version)


def _message_row(mail: MailMessage, raw: RawMessage, received_at: datetime) -> IntakeMessage:
    """Return the message's row, inserting it (and committing) the first time it is seen."""
    row = db.session.scalar(select(IntakeMessage).where(IntakeMessage.message_id == mail.message_id))
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            row = IntakeMessage(message_id=mail.message_id, sender=mail.sender, subject=mail.subject,
                                message_date=mail.date, received_at=received_at, origin=raw.origin)
            db.session.add(row)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # a concurrent run stored it first
        row = db.session.scalar(select(IntakeMessage).where(IntakeMessage.message_id == mail.message_id))
        assert row is not None
    return row


def process(raw: RawMessage, now: datetime, forms: Mapping[str, Form], settings: IntakeSettings,
            dry_run: bool = False) -> MessageReport:
    """Process one message once; return what became of each attachment.

    Commits as it goes and leaves no transaction open. With ``dry_run`` nothing is stored or sent
    and no return is parsed: each outcome says what would happen (``held``, ``refused``...).
    """
    mail = read_message(raw.raw, settings.limits, declared_size=raw.size)
    received_at = arrival(raw, mail, now)
    items = _items(mail)
    existing = db.session.scalar(select(IntakeMessage).where(IntakeMessage.message_id == mail.message_id))
    known: dict[str, IntakeRecord] = {r.attachment_sha256: r for r in existing.records} if existing else {}
    if existing is not None:
        received_at = existing.received_at  # the first reading's arrival time stays the one that counts
    outcomes: list[Outcome] = []
    pending: list[_Item] = []
    # What each attachment of the message became, this run or an earlier one cut short.
    decided: list[tuple[str, str, int | None, int | None, str]] = [
        (r.kind, r.state, r.assignment_id, r.unit_id, r.unit.code if r.unit else "") for r in known.values()]
    for item in items:
        record = known.get(item.sha256)
        if record is not None:
            outcomes.append(Outcome(item.filename, record.state, record.reason,
                                    record.unit.code if record.unit else "",
                                    record.version.version if record.version else None, new=False))
        else:
            pending.append(item)
    replied = existing is not None and existing.replied_at is not None
    db.session.commit()
    if dry_run:
        for item in pending:
            decision = _decision(item, mail, received_at, forms, settings, decided, dry_run=True)
            decided.append((item.kind, decision.state, decision.assignment_id, decision.unit_id, decision.unit_code))
            outcomes.append(Outcome(item.filename, decision.state, decision.reason, decision.unit_code))
        db.session.rollback()
        return MessageReport(raw.label, mail.message_id, mail.sender, received_at, tuple(outcomes), replied)
    if not pending and replied:
        return MessageReport(raw.label, mail.message_id, mail.sender, received_at, tuple(outcomes), replied)

    row = _message_row(mail, raw, received_at)
    row_id = row.id
    for item in pending:
        decision = _decision(item, mail, received_at, forms, settings, decided, dry_run=False)
        decided.append((item.kind, decision.state, decision.assignment_id, decision.unit_id, decision.unit_code))
        if _record(row_id, item, decision):
            outcomes.append(Outcome(item.filename, decision.state, decision.reason, decision.unit_code,
                                    decision.version))
    replied = _reply_once(row_id, mail, now)
    return MessageReport(raw.label, mail.message_id, mail.sender, received_at, tuple(outcomes), replied)


def _decision(item: _Item, mail: MailMessage, received_at: datetime, forms: Mapping[str, Form],
              settings: IntakeSettings, decided: Sequence[tuple[str, str, int | None, int | None, str]],
              dry_run: bool) -> Decision:
    if item.state:
        return Decision(item.state, item.reason)
    if item.kind == PDF:
        return _decide_pdf(item, _targets(decided), mail, received_at, settings, dry_run)
    return _decide(item, mail, received_at, forms, settings, dry_run)


def _record(row_id: int, item: _Item, decision: Decision) -> bool:
    """Insert the attachment's record and commit; False when a concurrent run recorded it first."""
    record = IntakeRecord(intake_message_id=row_id, attachment_sha256=item.sha256, filename=item.filename[:255],
                          kind=item.kind, state=decision.state, reason=decision.reason, unit_id=decision.unit_id,
                          assignment_id=decision.assignment_id, version_id=decision.version_id,
                          content=decision.keep)
    try:
        db.session.add(record)
        db.session.flush()
        audit.record("intake_" + decision.state, target=decision.unit_code, actor="ingest-mail",
                     intake_record=record.id, filename=item.filename[:200], sha256=item.sha256,
                     reason=decision.reason[:300])
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


@dataclass(frozen=True)
class RunReport:
    """What one ``ingest-mail`` run did; ``error`` says why it stopped early ('' when it did not)."""

    messages: tuple[MessageReport, ...]
    error: str = ""
    flush: outbox.FlushReport | None = None
    dry_run: bool = False


def ingest_mailbox(imap: ImapSettings, now: datetime, forms: Mapping[str, Form], settings: IntakeSettings,
                   dry_run: bool = False, limit: int | None = None) -> RunReport:
    """Process the mailbox's unflagged messages in UID order, flag each after it is stored; send the replies.

    A message is flagged only after its records are committed, so a run cut short (the server stops
    answering, the process dies) loses nothing: the next run reads the unflagged message again and
    the records' unique key keeps it from counting twice. Never raises MailboxError: it ends the
    run and is returned in ``error``.
    """
    done: list[MessageReport] = []
    failed: list[str] = []
    error = ""
    db.session.commit()  # no transaction stays open while the IMAP server is talking
    try:
        with Mailbox(imap, readonly=dry_run) as box:
            uids = box.pending_uids()
            for uid in uids[:limit] if limit else uids:
                fetched = box.fetch(uid)
                raw = RawMessage(fetched.raw, fetched.internaldate, "imap", f"UID {uid}",
                                 fetched.size if fetched.truncated else None)
                report = _guarded(raw, now, forms, settings, dry_run, failed)
                if report is None:
                    continue  # left unflagged: the next run tries it again
                done.append(report)
                if not dry_run:
                    box.mark_processed(uid)
    except MailboxError as exc:
        db.session.rollback()
        error = str(exc)
    flush = None if dry_run else outbox.flush_pending(as_of=now)
    return RunReport(tuple(done), "\n".join(filter(None, [error, *failed])), flush, dry_run)


def _guarded(raw: RawMessage, now: datetime, forms: Mapping[str, Form], settings: IntakeSettings, dry_run: bool,
             failed: list[str]) -> MessageReport | None:
    """Return ``process``'s report, or None (with the reason added to ``failed``) when it failed oddly."""
    try:
        return process(raw, now, forms, settings, dry_run=dry_run)
    except Exception as exc:  # noqa: BLE001 - one odd message must not stop the others
        db.session.rollback()
        log.exception("processing intake message %s failed", raw.label)
        failed.append(f"Thư {raw.label} chưa xử lý được ({type(exc).__name__}: {str(exc)[:200]}); thư được giữ "
                      "nguyên để lần chạy sau thử lại.")
        return None


def ingest_files(files: Sequence[tuple[str, bytes]], now: datetime, forms: Mapping[str, Form],
                 settings: IntakeSettings, dry_run: bool = False) -> RunReport:
    """Process saved messages (name, bytes) as if read from the mailbox; send the replies."""
    failed: list[str] = []
    reports = [_guarded(RawMessage(data, None, "eml", name), now, forms, settings, dry_run, failed)
               for name, data in files]
    flush = None if dry_run else outbox.flush_pending(as_of=now)
    return RunReport(tuple(r for r in reports if r is not None), "\n".join(failed), flush, dry_run)


# ---------------------------------------------------------------------------------------------
# The reply

def _reply_once(row_id: int, mail: MailMessage, now: datetime) -> bool:
    """Queue the one reply of the message (all its records) unless it went already; commit; return True if queued."""
    if mail.auto_submitted or not mail.sender:
        return False
    try:
        normalize_email(mail.sender)
    except InvalidEmail:
        return False  # an address an SMTP server would refuse: the reply could only bounce
    # The conditional UPDATE is the once-only: of two concurrent runs, one sets replied_at.
    claimed = db.session.execute(update(IntakeMessage).where(IntakeMessage.id == row_id,
                                                             IntakeMessage.replied_at.is_(None))
                                 .values(replied_at=as_utc(now)))
    if claimed.rowcount != 1:
        db.session.rollback()
        return False
    row = db.session.get(IntakeMessage, row_id)
    assert row is not None
    outbox.store(reply_draft(row), now)
    db.session.commit()
    return True


def _issue_groups(version: ReturnVersion) -> list[tuple[str, list[dict[str, str]]]]:
    from .forms import all_forms

    form = all_forms().get(version.form_code)
    labels = {r.indicator: r.label for sh in form.sheets for r in sh.data_rows} if form is not None else {}
    return [(sheet, [{"severity": "Lỗi" if i.severity == "error" else "Cảnh báo", "cell": i.cell,
                      "indicator": labels.get(i.indicator) or i.indicator or "—", "message": i.message}
                     for i in issues]) for sheet, issues in returns.issues_by_sheet(version)]


def reply_draft(row: IntakeMessage) -> outbox.Draft:
    """Return the reply to the sender of ``row``: each attachment's outcome, in the web page's words."""
    entries = []
    plan: Plan | None = None
    unit_key = ""
    for record in row.records:
        version = record.version
        assignment = record.assignment
        if assignment is not None and plan is None:
            plan, unit_key = assignment.plan, assignment.unit.code
        link = ""
        if version is not None and assignment is not None:
            link = mailer.public_url(f"/plans/{assignment.plan.code}/units/{assignment.unit.code}"
                                     f"/versions/{version.version}")
        entries.append({"record": record, "state_label": State.LABELS[record.state], "version": version,
                        "unit_name": record.unit.name if record.unit else "", "link": link,
                        "groups": _issue_groups(version) if version is not None else [],
                        "received_text": fmt_datetime(version.received_at) if version is not None else ""})
    department = (plan.department_email if plan is not None else "") or current_app.config.get("DEPARTMENT_EMAIL", "")
    context = {"entries": entries, "row": row, "received_text": fmt_datetime(row.received_at),
               "department_email": department, "issuer": plan.issuer if plan is not None else
               "Sở Lao động - Thương binh và Xã hội", "any_accepted": any(e["version"] for e in entries)}
    text, html = mailer.render_pair("intake_reply", **context)
    prefix = current_app.config.get("MAIL_SUBJECT_PREFIX", reminders.DEFAULT_SUBJECT_PREFIX)
    subject = " ".join(f"{prefix} Kết quả nhận báo cáo qua thư: {row.subject or '(không có tiêu đề)'}".split())
    step = "m" + hashlib.sha256(row.message_id.encode()).hexdigest()[:40]
    return outbox.Draft(plan_id=plan.id if plan is not None else None, plan_code=plan.code if plan else "",
                           unit_key=unit_key, kind=MessageKind.INTAKE_REPLY, step=step,
                           recipients=(row.sender,), cc=(), subject=subject[:500], body_text=text, body_html=html)
