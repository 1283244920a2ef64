"""A comment thread on a return version between staff and the unit; each comment emailed once to the
other side through the outbox (``reminders.queue_comment``), in the caller's transaction."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from . import audit, contacts, reminders
from .extensions import db
from .models import Contact, ReturnVersion, Review, Role, User, VersionComment

MAX_COMMENT = 2000


class CommentRefused(ValueError):
    """A comment that cannot be stored; the message says why, in Vietnamese."""


def clean_body(text: str) -> str:
    """Return ``text`` trimmed; raise CommentRefused when empty or longer than MAX_COMMENT characters."""
    body = (text or "").strip()
    if not body:
        raise CommentRefused("Vui lòng nhập nội dung ý kiến trước khi gửi.")
    if len(body) > MAX_COMMENT:
        raise CommentRefused(f"Ý kiến quá dài (tối đa {MAX_COMMENT} ký tự).")
    return body


def _department_side(version: ReturnVersion) -> list[str]:
    """Staff who already took part (reviewed or commented on this unit's versions), else all active staff."""
    assignment_id = version.assignment_id
    reviewers = select(Review.reviewer_id).join(ReturnVersion, ReturnVersion.id == Review.version_id).where(
        ReturnVersion.assignment_id == assignment_id)
    commenters = select(VersionComment.author_id).join(
        ReturnVersion, ReturnVersion.id == VersionComment.version_id).where(ReturnVersion.assignment_id == assignment_id)
    involved = list(db.session.scalars(
        select(User.email).where(User.id.in_(reviewers.union(commenters)), User.active.is_(True),
                                 User.role.in_((Role.ADMIN, Role.STAFF))).order_by(User.email)))
    return involved or contacts.staff_addresses()


def _unit_side(version: ReturnVersion) -> list[str]:
    unit = version.assignment.unit
    addresses = list(db.session.scalars(select(Contact.email).where(Contact.unit_id == unit.id)
                                        .order_by(Contact.email)))
    officers = contacts.unit_officer_addresses(unit.id)
    return addresses + [a for a in officers if a not in addresses]


def add_comment(version: ReturnVersion, author: Any, text: str, now: datetime) -> VersionComment:
    """Store a comment by ``author`` on ``version``, queue its email to the other side, audit it.

    Returns the comment; raises CommentRefused for an empty or too long text. Does not commit.
    """
    body = clean_body(text)
    comment = VersionComment(version=version, author_id=author.id, body=body, created_at=now)
    db.session.add(comment)
    db.session.flush()
    comment.author = author
    to_unit = bool(author.is_department)
    recipients = _unit_side(version) if to_unit else _department_side(version)
    reminders.queue_comment(comment, [r for r in recipients if r != author.email], to_unit)
    assignment = version.assignment
    audit.record("comment.add", target=f"{assignment.plan.code}/{assignment.unit.code}", user=author,
                 plan=assignment.plan.code, unit=assignment.unit.code, unit_name=assignment.unit.name,
                 version=version.version, comment_id=comment.id)
    return comment
