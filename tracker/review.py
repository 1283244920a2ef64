"""Staff's review of a return version: accept it, or return it to the unit for correction with a reason.

Two layers. The decisions (``decide_accept``, ``decide_return``, ``officer_next_step``) are pure: the
caller passes the facts of the version and of the unit's newest version, and gets back a
``ReviewDecision``, or a ``ReviewRefused`` carrying the Vietnamese message and the HTTP status to
answer with. ``review_version`` is the use case: it gathers those facts from the database, stores the
decision (a ``models.Review`` row and an audit event), queues the unit's notice and commits.

Rules:

- only the unit's newest version can be reviewed: deciding on an older one would be silently
  overridden by the newer upload (409);
- only a complete version (no errors) can be accepted (422); one already accepted is refused (409);
- any newest version can be returned for correction, with a non-empty reason of at most
  ``MAX_REASON`` characters (422); the unit sees the reason. A returned version stops counting
  (``compliance.counts``); a new complete upload counts again. A version already returned is
  refused (409), so the unit is not emailed twice for one decision.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from . import audit, outbox, reminders
from .compliance import ReviewState
from .extensions import db
from .models import Assignment, PlanState, ReturnVersion, Review, User

MAX_REASON = 2000


@dataclass(frozen=True)
class VersionUnderReview:
    """What a review decision needs to know about the version and the unit's newest version."""

    version: int
    complete: bool
    errors: int
    newest_version: int
    current_review: ReviewState | None = None


@dataclass(frozen=True)
class ReviewDecision:
    """A decision to store: the review state, its reason ('' when accepted), audit action, flash text."""

    version: int
    state: ReviewState
    reason: str
    audit_action: str
    message: str


class ReviewRefused(Exception):
    """A review that must not be stored; ``message`` is for the user, ``status`` for the response."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _check_newest(target: VersionUnderReview) -> None:
    if target.version != target.newest_version:
        raise ReviewRefused(
            f"Phiên bản {target.version} không còn là phiên bản mới nhất (đơn vị đã nộp phiên bản "
            f"{target.newest_version}). Vui lòng xem xét phiên bản mới nhất.", 409)


def decide_accept(target: VersionUnderReview) -> ReviewDecision:
    """Return the decision to accept ``target``.

    Raises ReviewRefused: 409 when it is not the newest version or is already accepted, 422 when it is
    not complete.
    """
    _check_newest(target)
    if not target.complete or target.errors > 0:
        raise ReviewRefused(
            f"Không thể chấp nhận phiên bản {target.version}: báo cáo chưa đầy đủ "
            f"(còn {target.errors} lỗi). Chỉ chấp nhận phiên bản không còn lỗi.", 422)
    if target.current_review is ReviewState.ACCEPTED:
        raise ReviewRefused(f"Phiên bản {target.version} đã được chấp nhận trước đó.", 409)
    return ReviewDecision(target.version, ReviewState.ACCEPTED, "", "review.accept",
                          f"Đã chấp nhận báo cáo phiên bản {target.version}.")


def decide_return(target: VersionUnderReview, reason: str) -> ReviewDecision:
    """Return the decision to send ``target`` back for correction with ``reason`` (whitespace trimmed).

    Raises ReviewRefused: 422 when the reason is empty or longer than MAX_REASON characters, 409 when the
    version is not the newest or is already returned.
    """
    reason = " ".join(reason.split()) if "\n" not in reason else reason.strip()
    if not reason:
        raise ReviewRefused("Vui lòng nhập lý do trả lại để đơn vị biết cần chỉnh sửa gì.", 422)
    if len(reason) > MAX_REASON:
        raise ReviewRefused(f"Lý do trả lại quá dài (tối đa {MAX_REASON} ký tự).", 422)
    _check_newest(target)
    if target.current_review is ReviewState.RETURNED:
        raise ReviewRefused(f"Phiên bản {target.version} đã được trả lại để chỉnh sửa trước đó.", 409)
    return ReviewDecision(target.version, ReviewState.RETURNED, reason, "review.return",
                          f"Đã trả lại phiên bản {target.version} để đơn vị chỉnh sửa.")


@dataclass(frozen=True)
class NextStep:
    """What the unit's officer should do next about a version: a badge tone, a heading and a sentence."""

    tone: str
    title: str
    text: str
    upload_again: bool


