"""A unit withdraws one version of its return: kept in the history, audited, never deleted, no longer counted.

``withdraw_version`` is the use case (the caller commits nothing else with it): it marks the version,
records the audit event and commits. A refused withdrawal raises ``WithdrawalRefused`` with the
Vietnamese message and the HTTP status to answer with; nothing is stored then.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from . import audit
from .extensions import db
from .guard import Refusal
from .models import ReturnVersion, Role, User
from .plans import refuse_unless_open


class WithdrawalRefused(Exception):
    """A withdrawal that must not happen; ``code`` and ``message`` for the response, ``status`` its HTTP code."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def check_withdrawal(version: ReturnVersion, user: User) -> None:
    """Return None when ``user`` may withdraw ``version``; raise WithdrawalRefused otherwise.

    Only an account of the version's own unit may withdraw it (403): staff return a version for
    correction instead. A version already withdrawn is refused (409), so the audit holds one event; so is
    any version of a plan that is not open (409 ``plan_closed``, as an upload there): a closed plan is read-only.
    """
    if user.role != Role.UNIT or user.unit_id != version.assignment.unit_id:
        raise WithdrawalRefused("forbidden", "Chỉ tài khoản của chính đơn vị mới rút được phiên bản báo cáo của "
                                "đơn vị. Cán bộ của Sở dùng chức năng «Trả lại để chỉnh sửa».", 403)
    try:
        refuse_unless_open(version.assignment.plan, "plan_closed_withdraw")
    except Refusal as refusal:
        raise WithdrawalRefused(refusal.code, refusal.message, refusal.status) from None
    if version.withdrawn_at is not None:
        raise WithdrawalRefused("already_withdrawn", f"Phiên bản {version.version} đã được rút trước đó.", 409)


def withdraw_version(version: ReturnVersion, user: User, at: datetime, confirmed: bool = True) -> ReturnVersion:
    """Mark ``version`` withdrawn at ``at`` by ``user``, audit it and commit; return the version.

    Raises WithdrawalRefused (see ``check_withdrawal``), and 400 when the officer did not tick the
    confirmation (``confirmed``; the API's call is its own confirmation).
    """
    check_withdrawal(version, user)
    if not confirmed:
        raise WithdrawalRefused("not_confirmed", "Hãy đánh dấu ô xác nhận trước khi rút phiên bản.", 400)
    # Conditional on "not yet withdrawn": of two racing requests exactly one marks the version.
    marked = db.session.scalar(update(ReturnVersion)
                               .where(ReturnVersion.id == version.id, ReturnVersion.withdrawn_at.is_(None))
                               .values(withdrawn_at=at, withdrawn_by_id=user.id).returning(ReturnVersion.id)
                               # Names its plan, so only that plan's cached standings go (tracker.plan_changes).
                               .execution_options(plan_ids=[version.assignment.plan_id]))
    if marked is None:
        db.session.rollback()
        raise WithdrawalRefused("already_withdrawn", f"Phiên bản {version.version} đã được rút trước đó.", 409)
    db.session.refresh(version)
    assignment = version.assignment
    audit.record("version.withdraw", target=f"{assignment.plan.code}/{assignment.unit.code}", user=user,
                 version=version.version, sha256=version.sha256, complete=version.complete)
    db.session.commit()
    return version
