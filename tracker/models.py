"""The tracker's tables: units, plans and what they ask, users, returns with their versions, logs.

Times are stored as UTC. SQLite hands datetimes back naive, so ``UTCDateTime`` puts UTC back on the
way out: every datetime that leaves this module is aware.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer,
                        LargeBinary, String, Text, UniqueConstraint, select)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from .compliance import ReviewState
from .extensions import db
from .labels import LabelledEnum, column_type
from .messages import MessageKind, MessageStatus
from .timeutil import as_utc, local_date, utc_now


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        # SQLite has no time zone type: store naive UTC text so comparisons stay lexical and right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Role(LabelledEnum):
    ADMIN = "admin", "Quản trị"
    STAFF = "staff", "Cán bộ Sở"
    UNIT = "unit", "Cán bộ đơn vị"


class PlanState(LabelledEnum):
    DRAFT = "draft", "Bản nháp"
    OPEN = "open", "Đang thu nhận"
    CLOSED = "closed", "Đã đóng"


class Unit(db.Model):
    """One version of an administrative unit of the GSO list (province, district or commune).

    A row holds the unit's name, kind and parent as they were from ``valid_from`` until ``valid_to``
    (exclusive; None while still in force). The GSO reuses codes with other meanings after a
    reorganisation (province 24 was Bắc Giang and is Bắc Ninh since 01/07/2025), so a code names a
    unit only together with a date: look units up with ``unit_by_code(code, on)``.
    """

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("code", "valid_from"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    level: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)

    parent: Mapped[Unit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Unit]] = relationship(back_populates="parent", order_by="Unit.code")
    contacts: Mapped[list[Contact]] = relationship(back_populates="unit", order_by="Contact.email",
                                                   cascade="all, delete-orphan")
    merged_from: Mapped[list[UnitMerge]] = relationship(foreign_keys="UnitMerge.unit_id", back_populates="unit",
                                                        order_by="UnitMerge.id", cascade="all, delete-orphan")

    def in_force(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on < self.valid_to)


class UnitMerge(db.Model):
    """A link "``unit`` was made from (all or part of) ``source``" between two unit versions.

    ``share`` is "full" or "partial" as the imported list says; ``hint`` marks links from a list that is
    not an official table (the community-compiled mapping of 01/07/2025): a person confirms them.
    """

    __tablename__ = "unit_merges"
    __table_args__ = (UniqueConstraint("unit_id", "source_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    share: Mapped[str] = mapped_column(String(8))
    hint: Mapped[bool] = mapped_column(Boolean, default=True)

    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id], back_populates="merged_from")
    source: Mapped[Unit] = relationship(foreign_keys=[source_id])


class Contact(db.Model):
    """An email address that receives a unit's reminders and receipts."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("unit_id", "email"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    # Who answers at that address and by phone: staff chasing a unit call a person, not a mailbox.
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    phone: Mapped[str] = mapped_column(String(32), default="", server_default="")
    unit: Mapped[Unit] = relationship(back_populates="contacts")


class Plan(db.Model):
    """A reporting plan: who returns which form by when, and the inspection schedule beside it."""

    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    issuer: Mapped[str] = mapped_column(String(300))
    doc_number: Mapped[str] = mapped_column(String(100), default="")
    doc_date: Mapped[date | None] = mapped_column(Date)
    # What the issued plan printed while its day was left blank ("…/4/2024"); used when doc_date is None.
    doc_date_text: Mapped[str] = mapped_column(String(50), default="")
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline_text: Mapped[str] = mapped_column(String(200), default="")
    # [{"key": "base", "label": "Năm 2023", "start": "2023-01-01", "end": "2023-12-31"}, ...]
    periods: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    period_basis: Mapped[str] = mapped_column(String(200), default="")
    department_email: Mapped[str] = mapped_column(String(254), default="")
    # Reminder offsets and counts (see reminder_rules.ReminderSettings); {} means the defaults.
    reminder_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Whether a unit counts as complete only once its signed report (PDF) has also arrived.
    signed_report_required: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    # The plan this one was copied from (plan-copy): the outlier check compares a unit with itself there.
    copied_from_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="SET NULL"))
    # The date of the administrative map the plan names its units on; None means its deadline's date.
    units_as_of: Mapped[date | None] = mapped_column(Date)
    # draft (a copy being confirmed unit by unit), open, closed (read-only: no uploads, no reminders).
    state: Mapped[str] = mapped_column(String(16), default="open")
    # Bumped with every write that can change the plan's standings (tracker.plan_changes); starts at a
    # random value so that a plan re-created under a reused id never matches a cached entry of the old one.
    changes: Mapped[int] = mapped_column(BigInteger, default=lambda: secrets.randbits(48), server_default="0")

    assignments: Mapped[list[Assignment]] = relationship(back_populates="plan", cascade="all, delete-orphan")
    visits: Mapped[list[Visit]] = relationship(back_populates="plan", cascade="all, delete-orphan",
                                               order_by="Visit.visit_date")

    def period_labels(self) -> dict[str, str]:
        return {p["key"]: p["label"] for p in self.periods}

    @property
    def units_on(self) -> date:
        """Return the date at which the plan's unit codes, names and hierarchy are read."""
        return self.units_as_of or local_date(self.deadline)

    @property
    def is_open(self) -> bool:
        return self.state == PlanState.OPEN


