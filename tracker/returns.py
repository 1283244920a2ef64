"""The upload use case: guard the bytes, parse them in the warm worker, store a new version.

One transaction stores the version, its original bytes, its parsed values and its issues, so a
failure part-way leaves nothing behind. A refused file stores no version, only an audit event.
``receive_return`` stores bytes from any source (the site, the API, an email); ``receive_upload`` is
the site's and the API's intake around it (closed plan, size, note, receipts), and an almost empty
file after a complete version is held for a yes/no question first (``hold_if_almost_empty``,
``store_held``).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Mapping, Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from . import audit, outbox, pending_uploads, reminders, upload_limits, value_packs
from .blanks import almost_empty
from .catalog import Form
from .catalog_folder import Catalog, run_with_catalog
from .form_levels import form_at_level
from .extensions import db
from .guard import Limits, Refusal, inspect
from .identity import Expected, check_identity
from .models import Assignment, AuditEvent, ReturnFile, ReturnIssue, ReturnValue, ReturnVersion, Role, User
from .plans import refuse_unless_open

if TYPE_CHECKING:
    from .parsing import ParseResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadSettings:
    max_bytes: int
    parse_timeout: float
    parse_memory_limit: int
    secret: str
    rate: str = "20 per hour"
    quota_bytes: int = 200 * 1024 * 1024
    limit_overrides: Mapping[str, Any] | None = None
    receipt_coalesce_seconds: float = 180.0
    held_folder: str = ""  # where uploads wait for the yes/no question (pending_uploads)


def upload_settings_from(config: Mapping[str, Any]) -> UploadSettings:
    """Return the upload settings of an app's ``config`` (one place for the web, the API and the intake)."""
    return UploadSettings(max_bytes=config["MAX_UPLOAD_BYTES"], parse_timeout=config["PARSE_TIMEOUT"],
                          parse_memory_limit=config["PARSE_MEMORY_LIMIT"], secret=config["SECRET_KEY"],
                          rate=config["UPLOAD_RATE"], quota_bytes=int(config["UPLOAD_QUOTA_BYTES"]),
                          limit_overrides=config.get("UPLOAD_LIMIT_OVERRIDES") or {},
                          receipt_coalesce_seconds=float(config.get("RECEIPT_COALESCE_SECONDS", 180)),
                          held_folder=str(Path(config["OUTBOX_DIR"]).parent / "pending-uploads"))


class Upload(Protocol):
    """The uploaded file of a request (werkzeug's ``FileStorage``): its name and its byte stream."""

    filename: str | None
    stream: IO[bytes]

    def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class Origin:
    """Where a return came from when not uploaded on the site: ``email`` with its sender and headers."""

    source: str
    sender: str = ""
    message_date: datetime | None = None
    message_id: str = ""


@dataclass(frozen=True)
class UploadOutcome:
    version: ReturnVersion
    created: bool  # False: the same bytes were already stored as this version


def guard_limits(forms: Mapping[str, Form], max_bytes: int) -> Limits:
    """Return the guard's caps: the largest sheet any form (and its workbook) draws, plus a margin."""
    from .workbook import all_extents

    rows = max(r for form in forms.values() for r, _ in all_extents(form).values())
    cols = max(c for form in forms.values() for _, c in all_extents(form).values())
    # Officers add a note or widen a table now and then; hundreds of rows more is still cheap to parse.
    return Limits(max_bytes=max_bytes, max_row=rows + 200, max_col=cols + 10)


def _expected(assignment: Assignment) -> dict[str, Any]:
    """Return what the parse worker checks the file's identity against (plain values for the pipe), and the
    plan's period labels, which its blank forms print over the value columns (the layout check)."""
    return {"plan_code": assignment.plan.code, "unit_code": assignment.unit.code,
            "unit_name": assignment.unit.name, "period_labels": assignment.plan.period_labels()}


