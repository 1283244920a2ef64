"""Pure rules for chasing a unit by hand: who may be chased, and once per unit per Vietnamese day.

Nothing here reads the clock or the database: the caller passes the unit's standing, the time the
last manual reminder of the same day went out (if any) and ``as_of``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .compliance import Standing, Status, require_aware
from .timeutil import fmt_datetime, local

# Units with nothing complete in hand: not sent, or sent with errors, or returned for correction.
CHASED = frozenset({Status.OVERDUE, Status.INCOMPLETE})


class RemindRefused(Exception):
    """A manual reminder that must not be queued; ``code`` and ``status`` are the API's answer."""

    def __init__(self, code: str, message: str, status: int, last_at: datetime | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.last_at = last_at


def needs_chase(standing: Standing) -> bool:
    """Return True when the unit is overdue or incomplete (which includes a return sent back)."""
    return standing.status in CHASED


def manual_step(as_of: datetime) -> str:
    """Return the outbox step of a manual reminder at ``as_of``: the Vietnamese calendar day."""
    require_aware(as_of, "as_of")
    return local(as_of).date().isoformat()


def check_remind(unit_name: str, standing: Standing, today_sent_at: datetime | None, has_contacts: bool,
                 as_of: datetime) -> str:
    """Return the step under which a manual reminder to the unit may be queued at ``as_of``.

    Raises RemindRefused: 422 ``nothing_to_chase`` when the unit is exempt, not yet due, or complete;
    409 ``already_reminded`` when a manual reminder already went out that day (its time in the
    message); 422 ``no_contacts`` when the unit has no email address to write to.
    """
    if not needs_chase(standing):
        raise RemindRefused("nothing_to_chase", f"{unit_name} không cần nhắc: tình trạng hiện tại là "
                            f"«{standing.status.label}».", 422)
    if today_sent_at is not None:
        raise RemindRefused("already_reminded", f"{unit_name} đã được nhắc hôm nay lúc "
                            f"{fmt_datetime(today_sent_at)}; mỗi đơn vị chỉ nhắc một lần mỗi ngày.", 409,
                            today_sent_at)
    if not has_contacts:
        raise RemindRefused("no_contacts", f"{unit_name} chưa có địa chỉ email liên hệ: hãy thêm địa chỉ "
                            "trước khi nhắc.", 422)
    return manual_step(as_of)


@dataclass(frozen=True)
class ContactCard:
    """One person to chase at a unit."""

    email: str
    name: str = ""
    phone: str = ""