class Assignment(db.Model):
    """What one unit owes one plan: a form code, or an exemption with its reason."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("plan_id", "unit_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    form_code: Mapped[str | None] = mapped_column(String(32))
    exempt_reason: Mapped[str | None] = mapped_column(Text)
    # In a draft copied onto a new map: False until staff confirm the unit; carried_from lists the old
    # units it was proposed from ([{"code", "name", "parent", "share", "form", "plan_unit"}]).
    confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    carried_from: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    plan: Mapped[Plan] = relationship(back_populates="assignments")
    unit: Mapped[Unit] = relationship()
    versions: Mapped[list[ReturnVersion]] = relationship(back_populates="assignment",
                                                         order_by="ReturnVersion.version")

    @property
    def exempt(self) -> bool:
        return self.form_code is None


visit_communes = db.Table(
    "visit_communes",
    db.Column("visit_id", ForeignKey("visits.id", ondelete="CASCADE"), primary_key=True),
    db.Column("unit_id", ForeignKey("units.id"), primary_key=True),
)


class Visit(db.Model):
    """One day of the inspection schedule (Phụ lục 01) in one district, with its communes."""

    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    visit_date: Mapped[date] = mapped_column(Date)
    session_starts: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["07:00", "13:30"]
    note: Mapped[str] = mapped_column(Text, default="")

    plan: Mapped[Plan] = relationship(back_populates="visits")
    unit: Mapped[Unit] = relationship()
    communes: Mapped[list[Unit]] = relationship(secondary=visit_communes, order_by="Unit.code")


class User(db.Model):
    """A person who logs in: department admin or staff, or a district officer bound to one unit."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(db.Enum(Role, native_enum=False, length=16,
                                               values_callable=lambda e: [m.value for m in e]))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    # Part of every session's key: bumping it (logout, deactivation, reactivation, password change or
    # reset) ends every session of the user, including copies of the cookie.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    unit: Mapped[Unit | None] = relationship()
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    # Flask-Login's protocol.
    @property
    def is_active(self) -> bool:
        return self.active

    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        """Return the session's user key; it changes with the password and the session generation, which
        ends every session begun before."""
        fingerprint = hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]
        return f"{self.id}-{self.session_generation or 0}-{fingerprint}"

    def end_sessions(self) -> None:
        """End every session of this user (the caller commits)."""
        self.session_generation = (self.session_generation or 0) + 1

    @property
    def is_department(self) -> bool:
        return self.role in (Role.ADMIN, Role.STAFF)

    def may_act_for(self, unit: Unit) -> bool:
        """Return True when this user may see and act for ``unit``."""
        return self.is_department or self.unit_id == unit.id


