"""The outbox: stored messages claimed, sent after commit and marked, with no transaction open on SMTP.

Every kind of mail goes through here: a decided and rendered ``Draft`` (reminder, receipt, review
notice, comment, digest, intake reply) is stored once under its key (plan, unit, kind, step) by
``store``, inside the transaction of whatever caused it, and sent after that commit: by the request
itself once it has committed (``send_after_request``), by ``flask send-reminders``, ``ingest-mail`` and
the demo story. A password reset link is the one message never stored (its token must not sit in a
table): ``send_message_after_request`` delivers it. Sending works in three short transactions per
message at most, and never holds one while talking to the SMTP server:

1. claim: a conditional UPDATE moves due rows to ``sending`` (one of two concurrent senders wins each
   row), with a lease after which a crashed sender's rows are offered again;
2. send, outside any transaction, over one connection, each message with a stable Message-ID
   derived from its key (a receiver that gets a message twice can tell);
3. right after the server accepts a message, its row is marked ``sent`` and committed.

A sender asked to stop (SIGTERM/SIGINT in ``send-reminders``) finishes the message in flight and puts
every claimed but unsent message back to ``pending`` at once (``release``). What is guaranteed is
written in docs/production.md.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import contacts, mailer
from .compliance import require_aware
from .extensions import db
from .messages import MessageKind, MessageStatus
from .models import OutboundMessage, Plan
from .timeutil import as_utc, utc_now

# First retry after 5 minutes, then 10, 20, 40...: a mail server restart is over by then.
RETRY_BASE = timedelta(minutes=5)
# A claimed message whose sender died mid-run is offered again after this long.
CLAIM_LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class Draft:
    """A message decided and rendered, not yet stored; ``error`` set means it cannot be sent."""

    plan_id: int | None  # None: a reply to an intake message that named no plan
    plan_code: str
    unit_key: str
    kind: MessageKind
    step: str
    recipients: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body_text: str
    body_html: str
    error: str = ""

    @property
    def key(self) -> tuple[int | None, str, str, str]:
        """Return the unique key (plan_id, unit_key, kind, step)."""
        return (self.plan_id, self.unit_key, self.kind, self.step)


@dataclass(frozen=True)
class FlushReport:
    """What one sending pass did: counts, and the errors of the messages that did not go."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()
    released: int = 0  # claimed, then put back to pending because the sender was asked to stop


def department_cc(plan: Plan) -> str:
    """Return the department mailbox copied on repeated overdue notices ('' when none is set)."""
    return plan.department_email or current_app.config.get("DEPARTMENT_EMAIL") or ""


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


def requeue(message: OutboundMessage, as_of: datetime) -> None:
    """Make a failed ``message`` pending again at ``as_of`` with fresh recipients and zero attempts.

    Unit messages take the unit's current contacts, the digest the current staff; when there is
    still nobody to send to the message stays failed with the reason. The caller commits.
    """
    require_aware(as_of, "as_of")
    if message.kind is MessageKind.DIGEST:
        recipients, missing = contacts.staff_addresses(), contacts.NO_STAFF
    elif message.kind is MessageKind.INTAKE_REPLY:
        recipients, missing = list(message.recipients), "Thư gửi đến không có địa chỉ người gửi"
    else:
        recipients, missing = (contacts.unit_addresses([message.unit_key], message.plan_id)[message.unit_key],
                              contacts.NO_CONTACTS)
    message.recipients = list(recipients)
    message.attempts = 0
    if recipients:
        message.status, message.last_error, message.next_attempt_at = MessageStatus.PENDING, "", as_of
    else:
        message.status, message.last_error, message.next_attempt_at = MessageStatus.FAILED, missing, None


# ---------------------------------------------------------------------------------------------
# Sending

def key_text(plan_code: str | None, unit_key: str, kind: str, step: str) -> str:
    """Return a message's key as the X-Tracker-Key header shows it."""
    return f"{plan_code or '-'}/{unit_key or '-'}/{kind}/{step}"