def upload_usage(assignment: Assignment, settings: UploadSettings, now: datetime) -> upload_limits.Usage:
    """Return what the assignment's unit has used in its plan at ``now``, counted in the database.

    Uploads in the window are the versions received in it plus the files refused in it (a refused
    file cost a parse too); refusals for being over a limit do not count.
    """
    limits = upload_limits.limits_for(assignment.unit.code, settings.rate, settings.quota_bytes,
                                      settings.limit_overrides)
    since = now - limits.window
    versions = db.session.execute(
        select(func.count(), func.min(ReturnVersion.received_at))
        .where(ReturnVersion.assignment_id == assignment.id, ReturnVersion.received_at > since)).one()
    refused = db.session.execute(
        select(func.count(), func.min(AuditEvent.at))
        .where(AuditEvent.action == "upload_refused", AuditEvent.at > since,
               AuditEvent.target == f"{assignment.plan.code}/{assignment.unit.code}")).one()
    stored = db.session.scalar(select(func.coalesce(func.sum(ReturnVersion.size), 0))
                               .where(ReturnVersion.assignment_id == assignment.id)) or 0
    # UTCDateTime hands back aware UTC instants on every database, so the two compare.
    oldest = [t for t in (versions[1], refused[1]) if t is not None]
    return upload_limits.Usage(uploads_in_window=int(versions[0] or 0) + int(refused[0] or 0),
                               oldest_in_window=min(oldest) if oldest else None,
                               stored_bytes=int(stored), limits=limits)


def _check_limits(assignment: Assignment, size: int, settings: UploadSettings, now: datetime) -> None:
    refusal = upload_limits.check(upload_usage(assignment, settings, now), size, now)
    if refusal is not None:
        raise refusal


def receive_return(assignment: Assignment, data: bytes, filename: str, uploader: User | None, note: str,
                   received_at: datetime, forms: Catalog, settings: UploadSettings,
                   origin: Origin | None = None) -> UploadOutcome:
    """Store ``data`` as the assignment's next version and commit; return it.

    ``origin`` records a return that arrived by email (source, sender, Date, Message-ID) on the version.

    Raises Refusal (with code, Vietnamese message and HTTP status) for a file that cannot be a
    return; the refusal is committed to the audit log and nothing else is stored.
    """
    target = f"{assignment.plan.code}/{assignment.unit.code}"
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        if assignment.form_code is None:
            raise Refusal("exempt", unit=assignment.unit.name, reason=assignment.exempt_reason or "không phải nộp")
        form = form_at_level(forms[assignment.form_code], assignment.unit.level)
        inspected = inspect(data, filename, guard_limits(forms, settings.max_bytes))
        existing = db.session.scalar(select(ReturnVersion).where(
            ReturnVersion.assignment_id == assignment.id, ReturnVersion.sha256 == sha256))
        if existing is not None:
            return UploadOutcome(existing, False)
        _check_limits(assignment, len(data), settings, received_at)
        # End the read transaction before the parse: on SQLite every transaction holds the write lock
        # from BEGIN (IMMEDIATE), and parses in other workers would queue behind this one. _store
        # rechecks duplicates through the unique key, so nothing relies on this snapshot.
        db.session.commit()
        parsed = _parse(data, forms, form, settings, _expected(assignment), inspected.formulas)
        # The worker checked the identity before reading a value; checked again here against the
        # assignment itself, so no caller of the parser can skip it.
        refusal = check_identity(parsed.identity, Expected(
            form.code, form.version, form.layout_fingerprint, assignment.plan.code, assignment.unit.code,
            assignment.unit.name, {code: f.name for code, f in forms.items()}))
        if refusal is not None:
            raise refusal
    except Refusal as refusal:
        _record_refusal(refusal, target, uploader, sha256, data, filename)
        raise
    try:
        version = _store(assignment, data, inspected.kind, inspected.filename, sha256, form, parsed, uploader,
                         note, received_at, settings, origin)
    except upload_limits.LimitRefusal as refusal:  # a concurrent upload (any app server) took the last slot
        _record_refusal(refusal, target, uploader, sha256, data, filename)
        raise
    if version is None:  # an identical upload won the race
        existing = db.session.scalar(select(ReturnVersion).where(
            ReturnVersion.assignment_id == assignment.id, ReturnVersion.sha256 == sha256))
        return UploadOutcome(existing, False)
    return UploadOutcome(version, True)