class ApiToken(db.Model):
    """An API token; only its sha256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    user: Mapped[User] = relationship(back_populates="tokens")


class ReturnVersion(db.Model):
    """One accepted upload of a unit's return: its content never changes after it is stored.

    The unit may withdraw it (``withdrawn_at``/``withdrawn_by_id`` set once, audited): it stays in the
    history and stops counting (``compliance.counts``).
    """

    __tablename__ = "return_versions"
    __table_args__ = (
        UniqueConstraint("assignment_id", "version"),
        # Two identical uploads racing each other end as one version.
        UniqueConstraint("assignment_id", "sha256"),
        Index("ix_return_versions_assignment_received", "assignment_id", "received_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    version: Mapped[int] = mapped_column(Integer)
    form_code: Mapped[str] = mapped_column(String(32))
    form_version: Mapped[int] = mapped_column(Integer)
    file_kind: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    complete: Mapped[bool] = mapped_column(Boolean)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Where the return came from: "upload" (web page or API) or "email" (the intake mailbox), and for
    # email the sender, the Date header its client wrote and the Message-ID.
    source: Mapped[str] = mapped_column(String(16), default="upload", server_default="upload")
    sender: Mapped[str] = mapped_column(String(254), default="", server_default="")
    message_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str] = mapped_column(String(500), default="", server_default="")
    # What the cover says, as parsed: {"report_number": "125/BC-UBND", "report_date": "2024-05-08",
    # "signer_title": ..., "signer_name": ..., ...}; keys are the form's cover fields, blanks left out.
    cover: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    assignment: Mapped[Assignment] = relationship(back_populates="versions")
    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id])
    withdrawn_by: Mapped[User | None] = relationship(foreign_keys=[withdrawn_by_id])
    file: Mapped[ReturnFile] = relationship(cascade="all, delete-orphan", uselist=False)
    issues: Mapped[list[ReturnIssue]] = relationship(cascade="all, delete-orphan", order_by="ReturnIssue.id")
    reviews: Mapped[list[Review]] = relationship(back_populates="version", order_by="Review.id")
    comments: Mapped[list[VersionComment]] = relationship(back_populates="version",
                                                          order_by="VersionComment.id",
                                                          cascade="all, delete-orphan")


class SignedReport(db.Model):
    """One upload of a unit's signed, stamped report (PDF), kept beside the data return; never changed.

    ``signature`` is what the digital signature check found (``signed_report.SignatureCheck.as_dict``),
    or None for a PDF without one (a scan).
    """

    __tablename__ = "signed_reports"
    __table_args__ = (
        UniqueConstraint("assignment_id", "version"),
        UniqueConstraint("assignment_id", "sha256"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    pages: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    assignment: Mapped[Assignment] = relationship()
    uploaded_by: Mapped[User | None] = relationship()


class ReturnFile(db.Model):
    """The original bytes of a version, in the database so one transaction covers file and rows."""

    __tablename__ = "return_files"
    version_id: Mapped[int] = mapped_column(ForeignKey("return_versions.id", ondelete="CASCADE"),
                                            primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class ReturnValue(db.Model):
    """One parsed number or text of a version: the tidy table the export is built from."""

    __tablename__ = "return_values"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("return_versions.id", ondelete="CASCADE"), index=True)
    sheet: Mapped[str] = mapped_column(String(32))
    indicator: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(32), default="")
    breakdown: Mapped[str] = mapped_column(String(32), default="")
    value: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)


class ReturnIssue(db.Model):
    """A problem found in a version, pointing at its sheet and cell."""

    __tablename__ = "return_issues"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("return_versions.id", ondelete="CASCADE"), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    sheet: Mapped[str] = mapped_column(String(64))
    cell: Mapped[str] = mapped_column(String(16), default="")
    indicator: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Text)


class Review(db.Model):
    """Staff's decision on a version: accepted, or returned for correction with a reason."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("return_versions.id", ondelete="CASCADE"), index=True)
    state: Mapped[ReviewState] = mapped_column(column_type(ReviewState, 16))
    reason: Mapped[str] = mapped_column(Text, default="")
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)

    version: Mapped[ReturnVersion] = relationship(back_populates="reviews")
    reviewer: Mapped[User | None] = relationship()


class VersionComment(db.Model):
    """One message of the thread between staff and the unit about a version; never edited."""

    __tablename__ = "version_comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("return_versions.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)

    version: Mapped[ReturnVersion] = relationship(back_populates="comments")
    author: Mapped[User | None] = relationship()