def message_id(key: str, sender: str) -> str:
    """Return the stable Message-ID of the message with ``key``: the same on every try of it."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "tracker.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}.tracker@{domain}>"


def _backoff(attempts: int) -> timedelta:
    return RETRY_BASE * (2 ** max(attempts - 1, 0))


def due_filter(as_of: datetime) -> Any:
    """Return the WHERE clause of messages a sender may take at ``as_of``."""
    return (OutboundMessage.status.in_((MessageStatus.PENDING.value, MessageStatus.SENDING.value))
            & (OutboundMessage.next_attempt_at <= as_of))


def claim(limit: int | None, as_of: datetime) -> list[int]:
    """Claim the due messages (oldest first, at most ``limit``) and commit; return their ids."""
    query = (select(OutboundMessage.id, OutboundMessage.status, OutboundMessage.attempts)
             .where(due_filter(as_of)).order_by(OutboundMessage.id))
    if limit is not None:
        query = query.limit(limit)
    candidates = db.session.execute(query).all()
    table = OutboundMessage.__table__
    claimed: list[int] = []
    for row_id, status, attempts in candidates:
        # Conditional on the state we read: only one of two concurrent senders gets each row.
        result = db.session.execute(
            update(table).where(table.c.id == row_id, table.c.status == status, table.c.attempts == attempts)
            .values(status=MessageStatus.SENDING.value, attempts=attempts + 1,
                    next_attempt_at=as_of + CLAIM_LEASE))
        if result.rowcount == 1:
            claimed.append(row_id)
    db.session.commit()
    return claimed


def release(ids: Sequence[int], as_of: datetime) -> int:
    """Put claimed-but-unsent messages back to pending, due at ``as_of``, and commit; return how many.

    The claim's attempt is given back: the message was never offered to the server.
    """
    if not ids:
        return 0
    table = OutboundMessage.__table__
    result = db.session.execute(
        update(table).where(table.c.id.in_(list(ids)), table.c.status == MessageStatus.SENDING.value)
        .values(status=MessageStatus.PENDING.value, attempts=table.c.attempts - 1, next_attempt_at=as_of))
    db.session.commit()
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class _Outgoing:
    id: int
    attempts: int
    recipients: tuple[str, ...]
    message: Any  # a built mailer.TrackerMessage


def _build(ids: list[int]) -> tuple[list[_Outgoing], list[str]]:
    """Build the claimed messages; mark those with CR/LF in a header failed. Returns plain values only."""
    rows = db.session.scalars(select(OutboundMessage).where(OutboundMessage.id.in_(ids))
                              .order_by(OutboundMessage.id)).all()
    plans = {p.id: p for p in db.session.scalars(
        select(Plan).where(Plan.id.in_({m.plan_id for m in rows if m.plan_id is not None})))}
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    outgoing: list[_Outgoing] = []
    errors: list[str] = []
    for row in rows:
        # A reply to an intake message that named no plan has none.
        plan = plans.get(row.plan_id) if row.plan_id is not None else None
        reply_to = department_cc(plan) if plan is not None else current_app.config.get("DEPARTMENT_EMAIL") or ""
        key = key_text(plan.code if plan is not None else None, row.unit_key, row.kind, row.step)
        try:
            message = mailer.build_message(row.subject, row.recipients, row.body_text, row.body_html,
                                           cc=row.cc, reply_to=reply_to, headers={"X-Tracker-Key": key})
        except mailer.HeaderInjection as exc:
            row.status = MessageStatus.FAILED.value
            row.last_error = f"Tiêu đề thư chứa ký tự xuống dòng, không gửi: {exc}"
            row.next_attempt_at = None
            errors.append(f"#{row.id}: {row.last_error}")
            continue
        message.msgId = message_id(key, sender)
        outgoing.append(_Outgoing(row.id, row.attempts, tuple(row.recipients), message))
    db.session.commit()  # ends the transaction: nothing is held while the server is talked to
    return outgoing, errors


def _outcome(item: _Outgoing, delivery: mailer.Delivery, as_of: datetime,
             max_attempts: int) -> tuple[str, dict[str, Any]]:
    """Return (sent/retrying/failed, the column values to store) for one message's delivery."""
    if delivery.error is None:
        return "sent", {"status": MessageStatus.SENT.value, "sent_at": as_of, "eml_path": delivery.eml_path,
                        "last_error": "", "next_attempt_at": None}
    if item.attempts >= max_attempts:
        return "failed", {"status": MessageStatus.FAILED.value, "next_attempt_at": None,
                          "last_error": f"Không gửi được sau {item.attempts} lần thử: {delivery.error}"}
    return "retrying", {"status": MessageStatus.PENDING.value, "last_error": delivery.error,
                        "next_attempt_at": as_of + _backoff(item.attempts)}