def _record_refusal(refusal: Refusal, target: str, uploader: User | None, sha256: str, data: bytes,
                    filename: str) -> None:
    db.session.rollback()
    # Over a limit is "upload_limited": it is not counted against the rate, or a unit that keeps trying
    # would never get out of the window.
    action = "upload_limited" if isinstance(refusal, upload_limits.LimitRefusal) else "upload_refused"
    audit.record(action, target=target, user=uploader, code=refusal.code, sha256=sha256,
                 size=len(data), filename=filename[:200], reason=refusal.message)
    db.session.commit()


def _parse(data: bytes, forms: Catalog, form: Form, settings: UploadSettings, expected: dict[str, Any],
           formulas: tuple[tuple[str, str, bool], ...]) -> ParseResult:
    from . import isolation

    try:
        # The worker reads the return with this process's catalog (its version), the one the blank came from.
        return run_with_catalog("tracker.parsing:parse_upload", forms, data, form.code, settings.secret, expected,
                                formulas, form.level, timeout=settings.parse_timeout,
                                memory_limit=settings.parse_memory_limit)
    except isolation.WorkerTimeout as exc:
        raise Refusal("parse_timeout") from exc
    except isolation.WorkerMemoryError as exc:
        raise Refusal("parse_memory") from exc
    except isolation.WorkerKilled as exc:
        raise Refusal("parse_killed", exc.message, 503, detail=repr(exc)[:300]) from exc
    except isolation.WorkerError as exc:
        # The reader died (calamine aborts the process on some malformed files) or failed oddly.
        raise Refusal("parse_failed", detail=repr(exc)[:300]) from exc
    except Refusal:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure on these bytes is the file's, not a 500
        # A malformed-but-unzippable workbook makes the readers raise plain exceptions: ValueError,
        # KeyError, calamine's CalamineError ("Cannot detect file format" when a part is missing)...
        log.warning("reading an upload failed: %r", exc)
        raise Refusal("parse_failed", template="parse_failed_content", detail=repr(exc)[:300]) from exc


def _store(assignment: Assignment, data: bytes, kind: str, filename: str, sha256: str, form: Form,
           parsed: ParseResult, uploader: User | None, note: str, received_at: datetime,
           settings: UploadSettings, origin: Origin | None = None) -> ReturnVersion | None:
    """Insert the version with its bytes, values and issues and commit; None if the same bytes won a race.

    Raises Refusal("storage_failed", status 503) when the database fails part-way; nothing is kept.
    Raises LimitRefusal when, rechecked under the assignment's row lock, the upload is over a limit.
    """
    try:
        return _store_attempts(assignment, data, kind, filename, sha256, form, parsed, uploader, note, received_at,
                               settings, origin)
    except (OperationalError, InterfaceError) as exc:
        # The database went away, filled up or stayed locked mid-transaction: the rollback undoes the
        # version row and its bytes, and the officer is told plainly that nothing was kept.
        db.session.rollback()
        log.error("storing %s/%s failed: %s", assignment.plan.code, assignment.unit.code, exc)
        raise Refusal("storage_failed", detail=repr(exc)[:300]) from exc