class OutboundMessage(db.Model):
    """An email the tracker decided to send; the key (plan, unit, kind, step) makes it happen once."""

    __tablename__ = "outbound_messages"
    __table_args__ = (UniqueConstraint("plan_id", "unit_key", "kind", "step"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # None only for replies to the intake mailbox's senders whose message named no plan.
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    # Unit code, or "" for messages to the department: NULL would not take part in the unique key.
    unit_key: Mapped[str] = mapped_column(String(16), default="")
    kind: Mapped[MessageKind] = mapped_column(column_type(MessageKind, 32))
    step: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    cc: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[MessageStatus] = mapped_column(column_type(MessageStatus, 16), default=MessageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    eml_path: Mapped[str] = mapped_column(String(500), default="")


class AuditEvent(db.Model):
    """Append-only record of who did what, when (UTC) and from where."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(254), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")


class IntakeMessage(db.Model):
    """One message read from the intake mailbox (or a saved .eml), once per Message-ID."""

    __tablename__ = "intake_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    # The Message-ID header, or "<sha256:…@tracker>" of the raw bytes when the message has none.
    message_id: Mapped[str] = mapped_column(String(500), unique=True)
    sender: Mapped[str] = mapped_column(String(254), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    message_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the mailbox received it (IMAP INTERNALDATE): the time the late/on-time rule uses.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(8), default="imap")  # imap, eml
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)

    records: Mapped[list[IntakeRecord]] = relationship(back_populates="message", order_by="IntakeRecord.id",
                                                       cascade="all, delete-orphan")


class IntakeRecord(db.Model):
    """What became of one attachment of an intake message (or of a message with none usable)."""

    __tablename__ = "intake_records"
    __table_args__ = (UniqueConstraint("intake_message_id", "attachment_sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    intake_message_id: Mapped[int] = mapped_column(ForeignKey("intake_messages.id", ondelete="CASCADE"))
    # sha256 of the attachment's bytes; "" for the record of a message with no attachment at all.
    attachment_sha256: Mapped[str] = mapped_column(String(64), default="")
    filename: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[str] = mapped_column(String(16), default="")  # spreadsheet, pdf, other, none
    state: Mapped[str] = mapped_column(String(16), index=True)  # accepted, held, refused, ignored
    reason: Mapped[str] = mapped_column(Text, default="")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("return_versions.id"))
    # A held attachment's bytes, kept until staff decide; the upload path stores them as a version then.
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)

    message: Mapped[IntakeMessage] = relationship(back_populates="records")
    unit: Mapped[Unit | None] = relationship()
    assignment: Mapped[Assignment | None] = relationship()
    version: Mapped[ReturnVersion | None] = relationship()
    decided_by: Mapped[User | None] = relationship()


class ValueLayout(db.Model):
    """The ordered cell keys ("indicator|period|breakdown") of packed values; shared by every pack alike."""

    __tablename__ = "value_layouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    keys: Mapped[list[str]] = mapped_column(JSON)


class ValuePack(db.Model):
    """A version's numbers as one float64 array in its layout's order (NaN where blank).

    Written with the version; the outlier list reads a national plan's counted values from these
    (one row per unit) instead of millions of ``return_values`` rows.
    """

    __tablename__ = "value_packs"
    version_id: Mapped[int] = mapped_column(ForeignKey("return_versions.id", ondelete="CASCADE"), primary_key=True)
    layout_id: Mapped[int] = mapped_column(ForeignKey("value_layouts.id"), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class OutlierBound(db.Model):
    """Staff's plausible range for one indicator of a form (every period and breakdown); kept as data."""

    __tablename__ = "outlier_bounds"
    __table_args__ = (UniqueConstraint("form_code", "indicator"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    form_code: Mapped[str] = mapped_column(String(32))
    indicator: Mapped[str] = mapped_column(String(64))
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class OutlierVerification(db.Model):
    """Staff's note that a flagged figure was checked and is right; it holds while the value stays the same."""

    __tablename__ = "outlier_verifications"
    __table_args__ = (Index("ix_outlier_verifications_plan_unit", "plan_id", "unit_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("return_versions.id", ondelete="SET NULL"))
    indicator: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(32), default="")
    breakdown: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)

    verified_by: Mapped[User | None] = relationship()


def plan_by_code(code: str) -> Plan | None:
    return db.session.scalar(select(Plan).where(Plan.code == code))


def in_force_on(on: date) -> Any:
    """Return the SQL condition "the unit version is in force on ``on``"."""
    return (Unit.valid_from <= on) & (Unit.valid_to.is_(None) | (Unit.valid_to > on))


def unit_by_code(code: str, on: date, or_before: bool = False) -> Unit | None:
    """Return the unit that bears ``code`` on the date ``on``, or None.

    Every lookup of a unit by its code goes through here, because codes are reused: the plan's own
    date (``plan.units_on``) is the usual ``on``. With ``or_before``, a code no longer in force on ``on``
    gives its last version that began on or before it (an account or contact of a unit that has ended).
    """
    unit = db.session.scalar(select(Unit).where(Unit.code == code, in_force_on(on)))
    if unit is None and or_before:
        unit = db.session.scalar(select(Unit).where(Unit.code == code, Unit.valid_from <= on)
                                 .order_by(Unit.valid_from.desc()).limit(1))
    return unit


def assignment_for(plan: Plan, unit: Unit) -> Assignment | None:
    return db.session.scalar(select(Assignment).where(Assignment.plan_id == plan.id,
                                                      Assignment.unit_id == unit.id))