def _store_outcomes(outcomes: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Write the outcomes of several messages in one short transaction."""
    if not outcomes:
        return
    table = OutboundMessage.__table__
    for row_id, values in outcomes:
        db.session.execute(update(table).where(table.c.id == row_id).values(**values))
    db.session.commit()


def flush_pending(limit: int | None = None, as_of: datetime | None = None,
                  should_stop: Callable[[], bool] | None = None) -> FlushReport:
    """Send every stored message due at ``as_of`` (default: now) over one connection; return the counts.

    Each message is marked in the database as soon as the server accepts (or refuses) it. When
    ``should_stop`` turns true, no further message is started and the claimed ones left are released
    to pending at once. Never raises on SMTP errors; a header with CR/LF marks that message failed.
    """
    as_of = utc_now() if as_of is None else as_utc(as_of)
    if should_stop is not None and should_stop():
        return FlushReport()
    claimed = claim(limit, as_of)
    if not claimed:
        return FlushReport()
    done: set[int] = set()
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    errors: list[str] = []
    # Refusals are written together at the end (a dead server refuses every message at once); an
    # acceptance is written at once, so a run stopped right after it cannot send that message again.
    refused: list[tuple[int, dict[str, Any]]] = []
    released = 0
    try:
        outgoing, build_errors = _build(claimed)
        errors.extend(build_errors)
        counts["failed"] += len(build_errors)
        done.update(set(claimed) - {o.id for o in outgoing})
        max_attempts = int(current_app.config.get("MAIL_MAX_ATTEMPTS", 5))

        def on_result(index: int, delivery: mailer.Delivery) -> None:
            item = outgoing[index]
            outcome, values = _outcome(item, delivery, as_of, max_attempts)
            counts[outcome] += 1
            if delivery.error is None:
                _store_outcomes([(item.id, values)])
            else:
                refused.append((item.id, values))
                errors.append(f"#{item.id} ({', '.join(item.recipients)}): {delivery.error}")
            done.add(item.id)

        mailer.deliver([o.message for o in outgoing], on_result=on_result, should_stop=should_stop)
    finally:
        db.session.rollback()
        _store_outcomes(refused)
        released = release([i for i in claimed if i not in done], as_of)
    for line in errors:
        current_app.logger.warning("Thư chưa gửi được %s", line)
    return FlushReport(sent=counts["sent"], retrying=counts["retrying"], failed=counts["failed"],
                       errors=tuple(errors), released=released)


# ---------------------------------------------------------------------------------------------
# After the request's commit

_flusher_lock = threading.Lock()
_flusher_again = threading.Event()


def _flush_in_background(app: Flask, limit: int) -> None:
    # One flusher per process; a request arriving while it runs asks it for one more pass.
    if not _flusher_lock.acquire(blocking=False):
        _flusher_again.set()
        return
    try:
        with app.app_context():
            while True:
                _flusher_again.clear()
                try:
                    flush_pending(limit)
                except Exception:  # noqa: BLE001 - cron retries; a background thread has nobody to tell
                    app.logger.exception("sending queued mail after a request failed")
                finally:
                    db.session.remove()
                if not _flusher_again.is_set():
                    break
    finally:
        _flusher_lock.release()


_timer_lock = threading.Lock()
_timer_fires_at: float | None = None  # time.monotonic() of this process's pending delayed flush


def _schedule(app: Flask, limit: int, delay: float) -> None:
    """Flush once ``delay`` seconds from now, unless a flush already pending fires before that: it
    reschedules itself for what is still due later, so one timer serves every upload of the process."""
    global _timer_fires_at
    fires_at = time.monotonic() + delay
    with _timer_lock:
        if _timer_fires_at is not None and time.monotonic() <= _timer_fires_at <= fires_at + 1:
            return
        _timer_fires_at = fires_at
    timer = threading.Timer(delay, _timer_fired, args=(app, limit))
    timer.daemon = True
    timer.start()


def _timer_fired(app: Flask, limit: int) -> None:
    global _timer_fires_at
    with _timer_lock:
        _timer_fires_at = None
    _flush_in_background(app, limit)
    with app.app_context():
        try:
            now = utc_now()
            later = db.session.scalar(select(func.min(OutboundMessage.next_attempt_at)).where(
                OutboundMessage.status == MessageStatus.PENDING.value, OutboundMessage.next_attempt_at > now,
                OutboundMessage.next_attempt_at <= now + timedelta(hours=1)))
        finally:
            db.session.remove()
    if later is not None:
        _schedule(app, limit, (as_utc(later) - now).total_seconds() + 1)


def send_after_request(limit: int = 10, delay: float = 0.0) -> FlushReport | None:
    """Send what the request queued, after its commit, as MAIL_SEND_AFTER_REQUEST says.

    ``thread``: a background thread of this process sends it (after ``delay`` seconds), so the
    answer never waits on the SMTP server; ``inline``: now, in the caller, outside any transaction;
    ``off``: the next ``send-reminders`` run sends it. Call it only after the commit. Returns the
    report when the mail was sent in the caller (inline), None when it was left to a thread or a run.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    mode = app.config.get("MAIL_SEND_AFTER_REQUEST", "thread")
    if mode == "inline":
        return flush_pending(limit) if delay <= 0 else None
    if mode != "thread":
        return None
    if delay > 0:
        _schedule(app, limit, delay)
    else:
        threading.Thread(target=_flush_in_background, args=(app, limit), daemon=True,
                         name="tracker-outbox").start()
    return None


def send_message_after_request(message: Any) -> None:
    """Deliver one message that is not stored (a password reset link) outside any transaction.

    In ``thread`` mode a background thread sends it, so the answer takes as long whether or not the
    address has an account.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    mode = app.config.get("MAIL_SEND_AFTER_REQUEST", "thread")
    if mode != "thread":
        mailer.deliver([message])
        return

    def _send() -> None:
        with app.app_context():
            mailer.deliver([message])

    threading.Thread(target=_send, daemon=True, name="tracker-mail").start()
