"""Who receives mail: a unit's contact addresses (read and changed), the department's staff, a unit's officers.

Messages to a unit go to its contacts (``Contact`` rows, kept by admins and ``flask set-contacts``), not
to the officers' login addresses: a unit's mailbox outlives whoever holds its account. Comments are the
exception (``comments.py``): they go to the people taking part.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from . import audit
from .chasing import ContactCard
from .email_address import InvalidEmail, normalize_email
from .extensions import db
from .models import Assignment, Contact, Role, Unit, User

# Why a message stays failed when there is nobody to send it to (shown on the mail log).
NO_CONTACTS = "Đơn vị chưa có địa chỉ email liên hệ"
NO_STAFF = "Chưa có cán bộ Sở nào đang hoạt động để nhận bản tổng hợp"


class ContactError(ValueError):
    """Contact addresses cannot be saved as given; the message says why, in Vietnamese."""


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


def parse_addresses(text: str) -> list[str]:
    """Split ``text`` on commas, semicolons and white space; return the non-empty pieces in order."""
    return [piece for piece in re.split(r"[\s,;]+", text) if piece]


def unit_addresses(unit_codes: Iterable[str], plan_id: int | None) -> dict[str, list[str]]:
    """Return the contact addresses of each unit the plan assigns, by unit code, in address order.

    A code with no contact is missing from the result (reading it gives ``[]``).
    """
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


def cards(unit_ids: Iterable[int]) -> dict[int, tuple[ContactCard, ...]]:
    """Return each unit's contacts (email, name, phone) in email order; units with none are missing."""
    ids = list(unit_ids)
    found: dict[int, list[ContactCard]] = defaultdict(list)
    if ids:
        for unit_id, email, name, phone in db.session.execute(
                select(Contact.unit_id, Contact.email, Contact.name, Contact.phone)
                .where(Contact.unit_id.in_(ids)).order_by(Contact.unit_id, Contact.email)):
            found[unit_id].append(ContactCard(email, name or "", phone or ""))
    return {uid: tuple(c) for uid, c in found.items()}


def staff_addresses() -> list[str]:
    """Return the email addresses of active admin and staff users, sorted."""
    return list(db.session.scalars(select(User.email).where(User.role.in_((Role.ADMIN, Role.STAFF)),
                                                            User.active.is_(True)).order_by(User.email)))


def unit_officer_addresses(unit_id: int) -> list[str]:
    """Return the login addresses of the unit's active officers, sorted."""
    return list(db.session.scalars(select(User.email).where(User.unit_id == unit_id, User.role == Role.UNIT,
                                                            User.active.is_(True)).order_by(User.email)))


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