def officer_next_step(complete: bool, errors: int, review: ReviewState | None, newest_version: int,
                      version: int) -> NextStep:
    """Return the officer's next step for ``version`` from its result and the Sở's latest review of it."""
    if version != newest_version:
        return NextStep("muted", "Đã có phiên bản mới hơn",
                        f"Đơn vị đã nộp phiên bản {newest_version}; Sở xem xét phiên bản mới nhất.", False)
    if review is ReviewState.RETURNED:
        return NextStep("bad", "Sở trả lại để chỉnh sửa",
                        "Sửa báo cáo theo lý do dưới đây rồi tải lên bản đã sửa; Sở sẽ xem xét lại bản mới.", True)
    if review is ReviewState.ACCEPTED:
        return NextStep("ok", "Sở đã chấp nhận", "Báo cáo đã được Sở chấp nhận: đơn vị không cần làm gì thêm.", False)
    if not complete or errors:
        return NextStep("bad", "Cần sửa lỗi",
                        f"Sửa {errors} lỗi liệt kê dưới đây rồi tải lên bản đã sửa.", True)
    return NextStep("info", "Chờ Sở xem xét",
                    "Báo cáo đầy đủ, đã được ghi nhận. Sở sẽ xem xét và thông báo nếu cần chỉnh sửa.", False)


def newest_version_number(assignment: Assignment) -> int | None:
    """Return the number of the assignment's newest version (last received), None before any upload."""
    return db.session.scalar(select(ReturnVersion.version).where(ReturnVersion.assignment_id == assignment.id)
                             .order_by(ReturnVersion.received_at.desc(), ReturnVersion.version.desc()).limit(1))


def _under_review(assignment: Assignment, version: ReturnVersion) -> VersionUnderReview:
    newest = newest_version_number(assignment)
    last = db.session.scalar(select(Review.state).where(Review.version_id == version.id)
                             .order_by(Review.id.desc()).limit(1))
    return VersionUnderReview(version=version.version, complete=version.complete, errors=version.errors,
                              newest_version=newest if newest is not None else version.version,
                              current_review=last)


def review_version(assignment: Assignment, version: ReturnVersion, reviewer: User, returning: bool,
                   reason: str, now: datetime) -> ReviewDecision:
    """Store ``reviewer``'s decision on ``version`` at ``now`` (accept it, or return it with ``reason``),
    audit it, queue the unit's notice of a return, commit, and send the notice after the request.

    Raises ReviewRefused (nothing stored): 409 for a closed plan, else see ``decide_accept`` and
    ``decide_return``.
    """
    plan, unit = assignment.plan, assignment.unit
    if plan.state == PlanState.CLOSED:
        raise ReviewRefused(f"Kế hoạch {plan.code} đã đóng (chỉ để xem): không ghi nhận ý kiến mới.", 409)
    target = _under_review(assignment, version)
    decision = decide_return(target, reason) if returning else decide_accept(target)
    review = Review(version_id=version.id, state=decision.state, reason=decision.reason,
                    reviewer_id=reviewer.id, created_at=now)
    db.session.add(review)
    db.session.flush()
    # The unit page's audit trail lists events targeted "<plan>/<unit>".
    audit.record(decision.audit_action, target=f"{plan.code}/{unit.code}", plan=plan.code, unit=unit.code,
                 version=version.version, reason=decision.reason)
    if returning:
        reminders.queue_returned(review)
    db.session.commit()
    if returning:
        outbox.send_after_request()
    return decision