def _store_attempts(assignment: Assignment, data: bytes, kind: str, filename: str, sha256: str, form: Form,
                    parsed: ParseResult, uploader: User | None, note: str,
                    received_at: datetime, settings: UploadSettings,
                    origin: Origin | None = None) -> ReturnVersion | None:
    source = origin or Origin("upload")
    for _attempt in range(3):
        # One writer per assignment at a time (SQLite: BEGIN IMMEDIATE already; PostgreSQL: the row lock),
        # so two app servers cannot both take the last upload slot.
        db.session.execute(select(Assignment.id).where(Assignment.id == assignment.id).with_for_update())
        _check_limits(assignment, len(data), settings, received_at)
        number = (db.session.scalar(select(func.max(ReturnVersion.version))
                                    .where(ReturnVersion.assignment_id == assignment.id)) or 0) + 1
        version = ReturnVersion(assignment_id=assignment.id, version=number, form_code=form.code,
                                form_version=form.version, file_kind=kind, filename=filename, size=len(data),
                                sha256=sha256, received_at=received_at, uploaded_by_id=getattr(uploader, "id", None),
                                note=note, complete=parsed.complete, errors=parsed.errors, warnings=parsed.warnings,
                                source=source.source, sender=source.sender[:254], message_date=source.message_date,
                                message_id=source.message_id[:500], cover=dict(parsed.cover))
        try:
            db.session.add(version)
            db.session.flush()
            db.session.add(ReturnFile(version_id=version.id, content=data))
            if parsed.values:
                db.session.execute(insert(ReturnValue), [
                    {"version_id": version.id, "sheet": v.sheet, "indicator": v.indicator, "period": v.period,
                     "breakdown": v.breakdown, "value": v.value, "text": v.text} for v in parsed.values])
            value_packs.store_pack(version.id, ((v.indicator, v.period, v.breakdown, v.value) for v in parsed.values))
            if parsed.issues:
                db.session.execute(insert(ReturnIssue), [
                    {"version_id": version.id, "severity": i.severity, "sheet": i.sheet, "cell": i.cell,
                     "indicator": i.indicator, "message": i.message} for i in parsed.issues])
            audit.record("upload", target=f"{assignment.plan.code}/{assignment.unit.code}", user=uploader,
                         version=number, sha256=sha256, size=len(data), complete=parsed.complete,
                         errors=parsed.errors, warnings=parsed.warnings)
            reminders.queue_receipt(version)
            db.session.commit()
            return version
        except IntegrityError:
            db.session.rollback()
            duplicate = db.session.scalar(select(ReturnVersion.id).where(
                ReturnVersion.assignment_id == assignment.id, ReturnVersion.sha256 == sha256))
            if duplicate is not None:
                return None
    raise RuntimeError("could not allocate a version number after 3 attempts")


def issues_by_sheet(version: ReturnVersion) -> list[tuple[str, list[ReturnIssue]]]:
    """Return the version's issues grouped by sheet, in the order they were found."""
    groups: dict[str, list[ReturnIssue]] = {}
    for issue in version.issues:
        groups.setdefault(issue.sheet, []).append(issue)
    return list(groups.items())


def as_json(version: ReturnVersion, late: bool, status: str) -> dict[str, Any]:
    """Return the API's JSON body for a stored version."""
    return {"id": version.id, "version": version.version, "sha256": version.sha256,
            "received_at": version.received_at.isoformat(), "complete": version.complete, "late": late,
            "status": status, "errors": version.errors, "warnings": version.warnings,
            "issues": [{"severity": i.severity, "sheet": i.sheet, "cell": i.cell, "indicator": i.indicator,
                        "message": i.message} for i in version.issues]}


def preview(assignment: Assignment, data: bytes, filename: str, forms: Catalog,
            settings: UploadSettings) -> ParseResult | None:
    """Return what parsing ``data`` would find, storing nothing; None when the file would be refused.

    For a question asked before the upload is stored (an almost empty file after a complete version);
    ``receive_return`` then checks and parses the file again and answers any refusal itself.
    """
    if assignment.form_code is None:
        return None
    try:
        inspected = inspect(data, filename, guard_limits(forms, settings.max_bytes))
        db.session.commit()  # no read transaction held across the parse (see receive_return)
        return _parse(data, forms, forms[assignment.form_code], settings, _expected(assignment), inspected.formulas)
    except Refusal:
        return None


def _send_receipts(settings: UploadSettings) -> None:
    # The receipt was queued with the version and committed: send it now in the background, and once
    # more when the coalescing window of a delayed receipt is over (cron catches the rest).
    outbox.send_after_request()
    outbox.send_after_request(delay=settings.receipt_coalesce_seconds + 1)


def receive_upload(assignment: Assignment, upload: Upload | None, uploader: User, note: str, now: datetime,
                   forms: Catalog, settings: UploadSettings) -> UploadOutcome:
    """Store the file uploaded on the site or through the API as the assignment's next version, commit, and
    send its receipt after the request; return it. ``note`` is kept for department staff only, who upload
    on a unit's behalf.

    Raises Refusal: 409 for a plan that is not open, 400 for no file, 413 over ``settings.max_bytes``,
    else see ``receive_return``.
    """
    refuse_unless_open(assignment.plan)
    if upload is None or not upload.filename:
        raise Refusal("no_file")
    if uploader.role == Role.UNIT:
        note = ""
    data = upload.read(settings.max_bytes + 1)
    if len(data) > settings.max_bytes:
        raise Refusal("too_large", limit=settings.max_bytes // (1024 * 1024))
    outcome = receive_return(assignment, data, upload.filename, uploader, note, now, forms, settings)
    if outcome.created:
        _send_receipts(settings)
    return outcome


def hold_if_almost_empty(assignment: Assignment, upload: Upload | None, uploader: User, now: datetime,
                         forms: Catalog, settings: UploadSettings) -> str | None:
    """Hold ``upload`` for confirmation and return its token when it is almost empty and the unit's newest
    version is complete; None, the stream rewound, for every other upload."""
    if upload is None or not upload.filename or assignment.form_code is None:
        return None
    newest = db.session.scalar(select(ReturnVersion).where(ReturnVersion.assignment_id == assignment.id)
                               .order_by(ReturnVersion.received_at.desc(), ReturnVersion.version.desc()).limit(1))
    if newest is None or not newest.complete:
        return None
    data = upload.read(settings.max_bytes + 1)
    upload.stream.seek(0)
    if len(data) > settings.max_bytes or hashlib.sha256(data).hexdigest() == newest.sha256:
        return None
    parsed = preview(assignment, data, upload.filename, forms, settings)
    if parsed is None:
        return None
    blank = almost_empty(parsed.issues, len(forms[assignment.form_code].input_keys()))
    if blank is None:
        return None
    return pending_uploads.hold(Path(settings.held_folder), data, upload.filename, assignment.id, uploader.id,
                                blank, newest.version, now)


def held_upload(assignment: Assignment, token: str, user: User, now: datetime,
                settings: UploadSettings) -> pending_uploads.Held | None:
    """Return the upload held under ``token`` for this assignment and user; None when unknown or expired."""
    return pending_uploads.fetch(Path(settings.held_folder), token, assignment.id, user.id, now)


def drop_held(token: str, settings: UploadSettings) -> None:
    """Forget the upload held under ``token`` (the user declined to store it)."""
    pending_uploads.drop(Path(settings.held_folder), token)


def store_held(assignment: Assignment, token: str, held: pending_uploads.Held, uploader: User, now: datetime,
               forms: Catalog, settings: UploadSettings) -> UploadOutcome:
    """Store a held upload the user confirmed, as ``receive_upload`` does, and forget it once stored.

    Raises Refusal (the upload stays held), see ``receive_return``.
    """
    outcome = receive_return(assignment, held.data, held.filename, uploader, "", now, forms, settings)
    drop_held(token, settings)
    if outcome.created:
        _send_receipts(settings)
    return outcome
